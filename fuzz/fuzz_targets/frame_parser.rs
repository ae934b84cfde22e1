//! `FrameHeader::decode` on arbitrary bytes.
//!
//! Invariants:
//! - never panics;
//! - a decoded header re-encodes (`FrameHeader::encode`, minimal length form)
//!   to bytes that decode to the same header, `encoded_len()` agrees, and
//!   when the input used the minimal length form the bytes are identical;
//! - the header length is 2..=14, and only the header bytes matter: decoding
//!   `buf[..n]` gives the same result;
//! - every prefix shorter than the header decodes to `Ok(None)` (incomplete
//!   input is never an error once the whole header is valid);
//! - on an error, every prefix is `Ok(None)` or the same error variant, and
//!   the error is one the decoder is documented to raise.
//!
//! With `WSFUZZ_STRICT=1`, two more checks that currently fail (see
//! docs/fuzzing.md, "Findings"): a prefix's error must equal the whole
//! input's error (not just its variant), and `ControlFrameTooLong(n)` must
//! report an `n` over 125.

#![no_main]

use std::mem::discriminant;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wsbroadcaster::protocol::ProtocolError;
use wsbroadcaster::protocol::frame::{FrameHeader, MAX_HEADER_LEN};

fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("WSFUZZ_STRICT").is_some_and(|v| v != "0"))
}

/// Whether the input's length field uses the fewest bytes (RFC 6455 §5.2).
fn minimal_length_encoding(buf: &[u8], len: u64) -> bool {
    match buf[1] & 0x7f {
        126 => (126..=0xffff).contains(&len),
        127 => len > 0xffff,
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let result = FrameHeader::decode(data);
    match result {
        Ok(None) => {
            // Incomplete: the input is shorter than any header it starts.
            assert!(
                data.len() < MAX_HEADER_LEN,
                "Ok(None) for {} bytes",
                data.len()
            );
        }
        Ok(Some((header, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n), "header length {n}");
            assert!(n <= data.len());
            assert!(header.rsv <= 7);
            assert!(header.len < 1 << 63);
            if header.opcode.is_control() {
                assert!(header.fin && header.len <= 125, "{header:?}");
            }
            // Only the header bytes matter.
            assert_eq!(FrameHeader::decode(&data[..n]), Ok(Some((header, n))));
            // Every shorter prefix is incomplete, not an error.
            for k in 0..n {
                assert_eq!(
                    FrameHeader::decode(&data[..k]),
                    Ok(None),
                    "prefix {k} of {n}"
                );
            }
            // Structural round trip through the encoder.
            let mut out = Vec::new();
            header.encode(&mut out);
            assert_eq!(out.len(), header.encoded_len());
            assert_eq!(
                FrameHeader::decode(&out),
                Ok(Some((header, out.len()))),
                "re-encoded {out:02x?}"
            );
            if minimal_length_encoding(data, header.len) {
                assert_eq!(&out[..], &data[..n], "minimal input re-encodes identically");
            } else {
                // A non-minimal input only ever re-encodes shorter.
                assert!(out.len() < n);
            }
        }
        Err(ref e) => {
            assert!(
                matches!(
                    e,
                    ProtocolError::UnknownOpcode(_)
                        | ProtocolError::FragmentedControlFrame
                        | ProtocolError::ControlFrameTooLong(_)
                        | ProtocolError::LengthTopBitSet
                ),
                "decoder raised {e:?}"
            );
            for k in 0..data.len().min(MAX_HEADER_LEN) {
                match FrameHeader::decode(&data[..k]) {
                    Ok(None) => {}
                    Ok(Some(h)) => {
                        panic!("prefix {k} decodes to {h:?} but the whole input is {e:?}")
                    }
                    Err(p) => {
                        assert_eq!(
                            discriminant(&p),
                            discriminant(e),
                            "prefix {k}: {p:?} vs {e:?}"
                        );
                        if strict() {
                            assert_eq!(&p, e, "prefix {k}");
                        }
                    }
                }
            }
            if let (true, ProtocolError::ControlFrameTooLong(n)) = (strict(), e) {
                assert!(
                    *n > 125,
                    "ControlFrameTooLong({n}) for {:02x?}",
                    &data[..data.len().min(4)]
                );
            }
        }
    }
});
