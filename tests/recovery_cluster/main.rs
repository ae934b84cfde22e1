//! Recovery with two nodes on a real redis-server (started here on a free
//! loopback port, ended by PID). With `--local-history`, history is per
//! node (docs/recovery.md, "Across nodes"): a node's history holds what
//! every node published (it arrives through Redis), so a client that comes
//! back to the same node misses nothing; a client that comes back to
//! another node is told `reset: epoch` explicitly, never silently left with
//! a gap. By default (`--redis-history`), Redis numbers every stream's
//! messages and a client recovers on any node.

#[path = "../common/mod.rs"]
mod common;
#[path = "../redis_server/mod.rs"]
mod redis_server;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::json::field;
use common::rpc::stat;
use common::{Client, Got, Srv};
use redis_server::Redis;

fn next_text(c: &mut Client) -> String {
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => t,
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn node(redis: &Redis) -> Srv {
    node_with(redis, &[])
}

fn node_with(redis: &Redis, extra: &[&str]) -> Srv {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--history", "1000"];
    args.extend_from_slice(extra);
    let n = Srv::start(&args);
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
    n
}

#[test]
fn per_node_history_holds_every_nodes_messages_and_another_node_says_reset() {
    let redis = Redis::start();
    let a = node_with(&redis, &["--local-history"]);
    let b = node_with(&redis, &["--local-history"]);

    let mut c = Client::connect(&a.url("recover=1&channel=news"));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "ch"), field(&pos, "off")),
        (Some("news"), Some("0"))
    );
    let epoch_a = field(&pos, "ep").unwrap().to_owned();
    let _ = c.inner.stream().shutdown(std::net::Shutdown::Both);

    // 100 messages published on node B while the client is away from A.
    let mut watcher = Client::connect(&a.url("channel=news"));
    let mut p = UnixStream::connect(&b.unix).expect("connect to B's Unix socket");
    for i in 1..=100 {
        writeln!(p, "@news m{i}").unwrap();
    }
    for i in 1..=100 {
        watcher.expect_text(&format!("m{i}")); // they reached node A
    }

    // Back on node A: exactly those 100, in order, then the position.
    let mut c = Client::connect(&a.url(&format!("recover=1&channel=news&since=news:0:{epoch_a}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    for i in 1..=100 {
        let e = next_text(&mut c);
        let want = format!("m{i}");
        assert_eq!(
            (field(&e, "off"), field(&e, "data")),
            (Some(i.to_string().as_str()), Some(want.as_str())),
            "{e}"
        );
    }
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("100"), None),
        "{pos}"
    );

    // On node B, A's epoch means nothing: an explicit reset, then live ones.
    let mut c =
        Client::connect(&b.url(&format!("recover=1&channel=news&since=news:100:{epoch_a}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(field(&pos, "reset"), Some("epoch"), "{pos}");
    assert_ne!(field(&pos, "ep"), Some(epoch_a.as_str()));
    assert_eq!(
        field(&pos, "off"),
        Some("100"),
        "B kept the 100 too, under its own epoch"
    );
    writeln!(p, "@news m101").unwrap();
    let live = next_text(&mut c);
    assert_eq!(
        (field(&live, "off"), field(&live, "data")),
        (Some("101"), Some("m101"))
    );
}

/// A client whose envelopes are read per stream: streams a node answers
/// from its own ring come at once, those it asks Redis about when Redis
/// answers, so only the order within a stream is promised.
struct Inbox {
    c: Client,
    stash: std::collections::VecDeque<String>,
}

impl Inbox {
    fn connect(url: &str) -> Inbox {
        Inbox {
            c: Client::connect(url),
            stash: Default::default(),
        }
    }

    /// The next envelope of stream `ch` (others are kept for later).
    fn next_on(&mut self, ch: &str) -> String {
        if let Some(i) = self.stash.iter().position(|e| field(e, "ch") == Some(ch)) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            let e = next_text(&mut self.c);
            if field(&e, "ch") == Some(ch) {
                return e;
            }
            self.stash.push_back(e);
        }
    }

    fn nothing_more(&mut self, quiet: Duration) -> Option<String> {
        self.stash
            .pop_front()
            .or_else(|| nothing_more(&mut self.c, quiet))
    }
}

/// The next text message, or `None` if nothing arrives for `quiet`.
fn nothing_more(c: &mut Client, quiet: Duration) -> Option<String> {
    match c.next(quiet) {
        Got::Timeout => None,
        Got::Text(t) => Some(t),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn shared_history_recovers_on_another_node_exactly_what_was_missed() {
    let redis = Redis::start();
    let a = node_with(&redis, &["--redis-history"]);
    let b = node_with(&redis, &["--redis-history"]);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut pb = UnixStream::connect(&b.unix).expect("connect to B's Unix socket");
    let mut raw_a = Client::connect(&a.url("channel=news"));
    let mut raw_b = Client::connect(&b.url("channel=news"));

    // A first message, so the stream exists in Redis with its epoch; both
    // nodes deliver it (A only once, when it comes back numbered).
    writeln!(pa, "@news m0").unwrap();
    raw_a.expect_text("m0");
    raw_b.expect_text("m0");

    let mut c = Inbox::connect(&a.url("recover=1&channel=news"));
    let pos = c.next_on("news");
    assert_eq!(
        (field(&pos, "ch"), field(&pos, "off"), field(&pos, "reset")),
        (Some("news"), Some("1"), None),
        "{pos}"
    );
    let epoch = field(&pos, "ep").unwrap().to_owned();
    let _ = c.c.inner.stream().shutdown(std::net::Shutdown::Both);

    // 100 messages while the client is away, published on both nodes.
    for i in 1..=100 {
        let p = if i % 2 == 1 { &mut pa } else { &mut pb };
        writeln!(p, "@news m{i}").unwrap();
    }
    // Every node delivers the stream in one order: Redis's.
    let order: Vec<String> = (1..=100).map(|_| next_text(&mut raw_b)).collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|m| m[1..].parse::<u32>().unwrap());
    let want: Vec<String> = (1..=100).map(|i| format!("m{i}")).collect();
    assert_eq!(sorted, want, "each of the 100 exactly once on B");
    let order_a: Vec<String> = (1..=100).map(|_| next_text(&mut raw_a)).collect();
    assert_eq!(order_a, order, "A delivered them in the same order as B");

    // Back on node B with what A gave it: exactly those 100, in order.
    let mut c = Inbox::connect(&b.url(&format!("recover=1&channel=news&since=news:1:{epoch}")));
    for (i, m) in order.iter().enumerate() {
        let e = c.next_on("news");
        let off = (i + 2).to_string();
        assert_eq!(
            (
                field(&e, "ch"),
                field(&e, "ep"),
                field(&e, "off"),
                field(&e, "data")
            ),
            (
                Some("news"),
                Some(epoch.as_str()),
                Some(off.as_str()),
                Some(m.as_str())
            ),
            "{e}"
        );
    }
    let pos = c.next_on("news");
    assert_eq!(
        (
            field(&pos, "off"),
            field(&pos, "reset"),
            field(&pos, "data")
        ),
        (Some("101"), None, None),
        "{pos}"
    );
    // `*` has had no message: B asked Redis for its epoch.
    let star = c.next_on("*");
    assert_eq!(
        (field(&star, "off"), field(&star, "reset")),
        (Some("0"), None),
        "{star}"
    );

    // Then live ones, from either node.
    writeln!(pa, "@news live-a").unwrap();
    let live = c.next_on("news");
    assert_eq!(
        (field(&live, "off"), field(&live, "data")),
        (Some("102"), Some("live-a")),
        "{live}"
    );
    writeln!(pb, "@news live-b").unwrap();
    let live = c.next_on("news");
    assert_eq!(
        (field(&live, "off"), field(&live, "data")),
        (Some("103"), Some("live-b")),
        "{live}"
    );
    // Raw clients got each message once (a node's own publishes are not
    // delivered both when they enter and when they come back).
    for raw in [&mut raw_a, &mut raw_b] {
        raw.expect_text("live-a");
        raw.expect_text("live-b");
        assert_eq!(nothing_more(raw, Duration::from_millis(300)), None);
    }
    assert_eq!(c.nothing_more(Duration::from_millis(300)), None);

    // Redis holds the stream under the documented keys: entry ids 0-OFFSET.
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &redis.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(cli(&["HGET", "wsbroadcaster:epoch:news", "ep"]), epoch);
    assert_eq!(cli(&["HGET", "wsbroadcaster:epoch:news", "off"]), "103");
    assert_eq!(cli(&["XLEN", "wsbroadcaster:hist:news"]), "103");
    let last = cli(&[
        "XREVRANGE",
        "wsbroadcaster:hist:news",
        "+",
        "-",
        "COUNT",
        "1",
    ]);
    assert!(last.starts_with("0-103"), "{last}");
}

const SHARED: [&str; 3] = ["--redis-history", "--rpc", "127.0.0.1:0"];

/// The stream's epoch in Redis.
fn redis_epoch(redis: &Redis, stream: &str) -> String {
    redis.cli(&["HGET", &format!("wsbroadcaster:epoch:{stream}"), "ep"])
}

#[test]
fn a_node_that_never_saw_the_messages_replays_them_from_redis_with_an_exact_seam() {
    // The XRANGE fallback: node B starts after the client's offset, so its
    // ring cannot cover the catch-up; Redis does, while messages keep being
    // published (the seam: no gap, no duplicate).
    let redis = Redis::start();
    let a = node_with(&redis, &SHARED);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut raw_a = Client::connect(&a.url("channel=news"));
    writeln!(pa, "@news m0").unwrap();
    raw_a.expect_text("m0");
    let mut c = Inbox::connect(&a.url("recover=1&channel=news"));
    let pos = c.next_on("news");
    assert_eq!(field(&pos, "off"), Some("1"), "{pos}");
    let epoch = field(&pos, "ep").unwrap().to_owned();
    drop(c);
    // m{i} is offset i + 1: one publisher, so Redis numbers them in order.
    for i in 1..=100 {
        writeln!(pa, "@news m{i}").unwrap();
    }
    for i in 1..=100 {
        raw_a.expect_text(&format!("m{i}"));
    }

    let b = node_with(&redis, &SHARED);
    // Publish on A without pause while the client joins B.
    let stop = Arc::new(AtomicBool::new(false));
    let mut publisher = Some({
        let (stop, path) = (Arc::clone(&stop), a.unix.clone());
        std::thread::spawn(move || {
            let mut p = UnixStream::connect(path).expect("connect to A's Unix socket");
            let mut i = 100;
            // Until told to stop, and at least 200 more in all.
            while !stop.load(Ordering::Relaxed) || i < 300 {
                i += 1;
                writeln!(p, "@news m{i}").unwrap();
                std::thread::sleep(Duration::from_micros(500));
            }
            i
        })
    });
    std::thread::sleep(Duration::from_millis(30));
    let mut c = Inbox::connect(&b.url(&format!("recover=1&channel=news&since=news:1:{epoch}")));
    // Every envelope: offsets 2, 3, … each exactly once with its payload,
    // and one position envelope right after the replay.
    let mut want = 2u64;
    let mut position = None;
    let mut last_sent = None;
    while last_sent.is_none_or(|l: u64| want <= l + 1) {
        let e = c.next_on("news");
        assert_eq!(field(&e, "ep"), Some(epoch.as_str()), "{e}");
        assert_eq!(field(&e, "reset"), None, "{e}");
        let off: u64 = field(&e, "off").unwrap().parse().unwrap();
        let Some(data) = field(&e, "data") else {
            assert!(position.is_none(), "one position envelope: {e}");
            assert_eq!(off, want - 1, "the position follows the replay: {e}");
            position = Some(off);
            stop.store(true, Ordering::Relaxed);
            last_sent = publisher.take().map(|p| p.join().expect("the publisher"));
            continue;
        };
        assert_eq!(off, want, "no gap, no duplicate: {e}");
        assert_eq!(data, format!("m{}", off - 1), "{e}");
        want += 1;
    }
    let (position, last_sent) = (position.unwrap(), last_sent.unwrap());
    assert!(
        position >= 101,
        "the 100 missed were replayed first: {position}"
    );
    assert!(
        last_sent + 1 > position,
        "live messages followed the position"
    );
    eprintln!(
        "replayed up to {position}, then live up to {}",
        last_sent + 1
    );
    let star = c.next_on("*");
    assert_eq!(field(&star, "off"), Some("0"), "{star}");
    assert_eq!(c.nothing_more(Duration::from_millis(300)), None);
    assert_eq!(
        stat(&b, "recovery_fallbacks"),
        2,
        "news, and * (no epoch here yet)"
    );
    let replayed = stat(&b, "recovery_fallback_replayed");
    assert!(replayed >= 100, "{replayed}");
    assert_eq!(stat(&b, "recovery_resets"), 0);
}

#[test]
fn shared_history_numbers_everyone_and_each_channel_of_a_client_message() {
    // The sequencer with several streams at once: a client message to its
    // two channels is one message per channel (each its own offset), and a
    // message to everyone is numbered in the stream `*`.
    let redis = Redis::start();
    let shared = ["--redis-history", "--client-messages", "broadcast"];
    let a = node_with(&redis, &shared);
    let b = node_with(&redis, &shared);
    let mut opted = Client::connect(&b.url("recover=1&channel=x&channel=y"));
    for want in ["*", "x", "y"] {
        let pos = next_text(&mut opted);
        assert_eq!(
            (field(&pos, "ch"), field(&pos, "off")),
            (Some(want), Some("0")),
            "{pos}"
        );
    }
    let mut raw_b = Client::connect(&b.url("channel=x&channel=y"));
    let mut sender = Client::connect(&a.url("channel=x&channel=y"));
    sender.send_text("hello");
    raw_b.expect_text("hello"); // once, though it is in both channels
    // (stream, offset, epoch) of every envelope the opted-in client gets.
    let mut got = Vec::new();
    for _ in 0..2 {
        let e = next_text(&mut opted);
        assert_eq!(field(&e, "data"), Some("hello"), "{e}");
        got.push((
            field(&e, "ch").unwrap().to_owned(),
            field(&e, "off").unwrap().to_owned(),
            field(&e, "ep").unwrap().to_owned(),
        ));
    }
    got.sort();
    assert_eq!(
        got.iter()
            .map(|(c, o, _)| (c.as_str(), o.as_str()))
            .collect::<Vec<_>>(),
        [("x", "1"), ("y", "1")],
        "one envelope per channel, each offset 1 of its own stream"
    );
    let mut p = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    writeln!(p, "to everyone").unwrap();
    let e = next_text(&mut opted);
    assert_eq!(
        (field(&e, "ch"), field(&e, "off"), field(&e, "data")),
        (Some("*"), Some("1"), Some("to everyone")),
        "{e}"
    );
    let star = field(&e, "ep").unwrap().to_owned();
    raw_b.expect_text("to everyone");
    assert_eq!(nothing_more(&mut raw_b, Duration::from_millis(300)), None);
    assert_eq!(nothing_more(&mut opted, Duration::from_millis(300)), None);

    // Node A has the same three streams under the same epochs and offsets:
    // from offset 0 it replays each, `*` first, then x and y.
    let (x, y) = (&got[0].2, &got[1].2);
    let mut c = Client::connect(&a.url(&format!(
        "recover=1&channel=x&channel=y&since=*:0:{star}&since=x:0:{x}&since=y:0:{y}"
    )));
    for (ch, data) in [("*", "to everyone"), ("x", "hello"), ("y", "hello")] {
        let e = next_text(&mut c);
        assert_eq!(
            (field(&e, "ch"), field(&e, "off"), field(&e, "data")),
            (Some(ch), Some("1"), Some(data)),
            "{e}"
        );
        let pos = next_text(&mut c);
        assert_eq!(
            (field(&pos, "ch"), field(&pos, "off"), field(&pos, "reset")),
            (Some(ch), Some("1"), None),
            "{pos}"
        );
    }
}

/// A node started now (its ring empty), for joins only Redis can answer.
fn fresh_node(redis: &Redis, extra: &[&str]) -> Srv {
    let mut args = SHARED.to_vec();
    args.extend_from_slice(extra);
    node_with(redis, &args)
}

/// A node with `--history 10` and shared history.
fn small_node(redis: &Redis) -> Srv {
    let url = redis.url();
    let n = Srv::start(&["--redis", &url, "--history", "10", "--redis-history"]);
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
    n
}

/// The position envelope of `stream` a client of `node` gets with `since`.
fn position_with(node: &Srv, stream: &str, since: &str) -> (String, Inbox) {
    let mut c = Inbox::connect(&node.url(&format!(
        "recover=1&channel={stream}&since={stream}:{since}"
    )));
    loop {
        let e = c.next_on(stream);
        if field(&e, "data").is_none() {
            return (e, c);
        }
    }
}

#[test]
fn redis_refuses_what_it_trimmed_another_epoch_and_what_is_beyond_it() {
    let redis = Redis::start();
    let a = node_with(&redis, &SHARED);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut raw_a = Client::connect(&a.url("channel=news"));
    for i in 1..=60 {
        writeln!(pa, "@news m{i}").unwrap();
    }
    for i in 1..=60 {
        raw_a.expect_text(&format!("m{i}"));
    }
    let epoch = redis_epoch(&redis, "news");
    // Entries 1..=30 go, as MAXLEN ~ would drop them.
    assert_eq!(
        redis.cli(&["XTRIM", "wsbroadcaster:hist:news", "MINID", "0-31"]),
        "30"
    );
    let b = fresh_node(&redis, &[]);
    let (pos, _) = position_with(&b, "news", &format!("10:{epoch}"));
    assert_eq!(
        (field(&pos, "off"), field(&pos, "ep"), field(&pos, "reset")),
        (Some("60"), Some(epoch.as_str()), Some("too_old")),
        "{pos}"
    );
    // From 30 on, Redis still has everything.
    let mut c = Inbox::connect(&b.url(&format!("recover=1&channel=news&since=news:30:{epoch}")));
    for off in 31..=60 {
        let e = c.next_on("news");
        let data = format!("m{off}");
        let off = off.to_string();
        assert_eq!(
            (field(&e, "off"), field(&e, "data")),
            (Some(off.as_str()), Some(data.as_str())),
            "{e}"
        );
    }
    let pos = c.next_on("news");
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("60"), None)
    );
    let (pos, _) = position_with(&b, "news", "59:0123456789ab");
    assert_eq!(
        (field(&pos, "ep"), field(&pos, "reset")),
        (Some(epoch.as_str()), Some("epoch")),
        "{pos}"
    );
    // Beyond what Redis numbered: the offset did not come from this stream.
    let c = fresh_node(&redis, &[]);
    let (pos, _) = position_with(&c, "news", &format!("61:{epoch}"));
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("60"), Some("ahead")),
        "{pos}"
    );
    assert_eq!(stat(&b, "recovery_resets"), 2);

    // The real MAXLEN ~: with --history 10 Redis trims whole nodes of
    // entries; what it dropped is too_old on a node that never saw it.
    let small = small_node(&redis);
    let mut ps = UnixStream::connect(&small.unix).expect("connect to the Unix socket");
    let mut raw = Client::connect(&small.url("channel=tick"));
    for i in 1..=400 {
        writeln!(ps, "@tick t{i}").unwrap();
    }
    for i in 1..=400 {
        raw.expect_text(&format!("t{i}"));
    }
    let kept: u64 = redis
        .cli(&["XLEN", "wsbroadcaster:hist:tick"])
        .parse()
        .unwrap();
    assert!((10..400).contains(&kept), "MAXLEN ~ 10 kept {kept}");
    let tick = redis_epoch(&redis, "tick");
    let d = small_node(&redis);
    let (pos, _) = position_with(&d, "tick", &format!("0:{tick}"));
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("400"), Some("too_old")),
        "{pos}"
    );
}

