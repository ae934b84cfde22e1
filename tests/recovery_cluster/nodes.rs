//! The nodes under test, each with history, on the test's redis-server.

use std::time::Duration;

use crate::common::Srv;
use crate::redis_server::Redis;

pub fn node(redis: &Redis) -> Srv {
    node_with(redis, &[])
}

pub fn node_with(redis: &Redis, extra: &[&str]) -> Srv {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--history", "1000"];
    args.extend_from_slice(extra);
    let n = Srv::start(&args);
    wait_ready(&n);
    n
}

pub const SHARED: [&str; 3] = ["--redis-history", "--rpc", "127.0.0.1:0"];

/// The stream's epoch in Redis.
pub fn redis_epoch(redis: &Redis, stream: &str) -> String {
    redis.cli(&["HGET", &format!("wsbroadcaster:epoch:{stream}"), "ep"])
}

/// A node started now (its ring empty), for joins only Redis can answer.
pub fn fresh_node(redis: &Redis, extra: &[&str]) -> Srv {
    let mut args = SHARED.to_vec();
    args.extend_from_slice(extra);
    node_with(redis, &args)
}

/// A node with `--history 10` and shared history.
pub fn small_node(redis: &Redis) -> Srv {
    let url = redis.url();
    let n = Srv::start(&["--redis", &url, "--history", "10", "--redis-history"]);
    wait_ready(&n);
    n
}

/// Waits until a node's publisher is connected and its subscription is live.
fn wait_ready(n: &Srv) {
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
}
