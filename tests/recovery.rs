//! History, catch-up and slow-consumer policies (docs/recovery.md), against
//! the real binary over loopback: clients opt in with `?recover=1`, come
//! back with `since=CHANNEL:OFFSET:EPOCH`, and must get exactly what they
//! missed, in order, then live messages.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::json::field;
use common::{Client, Got, Server, raw_tcp, read_http_reply, upgrade_request};

/// One envelope, read with a tiny parser for exactly the format the server
/// writes (docs/recovery.md): flat JSON, string values without escapes in
/// these tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Env {
    ch: Option<String>,
    ep: Option<String>,
    off: Option<u64>,
    data: Option<String>,
    reset: Option<String>,
    gap: Option<u64>,
}

fn env(json: &str) -> Env {
    assert!(
        json.starts_with('{') && json.ends_with('}'),
        "not an envelope: {json:?}"
    );
    Env {
        ch: field(json, "ch").map(str::to_owned),
        ep: field(json, "ep").map(str::to_owned),
        off: field(json, "off").map(|v| v.parse().expect("off is a number")),
        data: field(json, "data").map(str::to_owned),
        reset: field(json, "reset").map(str::to_owned),
        gap: field(json, "gap").map(|v| v.parse().expect("gap is a number")),
    }
}

fn next_env(c: &mut Client) -> Env {
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => env(&t),
        other => panic!("expected an envelope, got {other:?}"),
    }
}

/// A position envelope (no data) for `ch`.
fn expect_position(c: &mut Client, ch: &str) -> Env {
    let e = next_env(c);
    assert_eq!(e.ch.as_deref(), Some(ch), "{e:?}");
    assert_eq!(e.data, None, "a position carries no data: {e:?}");
    e
}

/// Drops the TCP connection without a close frame (a laptop lid, a Wi-Fi
/// hand-off).
fn drop_abruptly(c: Client) {
    let _ = c.inner.stream().shutdown(std::net::Shutdown::Both);
}

struct Publisher(UnixStream);

impl Publisher {
    fn new(server: &Server) -> Publisher {
        Publisher(UnixStream::connect(&server.unix).expect("connect to the Unix socket"))
    }
    fn line(&mut self, line: &str) {
        self.0.write_all(line.as_bytes()).expect("write");
        self.0.write_all(b"\n").expect("write");
    }
}