#[test]
fn a_stopped_or_dead_redis_is_said_within_the_timeout() {
    let mut redis = Redis::start();
    let a = node_with(&redis, &SHARED);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut raw_a = Client::connect(&a.url("channel=news"));
    for i in 1..=3 {
        writeln!(pa, "@news m{i}").unwrap();
    }
    for i in 1..=3 {
        raw_a.expect_text(&format!("m{i}"));
    }
    let epoch = redis_epoch(&redis, "news");
    let b = fresh_node(&redis, &["--redis-history-timeout", "1s"]);
    // Stopped (SIGSTOP): connections are accepted, nothing is answered.
    common::signal(redis.pid(), "STOP");
    let t = Instant::now();
    let (pos, mut c) = position_with(&b, "news", &format!("1:{epoch}"));
    let took = t.elapsed();
    assert_eq!(field(&pos, "reset"), Some("unavailable"), "{pos}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "told after {took:?} (timeout 1 s)"
    );
    assert!(stat(&b, "recovery_fallback_unavailable") >= 1);
    // `*` (joined without since=) gets this node's position, no reset.
    let star = c.next_on("*");
    assert_eq!(field(&star, "reset"), None, "{star}");
    assert_eq!(c.nothing_more(Duration::from_millis(100)), None);
    common::signal(redis.pid(), "CONT");
    // Back: served from Redis again (after the catch-up thread's backoff).
    std::thread::sleep(Duration::from_millis(400));
    let (pos, _) = position_with(&b, "news", &format!("1:{epoch}"));
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("3"), None),
        "{pos}"
    );
    // Restarted empty: the catch-up thread's connection is dead; it
    // reconnects at once and Redis, which lost the stream, says so.
    redis.restart();
    let (pos, _) = position_with(&b, "news", &format!("3:{epoch}"));
    assert_eq!(field(&pos, "reset"), Some("epoch"), "{pos}");
    assert_ne!(field(&pos, "ep"), Some(epoch.as_str()));
    // Dead: refused at once.
    redis.kill();
    let t = Instant::now();
    let (pos, _) = position_with(&b, "news", &format!("1:{epoch}"));
    assert_eq!(field(&pos, "reset"), Some("unavailable"), "{pos}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_join_before_the_first_message_gets_the_epoch_every_node_uses() {
    // The default with --redis and --history: no flag needed.
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);
    let mut c = Inbox::connect(&a.url("recover=1&channel=fresh"));
    let pos = c.next_on("fresh");
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("0"), None),
        "{pos}"
    );
    let epoch = field(&pos, "ep").unwrap().to_owned();
    let star = c.next_on("*");
    let star_epoch = field(&star, "ep").unwrap().to_owned();
    assert_eq!(redis_epoch(&redis, "fresh"), epoch, "Redis's epoch");
    assert_eq!(redis_epoch(&redis, "*"), star_epoch);
    drop(c);
    let mut pb = UnixStream::connect(&b.unix).expect("connect to B's Unix socket");
    let mut raw_b = Client::connect(&b.url("channel=fresh"));
    for m in ["@fresh f1", "@fresh f2", "to all", "@fresh f3"] {
        writeln!(pb, "{m}").unwrap();
    }
    for m in ["f1", "f2", "to all", "f3"] {
        raw_b.expect_text(m);
    }
    let mut c = Inbox::connect(&b.url(&format!(
        "recover=1&channel=fresh&since=fresh:0:{epoch}&since=*:0:{star_epoch}"
    )));
    for (off, data) in [("1", "f1"), ("2", "f2"), ("3", "f3")] {
        let e = c.next_on("fresh");
        assert_eq!(
            (field(&e, "ep"), field(&e, "off"), field(&e, "data")),
            (Some(epoch.as_str()), Some(off), Some(data)),
            "{e}"
        );
    }
    let pos = c.next_on("fresh");
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("3"), None)
    );
    let e = c.next_on("*");
    assert_eq!(
        (field(&e, "ep"), field(&e, "off"), field(&e, "data")),
        (Some(star_epoch.as_str()), Some("1"), Some("to all")),
        "{e}"
    );
}

