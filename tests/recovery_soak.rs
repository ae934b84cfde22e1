//! Soak: 1,000 opted-in clients dropped and reconnected at random while
//! messages are published; every client must end with every message of its
//! channel from its first connection on, exactly once and in order
//! (docs/recovery.md records a run of this test).
//!
//! Bounded: `SOAK_SECS` of publishing (default 10), then at most 60 s for
//! every client to catch up. `SOAK_CLIENTS` (default 1000) and `SOAK_RATE`
//! (messages per second over all channels, default 500) change the load.
//! Loopback only; the server is the real binary.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::json::field;
use common::{Client, Got, Server};
use rand::Rng;

const CHANNELS: usize = 10;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Totals {
    connects: AtomicU64,
    abrupt_drops: AtomicU64,
    clean_closes: AtomicU64,
    delivered: AtomicU64,
}

/// One simulated browser tab.
struct Tab {
    channel: String,
    /// Last (epoch, offset) seen per stream: the channel and `*`.
    chan: Option<(String, u64)>,
    all: Option<(String, u64)>,
    conn: Option<Client>,
    /// When this tab next drops its connection, or reconnects.
    next_event: Instant,
    /// Offset of the first message this tab must have (after its first
    /// position), for the final check.
    first: Option<u64>,
    /// Messages received: each checked as the next offset.
    received: u64,
}

impl Tab {
    fn url(&self, base: &str) -> String {
        let mut q = format!("{base}?recover=1&channel={}", self.channel);
        if let Some((ep, off)) = &self.chan {
            q.push_str(&format!("&since={}:{off}:{ep}", self.channel));
        }
        if let Some((ep, off)) = &self.all {
            q.push_str(&format!("&since=*:{off}:{ep}"));
        }
        q
    }

    /// Applies one envelope; panics on a gap, a duplicate or a reset.
    fn apply(&mut self, json: &str) {
        let ch = field(json, "ch").expect("ch");
        let ep = field(json, "ep").expect("ep").to_owned();
        let off: u64 = field(json, "off").expect("off").parse().expect("off");
        assert!(field(json, "reset").is_none(), "reset: {json}");
        assert!(field(json, "gap").is_none(), "gap: {json}");
        let data = field(json, "data");
        let state = if ch == "*" {
            &mut self.all
        } else {
            assert_eq!(ch, self.channel, "{json}");
            &mut self.chan
        };
        match (state.as_mut(), data) {
            (None, None) => {
                // First connection: where this tab starts.
                *state = Some((ep, off));
                if ch != "*" {
                    self.first = Some(off + 1);
                }
            }
            (None, Some(_)) => panic!("data before a position: {json}"),
            (Some((e, last)), data) => {
                assert_eq!(*e, ep, "epoch changed within a run: {json}");
                match data {
                    Some(d) => {
                        assert_eq!(off, *last + 1, "gap or duplicate: {json} after {last}");
                        assert_eq!(d, format!("{ch}-{off}"), "{json}");
                        *last = off;
                        self.received += 1;
                    }
                    None => assert_eq!(off, *last, "position after catch-up: {json}"),
                }
            }
        }
    }

