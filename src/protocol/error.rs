//! Errors caused by the peer's bytes, each carrying the close code it implies.
//!
//! Misuse by the local caller (sending after close, an oversize ping) is a
//! different type, [`SendError`], so the two can never be confused.

use super::close::CloseCode;

/// The peer broke the protocol (or a configured limit); the connection is
/// failed with [`ProtocolError::close_code`] (RFC 6455 §7.1.7).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1–3 set without an extension that defines them (§5.2).
    ReservedBits(u8),
    /// Opcode 3–7 or 11–15 (§5.2).
    UnknownOpcode(u8),
    /// A control frame whose 7-bit length field is 126 or 127, i.e. uses an
    /// extended length form: control payloads are at most 125 bytes (§5.5).
    ControlFrameTooLong(u8),
    /// A control frame with FIN clear (§5.5: control frames MUST NOT be fragmented).
    FragmentedControlFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    LengthTopBitSet,
    /// A client frame without a mask reaching a server (§5.1).
    UnmaskedClientFrame,
    /// A masked frame reaching a client (§5.1).
    MaskedServerFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (§5.4).
    ExpectedContinuation,
    /// A frame's payload is over the configured frame limit.
    FrameTooBig {
        /// The announced payload length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A message would grow past the configured message limit.
    MessageTooBig {
        /// The configured limit.
        limit: usize,
    },
    /// A message has more fragments than the configured limit.
    TooManyFragments {
        /// The configured limit.
        limit: u32,
    },
    /// A text message is not valid UTF-8 (§8.1), detected as soon as the bad
    /// bytes arrive, or at the end when the message stops inside a code point.
    InvalidUtf8,
    /// A close frame with a 1-byte payload (§5.5.1).
    CloseTooShort,
    /// A close code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8 (§5.5.1).
    InvalidCloseReason,
    /// A compressed message that does not inflate (RFC 7692 §8).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code this error is answered with: the one exhaustive mapping
    /// from peer misbehaviour to close code.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::ReservedBits(_)
            | ProtocolError::UnknownOpcode(_)
            | ProtocolError::ControlFrameTooLong(_)
            | ProtocolError::FragmentedControlFrame
            | ProtocolError::LengthTopBitSet
            | ProtocolError::UnmaskedClientFrame
            | ProtocolError::MaskedServerFrame
            | ProtocolError::UnexpectedContinuation
            | ProtocolError::ExpectedContinuation
            | ProtocolError::CloseTooShort
            | ProtocolError::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
            ProtocolError::FrameTooBig { .. }
            | ProtocolError::MessageTooBig { .. }
            | ProtocolError::TooManyFragments { .. } => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
        }
    }

    /// A stable machine-readable name, also used as the close reason.
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBits(_) => "reserved_bits",
            ProtocolError::UnknownOpcode(_) => "unknown_opcode",
            ProtocolError::ControlFrameTooLong(_) => "control_frame_too_long",
            ProtocolError::FragmentedControlFrame => "fragmented_control_frame",
            ProtocolError::LengthTopBitSet => "length_top_bit_set",
            ProtocolError::UnmaskedClientFrame => "unmasked_client_frame",
            ProtocolError::MaskedServerFrame => "masked_server_frame",
            ProtocolError::UnexpectedContinuation => "unexpected_continuation",
            ProtocolError::ExpectedContinuation => "expected_continuation",
            ProtocolError::FrameTooBig { .. } => "frame_too_big",
            ProtocolError::MessageTooBig { .. } => "message_too_big",
            ProtocolError::TooManyFragments { .. } => "too_many_fragments",
            ProtocolError::InvalidUtf8 => "invalid_utf8",
            ProtocolError::CloseTooShort => "close_payload_too_short",
            ProtocolError::InvalidCloseCode(_) => "invalid_close_code",
            ProtocolError::InvalidCloseReason => "invalid_close_reason",
            ProtocolError::InvalidCompressedData => "invalid_compressed_data",
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::ReservedBits(b) => {
                write!(
                    f,
                    "reserved bits {b:#05b} set without a negotiated extension"
                )
            }
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            ProtocolError::ControlFrameTooLong(code) => write!(
                f,
                "control frame uses the extended length form (length field {code}); the limit is 125 bytes"
            ),
            ProtocolError::FragmentedControlFrame => write!(f, "fragmented control frame"),
            ProtocolError::LengthTopBitSet => {
                write!(f, "64-bit payload length has its most significant bit set")
            }
            ProtocolError::UnmaskedClientFrame => write!(f, "client frame is not masked"),
            ProtocolError::MaskedServerFrame => write!(f, "server frame is masked"),
            ProtocolError::UnexpectedContinuation => {
                write!(f, "continuation frame without a message in progress")
            }
            ProtocolError::ExpectedContinuation => {
                write!(
                    f,
                    "new data frame while a fragmented message is in progress"
                )
            }
            ProtocolError::FrameTooBig { len, limit } => {
                write!(f, "frame of {len} bytes exceeds the limit of {limit}")
            }
            ProtocolError::MessageTooBig { limit } => {
                write!(f, "message exceeds the limit of {limit} bytes")
            }
            ProtocolError::TooManyFragments { limit } => {
                write!(f, "message exceeds the limit of {limit} fragments")
            }
            ProtocolError::InvalidUtf8 => write!(f, "text message is not valid UTF-8"),
            ProtocolError::CloseTooShort => write!(f, "close frame payload of 1 byte"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "close code {c} is not allowed"),
            ProtocolError::InvalidCloseReason => write!(f, "close reason is not valid UTF-8"),
            ProtocolError::InvalidCompressedData => {
                write!(f, "compressed message does not inflate")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The local caller asked for something the protocol forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// A close frame was already sent or received: no more data may be sent
    /// (RFC 6455 §5.5.1).
    Closing,
    /// Control frame payloads are at most 125 bytes (RFC 6455 §5.5).
    ControlPayloadTooLong(usize),
    /// The close code may not be sent on the wire (RFC 6455 §7.4).
    InvalidCloseCode(u16),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Closing => write!(f, "the connection is closing; nothing more can be sent"),
            SendError::ControlPayloadTooLong(n) => {
                write!(f, "control frame payload of {n} bytes exceeds 125")
            }
            SendError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
        }
    }
}

