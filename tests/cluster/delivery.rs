//! Every publish source on three nodes reaches every subscriber of every
//! node exactly once; targeted sends cross nodes.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::common;
use crate::common::rpc::{field, rpc, stat};
use crate::common::{Got, Srv};
use crate::nodes::{expect_all, free_port, node_flags, open, wait_ready};
use crate::redis_server::{Redis, require_redis};
use rmpv::Value;

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
