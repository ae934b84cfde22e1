//! Ingresses turn outside messages into publishes. Every source's framing
//! is documented in docs/ingress.md.

pub mod udp;
pub mod unix;

use crate::protocol::MessageKind;

/// Valid UTF-8 goes out as text, anything else as binary.
pub fn kind_of(payload: &[u8]) -> MessageKind {
    if std::str::from_utf8(payload).is_ok() {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

/// Strips one trailing `\n` or `\r\n` (what `echo` and `nc` add).
pub fn strip_newline(payload: &[u8]) -> &[u8] {
    payload
        .strip_suffix(b"\n")
        .map(|p| p.strip_suffix(b"\r").unwrap_or(p))
        .unwrap_or(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_helpers() {
        assert_eq!(strip_newline(b"hi\n"), b"hi");
        assert_eq!(strip_newline(b"hi\r\n"), b"hi");
        assert_eq!(strip_newline(b"hi\n\n"), b"hi\n");
        assert_eq!(strip_newline(b"hi"), b"hi");
        assert_eq!(strip_newline(b"\r"), b"\r");
        assert_eq!(kind_of("héllo".as_bytes()), MessageKind::Text);
        assert_eq!(kind_of(b"\xff"), MessageKind::Binary);
    }
}
