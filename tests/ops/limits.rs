//! The admin endpoint's and the control socket's limits: connections,
//! line and request sizes, the request timeout, malformed requests.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::admin_and_control;
use crate::common;
use crate::common::json::json_u64;
use crate::control::Control;

/// One raw HTTP request on a fresh connection to `addr` (a write error is
/// ignored: the server may answer and close before it has read it all);
/// the reply, waiting up to 5 s for the close.
fn http_request(addr: SocketAddr, req: &[u8]) -> common::HttpReply {
    let mut h = common::raw_tcp(addr);
    let _ = h.write_all(req);
    common::read_http_reply(&mut h, Duration::from_secs(5))
}

#[test]
fn admin_and_control_limits() {
    let (s, ctl_path) = admin_and_control(&[
        "--ops-max-connections",
        "2",
        "--admin-timeout",
        "1s",
        "--max-message",
        "1KiB",
    ]);
    let admin = s.admin.unwrap();
    // Control: a third connection is closed at once.
    let mut c1 = Control::connect(&ctl_path);
    let mut c2 = Control::connect(&ctl_path);
    let mut c3 = UnixStream::connect(&ctl_path).unwrap();
    c3.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(c3.read(&mut buf), Ok(0) | Err(_)),
        "closed at the limit"
    );
    assert_eq!(json_u64(&c1.json("stats"), "ops_connections_refused"), 1);
    // An over-long line (over --max-message + 1 KiB) closes that connection.
    c2.w.write_all(&vec![b'a'; 3000]).unwrap();
    assert_eq!(c2.line(), "error: a line over 2048 bytes; closing");
    assert_eq!(c2.line(), "");
    let mut rest = Vec::new();
    let _ = c2.r.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(json_u64(&c1.json("stats"), "control_errors"), 1);

    // Admin: a request that does not finish within --admin-timeout is cut.
    let mut slow = common::raw_tcp(admin);
    slow.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    let n = slow.read(&mut buf);
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(t.elapsed() < Duration::from_secs(8));
    // Head too large; body too large; bad requests. (One at a time: each
    // connection counts against --ops-max-connections until closed.)
    let ask = |req: &[u8]| http_request(admin, req);
    let big = format!("GET /stats HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(ask(big.as_bytes()).status, 431);
    let r = ask(b"POST /publish HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    assert_eq!(r.status, 413);
    assert!(r.closed);
    let r = ask(b"POST /publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.status, 411);
    assert_eq!(ask(b"\x16\x03\x01garbage\r\n\r\n").status, 400);
    // A request that arrives a byte at a time is read whole (the head's end
    // is found across reads).
    let mut h = common::raw_tcp(admin);
    h.set_nodelay(true).unwrap();
    for b in b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" {
        h.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        common::read_http_reply(&mut h, Duration::from_secs(5)).status,
        200
    );
    drop(h);
    let stats = c1.json("stats");
    assert_eq!(json_u64(&stats, "admin_errors"), 4, "{stats}");
    // The WebSocket port still publishes nothing from HTTP.
    let mut h = common::raw_tcp(s.ws);
    h.write_all(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    assert_eq!(
        common::read_http_reply(&mut h, Duration::from_secs(5)).status,
        404
    );
    assert_eq!(json_u64(&c1.json("stats"), "messages_published"), 0);
}
