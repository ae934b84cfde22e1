//! The server's life and its clients' liveness, against the real binary:
//! SIGTERM (1001 to every client, socket file removed, exit 0), a stale
//! socket file after a crash, a second instance on a live socket, the
//! handshake timeout, pings and the idle timeout.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{
    Client, Got, PyClient, Server, raw_tcp, require_python_websockets, serve_command,
    serve_refused, unique_sock_path,
};

#[test]
fn sigterm_closes_clients_with_1001_removes_socket_and_exits_0() {
    require_python_websockets();
    let mut server = Server::start(&[]);
    let mut a = PyClient::connect(&server.url());
    let mut b = PyClient::connect(&server.url());
    let mut c = server.client();
    // Everyone is really connected and served.
    server.udp_send(b"before shutdown");
    assert_eq!(a.recv(10.0), common::py_text("before shutdown"));
    assert_eq!(b.recv(10.0), common::py_text("before shutdown"));
    c.expect_text("before shutdown");
    assert!(server.unix.exists());

    server.sigterm();
    let ca = a.wait_close(10.0);
    let cb = b.wait_close(10.0);
    assert!(ca.starts_with("closed 1001 "), "python client a: {ca}");
    assert!(cb.starts_with("closed 1001 "), "python client b: {cb}");
    match c.next(Duration::from_secs(10)) {
        Got::Closed(Some(1001), _) => {}
        other => panic!("own client: expected a 1001 close, got {other:?}"),
    }
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    assert!(
        !server.unix.exists(),
        "the Unix socket file {} must be removed on shutdown",
        server.unix.display()
    );
}

#[test]
fn stale_socket_file_from_a_crash_does_not_block_a_restart() {
    let path = unique_sock_path("stale");
    Server::start_at(&path, &[]).crash();
    assert!(
        path.exists(),
        "a SIGKILLed server leaves its socket file behind"
    );

    let server = Server::start_at(&path, &[]);
    let mut c = server.client();
    server.unix_send(b"after restart\n");
    c.expect_text("after restart");
    server.wait_log("stale", Duration::from_secs(5));
}

#[test]
fn second_server_on_a_live_socket_fails_with_exit_1() {
    let first = Server::start(&[]);
    // A second server on a live socket path must exit, not run, and never
    // report ready.
    let second = serve_refused(&mut serve_command(&first.unix, &[]));
    let (status, err) = (second.status, second.stderr);
    assert_eq!(status.code(), Some(1), "exit status; stderr: {err}");
    assert!(
        err.contains(first.unix.to_str().unwrap()) && err.contains("in use"),
        "the message must name the path and say it is in use; stderr: {err}"
    );

    // The first server keeps its socket and keeps serving.
    assert!(
        first.unix.exists(),
        "the live socket file must be left alone"
    );
    let mut c = first.client();
    first.unix_send(b"first still serves\n");
    c.expect_text("first still serves");
}

/// Reads until the server closes the connection; the time it took.
fn time_to_close(s: &mut std::net::TcpStream, max: Duration) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(max)).unwrap();
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(0) => t.elapsed(),
        Ok(n) => panic!(
            "unexpected bytes from the server: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            panic!("the server did not close the connection within {max:?}")
        }
        Err(_) => t.elapsed(), // reset: closed too
    }
}

#[test]
fn handshake_timeout_drops_silent_and_slow_clients() {
    let server = Server::start(&["--handshake-timeout", "1s"]);
    let t = Instant::now();
    let mut silent = raw_tcp(server.ws);
    let mut slowloris = raw_tcp(server.ws);
    std::io::Write::write_all(&mut slowloris, b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let waited = time_to_close(&mut silent, Duration::from_secs(5));
    assert!(
        waited >= Duration::from_millis(900),
        "dropped too early: {waited:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(3500),
        "a silent client must be dropped within ~3 s, took {:?}",
        t.elapsed()
    );
    time_to_close(&mut slowloris, Duration::from_secs(3));
    assert!(t.elapsed() < Duration::from_millis(3500));
    common::assert_still_serving(&server, "after handshake timeouts");
}

/// Reads `c` for `window` (answering pings with pongs, as the client does
/// on its own); when each ping came. Panics on anything but pings.
fn pings_within(c: &mut Client, window: Duration) -> Vec<Duration> {
    let t = Instant::now();
    let mut pings = Vec::new();
    while t.elapsed() < window {
        match c.next(window.saturating_sub(t.elapsed())) {
            Got::Ping => pings.push(t.elapsed()),
            Got::Timeout => break,
            other => panic!("expected only pings, got {other:?} after {:?}", t.elapsed()),
        }
    }
    pings
}

#[test]
fn ping_interval_sends_pings_and_answered_pings_keep_the_client() {
    let server = Server::start(&["--ping-interval", "1s", "--idle-timeout", "3s"]);
    let mut c = server.client();
    // Read (and so answer pings) for 4.5 s: past the idle timeout, which
    // answered pings must keep away.
    let pings = pings_within(&mut c, Duration::from_millis(4500));
    assert!(!pings.is_empty(), "no ping within 4.5 s");
    assert!(
        pings[0] >= Duration::from_millis(900) && pings[0] < Duration::from_secs(3),
        "first ping after ~1 s, got it after {:?}",
        pings[0]
    );
    assert!(pings.len() >= 2, "pings keep coming: {pings:?}");
    // Still connected and served.
    server.udp_send(b"still here");
    c.expect_text("still here");
}

/// With a handshake timeout shorter than the ping interval, the server keeps
/// the handshake's timer entry as an early wake-up for an upgraded client
/// instead of queuing a second one (docs/architecture.md): that wake-up
/// neither closes the client nor pings it early, and the ping still comes
/// on time.
#[test]
fn handshake_deadline_kept_as_early_wakeup_pings_on_time() {
    let server = Server::start(&["--handshake-timeout", "500ms", "--ping-interval", "1500ms"]);
    let mut c = server.client();
    let pings = pings_within(&mut c, Duration::from_millis(5000));
    assert!(!pings.is_empty(), "no ping within 5 s");
    assert!(
        pings[0] >= Duration::from_millis(1400) && pings[0] < Duration::from_secs(3),
        "first ping after ~1.5 s (not at the 0.5 s wake-up), got it after {:?}",
        pings[0]
    );
    assert!(pings.len() >= 2, "pings keep coming: {pings:?}");
    server.udp_send(b"still here");
    c.expect_text("still here");
}

#[test]
fn idle_timeout_closes_a_silent_client_with_1001() {
    let server = Server::start(&["--idle-timeout", "2s", "--ping-interval", "0"]);
    let mut c = server.client();
    let t = Instant::now();
    let got = c.next(Duration::from_secs(8));
    let waited = t.elapsed();
    match got {
        Got::Closed(Some(1001), _) => {}
        other => panic!("expected a 1001 close, got {other:?} after {waited:?}"),
    }
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "closed after {waited:?}, expected ~2 s"
    );
    // The close handshake completes and the server ends the connection.
    assert_eq!(c.next(Duration::from_secs(10)), Got::End);
    let mut tcp = c.inner.stream().try_clone().unwrap();
    time_to_close(&mut tcp, Duration::from_secs(10));
    server.wait_log("idle", Duration::from_secs(5));
}
