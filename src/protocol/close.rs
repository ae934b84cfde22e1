//! Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).

use super::error::ProtocolError;

/// A WebSocket close status code (RFC 6455 §7.4).
///
/// A newtype over `u16` rather than an enum: the registry is open-ended
/// (3000–4999 belong to libraries and applications), so a catch-all variant
/// would hide mistakes. The named constants cover the codes this crate sends
/// or reasons about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame (never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: payload data inconsistent with the message type (bad UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a policy was violated.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message or frame is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (temporary overload).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1015: TLS handshake failure (never sent).
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame on the wire.
    ///
    /// RFC 6455 §7.4.1 and §7.4.2 with the IANA registry: 1000–1003 and
    /// 1007–1014 are defined for use, 3000–4999 are for libraries and
    /// applications. 1004 is reserved, 1005/1006/1015 must never be sent,
    /// 0–999 are unused and 1016–2999 are reserved for future RFCs, so a peer
    /// sending any of those is a protocol error.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The longest close reason that fits a control frame: 125 bytes of payload
/// minus the 2-byte code (RFC 6455 §5.5).
pub const MAX_REASON_BYTES: usize = 123;

/// A decoded close frame payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, or `None` for an empty payload (reported as 1005).
    pub code: Option<CloseCode>,
    /// The UTF-8 reason (possibly empty).
    pub reason: String,
}

/// Parses a close frame payload (RFC 6455 §5.5.1).
///
/// Empty is allowed; one byte is a protocol error (a code is two bytes); a
/// code must be valid on the wire (§7.4); the reason must be UTF-8 (§5.5.1:
/// "the data is not guaranteed to be human readable" but it is UTF-8, and an
/// invalid one fails with 1007).
pub fn parse_close_payload(payload: &[u8]) -> Result<CloseFrame, ProtocolError> {
    match payload.len() {
        0 => Ok(CloseFrame {
            code: None,
            reason: String::new(),
        }),
        1 => Err(ProtocolError::CloseTooShort),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(CloseFrame {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

/// Builds a close frame payload: the code, then the reason cut to at most
/// [`MAX_REASON_BYTES`] on a character boundary, so a close frame never
/// exceeds the 125-byte control-frame cap whatever the caller passes.
pub fn close_payload(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §7.4.1/§7.4.2: every code from 0 to 65535 is classified.
    #[test]
    fn rfc6455_7_4_close_code_validity_for_every_u16() {
        for c in 0..=u16::MAX {
            let expected = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(c).is_valid_on_wire(), expected, "code {c}");
        }
        for c in [1004, 1005, 1006, 1015, 0, 999, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode(c).is_valid_on_wire(), "code {c}");
        }
    }

    /// RFC 6455 §5.5.1: empty payload, one byte, code only, code + reason.
    #[test]
    fn rfc6455_5_5_1_close_payload_shapes() {
        assert_eq!(parse_close_payload(&[]).unwrap().code, None);
        assert_eq!(parse_close_payload(&[3]), Err(ProtocolError::CloseTooShort));
        let f = parse_close_payload(&[0x03, 0xe8]).unwrap();
        assert_eq!(f.code, Some(CloseCode::NORMAL));
        let f = parse_close_payload(b"\x0f\xa0bye").unwrap();
        assert_eq!(f.code, Some(CloseCode(4000)));
        assert_eq!(f.reason, "bye");
        assert_eq!(
            parse_close_payload(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_close_payload(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidCloseReason)
        );
    }

    #[test]
    fn close_reason_is_bounded_on_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let p = close_payload(CloseCode::NORMAL, &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        assert_eq!(p.len(), 2 + 122);
    }
}