    /// Reads whatever is there.
    fn pump(&mut self, totals: &Totals) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        let mut texts = Vec::new();
        loop {
            match c.next(Duration::from_millis(1)) {
                Got::Text(t) => texts.push(t),
                Got::Ping | Got::Pong => {}
                Got::Timeout => break,
                other => {
                    // The server never closes these clients in this test.
                    panic!("unexpected {other:?}");
                }
            }
        }
        totals
            .delivered
            .fetch_add(texts.len() as u64, Ordering::Relaxed);
        for t in texts {
            self.apply(&t);
        }
    }

    fn connect(&mut self, base: &str, totals: &Totals) {
        let url = self.url(base);
        let c = Client::connect(&url);
        // Reads return at once when nothing is there (Got::Timeout).
        c.inner
            .stream()
            .set_nonblocking(true)
            .expect("set_nonblocking");
        self.conn = Some(c);
        totals.connects.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn soak_thousand_clients_reconnecting_lose_nothing() {
    let clients = env_or("SOAK_CLIENTS", 1000) as usize;
    let secs = env_or("SOAK_SECS", 10);
    let rate = env_or("SOAK_RATE", 500);
    let threads = 25usize;
    rlimit::increase_nofile_limit(4 * clients as u64 + 1024).expect("raise the open-file limit");
    let server = Server::start(&["--history", "100000", "--max-connections", "10000"]);
    let base = server.url();
    let totals = Arc::new(Totals::default());
    // Set by the publisher when it is done: the last offset per channel.
    let finals: Arc<Mutex<Option<Vec<u64>>>> = Arc::new(Mutex::new(None));
    let start = Instant::now();

    let mut workers = Vec::new();
    for t in 0..threads {
        let base = base.clone();
        let totals = Arc::clone(&totals);
        let finals = Arc::clone(&finals);
        workers.push(std::thread::spawn(move || {
            let mut rng = rand::thread_rng();
            let mut tabs: Vec<Tab> = (t..clients)
                .step_by(threads)
                .map(|i| Tab {
                    channel: format!("c{}", i % CHANNELS),
                    chan: None,
                    all: None,
                    conn: None,
                    next_event: Instant::now() + Duration::from_millis(rng.gen_range(300..2000)),
                    first: None,
                    received: 0,
                })
                .collect();
            for tab in &mut tabs {
                tab.connect(&base, &totals);
                tab.pump(&totals);
            }
            // Churn until the publisher is done: each tab stays connected
            // 0.3-2 s, then loses its connection (half the time without a
            // close frame) for 0.05-0.5 s, and comes back with since=.
            while finals.lock().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
                for tab in &mut tabs {
                    let now = Instant::now();
                    if now >= tab.next_event {
                        match tab.conn.take() {
                            None => {
                                tab.connect(&base, &totals);
                                tab.next_event =
                                    now + Duration::from_millis(rng.gen_range(300..2000));
                            }
                            Some(mut c) => {
                                if rng.gen_bool(0.5) {
                                    let _ = c.inner.stream().shutdown(std::net::Shutdown::Both);
                                    totals.abrupt_drops.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    c.close();
                                    totals.clean_closes.fetch_add(1, Ordering::Relaxed);
                                }
                                tab.next_event =
                                    now + Duration::from_millis(rng.gen_range(50..500));
                            }
                        }
                    }
                    tab.pump(&totals);
                }
            }
            // Catch up: everyone reconnects and reads to the end.
            let finals = finals.lock().unwrap().clone().unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            for tab in &mut tabs {
                if tab.conn.is_none() {
                    tab.connect(&base, &totals);
                }
            }
            let ch_of = |tab: &Tab| tab.channel[1..].parse::<usize>().unwrap();
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let mut behind = 0;
                for tab in &mut tabs {
                    tab.pump(&totals);
                    let want = finals[ch_of(tab)];
                    if tab.chan.as_ref().is_none_or(|(_, off)| *off < want) {
                        behind += 1;
                    }
                }
                if behind == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{behind} tabs did not catch up");
            }
            // Every message from its first position on, exactly once.
            for tab in &tabs {
                let want = finals[ch_of(tab)];
                let first = tab.first.unwrap();
                assert_eq!(tab.received, want + 1 - first, "{}", tab.channel);
            }
            tabs.len()
        }));
    }

    // Publish at a fixed rate over one Unix connection.
    let mut p = UnixStream::connect(&server.unix).expect("connect");
    let mut seq = [0u64; CHANNELS];
    let total = rate * secs;
    let t0 = Instant::now();
    for n in 0..total {
        let k = (n as usize) % CHANNELS;
        seq[k] += 1;
        writeln!(p, "@c{k} c{k}-{}", seq[k]).expect("publish");
        let due = t0 + Duration::from_secs_f64((n + 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    // A probe makes sure the server read everything before the workers
    // are told the final offsets.
    let mut probe = Client::connect(&format!("{base}?channel=probe"));
    writeln!(p, "@probe done").expect("publish");
    probe.expect_text("done");
    *finals.lock().unwrap() = Some(seq.to_vec());

    let mut tabs = 0;
    for w in workers {
        tabs += w.join().expect("a worker failed");
    }
    assert_eq!(tabs, clients);
    let drops =
        totals.abrupt_drops.load(Ordering::Relaxed) + totals.clean_closes.load(Ordering::Relaxed);
    assert!(
        drops >= clients as u64,
        "the churn was real: {drops} disconnections for {clients} clients"
    );
    let summary = format!(
        "soak: {clients} clients, {secs} s publishing {total} messages at {rate}/s over {CHANNELS} channels; \
         {} connections, {} abrupt drops, {} clean closes, {} envelopes delivered; \
         lost 0, duplicated 0 (every client checked every offset); {:.1} s in all",
        totals.connects.load(Ordering::Relaxed),
        totals.abrupt_drops.load(Ordering::Relaxed),
        totals.clean_closes.load(Ordering::Relaxed),
        totals.delivered.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    println!("{summary}");
}
