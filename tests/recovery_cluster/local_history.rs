//! `--local-history`: per-node history, and an explicit `reset: epoch` on
//! another node.

use std::io::Write;
use std::os::unix::net::UnixStream;

use crate::common::Client;
use crate::common::json::field;
use crate::inbox::next_text;
use crate::nodes::node_with;
use crate::redis_server::Redis;

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
