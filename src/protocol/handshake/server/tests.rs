use super::*;

const GOOD: &str = "GET /chat?channel=news HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn parse(text: &str) -> Result<Request, RequestError> {
    let mut p = RequestParser::new(HandshakeLimits::default());
    match p.feed(text.as_bytes())? {
        Progress::Complete { value, .. } => Ok(value),
        Progress::Partial => panic!("partial"),
    }
}

fn with(header_line_from: &str, to: &str) -> String {
    assert!(GOOD.contains(header_line_from), "{header_line_from}");
    GOOD.replace(header_line_from, to)
}

/// RFC 6455 §4.2.1 / §4.2.2: the RFC's sample request is accepted and the
/// 101 carries the accept value, Upgrade, Connection and the chosen protocol.
#[test]
fn rfc6455_4_2_2_accepts_the_sample_request() {
    let req = parse(GOOD).unwrap();
    assert_eq!(req.path(), "/chat");
    assert_eq!(req.query(), Some("channel=news"));
    assert_eq!(req.host, "server.example.com");
    assert_eq!(req.origin.as_deref(), Some("http://example.com"));
    assert_eq!(req.protocols, ["chat", "superchat"]);
    let proto = req.select_protocol(&["superchat", "chat"]);
    assert_eq!(proto, Some("chat"), "client order wins");
    let resp = String::from_utf8(req.accept(proto)).unwrap();
    assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(resp.contains("\r\nUpgrade: websocket\r\n"));
    assert!(resp.contains("\r\nConnection: Upgrade\r\n"));
    assert!(resp.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(resp.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
    assert!(resp.ends_with("\r\n\r\n"));
}

#[test]
fn rfc6455_4_2_2_never_selects_an_unoffered_protocol() {
    let req = parse(GOOD).unwrap();
    assert_eq!(req.select_protocol(&["mqtt"]), None);
    let resp = String::from_utf8(req.accept(Some("mqtt"))).unwrap();
    assert!(!resp.contains("Sec-WebSocket-Protocol"));
}

#[test]
fn seed_vector_in_a_full_response() {
    let text = with("dGhlIHNhbXBsZSBub25jZQ==", "bmxxAd1YiaYzLLnDb9pAEg==");
    let resp = String::from_utf8(parse(&text).unwrap().accept(None)).unwrap();
    assert!(resp.contains("Sec-WebSocket-Accept: sk85MqSFg1CGhAYRlSvctpzSALA=\r\n"));
}

/// `Connection` and `Upgrade` are token lists, compared case-insensitively.
#[test]
fn rfc6455_4_2_1_connection_is_a_token_list() {
    let text = with("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    assert!(parse(&text).is_ok());
    let text = with("Upgrade: websocket", "Upgrade: WebSocket");
    assert!(parse(&text).is_ok());
    let text = with("Connection: Upgrade", "Connection: keep-alive");
    assert_eq!(parse(&text), Err(RequestError::MissingConnectionUpgrade));
}

#[test]
fn rfc6455_4_1_method_version_and_host() {
    let text = with("GET /chat", "POST /chat");
    assert_eq!(parse(&text), Err(RequestError::MethodNotGet("POST".into())));
    let text = with("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost");
    assert_eq!(parse(&text), Err(RequestError::NotHttp11));
    let text = with("Host: server.example.com\r\n", "");
    assert_eq!(parse(&text), Err(RequestError::BadHost));
    let text = with("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n");
    assert_eq!(parse(&text), Err(RequestError::BadHost));
}

/// §4.2.2: an unsupported version is answered 426 with the version we speak.
#[test]
fn rfc6455_4_4_wrong_version_gets_426() {
    let text = with("Version: 13", "Version: 8");
    let err = parse(&text).unwrap_err();
    assert_eq!(err, RequestError::UnsupportedVersion(Some("8".into())));
    assert_eq!(err.status(), 426);
    let resp = String::from_utf8(err.response()).unwrap();
    assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(resp.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    let text = with("Sec-WebSocket-Version: 13\r\n", "");
    assert_eq!(parse(&text).unwrap_err().status(), 426);
}

/// §4.2.1 item 5: the key is base64 of exactly 16 bytes, given once.
#[test]
fn rfc6455_4_2_1_key_must_be_16_bytes_of_base64() {
    for bad in [
        "",
        "abc",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZSE=",
        "!!!!!!!!!!!!!!!!!!!!!!!!",
    ] {
        let text = with("dGhlIHNhbXBsZSBub25jZQ==", bad);
        let err = parse(&text).unwrap_err();
        assert_eq!(err, RequestError::BadKey, "{bad:?}");
        assert_eq!(err.status(), 400);
    }
    let text = with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert_eq!(parse(&text), Err(RequestError::BadKey));
    let dup = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let text = with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", dup);
    assert_eq!(parse(&text), Err(RequestError::BadKey));
}

#[test]
fn plain_http_is_reported_as_such() {
    let err = parse("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
    assert_eq!(
        err,
        RequestError::NotWebSocket {
            method: "GET".into(),
            path: "/index.html".into()
        }
    );
    let err = parse("POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").unwrap_err();
    assert!(matches!(err, RequestError::NotWebSocket { .. }));
}

#[test]
fn garbage_is_a_400_with_a_reason() {
    let err = parse("\x16\x03\x01\x02\x00\x01\r\n\r\n").unwrap_err();
    assert!(matches!(err, RequestError::Malformed(_)), "{err:?}");
    let resp = String::from_utf8(err.response()).unwrap();
    assert!(resp.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    assert!(resp.contains("malformed HTTP request"));
}

#[test]
fn header_limits_are_enforced() {
    let limits = HandshakeLimits {
        max_header_bytes: 256,
        max_headers: 4,
    };
    let mut p = RequestParser::new(limits);
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(1 << 20));
    let err = p.feed(huge.as_bytes()).unwrap_err();
    assert_eq!(err.status(), 431);
    let mut p = RequestParser::new(limits);
    assert_eq!(
        p.feed(GOOD.as_bytes()),
        Err(RequestError::TooManyHeaders { limit: 4 })
    );
}

/// Bytes after the head (the client's first frame) are not lost, whatever
/// the split; a partial head consumes everything and asks for more.
#[test]
fn first_frame_after_the_head_is_kept_at_every_split() {
    let mut stream = GOOD.as_bytes().to_vec();
    stream.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    for split in 0..=stream.len() {
        let mut p = RequestParser::new(HandshakeLimits::default());
        let (a, b) = stream.split_at(split);
        let rest = match p.feed(a).unwrap() {
            Progress::Complete { consumed, .. } => [&a[consumed..], b].concat(),
            Progress::Partial => match p.feed(b).unwrap() {
                Progress::Complete { consumed, .. } => b[consumed..].to_vec(),
                Progress::Partial => panic!("incomplete at split {split}"),
            },
        };
        assert_eq!(rest, [0x81, 0x80, 1, 2, 3, 4], "split {split}");
    }
}
