//! `wsbroadcaster bench` against the real server: 50 subscribers, a Unix
//! socket publisher, 2 seconds; every message reaches every subscriber and
//! the `--json` line says so.

mod common;

use std::process::Command;

use common::json::json_u64;
use common::{BIN, Server};

/// `wsbroadcaster bench --url URL ARGS --duration 2s --drain 5s --json
/// --quiet` against `server`; its stdout. Panics, with both outputs and the
/// server's log, unless it succeeds.
fn bench_json(server: &Server, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["bench", "--url", &server.url()])
        .args(args)
        .args(["--duration", "2s", "--drain", "5s"])
        .args(["--json", "--quiet"])
        .output()
        .expect("run wsbroadcaster bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    stdout
}

/// The last line of the bench's output: the JSON object.
fn json_line(stdout: &str) -> &str {
    let line = stdout.lines().last().expect("some output");
    assert!(
        line.starts_with('{') && line.ends_with('}'),
        "the last line is the JSON object: {line:?}"
    );
    line
}

#[test]
fn fanout_over_unix_delivers_every_message_to_every_subscriber() {
    const CLIENTS: u64 = 50;
    let server = Server::start(&[]);
    let publish = format!("unix:{}", server.unix.display());
    let stdout = bench_json(
        &server,
        &[
            "--connections",
            &CLIENTS.to_string(),
            "--publish",
            &publish,
            "--rate",
            "100",
        ],
    );
    let line = json_line(&stdout);
    let published = json_u64(line, "published");
    assert_eq!(published, 200, "100/s for 2 s: {line}");
    assert_eq!(json_u64(line, "connections"), CLIENTS);
    assert_eq!(json_u64(line, "expected"), published * CLIENTS);
    assert_eq!(
        json_u64(line, "delivered"),
        published * CLIENTS,
        "every subscriber got every message: {line}"
    );
    assert_eq!(json_u64(line, "lost"), 0, "{line}");
    assert_eq!(json_u64(line, "out_of_order"), 0, "{line}");
    assert_eq!(json_u64(line, "closed"), 0, "{line}");
    // The human summary precedes it.
    assert!(stdout.contains("deliveries:  expected 10000, delivered 10000, lost 0"));
}

/// The same over `wss://`: the bench's clients speak TLS (rustls, trusting
/// the run's CA via --tls-ca), and so does its `ws` publisher.
#[test]
fn fanout_over_wss_delivers_every_message_to_every_subscriber() {
    const CLIENTS: u64 = 20;
    let ca = common::certs::TestCa::new("bench");
    let leaf = ca.leaf("server", "bench");
    let server = Server::start_tls(&leaf, &[]);
    let stdout = bench_json(
        &server,
        &[
            "--tls-ca",
            ca.ca_pem.to_str().unwrap(),
            "--connections",
            &CLIENTS.to_string(),
            "--publish",
            "ws",
            "--size",
            "20KiB",
            "--rate",
            "50",
        ],
    );
    let line = json_line(&stdout);
    let published = json_u64(line, "published");
    assert_eq!(published, 100, "50/s for 2 s: {line}");
    assert_eq!(json_u64(line, "delivered"), published * CLIENTS, "{line}");
    assert_eq!(json_u64(line, "lost"), 0, "{line}");
    assert_eq!(json_u64(line, "out_of_order"), 0, "{line}");
    assert_eq!(json_u64(line, "closed"), 0, "{line}");

    // A CA that did not sign the server's certificate: the bench says so.
    let other = common::certs::TestCa::new("bench-other");
    let out = Command::new(BIN)
        .args(["bench", "--url", &server.url(), "--tls-ca"])
        .arg(&other.ca_pem)
        .args(["-n", "2", "--mode", "idle", "--hold", "1s", "--quiet"])
        .output()
        .expect("run wsbroadcaster bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("certificate"), "{stderr}");
}