#[test]
fn missed_messages_come_back_in_order_then_live() {
    let server = Server::start(&["--history", "1000"]);
    let url = |q: &str| format!("{}?{q}", server.url());
    // A client that did not opt in: raw payloads exactly as before.
    let mut raw = Client::connect(&url("channel=news"));
    let mut c = Client::connect(&url("recover=1&channel=news"));
    let everyone = expect_position(&mut c, "*");
    assert_eq!(everyone.off, Some(0));
    let news = expect_position(&mut c, "news");
    assert_eq!((news.off, news.reset.as_deref()), (Some(0), None));
    let epoch = news.ep.clone().expect("an epoch");

    let mut p = Publisher::new(&server);
    for i in 1..=5 {
        p.line(&format!("@news m{i}"));
    }
    for i in 1..=5u64 {
        let e = next_env(&mut c);
        assert_eq!(
            (e.ch.as_deref(), e.off, e.data.as_deref(), e.ep.as_deref()),
            (
                Some("news"),
                Some(i),
                Some(format!("m{i}").as_str()),
                Some(epoch.as_str())
            )
        );
        raw.expect_text(&format!("m{i}"));
    }
    drop_abruptly(c);
    // 100 messages while it is away.
    for i in 6..=105 {
        p.line(&format!("@news m{i}"));
    }
    for i in 6..=105 {
        raw.expect_text(&format!("m{i}"));
    }
    let mut c = Client::connect(&url(&format!(
        "recover=1&channel=news&since=news:5:{epoch}"
    )));
    expect_position(&mut c, "*");
    for i in 6..=105u64 {
        let e = next_env(&mut c);
        assert_eq!(
            (e.ch.as_deref(), e.off, e.data.as_deref()),
            (Some("news"), Some(i), Some(format!("m{i}").as_str())),
            "replayed message {i}"
        );
    }
    let pos = expect_position(&mut c, "news");
    assert_eq!((pos.off, pos.reset), (Some(105), None));
    // Then live ones, with the next offsets.
    for i in 106..=108 {
        p.line(&format!("@news m{i}"));
    }
    for i in 106..=108u64 {
        let e = next_env(&mut c);
        assert_eq!((e.off, e.data), (Some(i), Some(format!("m{i}"))));
        raw.expect_text(&format!("m{i}"));
    }
    // Messages to everyone have their own stream; binary payloads are base64.
    p.line("hello all");
    let e = next_env(&mut c);
    assert_eq!(
        (e.ch.as_deref(), e.off, e.data.as_deref()),
        (Some("*"), Some(1), Some("hello all"))
    );
    raw.expect_text("hello all");
    server.udp_send(&[0xde, 0xad, 0xbe, 0xef]);
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => assert!(t.contains(r#""off":2,"b64":"3q2+7w==""#), "{t}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        raw.next_message(Duration::from_secs(10)),
        Got::Binary(vec![0xde, 0xad, 0xbe, 0xef])
    );
}

#[test]
fn too_old_offsets_and_new_epochs_are_signalled() {
    let server = Server::start(&["--history", "10"]);
    let url = |s: &Server, q: &str| format!("{}?{q}", s.url());
    let mut c = Client::connect(&url(&server, "recover=1&channel=news"));
    expect_position(&mut c, "*");
    let epoch = expect_position(&mut c, "news").ep.unwrap();
    drop_abruptly(c);
    let mut watcher = Client::connect(&url(&server, "channel=news"));
    let mut p = Publisher::new(&server);
    for i in 1..=50 {
        p.line(&format!("@news m{i}"));
    }
    for i in 1..=50 {
        watcher.expect_text(&format!("m{i}"));
    }
    // Only 41..=50 are kept: from 0 is too old.
    let mut c = Client::connect(&url(
        &server,
        &format!("recover=1&channel=news&since=news:0:{epoch}"),
    ));
    expect_position(&mut c, "*");
    let pos = expect_position(&mut c, "news");
    assert_eq!(
        (pos.reset.as_deref(), pos.off, pos.ep.as_deref()),
        (Some("too_old"), Some(50), Some(epoch.as_str()))
    );
    p.line("@news m51");
    assert_eq!(
        next_env(&mut c).off,
        Some(51),
        "live messages follow the reset"
    );
    // 42..=51 are kept now: from 41 it is complete.
    let mut c2 = Client::connect(&url(
        &server,
        &format!("recover=1&channel=news&since=news:41:{epoch}"),
    ));
    expect_position(&mut c2, "*");
    for i in 42..=51 {
        assert_eq!(next_env(&mut c2).off, Some(i));
    }
    assert_eq!(expect_position(&mut c2, "news").reset, None);
    // An offset this epoch never reached.
    let mut c3 = Client::connect(&url(
        &server,
        &format!("recover=1&channel=news&since=news:99:{epoch}"),
    ));
    expect_position(&mut c3, "*");
    assert_eq!(
        expect_position(&mut c3, "news").reset.as_deref(),
        Some("ahead")
    );

    // A restart loses the history: the epoch changed.
    drop(server);
    let server = Server::start(&["--history", "10"]);
    let mut c = Client::connect(&url(
        &server,
        &format!("recover=1&channel=news&since=news:51:{epoch}"),
    ));
    expect_position(&mut c, "*");
    let pos = expect_position(&mut c, "news");
    assert_eq!((pos.reset.as_deref(), pos.off), (Some("epoch"), Some(0)));
    assert_ne!(pos.ep.as_deref(), Some(epoch.as_str()));

    // Malformed or unusable recovery parameters are a 400 the client can read.
    for (q, why) in [
        ("recover=maybe", "recover="),
        ("channel=news&since=news:1", "since="),
        ("since=sport:1:0123456789ab", "does not join"),
    ] {
        let mut s = raw_tcp(server.ws);
        let mut req = upgrade_request(
            server.ws,
            &[
                common::UPGRADE,
                common::CONNECTION,
                common::KEY,
                common::VERSION13,
            ],
        );
        req = req.replacen("GET / ", &format!("GET /?{q} "), 1);
        s.write_all(req.as_bytes()).unwrap();
        let reply = read_http_reply(&mut s, Duration::from_secs(5));
        assert_eq!(reply.status, 400, "{q}");
        server.wait_log(why, Duration::from_secs(5));
    }
    let off = Server::start(&[]);
    let mut s = raw_tcp(off.ws);
    let req = upgrade_request(
        off.ws,
        &[
            common::UPGRADE,
            common::CONNECTION,
            common::KEY,
            common::VERSION13,
        ],
    )
    .replacen("GET / ", "GET /?recover=1 ", 1);
    s.write_all(req.as_bytes()).unwrap();
    assert_eq!(read_http_reply(&mut s, Duration::from_secs(5)).status, 400);
    off.wait_log("recovery is off", Duration::from_secs(5));
}

/// Reads messages until `want` arrives; all messages read, in order.
fn read_until(c: &mut Client, secs: u64, mut done: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; last: {:?}", got.last());
        match c.next(left) {
            Got::Text(t) => {
                let stop = done(&t);
                got.push(t);
                if stop {
                    return got;
                }
            }
            Got::Ping | Got::Pong => {}
            other => panic!("unexpected {other:?} after {} messages", got.len()),
        }
    }
}

