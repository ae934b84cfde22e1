//! Cluster mode end to end: a real `redis-server` started here on an
//! ephemeral loopback port, several real `wsbroadcaster serve --redis`
//! processes, clients on each, every ingress, `redis-cli`, the real
//! socket.io emitter (tests/socketio), and Redis failures: killed and
//! restarted, `CLIENT KILL TYPE pubsub`, `CLIENT PAUSE`.
//!
//! Every process is started here and ended by PID; every wait is bounded.

#[path = "../common/mod.rs"]
mod common;
#[path = "../redis_server/mod.rs"]
mod redis_server;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::rpc::{field, rpc, stat};
use common::{Client, Got, INSTALL_HINT, Lines, Srv, root, wait_exit, wait_until};
use redis_server::{Redis, require_redis};
use rmpv::Value;

// ---------------------------------------------------------------------------
// Nodes and clients.

fn node_flags<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--redis", url, "--rpc", "127.0.0.1:0", "--announce-id"];
    v.extend_from_slice(extra);
    v
}

/// Waits until a node's publisher is connected and its subscription is live.
fn wait_ready(n: &Srv) {
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
}

fn count(n: &Srv, needle: &str) -> usize {
    n.log().matches(needle).count()
}

fn wait_count(n: &Srv, needle: &str, at_least: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count(n, needle) < at_least {
        assert!(
            Instant::now() < deadline,
            "the log did not mention {needle:?} {at_least} time(s) within {timeout:?}; log:\n{}",
            n.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client of `n` with its connection id (from the `--announce-id` greeting).
fn open(n: &Srv, query: &str) -> (Client, String) {
    let mut c = Client::connect(&n.url(query));
    let Got::Text(greeting) = c.next_message(Duration::from_secs(10)) else {
        panic!("no id greeting");
    };
    let id = greeting
        .strip_prefix(r#"{"id":""#)
        .and_then(|r| r.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("not an id greeting: {greeting}"))
        .to_owned();
    (c, id)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

/// `POST PATH` with `body` to the admin endpoint; the whole response.
fn http_post(port: u16, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).expect("read the admin response");
    out.trim_end().to_owned()
}

/// One control-socket command; its one-line answer.
fn control_command(path: &std::path::Path, cmd: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect the control socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    writeln!(s, "{cmd}").unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line)
        .expect("read the control answer");
    line.trim_end().to_owned()
}

/// Each client in `who` receives `want` next.
fn expect_all(clients: &mut [(&str, Client)], who: &[usize], want: &str) {
    for &i in who {
        let (name, c) = &mut clients[i];
        let got = c.next_message(Duration::from_secs(10));
        assert_eq!(got, Got::Text(want.to_owned()), "client {name}");
    }
}

/// Two nodes on `url` with a 300 ms heartbeat, a 2 s stall timeout and
/// `extra` flags, both ready, and a client on each (`a0`, `b0`) that has got
/// a message published on A. Returns the nodes, the clients and a0's id.
fn watched_pair(url: &str, extra: &[&str]) -> (Srv, Srv, Vec<(&'static str, Client)>, String) {
    let mut watched = vec![
        "--cluster-heartbeat",
        "300ms",
        "--cluster-stall-timeout",
        "2s",
    ];
    watched.extend_from_slice(extra);
    let flags = node_flags(url, &watched);
    let a = Srv::start(&flags);
    let b = Srv::start(&flags);
    wait_ready(&a);
    wait_ready(&b);
    let (a0, a0_id) = open(&a, "");
    let (b0, _) = open(&b, "");
    let mut cl = vec![("a0", a0), ("b0", b0)];
    a.udp_send(b"before");
    expect_all(&mut cl, &[0, 1], "before");
    (a, b, cl, a0_id)
}

/// Waits (8 s at most) until node `n` counts a stalled subscription, which
/// it logs.
fn wait_stall_noticed(n: &Srv) {
    wait_until(Duration::from_secs(8), "a stall noticed", || {
        stat(n, "cluster_stalls") >= 1
    });
    n.wait_log(
        "the subscription is stalled; resubscribing",
        Duration::from_secs(1),
    );
}

/// Publishes probe-1, probe-2, ... on node `a` until b0 (`cl[1]`, on the
/// other node) gets one, at most `within`: delivery across nodes has
/// resumed. a0 (`cl[0]`) gets every probe at once; b0 may get texts that
/// `earlier` accepts before, and nothing else.
fn probe_until_delivered(
    a: &Srv,
    cl: &mut [(&str, Client)],
    within: Duration,
    earlier: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + within;
    let mut k = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "delivery did not resume within {within:?}"
        );
        k += 1;
        a.udp_send(format!("probe-{k}").as_bytes());
        expect_all(cl, &[0], &format!("probe-{k}"));
        match cl[1].1.next(Duration::from_millis(500)) {
            Got::Text(t) if t.starts_with("probe-") => return,
            Got::Text(t) if earlier(&t) => {}
            Got::Timeout | Got::Ping | Got::Pong => {}
            other => panic!("b0 got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------

/// Three nodes, clients on each: every publish source reaches every
/// subscriber of every node exactly once; targeted sends cross nodes.
#[test]
fn three_nodes_deliver_every_publish_once() {
    require_redis();
    let redis = Redis::start();
    let url = redis.url();
    let admin = free_port();
    let admin_flag = format!("127.0.0.1:{admin}");
    let control = common::unique_sock_path("ctl");
    let control_flag = control.to_str().unwrap().to_owned();
    let a = Srv::start_with_stdin(&node_flags(&url, &["--stdin"]));
    let b = Srv::start(&node_flags(&url, &["--admin", &admin_flag]));
    let c = Srv::start(&node_flags(&url, &["--control", &control_flag]));
    for n in [&a, &b, &c] {
        wait_ready(n);
    }
    let mut a = a;
    let (a0, a0_id) = open(&a, "");
    let (an, _) = open(&a, "channel=news");
    let (b0, b0_id) = open(&b, "");
    let (bs, _) = open(&b, "channel=sport");
    let (c0, c0_id) = open(&c, "");
    let (cn, _) = open(&c, "channel=news&channel=sport");
    let ids = [&a0_id, &b0_id, &c0_id];
    let nodes: std::collections::HashSet<&str> =
        ids.iter().map(|i| i.split('.').next().unwrap()).collect();
    assert_eq!(nodes.len(), 3, "each node has its own id prefix: {ids:?}");
    let mut cl = vec![
        ("a0", a0),
        ("an", an),
        ("b0", b0),
        ("bs", bs),
        ("c0", c0),
        ("cn", cn),
    ];
    const A0: usize = 0;
    const AN: usize = 1;
    const B0: usize = 2;
    const BS: usize = 3;
    const C0: usize = 4;
    const CN: usize = 5;
    let all = [A0, AN, B0, BS, C0, CN];

    // UDP on A reaches A, B and C once.
    a.udp_send(b"udp-a");
    expect_all(&mut cl, &all, "udp-a");
    b.unix_send(b"unix-b\n");
    expect_all(&mut cl, &all, "unix-b");
    a.write_stdin(b"stdin-a\n");
    expect_all(&mut cl, &all, "stdin-a");
    let r = rpc(&c, "push_data", vec!["rpc-c".into()]);
    assert_eq!(field(&r, "queued"), Value::from(2), "C's own two clients");
    assert_eq!(field(&r, "relayed"), Value::from(true));
    expect_all(&mut cl, &all, "rpc-c");
    rpc(&b, "publish", vec!["news".into(), "rpc-news".into()]);
    expect_all(&mut cl, &[AN, CN], "rpc-news");
    b.udp_send(b"@sport udp-sport");
    expect_all(&mut cl, &[BS, CN], "udp-sport");

    // The admin endpoint (POST /publish) on B, the control socket on C.
    let reply = http_post(admin, "/publish?channel=sport", b"admin-sport");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with(r#""relayed":true}"#), "{reply}");
    expect_all(&mut cl, &[BS, CN], "admin-sport");
    let reply = control_command(&control, &format!("json publish @id:{a0_id} control-to-a0"));
    assert!(
        reply.contains(r#""queued":0"#) && reply.contains(r#""relayed":true"#),
        "{reply}"
    );
    expect_all(&mut cl, &[A0], "control-to-a0");

    // Client messages under `broadcast`: the sender's channels (or
    // everyone), on every node, each recipient once.
    cl[B0].1.send_text("client-all");
    expect_all(&mut cl, &all, "client-all");
    cl[AN].1.send_text("client-news");
    expect_all(&mut cl, &[AN, CN], "client-news");
    cl[CN].1.send_text("client-multi");
    expect_all(&mut cl, &[AN, BS, CN], "client-multi");

    // External emitters: redis-cli PUBLISH reaches all.
    assert_eq!(
        redis.cli(&["PUBLISH", "wsbroadcaster:all", "redis-all"]),
        "3"
    );
    expect_all(&mut cl, &all, "redis-all");
    redis.cli(&["PUBLISH", "wsbroadcaster:ch:news", "redis-news"]);
    expect_all(&mut cl, &[AN, CN], "redis-news");

    // Targeted sends reach one connection on another node.
    let r = rpc(&a, "send", vec![c0_id.as_str().into(), "rpc-to-c0".into()]);
    assert_eq!(field(&r, "queued"), Value::from(0));
    assert_eq!(field(&r, "relayed"), Value::from(true));
    expect_all(&mut cl, &[C0], "rpc-to-c0");
    c.udp_send(format!("@id:{b0_id} udp-to-b0").as_bytes());
    expect_all(&mut cl, &[B0], "udp-to-b0");
    let ch = format!("wsbroadcaster:id:{a0_id}");
    assert_eq!(
        redis.cli(&["PUBLISH", &ch, "redis-to-a0"]),
        "1",
        "only node A subscribes to its ids"
    );
    expect_all(&mut cl, &[A0], "redis-to-a0");
    // A send to one of the node's own connections is not relayed.
    let r = rpc(
        &a,
        "send",
        vec![a0_id.as_str().into(), "local-to-a0".into()],
    );
    assert_eq!(field(&r, "queued"), Value::from(1));
    assert_eq!(field(&r, "relayed"), Value::from(false));
    expect_all(&mut cl, &[A0], "local-to-a0");

    // A last message for everyone: any duplicate of the above would be
    // read before it.
    c.udp_send(b"end");
    expect_all(&mut cl, &all, "end");
    for (name, c) in cl.iter_mut() {
        assert_eq!(c.next(Duration::from_millis(300)), Got::Timeout, "{name}");
    }

    for (name, n) in [("A", &a), ("B", &b), ("C", &c)] {
        for counter in [
            "cluster_lost",
            "cluster_malformed",
            "cluster_relay_dropped",
            "cluster_stalls",
        ] {
            assert_eq!(stat(n, counter), 0, "node {name}: {counter}");
        }
    }
    // Relayed by each node: A udp-a, stdin-a, client-news, rpc-to-c0;
    // B unix-b, rpc-news, udp-sport, admin-sport, client-all; C rpc-c,
    // control-to-a0, client-multi, udp-to-b0, end.
    assert_eq!(stat(&a, "cluster_relayed"), 4);
    assert_eq!(stat(&b, "cluster_relayed"), 5);
    assert_eq!(stat(&c, "cluster_relayed"), 5);
    // From the other two nodes: their broadcasts, and the sends to this node.
    assert_eq!(stat(&a, "cluster_received"), 9);
    assert_eq!(stat(&b, "cluster_received"), 7);
    assert_eq!(stat(&c, "cluster_received"), 9);
    let _ = std::fs::remove_file(&control);
    assert_eq!(stat(&a, "cluster_external"), 3);
    assert_eq!(stat(&b, "cluster_external"), 2);
}

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

/// Redis killed and restarted, its pub/sub clients killed, the server
/// paused: local clients keep being served, every failure is logged once
/// and counted, and delivery across nodes resumes without restarting a
/// node. Sequence gaps show as `cluster_lost`.
#[test]
fn redis_failures_are_survived_and_recovered() {
    require_redis();
    let mut redis = Redis::start();
    let (a, b, mut cl, a0_id) = watched_pair(&redis.url(), &["--cluster-buffer", "8KiB"]);

    // Sequence numbers: a (forged) node whose messages 2 to 4 never arrived.
    let env = |seq: u64, text: &str| {
        let mut b = Vec::new();
        let v = Value::Array(vec![
            0.into(),
            "zzzzzz".into(),
            seq.into(),
            Value::Nil,
            text.into(),
        ]);
        rmpv::encode::write_value(&mut b, &v).unwrap();
        b
    };
    redis.publish("wsbroadcaster:cluster", &env(1, "seq-1"));
    expect_all(&mut cl, &[0, 1], "seq-1");
    redis.publish("wsbroadcaster:cluster", &env(5, "seq-5"));
    expect_all(&mut cl, &[0, 1], "seq-5");
    redis.publish("wsbroadcaster:cluster", b"not an envelope");
    for n in [&a, &b] {
        assert_eq!(stat(n, "cluster_lost"), 3);
        n.wait_log(
            "3 message(s) from node zzzzzz never arrived",
            Duration::from_secs(1),
        );
        wait_until(Duration::from_secs(5), "cluster_malformed", || {
            stat(n, "cluster_malformed") == 1
        });
    }

    // Another process with A's node id (its heartbeat has another nonce):
    // A notices, logs and counts it.
    let a_node = a0_id.split('.').next().unwrap();
    let mut hb = Vec::new();
    let v = Value::Array(vec![1.into(), a_node.into(), 1.into(), 42.into()]);
    rmpv::encode::write_value(&mut hb, &v).unwrap();
    redis.publish("wsbroadcaster:cluster", &hb);
    a.wait_log(
        "another process uses this node's id",
        Duration::from_secs(10),
    );
    assert_eq!(stat(&a, "cluster_id_collisions"), 1);
    assert_eq!(stat(&b, "cluster_id_collisions"), 0);

    // Redis killed: each node keeps serving its own clients and ingress.
    redis.kill();
    for n in [&a, &b] {
        n.wait_log("subscriber lost the Redis link", Duration::from_secs(10));
        n.wait_log("publisher lost the Redis link", Duration::from_secs(10));
    }
    a.udp_send(b"during-outage");
    expect_all(&mut cl, &[0], "during-outage");
    wait_until(Duration::from_secs(5), "the outage message counted", || {
        stat(&a, "cluster_relay_dropped") == 1
    });
    std::thread::sleep(Duration::from_secs(1)); // a few failed reconnects
    redis.restart();
    for n in [&a, &b] {
        n.wait_log("subscriber reconnected to Redis", Duration::from_secs(20));
        n.wait_log("publisher reconnected to Redis", Duration::from_secs(20));
        // Logged once per outage, however many attempts failed.
        assert_eq!(count(n, "subscriber lost the Redis link"), 1, "{}", n.log());
        assert_eq!(count(n, "publisher lost the Redis link"), 1, "{}", n.log());
        assert_eq!(stat(n, "cluster_reconnects"), 2);
    }
    a.udp_send(b"after-restart");
    // b0's next message: the outage message was never relayed (at most once).
    expect_all(&mut cl, &[0, 1], "after-restart");

    // Redis drops every subscriber.
    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, "2", "one subscription per node");
    for n in [&a, &b] {
        wait_count(
            n,
            "subscriber reconnected to Redis",
            2,
            Duration::from_secs(20),
        );
    }
    b.udp_send(b"after-kill");
    expect_all(&mut cl, &[0, 1], "after-kill");

    // A paused server: nothing comes back, nothing errors. Noticed within
    // seconds (a counter and a log line), then recovered.
    let paused = Instant::now();
    assert_eq!(redis.cli(&["CLIENT", "PAUSE", "4000", "ALL"]), "OK");
    for n in [&a, &b] {
        wait_stall_noticed(n);
    }
    let detected = paused.elapsed();
    assert!(
        detected < Duration::from_secs(4),
        "stall noticed after {detected:?}"
    );
    // Local clients are served meanwhile, and the loop never waits for
    // Redis: what does not fit in --cluster-buffer (8 KiB) is dropped for the
    // other nodes and counted.
    let dropped_before = stat(&a, "cluster_relay_dropped");
    a.udp_send(b"during-pause");
    expect_all(&mut cl, &[0], "during-pause");
    for i in 0..20 {
        let msg = format!("bulk-{i:02}-{}", "x".repeat(1000));
        a.udp_send(msg.as_bytes());
        expect_all(&mut cl, &[0], &msg);
    }
    let dropped = stat(&a, "cluster_relay_dropped") - dropped_before;
    assert!(
        dropped >= 12,
        "at most 8 KiB of the 20 KiB waits for Redis; {dropped} dropped"
    );
    // Delivery across nodes resumes once the pause ends, without a restart.
    // b0 may first get what was queued while Redis was paused, published
    // once it answered.
    probe_until_delivered(&a, &mut cl, Duration::from_secs(30), |t| {
        t == "during-pause" || t.starts_with("bulk-")
    });
    assert!(paused.elapsed() >= Duration::from_secs(3));
}

/// A node whose Redis is not there yet serves its own clients, logs the
/// missing link once, and joins the cluster when Redis comes up.
#[test]
fn a_node_starts_without_redis_and_joins_when_it_comes() {
    require_redis();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let a = Srv::start(&node_flags(&url, &[]));
    let (mut a0, _) = open(&a, "");
    a.wait_log("subscriber lost the Redis link", Duration::from_secs(10));
    a.udp_send(b"local");
    assert_eq!(
        a0.next_message(Duration::from_secs(10)),
        Got::Text("local".into())
    );
    std::thread::sleep(Duration::from_secs(1)); // a few failed attempts
    let redis = Redis::start_on(port).expect("redis-server on the node's port");
    a.wait_log("subscriber reconnected to Redis", Duration::from_secs(20));
    assert_eq!(
        count(&a, "subscriber lost the Redis link"),
        1,
        "{}",
        a.log()
    );
    assert_eq!(redis.cli(&["PUBLISH", "wsbroadcaster:all", "joined"]), "1");
    assert_eq!(
        a0.next_message(Duration::from_secs(10)),
        Got::Text("joined".into())
    );
}

/// A TCP proxy to Redis whose open connections can be frozen: nothing is
/// forwarded any more and nothing is closed, as on a half-open link (a
/// peer that vanished without a FIN). Connections made after a freeze work.
struct Proxy {
    port: u16,
    epoch: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let epoch = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (e, st) = (Arc::clone(&epoch), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        let my = e.load(Ordering::Relaxed);
                        for (from, into) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let (e, st) = (Arc::clone(&e), Arc::clone(&st));
                            std::thread::spawn(move || pump(from, into, my, &e, &st));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, epoch, stop }
    }

    /// Every connection open now stops forwarding, silently and for good.
    fn freeze(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pump(mut from: TcpStream, mut into: TcpStream, my: u64, epoch: &AtomicU64, stop: &AtomicBool) {
    use std::io::Read;
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if epoch.load(Ordering::Relaxed) != my {
            // Frozen: read nothing, write nothing, close nothing.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = into.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if epoch.load(Ordering::Relaxed) == my && into.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A half-open link to Redis (no error, no FIN, just silence) is noticed by
/// the heartbeat within seconds, counted, logged and replaced by a new
/// connection; delivery across nodes resumes.
#[test]
fn a_half_open_link_is_noticed_and_replaced() {
    require_redis();
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let (a, b, mut cl, _) = watched_pair(&url, &[]);

    let frozen = Instant::now();
    proxy.freeze();
    for n in [&a, &b] {
        wait_stall_noticed(n);
        // The publisher's PUBLISH got no answer: its connection is replaced too.
        n.wait_log("publisher lost the Redis link", Duration::from_secs(10));
        n.wait_log("publisher reconnected to Redis", Duration::from_secs(20));
    }
    let noticed = frozen.elapsed();
    assert!(noticed < Duration::from_secs(8), "{noticed:?}");
    probe_until_delivered(&a, &mut cl, Duration::from_secs(20), |_| false);
}
