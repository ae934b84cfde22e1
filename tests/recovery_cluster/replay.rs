//! Shared history: a client recovers on another node exactly what it
//! missed, from that node's ring or from Redis (the XRANGE fallback).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::Client;
use crate::common::json::field;
use crate::common::rpc::stat;
use crate::inbox::{Inbox, next_text, nothing_more};
use crate::nodes::{SHARED, node_with};
use crate::redis_server::Redis;

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
