//! Frame headers: decode from partial input, encode in the minimal form
//! (RFC 6455 §5.2).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! ```

use super::error::ProtocolError;
use super::mask::extend_masked;

/// The longest possible header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2, §11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a UTF-8 text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decodes the 4-bit opcode; reserved values are `None`.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Control frames have the top opcode bit set (RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold the whole header yet
    /// (incomplete input is not an error), or the header and its length in
    /// bytes. Rules that need no context are checked here: reserved opcodes,
    /// the 64-bit length's top bit, and the control-frame rules (§5.5: FIN set,
    /// at most 125 bytes). Masking, RSV bits and limits depend on the role and
    /// the negotiated extensions, so the connection checks those.
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_u8(b0 & 0x0f).ok_or(ProtocolError::UnknownOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if len7 > 125 {
                // 126/127 announce an extended length: over the cap whatever
                // follows. Decided from these two bytes alone, so the error
                // is the same however the input was split into reads.
                return Err(ProtocolError::ControlFrameTooLong(len7));
            }
        }
        let (len, mut pos) = match len7 {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len & (1 << 63) != 0 {
                    return Err(ProtocolError::LengthTopBitSet);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        let mask = if masked {
            if buf.len() < pos + 4 {
                return Ok(None);
            }
            let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                len,
            },
            pos,
        )))
    }

    /// The encoded size of this header.
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.len {
            0..=125 => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, with the minimal length encoding (§5.2).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let b0 = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(b0);
        match self.len {
            0..=125 => out.push(mask_bit | self.len as u8),
            126..=0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(self.len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&self.len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Appends a whole frame to `out`: header, then the payload, masked with
/// `mask` when given (a client's frames, RFC 6455 §5.3).
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_with_rsv(out, fin, 0, opcode, payload, mask);
}

/// Appends a whole, final frame with RSV bits (RSV1 = `0b100`, set by
/// permessage-deflate on a compressed message).
pub fn encode_frame_rsv(
    out: &mut Vec<u8>,
    rsv: u8,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_with_rsv(out, true, rsv, opcode, payload, mask);
}

fn encode_with_rsv(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask,
        len: payload.len() as u64,
    };
    out.reserve(header.encoded_len() + payload.len());
    header.encode(out);
    match mask {
        Some(key) => extend_masked(out, payload, key, 0),
        None => out.extend_from_slice(payload),
    }
}

/// Encodes one unmasked, unfragmented frame as a server sends it. Every
/// recipient of a broadcast gets these same bytes (server frames are never
/// masked, RFC 6455 §5.1), so a broadcast encodes once.
pub fn encode_server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, true, opcode, payload, None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        FrameHeader::decode(buf)
    }

    /// RFC 6455 §5.7 examples.
    #[test]
    fn rfc6455_5_7_examples() {
        // A single-frame unmasked text message "Hello".
        let (h, n) = decode_all(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.len, h.mask, n),
            (true, OpCode::Text, 5, None, 2)
        );
        // A single-frame masked text message "Hello".
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = decode_all(&bytes).unwrap().unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = bytes[n..].to_vec();
        crate::protocol::mask::apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // 256 bytes binary in a single unmasked frame: 16-bit length.
        let (h, n) = decode_all(&[0x82, 0x7e, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.len, n), (256, 4));
        // 64 KiB: 64-bit length.
        let (h, n) = decode_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, n), (65536, 10));
        // An unfragmented ping.
        let mut out = Vec::new();
        encode_frame(&mut out, true, OpCode::Ping, b"Hello", None);
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc6455_5_2_partial_header_asks_for_more() {
        let full = [0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for n in 0..full.len() {
            assert_eq!(decode_all(&full[..n]), Ok(None), "prefix {n}");
        }
        assert!(decode_all(&full).unwrap().is_some());
    }

    #[test]
    fn rfc6455_5_2_length_top_bit_is_an_error() {
        let buf = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_all(&buf), Err(ProtocolError::LengthTopBitSet));
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_are_errors() {
        for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(
                decode_all(&[0x80 | op, 0]),
                Err(ProtocolError::UnknownOpcode(op))
            );
        }
    }

    #[test]
    fn rfc6455_5_5_control_frames_are_short_and_unfragmented() {
        assert_eq!(
            decode_all(&[0x09, 0x00]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            decode_all(&[0x89, 0x7e, 0x00, 0x7e]),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        assert!(decode_all(&[0x89, 0x7d]).unwrap().is_some());
    }

    /// RFC 6455 §5.5: the control-frame rules hold for close and pong too,
    /// decided from the first two header bytes.
    #[test]
    fn rfc6455_5_5_every_control_opcode_is_short_and_unfragmented() {
        for op in [0x8u8, 0x9, 0xa] {
            assert_eq!(
                decode_all(&[op, 0x00]),
                Err(ProtocolError::FragmentedControlFrame),
                "opcode {op:#x}"
            );
            assert_eq!(
                decode_all(&[0x80 | op, 0x7e, 0x00, 0x7e]),
                Err(ProtocolError::ControlFrameTooLong(126)),
                "opcode {op:#x}"
            );
            // The 64-bit form is refused before its length bytes arrive.
            assert!(
                matches!(
                    decode_all(&[0x80 | op, 0x7f]),
                    Err(ProtocolError::ControlFrameTooLong(_))
                ),
                "opcode {op:#x}"
            );
            assert!(decode_all(&[0x80 | op, 0x7d]).unwrap().is_some());
        }
    }

    /// RFC 6455 §5.2: the minimal-length MUST binds the sender; a receiver
    /// may accept a longer form, and we do (5 bytes in the 16/64-bit forms).
    #[test]
    fn rfc6455_5_2_non_minimal_length_is_decoded() {
        let (h, n) = decode_all(&[0x82, 0x7e, 0x00, 0x05]).unwrap().unwrap();
        assert_eq!((h.len, n), (5, 4));
        let (h, n) = decode_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, n), (5, 10));
    }

    #[test]
    fn rfc6455_5_2_minimal_length_encoding() {
        for (len, hdr) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Binary,
                mask: None,
                len,
            };
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out.len(), hdr, "len {len}");
            assert_eq!(h.encoded_len(), hdr);
            assert_eq!(decode_all(&out).unwrap().unwrap(), (h, hdr));
        }
    }

    /// Found by fuzzing: the error for an over-long control frame must not
    /// depend on how many bytes of its extended length had arrived.
    #[test]
    fn rfc6455_5_5_control_too_long_is_split_independent() {
        let whole = decode_all(&[0x89, 0xfe, 0x00, 0x03]);
        assert_eq!(whole, decode_all(&[0x89, 0xfe]));
        assert_eq!(whole, Err(ProtocolError::ControlFrameTooLong(126)));
        assert_eq!(
            decode_all(&[0x88, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(ProtocolError::ControlFrameTooLong(127))
        );
    }
}
