//! The client side of the opening handshake (RFC 6455 §4.1).

use base64::Engine;

use super::head::HeadBuffer;
use super::{Progress, accept_key, has_token, header_list, header_str, owned_headers};
use crate::protocol::deflate::{DeflateParams, client_offer, negotiation};
use crate::protocol::limits::HandshakeLimits;

/// Why a server's reply was refused (RFC 6455 §4.1, "the client MUST _Fail
/// the WebSocket Connection_").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The head is larger than the configured limit.
    HeadTooLarge,
    /// More header fields than the configured limit.
    TooManyHeaders,
    /// Not parseable as an HTTP response.
    Malformed(String),
    /// The status is not 101.
    Status(u16),
    /// `Upgrade` lacks `websocket`.
    MissingUpgrade,
    /// `Connection` lacks `Upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing or wrong.
    BadAccept,
    /// The server chose a subprotocol the client did not offer.
    UnexpectedProtocol(String),
    /// The server accepted an extension the client did not offer.
    UnexpectedExtension(String),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::HeadTooLarge => write!(f, "response header too large"),
            ResponseError::TooManyHeaders => write!(f, "too many response header fields"),
            ResponseError::Malformed(why) => write!(f, "malformed HTTP response: {why}"),
            ResponseError::Status(s) => write!(f, "server answered {s}, not 101"),
            ResponseError::MissingUpgrade => write!(f, "Upgrade header lacks websocket"),
            ResponseError::MissingConnectionUpgrade => {
                write!(f, "Connection header lacks Upgrade")
            }
            ResponseError::BadAccept => write!(f, "Sec-WebSocket-Accept is missing or wrong"),
            ResponseError::UnexpectedProtocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which was not offered")
            }
            ResponseError::UnexpectedExtension(e) => {
                write!(f, "server accepted extension {e:?}, which was not offered")
            }
        }
    }
}

impl std::error::Error for ResponseError {}

/// A successful `101` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// permessage-deflate parameters, if the server accepted our offer.
    pub deflate: Option<DeflateParams>,
    /// Every header field, in order.
    pub headers: Vec<(String, String)>,
}

/// What a client asks for.
#[derive(Clone, Debug, Default)]
pub struct ClientRequest {
    /// `Host` header value (`host:port`).
    pub host: String,
    /// Request target (`/path?query`).
    pub target: String,
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// `Origin` to send, if any.
    pub origin: Option<String>,
    /// Offer permessage-deflate (RFC 7692).
    pub deflate: bool,
}

/// A client's handshake in progress: the request it sent and the state to
/// check the reply.
#[derive(Debug)]
pub struct ClientHandshake {
    expected_accept: String,
    protocols: Vec<String>,
    offered_deflate: bool,
    head: HeadBuffer,
    max_headers: usize,
}

impl ClientHandshake {
    /// Starts a handshake with a fresh random 16-byte key (§4.1 item 7);
    /// returns the state and the request bytes to send.
    pub fn new(request: &ClientRequest, limits: HandshakeLimits) -> (Self, Vec<u8>) {
        let nonce: [u8; 16] = rand::random();
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        Self::with_key(request, &key, limits)
    }

