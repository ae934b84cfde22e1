//! `RequestParser::feed` on arbitrary bytes, fed whole and in two pieces.
//!
//! The first input byte picks the split point; the rest is the stream.
//! Invariants:
//! - never panics;
//! - the split feed (and, for short streams, the byte-by-byte feed) reaches
//!   the same outcome as the whole feed: the same `Err`, or `Partial` for
//!   both, or `Complete` with the same `Request`;
//! - `consumed` is right: the head is the same length both ways, and the
//!   bytes after it (the client's first frames) are preserved exactly;
//! - a complete head is at most `max_header_bytes` and ends with an empty line;
//! - `Request::accept` (with and without a subprotocol) is a well-formed HTTP
//!   head: parses completely, status 101, exactly the expected header fields
//!   (no injected ones), and the right `Sec-WebSocket-Accept`;
//! - an error's `response()` is a well-formed HTTP response with its status.
//!
//! `fuzz/regressions/handshake_request/` holds the inputs that found the
//! method check reading past the head (fixed in 4e43992).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsbroadcaster::protocol::HandshakeLimits;
use wsbroadcaster::protocol::handshake::server::{Request, RequestError, RequestParser};
use wsbroadcaster::protocol::handshake::{Progress, accept_key};

const LIMITS: HandshakeLimits = HandshakeLimits {
    max_header_bytes: 2048,
    max_headers: 16,
};

/// The outcome of feeding a stream: the request (or error), the head length
/// and the bytes left over after the head.
type Outcome = Result<Option<(Request, usize, Vec<u8>)>, RequestError>;

fn feed(parts: &[&[u8]]) -> Outcome {
    let mut parser = RequestParser::new(LIMITS);
    let mut head_len = 0;
    for (i, part) in parts.iter().enumerate() {
        match parser.feed(part)? {
            Progress::Partial => head_len += part.len(),
            Progress::Complete { value, consumed } => {
                assert!(
                    consumed <= part.len(),
                    "consumed {consumed} of {}",
                    part.len()
                );
                let mut rest = part[consumed..].to_vec();
                for later in &parts[i + 1..] {
                    rest.extend_from_slice(later);
                }
                return Ok(Some((value, head_len + consumed, rest)));
            }
        }
    }
    Ok(None)
}

/// Checks that `bytes` is one complete HTTP response head with `status` and
/// returns its header fields.
fn parse_response(bytes: &[u8], status: u16) -> Vec<(String, Vec<u8>)> {
    let mut storage = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut storage);
    let n = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "response does not parse: {other:?}: {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    assert_eq!(resp.code, Some(status));
    assert_eq!(resp.version, Some(1));
    let headers = resp
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    if status == 101 {
        assert_eq!(n, bytes.len(), "a 101 is a bare head");
    }
    headers
}

fn check_accept(req: &Request, protocol: Option<&str>) {
    let out = req.accept(protocol);
    let headers = parse_response(&out, 101);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected = vec!["upgrade", "connection", "sec-websocket-accept"];
    if protocol.is_some() {
        expected.push("sec-websocket-protocol");
    }
    assert_eq!(names, expected, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(headers[2].1, accept_key(&req.key).into_bytes());
    if let Some(p) = protocol {
        assert_eq!(headers[3].1, p.as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    // Every split point is reachable for streams under 256 bytes.
    let split = selector as usize * (stream.len() + 1) / 256;
    let (a, b) = stream.split_at(split);

    let whole = feed(&[stream]);
    let pieces = feed(&[a, b]);
    assert_eq!(whole, pieces, "split at {split}");
    // Byte by byte too, for short streams.
    if stream.len() <= 512 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(feed(&bytes), whole, "byte by byte");
    }

    match whole {
        Ok(Some((req, head_len, rest))) => {
            assert!(head_len <= LIMITS.max_header_bytes);
            assert_eq!(
                &stream[head_len..],
                &rest[..],
                "bytes after the head are preserved"
            );
            let head = &stream[..head_len];
            assert!(head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"));
            assert!(req.headers.len() <= LIMITS.max_headers);
            assert!(req.target.starts_with(req.path()));
            check_accept(&req, None);
            if let Some(p) = req.protocols.first() {
                assert_eq!(req.select_protocol(&[p.as_str()]), Some(p.as_str()));
                check_accept(&req, Some(p));
            }
        }
        Ok(None) => {
            assert!(stream.len() < LIMITS.max_header_bytes);
        }
        Err(e) => {
            let resp = e.response();
            parse_response(&resp, e.status());
            assert!(matches!(e.status(), 400 | 426 | 431));
        }
    }
});
