//! permessage-deflate (RFC 7692): negotiation and the DEFLATE codec.
//!
//! The connection uses it when [`Connection::set_deflate`] was called after
//! a successful negotiation: RSV1 marks a compressed message (on its first
//! frame only), payloads are inflated in bounded steps with the message
//! limit applied to the *inflated* size.
//!
//! [`Connection::set_deflate`]: crate::protocol::Connection::set_deflate

mod codec;
pub mod negotiation;

pub use codec::{Deflater, InflateError, Inflater, TAIL};
pub use negotiation::{DeflateParams, ServerDeflate, client_offer, negotiate};

use super::frame::{FrameHeader, OpCode};

/// Encodes one compressed, unmasked server frame (RSV1 set) from payload
/// already compressed with [`Deflater::compress`]. With no context takeover
/// these bytes are the same for every recipient, so a broadcast compresses
/// once.
pub fn encode_compressed_server_frame(opcode: OpCode, compressed: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0b100,
        opcode,
        mask: None,
        len: compressed.len() as u64,
    };
    let mut out = Vec::with_capacity(header.encoded_len() + compressed.len());
    header.encode(&mut out);
    out.extend_from_slice(compressed);
    out
}
