//! Shared history: how Redis numbers streams (everyone, each channel of a
//! client message) and the epoch every node uses from the first join.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::common::Client;
use crate::common::json::field;
use crate::inbox::{Inbox, next_text, nothing_more};
use crate::nodes::{node, node_with, redis_epoch};
use crate::redis_server::Redis;

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