impl std::error::Error for SendError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks every variant: each maps to the close code RFC 6455 §7.4.1 names
    /// for it, and has a distinct stable name.
    #[test]
    fn every_protocol_error_maps_to_its_close_code() {
        let cases = [
            (ProtocolError::ReservedBits(4), 1002),
            (ProtocolError::UnknownOpcode(3), 1002),
            (ProtocolError::ControlFrameTooLong(126), 1002),
            (ProtocolError::FragmentedControlFrame, 1002),
            (ProtocolError::LengthTopBitSet, 1002),
            (ProtocolError::UnmaskedClientFrame, 1002),
            (ProtocolError::MaskedServerFrame, 1002),
            (ProtocolError::UnexpectedContinuation, 1002),
            (ProtocolError::ExpectedContinuation, 1002),
            (ProtocolError::FrameTooBig { len: 2, limit: 1 }, 1009),
            (ProtocolError::MessageTooBig { limit: 1 }, 1009),
            (ProtocolError::TooManyFragments { limit: 1 }, 1009),
            (ProtocolError::InvalidUtf8, 1007),
            (ProtocolError::CloseTooShort, 1002),
            (ProtocolError::InvalidCloseCode(5), 1002),
            (ProtocolError::InvalidCloseReason, 1007),
            (ProtocolError::InvalidCompressedData, 1007),
        ];
        let mut names = std::collections::HashSet::new();
        for (err, code) in &cases {
            assert_eq!(err.close_code(), CloseCode(*code), "{err:?}");
            assert!(names.insert(err.name()), "duplicate name {}", err.name());
            assert!(!err.to_string().is_empty());
            assert!(err.name().len() <= super::super::close::MAX_REASON_BYTES);
        }
    }
}
