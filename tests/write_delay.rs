//! `--write-delay`: frames for open connections are held for the window and
//! go out together, one write per connection; handshakes are not held.

mod common;

use common::{
    CONNECTION, KEY, Server, UPGRADE, VERSION13, raw_tcp, serve_command, serve_refused,
    unique_sock_path, upgrade_request,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(1000);

/// A raw client: the upgrade by hand, so each `read` shows what one write of
/// the server delivered.
fn upgrade(server: &Server) -> TcpStream {
    let mut s = raw_tcp(server.ws);
    s.set_nodelay(true).unwrap();
    s.write_all(upgrade_request(server.ws, &[UPGRADE, CONNECTION, KEY, VERSION13]).as_bytes())
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("read the upgrade reply");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// The unmasked text frame the server sends for a short message.
fn frame(text: &str) -> Vec<u8> {
    let mut f = vec![0x81, text.len() as u8];
    f.extend_from_slice(text.as_bytes());
    f
}

#[test]
fn messages_within_the_window_share_one_write_and_handshakes_are_not_held() {
    let server = Server::start(&["--write-delay", "1s"]);
    let started = Instant::now();
    let mut s = upgrade(&server);
    // Were the 101 reply held for the window, it could not arrive before it.
    assert!(
        started.elapsed() < DELAY,
        "the upgrade reply took {:?}: handshakes must not wait for --write-delay",
        started.elapsed()
    );

    let t0 = Instant::now();
    server.udp_send(b"first");
    std::thread::sleep(Duration::from_millis(200));
    server.udp_send(b"second");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("read the batch");
    let arrived = t0.elapsed();
    // The window opens when the server queues "first" (after t0) and the
    // write happens when it ends: never earlier.
    assert!(
        arrived >= DELAY,
        "the first message arrived after {arrived:?}"
    );
    // One write carried both: "second" was published 200 ms after "first",
    // inside the window, so the first read holds both frames.
    let want = [frame("first"), frame("second")].concat();
    assert_eq!(&buf[..n], &want[..], "one read, both frames, in order");

    // The next message opens a new window.
    let t1 = Instant::now();
    server.udp_send(b"third");
    let n = s.read(&mut buf).expect("read the next batch");
    assert!(
        t1.elapsed() >= DELAY,
        "the third arrived after {:?}",
        t1.elapsed()
    );
    assert_eq!(&buf[..n], &frame("third")[..]);
}

#[test]
fn a_write_delay_over_one_second_is_refused() {
    let out = serve_refused(&mut serve_command(
        &unique_sock_path("wd"),
        &["--write-delay", "1500ms"],
    ));
    assert!(!out.status.success());
    let err = out.stderr;
    assert!(
        err.contains("--write-delay") && err.contains("at most 1000ms"),
        "stderr: {err}"
    );
}

/// `--write-delay auto` holds broadcasts right after a large fan-out (one
/// pass writing 256 connections or more) for as long as it took: a burst
/// published right after one still reaches every connection, complete and
/// in order, whatever gets held and merged into one write.
#[test]
fn auto_delivers_a_burst_after_a_large_fan_out_to_everyone_in_order() {
    const CLIENTS: usize = 300;
    const BURST: usize = 20;
    let server = Server::start(&["--write-delay", "auto"]);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| upgrade(&server)).collect();
    let want: Vec<u8> = (0..BURST)
        .flat_map(|i| frame(&format!("m{i:02}")))
        .collect();
    for i in 0..BURST {
        server.udp_send(format!("m{i:02}").as_bytes());
        std::thread::sleep(Duration::from_millis(1));
    }
    for (c, s) in clients.iter_mut().enumerate() {
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("client {c}: {e}"));
        assert_eq!(got, want, "client {c}: every message once, in order");
    }
}

#[test]
fn write_delay_takes_auto_and_says_so_when_refusing() {
    let out = serve_command(&unique_sock_path("wd"), &["--write-delay", "soon"])
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--write-delay") && err.contains("auto"),
        "stderr: {err}"
    );
}
