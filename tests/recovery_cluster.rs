//! Recovery with two nodes on a real redis-server (started here on a free
//! loopback port, ended by PID). Without `--redis-history`, history is per
//! node (docs/recovery.md, "Across nodes"): a node's history holds what
//! every node published (it arrives through Redis), so a client that comes
//! back to the same node misses nothing; a client that comes back to
//! another node is told `reset: epoch` explicitly, never silently left with
//! a gap. With `--redis-history`, Redis numbers every stream's messages and
//! a client recovers on any node.

mod common;
mod redis_server;
mod support;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::{Client, Got};
use redis_server::Redis;
use support::Srv;

fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let i = json.find(&pat)? + pat.len();
    let rest = &json[i..];
    match rest.strip_prefix('"') {
        Some(s) => Some(&s[..s.find('"')?]),
        None => Some(&rest[..rest.find([',', '}'])?]),
    }
}

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
    let a = node(&redis);
    let b = node(&redis);

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

    let mut c = Client::connect(&a.url("recover=1&channel=news"));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "ch"), field(&pos, "off"), field(&pos, "reset")),
        (Some("news"), Some("1"), None),
        "{pos}"
    );
    let epoch = field(&pos, "ep").unwrap().to_owned();
    let _ = c.inner.stream().shutdown(std::net::Shutdown::Both);

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
    let mut c = Client::connect(&b.url(&format!("recover=1&channel=news&since=news:1:{epoch}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    for (i, m) in order.iter().enumerate() {
        let e = next_text(&mut c);
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
    let pos = next_text(&mut c);
    assert_eq!(
        (
            field(&pos, "off"),
            field(&pos, "reset"),
            field(&pos, "data")
        ),
        (Some("101"), None, None),
        "{pos}"
    );

    // Then live ones, from either node.
    writeln!(pa, "@news live-a").unwrap();
    let live = next_text(&mut c);
    assert_eq!(
        (field(&live, "off"), field(&live, "data")),
        (Some("102"), Some("live-a")),
        "{live}"
    );
    writeln!(pb, "@news live-b").unwrap();
    let live = next_text(&mut c);
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
    assert_eq!(nothing_more(&mut c, Duration::from_millis(300)), None);

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
fn shared_history_refuses_what_the_node_did_not_see() {
    // A node that was not subscribed when messages were numbered cannot
    // replay them (the XRANGE fallback is not built): it says so.
    let redis = Redis::start();
    let a = node_with(&redis, &["--redis-history"]);
    let mut pa = UnixStream::connect(&a.unix).expect("connect to A's Unix socket");
    let mut raw_a = Client::connect(&a.url("channel=news"));
    writeln!(pa, "@news m1").unwrap();
    raw_a.expect_text("m1");
    let mut c = Client::connect(&a.url("recover=1&channel=news"));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    let epoch = field(&pos, "ep").unwrap().to_owned();
    assert_eq!(field(&pos, "off"), Some("1"), "{pos}");
    writeln!(pa, "@news m2").unwrap();
    raw_a.expect_text("m2");

    // B starts after m1 and m2 were numbered.
    let b = node_with(&redis, &["--redis-history"]);
    let mut raw_b = Client::connect(&b.url("channel=news"));
    writeln!(pa, "@news m3").unwrap();
    raw_a.expect_text("m3");
    raw_b.expect_text("m3");
    // B has only m3 (offset 3) under the same epoch: since=1 is too old
    // there, since=2 is served.
    let mut c = Client::connect(&b.url(&format!("recover=1&channel=news&since=news:1:{epoch}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("3"), Some("too_old")),
        "{pos}"
    );
    let mut c = Client::connect(&b.url(&format!("recover=1&channel=news&since=news:2:{epoch}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let e = next_text(&mut c);
    assert_eq!(
        (field(&e, "off"), field(&e, "data")),
        (Some("3"), Some("m3"))
    );
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("3"), None)
    );
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
