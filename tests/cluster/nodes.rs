//! The nodes under test and the clients on them: flags, readiness, log
//! counts, clients with their connection ids, and the waits the failure
//! tests share (a watched pair, a noticed stall, resumed delivery).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::rpc::stat;
use crate::common::{Client, Got, Srv, wait_until};

pub fn node_flags<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--redis", url, "--rpc", "127.0.0.1:0", "--announce-id"];
    v.extend_from_slice(extra);
    v
}

/// Waits until a node's publisher is connected and its subscription is live.
pub fn wait_ready(n: &Srv) {
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
}

pub fn count(n: &Srv, needle: &str) -> usize {
    n.log().matches(needle).count()
}

pub fn wait_count(n: &Srv, needle: &str, at_least: usize, timeout: Duration) {
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
pub fn open(n: &Srv, query: &str) -> (Client, String) {
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

/// Each client in `who` receives `want` next.
pub fn expect_all(clients: &mut [(&str, Client)], who: &[usize], want: &str) {
    for &i in who {
        let (name, c) = &mut clients[i];
        let got = c.next_message(Duration::from_secs(10));
        assert_eq!(got, Got::Text(want.to_owned()), "client {name}");
    }
}

/// Two nodes on `url` with a 300 ms heartbeat, a 2 s stall timeout and
/// `extra` flags, both ready, and a client on each (`a0`, `b0`) that has got
/// a message published on A. Returns the nodes, the clients and a0's id.
pub fn watched_pair(url: &str, extra: &[&str]) -> (Srv, Srv, Vec<(&'static str, Client)>, String) {
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
pub fn wait_stall_noticed(n: &Srv) {
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
pub fn probe_until_delivered(
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
