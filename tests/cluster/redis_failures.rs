//! Redis killed and restarted, its pub/sub clients killed, the server
//! paused, or not there yet: nodes keep serving their own clients, log and
//! count each failure, and rejoin without a restart.

use std::time::{Duration, Instant};

use crate::common::rpc::stat;
use crate::common::{Got, Srv, wait_until};
use crate::nodes::{
    count, expect_all, free_port, node_flags, open, probe_until_delivered, wait_count,
    wait_stall_noticed, watched_pair,
};
use crate::redis_server::{Redis, require_redis};
use rmpv::Value;

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
