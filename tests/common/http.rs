//! Raw HTTP over TCP to the WebSocket or admin port: hand-written upgrade
//! requests and replies read with bounded timeouts.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A raw TCP connection to the WebSocket port with generous timeouts.
pub fn raw_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    s
}

/// A valid upgrade request with the given extra/replacement header lines.
pub fn upgrade_request(addr: SocketAddr, headers: &[&str]) -> String {
    let mut r = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Standard headers of an upgrade request, for composing variants.
pub const UPGRADE: &str = "Upgrade: websocket";
pub const CONNECTION: &str = "Connection: Upgrade";
pub const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
pub const VERSION13: &str = "Sec-WebSocket-Version: 13";

/// An HTTP response read off a raw socket.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    /// The server closed the connection after the reply (EOF or reset seen
    /// within the read timeout).
    pub closed: bool,
}

impl HttpReply {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads an HTTP response head, then reads on until the server closes the
/// connection (or `close_within` passes). Panics when no complete head comes.
pub fn read_http_reply(s: &mut TcpStream, close_within: Duration) -> HttpReply {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(
            Instant::now() < deadline,
            "no complete HTTP response head within 10 s; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a complete HTTP response; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "reading the HTTP response: {e}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let (_body, closed) = read_to_end_within(s, close_within);
    HttpReply {
        status,
        head,
        closed,
    }
}

/// Reads until EOF (or a reset), at most `within`: what came, and whether
/// the peer closed the connection.
pub fn read_to_end_within(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(within)).expect("timeout");
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(_) => return (got, true), // reset
        }
    }
    (got, false)
}
