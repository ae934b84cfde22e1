//! Malformed and refused opening handshakes on raw TCP sockets against the
//! real binary: each gets the right HTTP status and the connection is
//! closed, nothing is published, and the listener keeps serving.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{
    CONNECTION, Client, Got, KEY, Server, UPGRADE, VERSION13, assert_still_serving, raw_tcp,
    read_http_reply, upgrade_request,
};

/// Sends `request` on a fresh connection and reads the reply; asserts the
/// status and that the server closes the connection afterwards.
fn refused(server: &Server, request: &[u8], status: u16) -> common::HttpReply {
    let mut s = raw_tcp(server.ws);
    s.write_all(request).expect("send the request");
    let reply = read_http_reply(&mut s, Duration::from_secs(10));
    assert_eq!(reply.status, status, "reply: {}", reply.head);
    assert!(
        reply.closed,
        "the server must close the connection after {status}"
    );
    reply
}

#[test]
fn missing_key_is_400() {
    let server = Server::start(&[]);
    let req = upgrade_request(server.ws, &[UPGRADE, CONNECTION, VERSION13]);
    refused(&server, req.as_bytes(), 400);
    let req = upgrade_request(
        server.ws,
        &[
            UPGRADE,
            CONNECTION,
            VERSION13,
            "Sec-WebSocket-Key: not-base64-of-16-bytes",
        ],
    );
    refused(&server, req.as_bytes(), 400);
    assert_still_serving(&server, "after missing key");
}

#[test]
fn version_8_is_426_with_version_13_header() {
    let server = Server::start(&[]);
    let req = upgrade_request(
        server.ws,
        &[UPGRADE, CONNECTION, KEY, "Sec-WebSocket-Version: 8"],
    );
    let reply = refused(&server, req.as_bytes(), 426);
    assert_eq!(
        reply.header("Sec-WebSocket-Version").as_deref(),
        Some("13"),
        "426 must name the version the server speaks; reply: {}",
        reply.head
    );
    assert_still_serving(&server, "after version 8");
}

#[test]
fn garbage_request_line_is_400() {
    let server = Server::start(&[]);
    refused(&server, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n", 400);
    refused(&server, b"HELLO\r\n\r\n", 400);
    assert_still_serving(&server, "after garbage");
}

/// A TLS ClientHello (a client speaking wss:// or https:// to the plain
/// port) has no CRLF CRLF: the server must refuse it as soon as the bytes
/// cannot be HTTP, not hold the connection until the handshake timeout.
#[test]
fn tls_client_hello_is_400_promptly() {
    // The default handshake timeout is 10 s; a prompt answer is well under it.
    let server = Server::start(&[]);
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xa5, // record: handshake, TLS 1.0, length
        0x01, 0x00, 0x00, 0xa1, // ClientHello, length
        0x03, 0x03, // TLS 1.2
    ];
    hello.extend((0u8..32).map(|i| i.wrapping_mul(37))); // random
    hello.extend([0x00, 0x00, 0x04, 0x13, 0x01, 0x13, 0x02, 0x01, 0x00]);
    hello.resize(0xa5 + 5, 0);
    let t = Instant::now();
    let mut s = raw_tcp(server.ws);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&hello).unwrap();
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
    let got = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 400"),
        "a TLS ClientHello must be answered 400 at once; got {got:?} after {:?}",
        t.elapsed()
    );
    assert_still_serving(&server, "after TLS hello");
}

#[test]
fn one_megabyte_header_is_431_and_closed() {
    let server = Server::start(&[]);
    let mut s = raw_tcp(server.ws);
    let mut w = s.try_clone().unwrap();
    // Write the whole megabyte on another thread: the server answers (and
    // stops caring) long before it has read it all.
    let ws = server.ws;
    let writer = std::thread::spawn(move || {
        let mut req = format!("GET / HTTP/1.1\r\nHost: {ws}\r\nX-Big: ").into_bytes();
        req.resize(1 << 20, b'a');
        req.extend_from_slice(b"\r\n\r\n");
        let _ = w.write_all(&req); // may fail once the server closes: fine
    });
    let reply = read_http_reply(&mut s, Duration::from_secs(15));
    assert_eq!(reply.status, 431, "reply: {}", reply.head);
    assert!(reply.closed, "the connection must be closed after 431");
    drop(s);
    writer.join().unwrap();
    assert_still_serving(&server, "after 1 MB header");
}

#[test]
fn plain_get_is_404_and_publishes_nothing() {
    let server = Server::start(&[]);
    let mut listener = server.client();
    let req = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", server.ws);
    refused(&server, req.as_bytes(), 404);
    let req = format!(
        "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Length: 5\r\n\r\nhello",
        server.ws
    );
    refused(&server, req.as_bytes(), 404);
    // Nothing was published.
    assert_eq!(listener.next(Duration::from_millis(500)), Got::Timeout);
    server.udp_send(b"after 404");
    listener.expect_text("after 404");
    assert_still_serving(&server, "after 404");
}

#[test]
fn over_max_connections_is_503() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut a = server.client();
    let b = server.client();
    let req = upgrade_request(server.ws, &[UPGRADE, CONNECTION, KEY, VERSION13]);
    let reply = refused(&server, req.as_bytes(), 503);
    assert!(
        reply.header("Retry-After").is_some(),
        "503 says when to retry"
    );
    // Both admitted clients still get messages.
    server.udp_send(b"to the two");
    a.expect_text("to the two");
    // One leaves; the slot frees up (the server notices the close
    // asynchronously, so retry a bounded number of times).
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match Client::try_connect(&server.url()) {
            Ok(c) => break c,
            Err(e) => assert!(
                Instant::now() < deadline,
                "a slot did not free up within 10 s: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    server.udp_send(b"after 503");
    c.expect_text("after 503");
    a.expect_text("after 503");
}
