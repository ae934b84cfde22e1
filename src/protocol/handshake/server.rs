//! The server side of the opening handshake (RFC 6455 §4.2).

use base64::Engine;

use super::head::HeadBuffer;
use super::{
    Progress, accept_key, has_token, header_count, header_list, header_str, owned_headers,
};
use crate::protocol::limits::HandshakeLimits;

/// Why a request was refused. Each variant knows its HTTP status
/// ([`RequestError::status`]) and a short reason for the response body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The head is larger than the configured limit.
    HeadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// More header fields than the configured limit.
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// Not parseable as HTTP.
    Malformed(String),
    /// A well-formed HTTP request that does not ask for a WebSocket upgrade.
    /// The protocol answers 400; a server may answer it as plain HTTP
    /// instead (wsbroadcaster answers 404).
    NotWebSocket {
        /// The request method.
        method: String,
        /// The request target.
        path: String,
    },
    /// An upgrade request whose method is not GET (§4.1).
    MethodNotGet(String),
    /// An upgrade request that is not HTTP/1.1 or later (§4.1).
    NotHttp11,
    /// No `Host`, or more than one (§4.1 item 4).
    BadHost,
    /// `Connection` lacks the `Upgrade` token (§4.2.1 item 4).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13 (§4.2.2): 426.
    UnsupportedVersion(Option<String>),
    /// `Sec-WebSocket-Version` appears more than once: 426 as well, so the
    /// client learns the one version we speak.
    DuplicateVersion,
    /// `Sec-WebSocket-Key` is missing, repeated or not base64 of 16 bytes
    /// (§4.2.1 item 5).
    BadKey,
}

