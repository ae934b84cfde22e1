//! `wss://` on the WebSocket listener (`--tls-cert`, `--tls-key`), against
//! the real binary: Python `websockets` and the crate's rustls client
//! trusting a CA made for the run, plain HTTP and garbage refused, a stalled
//! TLS handshake cut by the handshake timeout, the certificate reloaded on
//! SIGHUP with connections kept open, and clear errors for bad files.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::certs::{TestCa, install};
use common::{
    BIN, CONNECTION, Client, Got, KEY, PyClient, Server, UPGRADE, VERSION13, py_text, raw_tcp,
    read_to_end_within, require_python_websockets, serve_refused, serve_ws_only_command, signal,
    upgrade_request,
};

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn python_websockets_and_rustls_clients_over_wss() {
    require_python_websockets();
    let ca = TestCa::new("clients");
    let leaf = ca.leaf("server", "wsbroadcaster test server");
    let server = Server::start_tls(&leaf, &[]);
    let mut py = PyClient::connect_trusting(&server.url(), Some(&ca.ca_pem));
    let mut rust = Client::connect_tls(&server.url(), ca.client_config());
    assert_eq!(
        rust.inner.peer_certificates().expect("a TLS connection")[0],
        leaf.der,
        "the server presents the configured certificate"
    );
    py.sync();

    server.udp_send(b"over tls");
    assert_eq!(py.recv(10.0), py_text("over tls"));
    rust.expect_text("over tls");

    // A client's message is broadcast (the default policy) to both.
    py.send("from python");
    rust.expect_text("from python");
    assert_eq!(py.recv(10.0), py_text("from python"));

    // A message spanning many TLS records (16 KiB each), both directions.
    let big = "tls record ".repeat(30_000);
    rust.send_text(&big);
    assert_eq!(py.recv(20.0), py_text(&big));
    rust.expect_text(&big);

    assert_eq!(py.cmd("close", 5.0), "bye");
    server.wait_log("code=1000 by=client", Duration::from_secs(10));
    rust.close();
    assert_eq!(
        rust.next(Duration::from_secs(10)),
        Got::Closed(Some(1000), String::new())
    );
}

#[test]
fn many_broadcasts_reach_every_tls_client_in_order() {
    let ca = TestCa::new("burst");
    let leaf = ca.leaf("server", "burst");
    let server = Server::start_tls(&leaf, &[]);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::connect_tls(&server.url(), ca.client_config()))
        .collect();
    // About 2 MB for each client, more than the socket buffers hold while
    // the test reads one client at a time: the server's TLS writes stop at
    // WouldBlock and resume on WRITABLE.
    let n = 2000;
    let pad = "z".repeat(1000);
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&format!("m{i} {pad}\n"));
    }
    server.unix_send(lines.as_bytes());
    for c in &mut clients {
        for i in 0..n {
            c.expect_text(&format!("m{i} {pad}"));
        }
    }
}

#[test]
fn sigterm_closes_tls_clients_with_1001() {
    let ca = TestCa::new("term");
    let leaf = ca.leaf("server", "term");
    let mut server = Server::start_tls(&leaf, &[]);
    let mut c = Client::connect_tls(&server.url(), ca.client_config());
    server.sigterm();
    assert_eq!(
        c.next(Duration::from_secs(10)),
        Got::Closed(Some(1001), "server shutting down".to_owned())
    );
    let st = server.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(st.success(), "{st}");
}

