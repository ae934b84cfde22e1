//! Shared history: what a node says when it cannot replay (`too_old`,
//! `epoch`, `ahead`, `unavailable`), and when it asks Redis instead.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::Client;
use crate::common::json::field;
use crate::common::rpc::stat;
use crate::inbox::{Inbox, position_with};
use crate::nodes::{SHARED, fresh_node, node_with, redis_epoch, small_node};
use crate::redis_server::Redis;

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