impl RequestError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::HeadTooLarge { .. } | RequestError::TooManyHeaders { .. } => 431,
            RequestError::UnsupportedVersion(_) | RequestError::DuplicateVersion => 426,
            RequestError::Malformed(_)
            | RequestError::NotWebSocket { .. }
            | RequestError::MethodNotGet(_)
            | RequestError::NotHttp11
            | RequestError::BadHost
            | RequestError::MissingConnectionUpgrade
            | RequestError::BadKey => 400,
        }
    }

    /// The complete HTTP response refusing the request, with the reason as a
    /// plain-text body and, for 426, the version we speak (§4.4).
    pub fn response(&self) -> Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            RequestError::UnsupportedVersion(_) | RequestError::DuplicateVersion => {
                &[("Sec-WebSocket-Version", "13")]
            }
            _ => &[],
        };
        http_response(self.status(), extra, &format!("{self}\n"))
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::HeadTooLarge { limit } => {
                write!(f, "request header larger than {limit} bytes")
            }
            RequestError::TooManyHeaders { limit } => {
                write!(f, "more than {limit} request header fields")
            }
            RequestError::Malformed(why) => write!(f, "malformed HTTP request: {why}"),
            RequestError::NotWebSocket { .. } => write!(f, "not a WebSocket upgrade request"),
            RequestError::MethodNotGet(m) => write!(f, "method {m} is not GET"),
            RequestError::NotHttp11 => write!(f, "HTTP/1.1 is required"),
            RequestError::BadHost => write!(f, "exactly one Host header is required"),
            RequestError::MissingConnectionUpgrade => {
                write!(f, "Connection header must contain the Upgrade token")
            }
            RequestError::UnsupportedVersion(Some(v)) => {
                write!(
                    f,
                    "unsupported Sec-WebSocket-Version {v:?}: only 13 is supported"
                )
            }
            RequestError::DuplicateVersion => {
                write!(f, "Sec-WebSocket-Version must be given once (13)")
            }
            RequestError::UnsupportedVersion(None) => {
                write!(f, "missing Sec-WebSocket-Version: 13 is required")
            }
            RequestError::BadKey => {
                write!(f, "Sec-WebSocket-Key must be one base64 value of 16 bytes")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A valid WebSocket upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request target: path and query (`/?channel=news`).
    pub target: String,
    /// The `Host` header.
    pub host: String,
    /// The `Origin` header, sent by browsers (§4.2.1 item 7, §10.2).
    pub origin: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// Subprotocols the client offered, in its order of preference.
    pub protocols: Vec<String>,
    /// Extension offers, one string each (`permessage-deflate; ...`).
    pub extensions: Vec<String>,
    /// Every header field, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first subprotocol the client offered that `supported` contains.
    pub fn select_protocol<'a>(&'a self, supported: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(String::as_str)
            .find(|p| supported.contains(p))
    }

    /// The `101 Switching Protocols` response (§4.2.2 step 5). `protocol`
    /// must be one the client offered (see [`Request::select_protocol`]); an
    /// unoffered one is left out rather than sent, as §4.2.2 forbids it.
    pub fn accept(&self, protocol: Option<&str>) -> Vec<u8> {
        self.accept_with(protocol, None)
    }

    /// [`Request::accept`] with a `Sec-WebSocket-Extensions` value, the
    /// answer of a successful negotiation (e.g.
    /// [`negotiate`](crate::protocol::deflate::negotiate)).
    pub fn accept_with(&self, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
        let mut out = String::with_capacity(160);
        out.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        out.push_str(&accept_key(&self.key));
        out.push_str("\r\n");
        if let Some(p) = protocol.filter(|p| self.protocols.iter().any(|o| o == p)) {
            out.push_str("Sec-WebSocket-Protocol: ");
            out.push_str(p);
            out.push_str("\r\n");
        }
        if let Some(e) = extensions {
            out.push_str("Sec-WebSocket-Extensions: ");
            out.push_str(e);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// The longest request method we wait for before refusing (`OPTIONS` is 7).
const MAX_METHOD_LEN: usize = 16;

/// Whether `b` may appear in an HTTP method (a `tchar`, RFC 7230 §3.2.6).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses an upgrade request incrementally.
#[derive(Debug)]
pub struct RequestParser {
    head: HeadBuffer,
    limits: HandshakeLimits,
    /// Bytes of the method seen so far, or `None` once its space arrived.
    /// Checking the method as it arrives refuses a TLS ClientHello or binary
    /// garbage at once instead of waiting for a header end that never comes.
    method_len: Option<usize>,
}

impl RequestParser {
    /// A parser with the given limits.
    pub fn new(limits: HandshakeLimits) -> Self {
        RequestParser {
            head: HeadBuffer::new(limits.max_header_bytes),
            limits,
            method_len: Some(0),
        }
    }

    /// Checks the method bytes in `input` (each byte is looked at once).
    fn check_method(&mut self, input: &[u8]) -> Result<(), RequestError> {
        let Some(mut len) = self.method_len else {
            return Ok(());
        };
        for &b in input {
            if b == b' ' && len > 0 {
                self.method_len = None;
                return Ok(());
            }
            // RFC 7230 §3.5: ignore at least one empty line before the request line.
            if len == 0 && (b == b'\r' || b == b'\n') {
                continue;
            }
            if !is_tchar(b) || len >= MAX_METHOD_LEN {
                return Err(RequestError::Malformed(
                    "not an HTTP request (bad request method)".into(),
                ));
            }
            len += 1;
        }
        self.method_len = Some(len);
        Ok(())
    }

    /// Feeds received bytes. On `Complete`, bytes after `consumed` are the
    /// client's first frames.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress<Request>, RequestError> {
        let room = self.head.room();
        let pushed = self.head.push(input);
        // Check the method only in the bytes the head took, so the outcome
        // does not depend on how the input was split into reads.
        let taken = match pushed {
            Ok(Some(n)) => n,
            Ok(None) => input.len(),
            Err(_) => room.min(input.len()),
        };
        self.check_method(&input[..taken])?;
        let consumed = match pushed {
            Err(_) => {
                return Err(RequestError::HeadTooLarge {
                    limit: self.limits.max_header_bytes,
                });
            }
            Ok(None) => return Ok(Progress::Partial),
            Ok(Some(n)) => n,
        };
        let value = parse_request(self.head.bytes(), self.limits.max_headers)?;
        Ok(Progress::Complete { value, consumed })
    }
}

/// Validates a complete request head (RFC 6455 §4.2.1).
fn parse_request(bytes: &[u8], max_headers: usize) -> Result<Request, RequestError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(RequestError::Malformed("incomplete request head".into()));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders { limit: max_headers });
        }
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    }
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let headers = req.headers;
    let upgrade = headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade") && has_token(h.value, "websocket"));
    if !upgrade {
        return Err(RequestError::NotWebSocket {
            method: method.to_owned(),
            path: target.to_owned(),
        });
    }
    if method != "GET" {
        return Err(RequestError::MethodNotGet(method.to_owned()));
    }
    if req.version != Some(1) {
        return Err(RequestError::NotHttp11);
    }
    let host = match (header_count(headers, "host"), header_str(headers, "host")) {
        (1, Some(h)) if !h.trim().is_empty() => h.trim().to_owned(),
        _ => return Err(RequestError::BadHost),
    };
    let connection_upgrade = headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("connection") && has_token(h.value, "upgrade"));
    if !connection_upgrade {
        return Err(RequestError::MissingConnectionUpgrade);
    }
    if header_count(headers, "sec-websocket-version") > 1 {
        return Err(RequestError::DuplicateVersion);
    }
    let version = header_str(headers, "sec-websocket-version").map(str::trim);
    if version != Some("13") {
        return Err(RequestError::UnsupportedVersion(version.map(str::to_owned)));
    }
    let key = match (
        header_count(headers, "sec-websocket-key"),
        header_str(headers, "sec-websocket-key"),
    ) {
        (1, Some(k)) => k.trim(),
        _ => return Err(RequestError::BadKey),
    };
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(RequestError::BadKey),
    }
    Ok(Request {
        target: target.to_owned(),
        host,
        origin: header_str(headers, "origin").map(|o| o.trim().to_owned()),
        key: key.to_owned(),
        protocols: header_list(headers, "sec-websocket-protocol"),
        extensions: header_list(headers, "sec-websocket-extensions"),
        headers: owned_headers(headers),
    })
}

/// The standard reason phrase for the statuses this crate sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A complete `Connection: close` HTTP/1.1 response with a plain-text body.
pub fn http_response(status: u16, extra_headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra_headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests;