#[test]
fn plain_http_and_garbage_to_the_tls_port_are_refused() {
    let ca = TestCa::new("refuse");
    let leaf = ca.leaf("server", "refuse");
    let server = Server::start_tls(&leaf, &[]);

    // A ws:// client (or curl http://) on the wss:// port: a plain-text 400
    // that says what to do, then the connection closes.
    let mut s = raw_tcp(server.ws);
    s.write_all(upgrade_request(server.ws, &[UPGRADE, CONNECTION, KEY, VERSION13]).as_bytes())
        .unwrap();
    let (reply, closed) = read_to_end_within(&mut s, Duration::from_secs(10));
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(
        reply.contains("this port speaks TLS; connect with wss://"),
        "{reply}"
    );
    assert!(closed, "the connection is closed after the 400");
    server.wait_log("plain HTTP on the TLS port (400)", Duration::from_secs(5));

    // Garbage: a fatal TLS alert record (content type 21), then the close.
    let mut s = raw_tcp(server.ws);
    s.write_all(&[0x00, 0x01, 0x02, 0xfe, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50])
        .unwrap();
    let (reply, closed) = read_to_end_within(&mut s, Duration::from_secs(10));
    assert!(closed, "the connection is closed");
    assert_eq!(reply.first(), Some(&21), "a TLS alert record: {reply:?}");
    assert_eq!(reply.get(5), Some(&2), "the alert is fatal: {reply:?}");

    // A TLS client that does not trust the certificate gives up during the
    // handshake; the server drops it and keeps serving.
    let other = TestCa::new("other");
    let refused = Client::try_connect_tls(&server.url(), other.client_config());
    assert!(refused.is_err(), "an untrusted certificate is refused");

    let mut c = Client::connect_tls(&server.url(), ca.client_config());
    server.udp_send(b"still serving");
    c.expect_text("still serving");
}

#[test]
fn a_stalled_tls_handshake_is_cut_by_the_handshake_timeout() {
    let ca = TestCa::new("stall");
    let leaf = ca.leaf("server", "stall");
    let server = Server::start_tls(&leaf, &["--handshake-timeout", "500ms"]);
    let start = Instant::now();
    // Says nothing at all.
    let mut silent = raw_tcp(server.ws);
    // Starts a ClientHello record (512 bytes promised) and stops.
    let mut partial = raw_tcp(server.ws);
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    for (name, s) in [("silent", &mut silent), ("partial hello", &mut partial)] {
        let (got, closed) = read_to_end_within(s, Duration::from_secs(10));
        assert!(closed, "{name}: not closed within 10 s");
        assert!(got.is_empty(), "{name}: {got:?}");
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "closed after {took:?}, expected about the 500 ms handshake timeout"
    );
    // A completed TLS handshake with no upgrade request: the same timeout.
    let config = ca.client_config();
    let name = wsbroadcaster::client_tls::server_name("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, raw_tcp(server.ws));
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = match tls.read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
        Err(e) => panic!("expected the server to close, got {e}"),
    };
    assert_eq!(n, 0, "no bytes, only the close");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    require_python_websockets();
    let ca = TestCa::new("reload");
    let old = ca.leaf("old", "old server certificate");
    let new = ca.leaf("new", "new server certificate");
    let (live_cert, live_key) = (ca.path("live.pem"), ca.path("live.key"));
    install(&old.cert, &live_cert);
    install(&old.key, &live_key);
    let server = Server::start_tls_files(&live_cert, &live_key, &[]);

    let mut a = Client::connect_tls(&server.url(), ca.client_config());
    assert_eq!(a.inner.peer_certificates().unwrap()[0], old.der);
    let mut py = PyClient::connect_trusting(&server.url(), Some(&ca.ca_pem));
    py.sync();

    // Renewal: new files in place, then SIGHUP.
    install(&new.cert, &live_cert);
    install(&new.key, &live_key);
    signal(server.pid(), "HUP");
    server.wait_log("TLS certificate reloaded", Duration::from_secs(10));
    let mut b = Client::connect_tls(&server.url(), ca.client_config());
    assert_eq!(
        b.inner.peer_certificates().unwrap()[0],
        new.der,
        "a new connection gets the new certificate"
    );
    // The connections opened before the reload are still served.
    server.udp_send(b"after reload");
    a.expect_text("after reload");
    b.expect_text("after reload");
    assert_eq!(py.recv(10.0), py_text("after reload"));
    a.send_text("old connection still talks");
    b.expect_text("old connection still talks");
    a.expect_text("old connection still talks");
    assert_eq!(py.recv(10.0), py_text("old connection still talks"));

    // A broken file: the reload fails, says why, keeps the certificate.
    std::fs::write(&live_cert, "not a certificate\n").unwrap();
    signal(server.pid(), "HUP");
    server.wait_log(
        "TLS reload failed, keeping the current certificate",
        Duration::from_secs(10),
    );
    server.wait_log(
        &format!("{}: no certificate found", live_cert.display()),
        Duration::from_secs(1),
    );
    let c = Client::connect_tls(&server.url(), ca.client_config());
    assert_eq!(c.inner.peer_certificates().unwrap()[0], new.der);
    // A key that does not match: refused the same way.
    install(&old.cert, &live_cert);
    signal(server.pid(), "HUP");
    server.wait_log(
        "does not belong to the certificate",
        Duration::from_secs(10),
    );
    let c = Client::connect_tls(&server.url(), ca.client_config());
    assert_eq!(c.inner.peer_certificates().unwrap()[0], new.der);

    server.udp_send(b"still here");
    a.expect_text("still here");
    assert_eq!(py.recv(10.0), py_text("still here"));
}

