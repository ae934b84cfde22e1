//! The opening handshake (RFC 6455 §4): the server side parses a request and
//! builds the 101/400/426 replies; the client side builds a request and
//! checks the reply. Both read the HTTP head incrementally through
//! [`HeadBuffer`], so a request that trickles in costs linear CPU.

pub mod client;
mod head;
pub mod server;
mod tokens;

use base64::Engine;
use sha1::{Digest, Sha1};

pub use head::HeadBuffer;
pub use tokens::{has_token, split_list};

/// The GUID appended to the key before hashing (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID))
/// (RFC 6455 §4.2.2 step 5.4).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The result of feeding bytes to an incremental parser.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress<T> {
    /// More bytes are needed; everything given was consumed.
    Partial,
    /// Parsing finished. Bytes of the input after `consumed` belong to the
    /// next protocol layer (the peer's first frames) and must not be lost.
    Complete {
        /// What was parsed.
        value: T,
        /// How many bytes of the last input belonged to the handshake.
        consumed: usize,
    },
}

/// Finds a header by name (ASCII case-insensitive) and returns its value as
/// text, if it is valid UTF-8.
fn header_str<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// How many times a header occurs.
fn header_count(headers: &[httparse::Header<'_>], name: &str) -> usize {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .count()
}

/// Every value of a comma-separated list header, across repeated fields
/// (RFC 7230 §3.2.2 allows either form).
fn header_list(headers: &[httparse::Header<'_>], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(split_list)
        .map(str::to_owned)
        .collect()
}

/// Copies every header as (name, value) text, values decoded lossily.
fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3 / §4.2.2: the known vector.
    #[test]
    fn rfc6455_4_2_2_accept_key_vector() {
        assert_eq!(
            accept_key("bmxxAd1YiaYzLLnDb9pAEg=="),
            "sk85MqSFg1CGhAYRlSvctpzSALA="
        );
        // And the RFC's own example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