#[test]
fn a_node_whose_feed_is_behind_asks_redis_instead_of_saying_ahead() {
    let redis = Redis::start();
    let a = node_with(&redis, &SHARED);
    let b = node_with(&redis, &SHARED);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut raw_b = Client::connect(&b.url("channel=news"));
    writeln!(pa, "@news m1").unwrap();
    raw_b.expect_text("m1");
    let epoch = redis_epoch(&redis, "news");
    // Offset 2 is numbered in Redis but has not reached B (as if B's feed
    // were behind the node the client left): written as the sequencer
    // would, without the PUBLISH.
    let mut env = Vec::new();
    rmpv::encode::write_value(
        &mut env,
        &rmpv::Value::Array(vec![
            0.into(),
            "abc123".into(),
            0.into(),
            rmpv::Value::Array(vec!["news".into()]),
            "m2".into(),
        ]),
    )
    .unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("EVAL")
        .arg(
            "redis.call('HINCRBY', KEYS[2], 'off', 1) \
             redis.call('XADD', KEYS[1], '0-2', 'd', ARGV[1]) return 1",
        )
        .arg(2)
        .arg("wsbroadcaster:hist:news")
        .arg("wsbroadcaster:epoch:news")
        .arg(env)
        .query(&mut conn)
        .unwrap();
    // The client saw 2 elsewhere: B has only 1, Redis has 2.
    let (pos, mut c) = position_with(&b, "news", &format!("2:{epoch}"));
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("2"), None),
        "{pos}"
    );
    writeln!(pa, "@news m3").unwrap();
    let e = c.next_on("news");
    assert_eq!(
        (field(&e, "off"), field(&e, "data")),
        (Some("3"), Some("m3")),
        "{e}"
    );
    // From 1, Redis replays 2 (which B never delivered) and B's live 3.
    let mut c = Inbox::connect(&b.url(&format!("recover=1&channel=news&since=news:1:{epoch}")));
    for (off, data) in [("2", Some("m2")), ("3", Some("m3")), ("3", None)] {
        let e = c.next_on("news");
        assert_eq!(
            (field(&e, "off"), field(&e, "data")),
            (Some(off), data),
            "{e}"
        );
    }
    // Only what Redis never numbered is ahead.
    let (pos, _) = position_with(&b, "news", &format!("4:{epoch}"));
    assert_eq!(field(&pos, "reset"), Some("ahead"), "{pos}");
}