/// Runs `serve` with `args`; its exit status and stderr (bounded wait).
fn serve_fails(args: &[&str]) -> (i32, String) {
    let out = serve_refused(&mut serve_ws_only_command(args));
    (out.status.code().unwrap_or(-1), out.stderr)
}

#[test]
fn a_bad_or_missing_certificate_or_key_is_a_clear_error_at_start() {
    let ca = TestCa::new("bad");
    let leaf = ca.leaf("server", "bad");
    let other = ca.leaf("other", "other");
    let (cert, key) = (path_str(&leaf.cert), path_str(&leaf.key));
    let missing = ca.path("missing.pem");
    let missing = path_str(&missing);
    let garbled = ca.path("garbled.pem");
    std::fs::write(
        &garbled,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let garbled = path_str(&garbled);
    let cases: [(&[&str], String); 6] = [
        (
            &["--tls-cert", missing, "--tls-key", key],
            format!("TLS: cannot read {missing}: No such file or directory"),
        ),
        (
            &["--tls-cert", cert, "--tls-key", missing],
            format!("TLS: cannot read {missing}: No such file or directory"),
        ),
        (
            &["--tls-cert", key, "--tls-key", key],
            format!("TLS: {key}: no certificate found"),
        ),
        (
            &["--tls-cert", cert, "--tls-key", cert],
            format!("TLS: {cert}: no private key found"),
        ),
        (
            &["--tls-cert", cert, "--tls-key", path_str(&other.key)],
            format!(
                "TLS: the private key in {} does not belong to the certificate in {cert}",
                other.key.display()
            ),
        ),
        (
            &["--tls-cert", garbled, "--tls-key", key],
            format!("TLS: {garbled}: malformed PEM"),
        ),
    ];
    for (args, want) in cases {
        let (code, err) = serve_fails(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains(&want),
            "{args:?}: expected {want:?} in:\n{err}"
        );
    }
    // One without the other is a usage error.
    let (code, err) = serve_fails(&["--tls-cert", cert]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tls-key"), "{err}");
}

#[test]
fn sighup_without_tls_is_logged_and_harmless() {
    let server = Server::start(&[]);
    let mut c = server.client();
    signal(server.pid(), "HUP");
    server.wait_log("no TLS certificate configured", Duration::from_secs(10));
    server.udp_send(b"alive");
    c.expect_text("alive");
}

#[test]
fn check_config_reads_the_certificate_and_key() {
    let ca = TestCa::new("check");
    let leaf = ca.leaf("server", "check");
    let other = ca.leaf("other", "other");
    let check = |cert: &Path, key: &Path| {
        let file = ca.path("wsbroadcaster.toml");
        std::fs::write(
            &file,
            format!(
                "tls-cert = {:?}\ntls-key = {:?}\n",
                path_str(cert),
                path_str(key)
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .arg("check-config")
            .arg(&file)
            .stdin(Stdio::null())
            .output()
            .expect("run check-config");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = check(&leaf.cert, &leaf.key);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("tls-cert = "), "{stdout}");
    let (code, _, stderr) = check(&leaf.cert, &other.key);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "TLS: the private key in {} does not belong to the certificate in {}",
            other.key.display(),
            leaf.cert.display()
        )),
        "{stderr}"
    );
}