    /// As [`ClientHandshake::new`] with a given key (for tests).
    pub fn with_key(
        request: &ClientRequest,
        key: &str,
        limits: HandshakeLimits,
    ) -> (Self, Vec<u8>) {
        let mut out = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            request.target, request.host
        );
        if !request.protocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                request.protocols.join(", ")
            ));
        }
        if let Some(origin) = &request.origin {
            out.push_str(&format!("Origin: {origin}\r\n"));
        }
        if request.deflate {
            out.push_str(&format!("Sec-WebSocket-Extensions: {}\r\n", client_offer()));
        }
        out.push_str("\r\n");
        let hs = ClientHandshake {
            expected_accept: accept_key(key),
            protocols: request.protocols.clone(),
            offered_deflate: request.deflate,
            head: HeadBuffer::new(limits.max_header_bytes),
            max_headers: limits.max_headers,
        };
        (hs, out.into_bytes())
    }

    /// Feeds bytes of the server's reply. On `Complete`, bytes after
    /// `consumed` are the server's first frames.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress<Response>, ResponseError> {
        let consumed = match self.head.push(input) {
            Err(_) => return Err(ResponseError::HeadTooLarge),
            Ok(None) => return Ok(Progress::Partial),
            Ok(Some(n)) => n,
        };
        let value = self.check(self.head.bytes())?;
        Ok(Progress::Complete { value, consumed })
    }

    /// Checks the reply (§4.1, the numbered list after "the client MUST
    /// validate the server's response").
    fn check(&self, bytes: &[u8]) -> Result<Response, ResponseError> {
        let mut storage = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut resp = httparse::Response::new(&mut storage);
        match resp.parse(bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(ResponseError::Malformed("incomplete response head".into()));
            }
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
            Err(e) => return Err(ResponseError::Malformed(e.to_string())),
        }
        let status = resp.code.unwrap_or(0);
        if status != 101 {
            return Err(ResponseError::Status(status));
        }
        let headers = resp.headers;
        if !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade") && has_token(h.value, "websocket"))
        {
            return Err(ResponseError::MissingUpgrade);
        }
        if !headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("connection") && has_token(h.value, "upgrade"))
        {
            return Err(ResponseError::MissingConnectionUpgrade);
        }
        if header_str(headers, "sec-websocket-accept").map(str::trim)
            != Some(self.expected_accept.as_str())
        {
            return Err(ResponseError::BadAccept);
        }
        // Only what we offered may be accepted (RFC 6455 §4.1, RFC 7692 §7.1).
        let extensions = header_list(headers, "sec-websocket-extensions");
        let deflate = if self.offered_deflate {
            negotiation::accept_response(&extensions).map_err(|e| {
                ResponseError::UnexpectedExtension(format!("{}: {}", extensions.join(", "), e.0))
            })?
        } else if let Some(ext) = extensions.into_iter().next() {
            return Err(ResponseError::UnexpectedExtension(ext));
        } else {
            None
        };
        let chosen = header_list(headers, "sec-websocket-protocol");
        let protocol = match chosen.as_slice() {
            [] => None,
            [p] if self.protocols.contains(p) => Some(p.clone()),
            _ => return Err(ResponseError::UnexpectedProtocol(chosen.join(", "))),
        };
        Ok(Response {
            protocol,
            deflate,
            headers: owned_headers(headers),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::server::{Request, RequestParser};
    use super::*;

    fn request() -> ClientRequest {
        ClientRequest {
            host: "127.0.0.1:8124".into(),
            target: "/?channel=a".into(),
            protocols: vec!["chat".into()],
            origin: None,
            deflate: false,
        }
    }

    /// The client's request passes our own server's checks, and the server's
    /// reply passes the client's: the two sides agree (§4.1, §4.2).
    #[test]
    fn rfc6455_4_1_client_and_server_agree() {
        let (mut hs, req) = ClientHandshake::new(&request(), HandshakeLimits::default());
        let mut parser = RequestParser::new(HandshakeLimits::default());
        let Progress::Complete { value: r, .. } = parser.feed(&req).unwrap() else {
            panic!("partial")
        };
        let r: Request = r;
        assert_eq!(r.target, "/?channel=a");
        let reply = r.accept(r.select_protocol(&["chat"]));
        let Progress::Complete { value, consumed } = hs.feed(&reply).unwrap() else {
            panic!("partial")
        };
        assert_eq!(consumed, reply.len());
        assert_eq!(value.protocol.as_deref(), Some("chat"));
    }

    #[test]
    fn rfc6455_4_1_key_is_random_16_bytes() {
        let (_, a) = ClientHandshake::new(&request(), HandshakeLimits::default());
        let (_, b) = ClientHandshake::new(&request(), HandshakeLimits::default());
        assert_ne!(a, b);
        let text = String::from_utf8(a).unwrap();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(raw.len(), 16);
    }

    fn reply_check(reply: &str) -> Result<Progress<Response>, ResponseError> {
        let (mut hs, _) = ClientHandshake::with_key(
            &request(),
            "bmxxAd1YiaYzLLnDb9pAEg==",
            HandshakeLimits::default(),
        );
        hs.feed(reply.as_bytes())
    }

    const OK: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: sk85MqSFg1CGhAYRlSvctpzSALA=\r\n\r\n";

    #[test]
    fn rfc6455_4_1_reply_checks() {
        assert!(matches!(reply_check(OK), Ok(Progress::Complete { .. })));
        assert_eq!(
            reply_check(&OK.replace("101 Switching Protocols", "200 OK")),
            Err(ResponseError::Status(200))
        );
        assert_eq!(
            reply_check(&OK.replace("sk85", "xx85")),
            Err(ResponseError::BadAccept)
        );
        assert_eq!(
            reply_check(&OK.replace("Upgrade: websocket\r\n", "")),
            Err(ResponseError::MissingUpgrade)
        );
        assert_eq!(
            reply_check(&OK.replace("Connection: Upgrade\r\n", "Connection: close\r\n")),
            Err(ResponseError::MissingConnectionUpgrade)
        );
        let with_proto = OK.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n");
        assert_eq!(
            reply_check(&with_proto),
            Err(ResponseError::UnexpectedProtocol("mqtt".into()))
        );
        let with_ext = OK.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        assert_eq!(
            reply_check(&with_ext),
            Err(ResponseError::UnexpectedExtension(
                "permessage-deflate".into()
            ))
        );
    }

    /// RFC 6455 §4.1 (reply check 4): a reply without `Sec-WebSocket-Accept`
    /// fails the connection.
    #[test]
    fn rfc6455_4_1_missing_accept_is_bad_accept() {
        let reply = OK.replace("Sec-WebSocket-Accept: sk85MqSFg1CGhAYRlSvctpzSALA=\r\n", "");
        assert!(!reply.contains("Accept"));
        assert_eq!(reply_check(&reply), Err(ResponseError::BadAccept));
        // An empty value is no better.
        let reply = OK.replace("sk85MqSFg1CGhAYRlSvctpzSALA=", "");
        assert_eq!(reply_check(&reply), Err(ResponseError::BadAccept));
    }

    /// RFC 6455 §4.1 (reply check 6): the server may name at most one
    /// subprotocol; naming two fails, even when both were offered.
    #[test]
    fn rfc6455_4_1_two_subprotocols_are_unexpected() {
        let offer = ClientRequest {
            protocols: vec!["chat".into(), "superchat".into()],
            ..request()
        };
        let check = |reply: &str| {
            let (mut hs, _) = ClientHandshake::with_key(
                &offer,
                "bmxxAd1YiaYzLLnDb9pAEg==",
                HandshakeLimits::default(),
            );
            hs.feed(reply.as_bytes())
        };
        let one = OK.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: superchat\r\n\r\n");
        let Ok(Progress::Complete { value, .. }) = check(&one) else {
            panic!("one offered protocol is fine")
        };
        assert_eq!(value.protocol.as_deref(), Some("superchat"));
        let two = OK.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n",
        );
        assert_eq!(
            check(&two),
            Err(ResponseError::UnexpectedProtocol("chat, superchat".into()))
        );
        let two_fields = OK.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
        );
        assert_eq!(
            check(&two_fields),
            Err(ResponseError::UnexpectedProtocol("chat, chat".into()))
        );
    }

    /// RFC 6455 §10.4 (implementation limits), client side: a reply head over
    /// `max_header_bytes` is HeadTooLarge, whole or in pieces, and more than
    /// `max_headers` fields is TooManyHeaders (exactly the limit passes).
    #[test]
    fn rfc6455_10_4_client_head_and_field_limits() {
        let huge = OK.replace(
            "\r\n\r\n",
            &format!("\r\nX-Pad: {}\r\n\r\n", "a".repeat(1_000_000)),
        );
        assert_eq!(reply_check(&huge), Err(ResponseError::HeadTooLarge));
        let (mut hs, _) = ClientHandshake::with_key(
            &request(),
            "bmxxAd1YiaYzLLnDb9pAEg==",
            HandshakeLimits::default(),
        );
        let mut result = Ok(Progress::Partial);
        for chunk in huge.as_bytes().chunks(4096) {
            result = hs.feed(chunk);
            if result != Ok(Progress::Partial) {
                break;
            }
        }
        assert_eq!(result, Err(ResponseError::HeadTooLarge));

        let limits = HandshakeLimits {
            max_headers: 4,
            ..HandshakeLimits::default()
        };
        let check = |reply: &str| {
            let (mut hs, _) =
                ClientHandshake::with_key(&request(), "bmxxAd1YiaYzLLnDb9pAEg==", limits);
            hs.feed(reply.as_bytes())
        };
        let four = OK.replace("\r\n\r\n", "\r\nServer: x\r\n\r\n");
        assert!(matches!(check(&four), Ok(Progress::Complete { .. })));
        let five = OK.replace("\r\n\r\n", "\r\nServer: x\r\nDate: y\r\n\r\n");
        assert_eq!(check(&five), Err(ResponseError::TooManyHeaders));
    }
}