#[test]
fn keep_latest_slow_clients_get_the_newest_value_in_bounded_memory() {
    const N: usize = 40_000;
    const PAD: usize = 1000;
    let server = Server::start(&[
        "--history",
        "16",
        "--channel-policy",
        "ticker=keep-latest",
        "--max-queued-bytes",
        "64KiB",
        "--max-message",
        "4KiB",
    ]);
    let url = |q: &str| format!("{}?{q}", server.url());
    // Two clients that do not read while everything is published: one raw,
    // one opted in.
    let mut raw = Client::connect(&url("channel=ticker"));
    let mut opted = Client::connect(&url("recover=1&channel=ticker"));
    expect_position(&mut opted, "*");
    expect_position(&mut opted, "ticker");
    let rss_before = server.rss_kib();

    let unix = server.unix.clone();
    let publisher = std::thread::spawn(move || {
        let mut p = UnixStream::connect(&unix).expect("connect");
        let pad = "x".repeat(PAD);
        let mut buf = Vec::new();
        for i in 1..=N {
            buf.clear();
            writeln!(buf, "@ticker v{i:06} {pad}").unwrap();
            p.write_all(&buf).expect("publish");
        }
    });
    // A client that reads keeps up: it sees the last value too.
    let mut fast = Client::connect(&url("channel=ticker"));
    let last = format!("v{N:06} ");
    read_until(&mut fast, 120, |t| t.starts_with(&last));
    publisher.join().expect("publisher");
    let rss_after = server.rss_kib();
    // 40 MB published to two stuck clients: queued without a bound that
    // would be 80 MB; the policy holds one message per channel per client.
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "keep-latest: server RSS {rss_before} KiB -> {rss_after} KiB after {N} messages of {PAD} bytes to 2 stuck clients"
    );
    assert!(
        grown < 16 * 1024,
        "server RSS grew {grown} KiB ({rss_before} -> {rss_after}) for stuck keep-latest clients"
    );

    // The raw client now reads: whatever the kernel buffered, then the
    // newest value; in order, far fewer than N.
    let got = read_until(&mut raw, 60, |t| t.starts_with(&last));
    assert!(
        got.len() < N / 2,
        "conflation: {} of {N} delivered",
        got.len()
    );
    let values: Vec<usize> = got.iter().map(|t| t[1..7].parse().unwrap()).collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(*values.last().unwrap(), N);

    // The opted-in client: every offset is either delivered or inside a gap
    // envelope, exactly once, in order.
    let mut next = 1u64;
    let mut gaps = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next <= N as u64 {
        assert!(Instant::now() < deadline, "stuck at offset {next}");
        let e = next_env(&mut opted);
        assert_eq!(e.ch.as_deref(), Some("ticker"), "{e:?}");
        match (e.gap, e.data) {
            (Some(first), None) => {
                assert_eq!(first, next, "a gap starts where delivery stopped");
                next = e.off.unwrap() + 1;
                gaps += 1;
            }
            (None, Some(d)) => {
                assert_eq!(e.off, Some(next));
                assert!(d.starts_with(&format!("v{next:06} ")));
                next += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(gaps > 0, "the slow client was told what it lost");
    assert!(
        !server.log().contains("slow consumer"),
        "keep-latest clients are not closed as slow consumers"
    );
}

#[test]
fn drop_oldest_keeps_the_newest_within_the_limit() {
    const N: usize = 20_000;
    let server = Server::start(&[
        "--history",
        "16",
        "--slow-consumer",
        "drop-oldest",
        "--max-queued-bytes",
        "256KiB",
    ]);
    let mut stuck = Client::connect(&format!("{}?recover=1", server.url()));
    expect_position(&mut stuck, "*");
    let unix = server.unix.clone();
    let publisher = std::thread::spawn(move || {
        let mut p = UnixStream::connect(&unix).expect("connect");
        let pad = "y".repeat(500);
        for i in 1..=N {
            writeln!(p, "v{i:06} {pad}").expect("publish");
        }
    });
    let mut fast = server.client();
    let last = format!("v{N:06} ");
    read_until(&mut fast, 120, |t| t.starts_with(&last));
    publisher.join().unwrap();
    let mut next = 1u64;
    let mut delivered = 0;
    let mut last_was_data = false;
    while next <= N as u64 {
        let e = next_env(&mut stuck);
        match e.gap {
            Some(first) => {
                assert_eq!(first, next);
                next = e.off.unwrap() + 1;
                last_was_data = false;
            }
            None => {
                assert_eq!(e.off, Some(next));
                next += 1;
                delivered += 1;
                last_was_data = true;
            }
        }
    }
    assert!(last_was_data, "the newest message is never the one dropped");
    // The newest messages survive (the oldest held ones were dropped):
    // at least a queue's worth of the last ones arrived.
    assert!(delivered > 256 * 1024 / 600, "{delivered}");
    assert!(!server.log().contains("slow consumer"));
}

/// One catch-up queues at most half of --max-queued-bytes over all the
/// client's streams: what does not fit is a `too_old` reset, not a 1008.
#[test]
fn a_catch_up_fits_in_half_the_queue_limit_over_all_streams() {
    let server = Server::start(&["--history", "1000", "--max-queued-bytes", "64KiB"]);
    let url = |q: &str| format!("{}?{q}", server.url());
    let mut c = Client::connect(&url("recover=1&channel=a&channel=b"));
    expect_position(&mut c, "*");
    let ea = expect_position(&mut c, "a").ep.unwrap();
    let eb = expect_position(&mut c, "b").ep.unwrap();
    drop_abruptly(c);
    let mut watcher = Client::connect(&url("channel=b"));
    let mut p = Publisher::new(&server);
    let pad = "z".repeat(1000);
    // 20 KB to each channel: either fits in 32 KiB, both do not.
    for i in 1..=20 {
        p.line(&format!("@a a{i} {pad}"));
        p.line(&format!("@b b{i} {pad}"));
    }
    let last = format!("b20 {pad}");
    read_until(&mut watcher, 30, |t| t == last);
    let mut c = Client::connect(&url(&format!(
        "recover=1&channel=a&channel=b&since=a:0:{ea}&since=b:0:{eb}"
    )));
    expect_position(&mut c, "*");
    for i in 1..=20 {
        let e = next_env(&mut c);
        assert_eq!((e.ch.as_deref(), e.off), (Some("a"), Some(i)));
    }
    assert_eq!(expect_position(&mut c, "a").reset, None);
    let b = expect_position(&mut c, "b");
    assert_eq!((b.reset.as_deref(), b.off), (Some("too_old"), Some(20)));
    p.line("@b live");
    let e = next_env(&mut c);
    assert_eq!((e.off, e.data.as_deref()), (Some(21), Some("live")));
}

/// `--history-max-age`: older messages are never replayed; the client is
/// told `too_old` instead.
#[test]
fn messages_past_the_time_bound_are_not_replayed() {
    let server = Server::start(&["--history", "100", "--history-max-age", "300ms"]);
    let url = |q: &str| format!("{}?{q}", server.url());
    let mut c = Client::connect(&url("recover=1&channel=news"));
    expect_position(&mut c, "*");
    let ep = expect_position(&mut c, "news").ep.unwrap();
    let mut p = Publisher::new(&server);
    p.line("@news old");
    assert_eq!(next_env(&mut c).data.as_deref(), Some("old"));
    drop_abruptly(c);
    std::thread::sleep(Duration::from_millis(600));
    let mut c = Client::connect(&url(&format!("recover=1&channel=news&since=news:0:{ep}")));
    expect_position(&mut c, "*");
    let pos = expect_position(&mut c, "news");
    assert_eq!((pos.reset.as_deref(), pos.off), (Some("too_old"), Some(1)));
    // From where it was, nothing was missed: no reset.
    let mut c = Client::connect(&url(&format!("recover=1&channel=news&since=news:1:{ep}")));
    expect_position(&mut c, "*");
    assert_eq!(expect_position(&mut c, "news").reset, None);
}
