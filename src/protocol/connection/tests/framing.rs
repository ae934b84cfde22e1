//! RFC 6455 §5.2: frame header rules (reserved bits, opcodes, length forms).

use super::helpers::*;
use crate::protocol::connection::{CloseState, Event, MessageKind};
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::FrameHeader;

#[test]
fn rfc6455_5_2_reserved_bits_without_extension_fail() {
    for rsv in 1..8 {
        let (ev, tx, _) = run(&raw(true, rsv, 1, b"x", Some([1, 2, 3, 4])));
        assert!(failed_with(&ev, 1002), "rsv {rsv}");
        assert_eq!(close_frame_code(&tx), Some(1002));
    }
}

/// RFC 6455 §5.2: RSV bits set on a control frame (no extension negotiated)
/// fail with 1002; the ping is not answered and the close is not echoed.
#[test]
fn rfc6455_5_2_reserved_bits_on_control_frames_fail_1002() {
    for (op, payload) in [(9u8, &b"ping"[..]), (8, &b"\x03\xe8"[..]), (0xa, &b"x"[..])] {
        for rsv in 1..8 {
            let (ev, tx, st) = run(&raw(true, rsv, op, payload, Some([1, 2, 3, 4])));
            assert_eq!(
                ev,
                [Event::Failed(ProtocolError::ReservedBits(rsv))],
                "opcode {op:#x} rsv {rsv}"
            );
            // Only our 1002 close goes out: no pong, no echoed 1000.
            let (h, n) = FrameHeader::decode(&tx).unwrap().unwrap();
            assert_eq!(n + h.len as usize, tx.len(), "exactly one frame");
            assert_eq!(close_frame_code(&tx), Some(1002));
            assert_eq!(st, CloseState::Closed);
        }
    }
}

#[test]
fn rfc6455_5_2_unknown_opcodes_fail() {
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        let (ev, _, _) = run(&cf(true, op, b""));
        assert!(failed_with(&ev, 1002), "opcode {op}");
    }
}

#[test]
fn rfc6455_5_2_length_top_bit_fails() {
    let mut bytes = vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    let (ev, _, _) = run(&bytes);
    assert!(failed_with(&ev, 1002));
}

#[test]
fn rfc6455_5_2_all_length_classes_decode() {
    for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut c = server();
        let ev = feed_chunked(&mut c, &cf(true, 2, &payload), 4096);
        assert_eq!(
            ev,
            [Event::Message {
                kind: MessageKind::Binary,
                data: payload
            }],
            "len {len}"
        );
    }
}

/// RFC 6455 §5.2: a non-minimal length encoding is accepted. The "minimal
/// number of bytes MUST be used" rule binds the *sender*; we are liberal in
/// what we accept, like every major implementation (we always send minimal).
#[test]
fn rfc6455_5_2_non_minimal_length_is_accepted() {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut body = *b"hello";
    crate::protocol::mask::apply_mask_bytewise(&mut body, key, 0);
    // 16-bit form (126 + 0x0005) and 64-bit form (127 + 5) for 5 bytes.
    let forms: [&[u8]; 2] = [
        &[0x81, 0x80 | 126, 0, 5],
        &[0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5],
    ];
    for (i, head) in forms.into_iter().enumerate() {
        let mut frame = head.to_vec();
        frame.extend_from_slice(&key);
        frame.extend_from_slice(&body);
        let (ev, tx, st) = run(&frame);
        let kind = if i == 0 {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        assert_eq!(
            ev,
            [Event::Message {
                kind,
                data: b"hello".to_vec()
            }]
        );
        assert!(tx.is_empty());
        assert_eq!(st, CloseState::Open);
    }
}
