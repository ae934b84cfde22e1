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

/// RFC 6455 §4.2.1 item 2 (§4.1 item 4): an empty `Host` is refused with 400.
#[test]
fn rfc6455_4_2_1_empty_host_is_refused() {
    for empty in ["Host:\r\n", "Host: \r\n", "Host: \t \r\n"] {
        let text = with("Host: server.example.com\r\n", empty);
        let err = parse(&text).unwrap_err();
        assert_eq!(err, RequestError::BadHost, "{empty:?}");
        assert_eq!(err.status(), 400);
    }
}

/// RFC 6455 §4.2.1 items 3–4 (RFC 7230 §3.2.2): the `Upgrade` and
/// `Connection` tokens may sit in a second field of the same name.
#[test]
fn rfc6455_4_2_1_tokens_split_across_repeated_fields() {
    let text = with(
        "Connection: Upgrade\r\n",
        "Connection: keep-alive\r\nConnection: Upgrade\r\n",
    );
    assert!(parse(&text).is_ok(), "{:?}", parse(&text));
    let text = with(
        "Upgrade: websocket\r\n",
        "Upgrade: h2c\r\nUpgrade: websocket\r\n",
    );
    assert!(parse(&text).is_ok(), "{:?}", parse(&text));
    // Neither field has the token: refused.
    let text = with(
        "Connection: Upgrade\r\n",
        "Connection: keep-alive\r\nConnection: close\r\n",
    );
    assert_eq!(parse(&text), Err(RequestError::MissingConnectionUpgrade));
}

/// RFC 6455 §4.2.1 items 8–9 / §9.1: repeated `Sec-WebSocket-Protocol` (and
/// `-Extensions`) fields are merged into one list, in order.
#[test]
fn rfc6455_4_2_1_repeated_protocol_fields_are_merged_in_order() {
    let text = with(
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
        "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: superchat, v2\r\nSec-WebSocket-Extensions: x-a\r\nSec-WebSocket-Extensions: x-b, x-c\r\n",
    );
    let req = parse(&text).unwrap();
    assert_eq!(req.protocols, ["chat", "superchat", "v2"]);
    assert_eq!(req.extensions, ["x-a", "x-b", "x-c"]);
    // The client's order of preference spans the fields.
    assert_eq!(req.select_protocol(&["v2", "superchat"]), Some("superchat"));
}

/// RFC 6455 §10.4 (implementation limits): with `max_headers: N`, exactly N
/// fields are accepted and N + 1 are refused with 431.
#[test]
fn rfc6455_10_4_max_headers_is_exact() {
    let n = GOOD.matches("\r\n").count() - 2; // minus request line and blank line
    assert_eq!(n, 7);
    let limits = HandshakeLimits {
        max_headers: n,
        ..HandshakeLimits::default()
    };
    let mut p = RequestParser::new(limits);
    assert!(matches!(
        p.feed(GOOD.as_bytes()),
        Ok(Progress::Complete { .. })
    ));
    let more = with("Host:", "X-Extra: 1\r\nHost:");
    let mut p = RequestParser::new(limits);
    let err = p.feed(more.as_bytes()).unwrap_err();
    assert_eq!(err, RequestError::TooManyHeaders { limit: n });
    assert_eq!(err.status(), 431);
    assert!(
        String::from_utf8(err.response())
            .unwrap()
            .starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n")
    );
}

