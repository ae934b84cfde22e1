//! `/metrics` read by the Prometheus reference parser (Python
//! `prometheus_client.parser`): every family is there and the counters move.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::{Client, Srv, require_python_module, require_python_websockets};

/// The /metrics page as the Prometheus reference parser reads it: sample
/// name (with labels) → value.
fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let out = Command::new("python3")
        .arg(common::root().join("tests/py/metrics.py"))
        .arg(format!("http://{admin}/metrics"))
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Prometheus parser failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[test]
fn prometheus_parser_reads_metrics_and_the_counters_move() {
    require_python_websockets();
    require_python_module("prometheus_client.parser", "prometheus_client");
    let s = Srv::start(&[
        "--admin",
        "127.0.0.1:0",
        "--allow-origin",
        "https://ok.example",
    ]);
    let admin = s.admin.unwrap();
    let mut a = Client::connect(&s.url("channel=news"));
    let mut b = Client::connect(&s.url("channel=news"));
    let before = scrape(admin);
    let get =
        |m: &HashMap<String, f64>, k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}"));
    assert_eq!(get(&before, "wsbroadcaster_connections"), 2.0);
    assert_eq!(get(&before, "wsbroadcaster_channels"), 1.0);
    assert_eq!(
        get(
            &before,
            "wsbroadcaster_channel_connections{channel=\"news\"}"
        ),
        2.0
    );
    let counters = before.keys().filter(|k| k.ends_with("_total")).count();
    assert!(counters >= 29, "{before:?}");
    assert_eq!(
        get(&before, "families"),
        (counters + 10) as f64, // 10 gauges (3 of them the history's)
        "every counter and gauge is a family"
    );

    // Traffic: 5 messages to the channel, one refused browser origin.
    let mut payload_bytes = 0;
    for i in 0..5 {
        let m = format!("message {i}");
        payload_bytes += m.len();
        s.unix_send(format!("@news {m}\n").as_bytes());
        a.expect_text(&m);
        b.expect_text(&m);
    }
    let out = Command::new("python3")
        .arg(common::root().join("tests/py/ws_try.py"))
        .arg(s.url(""))
        .arg("https://evil.example")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("refused 403"));
    let after = scrape(admin);
    let delta = |k: &str| get(&after, k) - get(&before, k);
    assert_eq!(delta("wsbroadcaster_messages_published_total"), 5.0);
    assert_eq!(delta("wsbroadcaster_frames_queued_total"), 10.0);
    assert_eq!(
        delta("wsbroadcaster_bytes_published_total"),
        payload_bytes as f64
    );
    // Each frame: a 2-byte header and the payload, for two recipients.
    assert_eq!(
        delta("wsbroadcaster_bytes_queued_total"),
        2.0 * (payload_bytes + 5 * 2) as f64
    );
    assert_eq!(delta("wsbroadcaster_origin_refused_total"), 1.0);
    assert_eq!(delta("wsbroadcaster_http_rejected_total"), 1.0);
    assert_eq!(
        delta("wsbroadcaster_admin_requests_total"),
        1.0,
        "the first scrape"
    );
    assert_eq!(get(&after, "wsbroadcaster_connections"), 2.0);
    b.close();
    let _ = b.next(Duration::from_secs(5));
    common::wait_until(Duration::from_secs(10), "the close to be counted", || {
        get(&scrape(admin), "wsbroadcaster_connections") == 1.0
    });
    let last = scrape(admin);
    assert_eq!(
        get(&last, "wsbroadcaster_channel_connections{channel=\"news\"}"),
        1.0
    );
    assert_eq!(get(&last, "wsbroadcaster_connections_closed_total"), 1.0);
}
