//! The real socket.io emitter against two nodes.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::rpc::stat;
use crate::common::{INSTALL_HINT, Lines, Srv, root, wait_exit};
use crate::nodes::{expect_all, node_flags, open, wait_ready};
use crate::redis_server::{Redis, require_redis};
use rmpv::Value;

/// The real socket.io emitter (Node.js `@socket.io/redis-emitter` over the
/// `redis` client) reaches everyone, rooms (channels or connection ids) and
/// `except` on every node; malformed packets are counted, not delivered.
#[test]
fn socketio_emitter_packets_reach_rooms_on_every_node() {
    require_redis();
    let emitter_dir = root().join("tests/socketio");
    assert!(
        emitter_dir
            .join("node_modules/@socket.io/redis-emitter/package.json")
            .exists(),
        "@socket.io/redis-emitter is missing from tests/socketio/node_modules: {INSTALL_HINT}"
    );
    let redis = Redis::start();
    let url = redis.url();
    let a = Srv::start(&node_flags(&url, &["--socketio-emitter"]));
    let b = Srv::start(&node_flags(&url, &["--socketio-emitter"]));
    wait_ready(&a);
    wait_ready(&b);
    a.wait_log("socket.io#/#*", Duration::from_secs(1));
    let (a0, _) = open(&a, "");
    let (an, _) = open(&a, "channel=news");
    let (b0, b0_id) = open(&b, "");
    let (bn, _) = open(&b, "channel=news");
    let (bs, _) = open(&b, "channel=sport");
    let mut cl = vec![("a0", a0), ("an", an), ("b0", b0), ("bn", bn), ("bs", bs)];

    let ops = format!(
        r#"[
        {{"event": "chat message", "args": ["Hi guys from Emitter"]}},
        {{"to": ["news"], "event": "headline", "args": [{{"title": "t", "n": 3, "d": {{"$date": 0}}}}]}},
        {{"to": ["news", "sport"], "event": "both", "args": [1.5, null, [true]]}},
        {{"to": ["{b0_id}"], "event": "direct", "args": ["only you"]}},
        {{"except": ["news"], "event": "not news", "args": ["x"]}}
    ]"#
    );
    let mut node = Command::new("node")
        .arg(emitter_dir.join("emit.mjs"))
        .arg(&url)
        .arg(&ops)
        .current_dir(&emitter_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node: {e}: {INSTALL_HINT}"));
    let out = Lines::spawn(node.stdout.take().unwrap());
    let err = Lines::spawn(node.stderr.take().unwrap());
    let st = wait_exit(&mut node, Duration::from_secs(60));
    if st.is_none() {
        let _ = node.kill();
        let _ = node.wait();
    }
    let first = out.next(Duration::from_secs(1));
    assert_eq!(
        first.as_deref(),
        Some("done"),
        "emitter script failed ({st:?}): {:?}",
        err.next(Duration::from_secs(1))
    );

    let chat = r#"["chat message","Hi guys from Emitter"]"#;
    let headline = r#"["headline",{"title":"t","n":3,"d":"1970-01-01T00:00:00.000Z"}]"#;
    let both = r#"["both",1.5,null,[true]]"#;
    let direct = r#"["direct","only you"]"#;
    let not_news = r#"["not news","x"]"#;
    let want: [&[&str]; 5] = [
        &[chat, not_news],
        &[chat, headline, both],
        &[chat, direct, not_news],
        &[chat, headline, both],
        &[chat, both, not_news],
    ];
    for (i, msgs) in want.iter().enumerate() {
        for m in msgs.iter() {
            expect_all(&mut cl, &[i], m);
        }
    }

    // Malformed and unknown-version packets: counted and logged, never
    // delivered, and the node goes on.
    let enc = |v: Value| {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &v).unwrap();
        b
    };
    let packet = |ty: i64, data: Value| {
        enc(Value::Array(vec![
            "emitter".into(),
            Value::Map(vec![
                ("type".into(), ty.into()),
                ("data".into(), data),
                ("nsp".into(), "/".into()),
            ]),
            Value::Map(vec![("rooms".into(), Value::Array(vec![]))]),
        ]))
    };
    redis.publish("socket.io#/#", b"\xc1 not msgpack");
    redis.publish("socket.io#/#", &packet(3, Value::Array(vec!["ack".into()])));
    redis.publish(
        "socket.io#/#",
        &packet(
            2,
            Value::Array(vec!["bin".into(), Value::Binary(vec![1, 2])]),
        ),
    );
    redis.cli(&["PUBLISH", "wsbroadcaster:all", "end"]);
    expect_all(&mut cl, &[0, 1, 2, 3, 4], "end");
    for (name, n) in [("A", &a), ("B", &b)] {
        assert_eq!(stat(n, "socketio_messages"), 5, "node {name}");
        assert_eq!(stat(n, "socketio_malformed"), 3, "node {name}");
        n.wait_log(
            "dropped a message on Redis channel \"socket.io#/#\"",
            Duration::from_secs(1),
        );
    }
}