/// RFC 6455 §4.2.2 step 5 item 5 / §9.1: we implement no extension, so an
/// offer is recorded but the 101 never carries `Sec-WebSocket-Extensions`.
#[test]
fn rfc6455_4_2_2_no_extension_is_accepted() {
    let text = with(
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    );
    let req = parse(&text).unwrap();
    assert_eq!(
        req.extensions,
        ["permessage-deflate; client_max_window_bits"]
    );
    for proto in [None, Some("chat")] {
        let resp = String::from_utf8(req.accept(proto)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101 "));
        assert!(
            !resp
                .to_ascii_lowercase()
                .contains("sec-websocket-extensions"),
            "{resp}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What a parser made of a byte stream: comparable across feeds.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Partial,
        Complete(Request, Vec<u8>),
        Err(u16, RequestError),
    }

    fn whole(limits: HandshakeLimits, data: &[u8]) -> Outcome {
        match RequestParser::new(limits).feed(data) {
            Ok(Progress::Partial) => Outcome::Partial,
            Ok(Progress::Complete { value, consumed }) => {
                Outcome::Complete(value, data[consumed..].to_vec())
            }
            Err(e) => Outcome::Err(e.status(), e),
        }
    }

    fn split(limits: HandshakeLimits, data: &[u8], at: usize) -> Outcome {
        let (a, b) = data.split_at(at);
        let mut p = RequestParser::new(limits);
        match p.feed(a) {
            Err(e) => Outcome::Err(e.status(), e),
            Ok(Progress::Complete { value, consumed }) => {
                Outcome::Complete(value, [&a[consumed..], b].concat())
            }
            Ok(Progress::Partial) => match p.feed(b) {
                Ok(Progress::Partial) => Outcome::Partial,
                Ok(Progress::Complete { value, consumed }) => {
                    Outcome::Complete(value, b[consumed..].to_vec())
                }
                Err(e) => Outcome::Err(e.status(), e),
            },
        }
    }

    /// Pieces that make plausible (and implausible) request heads, so the
    /// property reaches the validation code, not only the HTTP parser.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"GET / HTTP/1.1\r\n".to_vec()),
            Just(b"Host: h\r\n".to_vec()),
            Just(b"Host:\r\n".to_vec()),
            Just(b"Upgrade: websocket\r\n".to_vec()),
            Just(b"Connection: keep-alive, Upgrade\r\n".to_vec()),
            Just(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".to_vec()),
            Just(b"Sec-WebSocket-Version: 13\r\n".to_vec()),
            Just(b"Sec-WebSocket-Protocol: a, b\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            proptest::collection::vec(piece(), 0..40).prop_map(|p| {
                let mut v = p.concat();
                v.truncate(2000);
                v
            }),
            (
                proptest::collection::vec(any::<u8>(), 0..100),
                any::<bool>()
            )
                .prop_map(|(tail, lf_only)| {
                    let mut v = if lf_only {
                        GOOD.replace("\r\n", "\n").into_bytes()
                    } else {
                        GOOD.as_bytes().to_vec()
                    };
                    v.extend(tail);
                    v
                }),
        ]
    }

    fn limits() -> impl Strategy<Value = HandshakeLimits> {
        prop_oneof![
            Just(HandshakeLimits::default()),
            Just(HandshakeLimits {
                max_header_bytes: 200,
                max_headers: 5,
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Feeding a byte stream whole or split at any point gives the same
        /// outcome (same error and status, or the same request and the same
        /// leftover bytes, or both partial), and never panics.
        #[test]
        fn whole_or_split_gives_the_same_outcome(data in input(), at in any::<prop::sample::Index>(),
                                                 limits in limits()) {
            let at = at.index(data.len() + 1);
            let expected = whole(limits, &data);
            prop_assert_eq!(split(limits, &data, at), expected);
        }
    }
}

/// §4.2.2 / §4.4: a repeated version header is refused with 426 and says why.
#[test]
fn rfc6455_4_4_duplicated_version_gets_426() {
    let text = with(
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n",
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err, RequestError::DuplicateVersion);
    assert_eq!(err.status(), 426);
    let resp = String::from_utf8(err.response()).unwrap();
    assert!(resp.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    assert!(resp.contains("given once"));
}

/// A TLS ClientHello (or any binary garbage) is refused from its first
/// bytes, not after the handshake timeout: no header end would ever come.
#[test]
fn tls_client_hello_is_refused_at_once() {
    let mut p = RequestParser::new(HandshakeLimits::default());
    let err = p.feed(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap_err();
    assert_eq!(err.status(), 400);
    let mut p = RequestParser::new(HandshakeLimits::default());
    assert_eq!(p.feed(b"GE"), Ok(Progress::Partial));
    assert_eq!(p.feed(b"T / HTTP/1.1\r\n"), Ok(Progress::Partial));
    let mut p = RequestParser::new(HandshakeLimits::default());
    assert!(p.feed(b"AVERYLONGMETHODNAMEX").is_err());
    let mut p = RequestParser::new(HandshakeLimits::default());
    assert!(
        p.feed(b"\r\nGET /").is_ok(),
        "a leading empty line is ignored"
    );
}
