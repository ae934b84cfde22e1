//! RFC 6455 §5.5: control-frame rules (at most 125 bytes, never fragmented)
//! for ping, close and pong, and §5.5.2–§5.5.3 ping/pong.

use super::helpers::*;
use crate::protocol::connection::{CloseState, Event};
use crate::protocol::error::ProtocolError;

#[test]
fn rfc6455_5_5_fragmented_or_long_control_frames_fail() {
    let (ev, _, _) = run(&cf(false, 9, b"x"));
    assert!(failed_with(&ev, 1002));
    let (ev, _, _) = run(&cf(true, 9, &[0u8; 126]));
    assert!(failed_with(&ev, 1002));
    let (ev, tx, _) = run(&cf(true, 9, &[7u8; 125]));
    assert_eq!(ev, [Event::Ping(vec![7u8; 125])]);
    assert_eq!(tx.len(), 2 + 125);
}

/// RFC 6455 §5.5: a close or pong with a 126-byte payload fails with 1002.
#[test]
fn rfc6455_5_5_close_and_pong_over_125_bytes_fail_1002() {
    let mut close_body = b"\x03\xe8".to_vec();
    close_body.extend_from_slice(&[b'a'; 124]);
    for (op, payload) in [(8u8, close_body), (0xa, vec![7u8; 126])] {
        assert_eq!(payload.len(), 126);
        let (ev, tx, st) = run(&cf(true, op, &payload));
        assert_eq!(
            ev,
            [Event::Failed(ProtocolError::ControlFrameTooLong(126))],
            "opcode {op:#x}"
        );
        assert_eq!(close_frame_code(&tx), Some(1002), "opcode {op:#x}");
        assert_eq!(st, CloseState::Closed);
    }
    // 125 bytes is the largest allowed: a close with a 123-byte reason and a
    // 125-byte pong pass.
    let mut close_body = b"\x03\xe8".to_vec();
    close_body.extend_from_slice(&[b'a'; 123]);
    let (ev, _, _) = run(&cf(true, 8, &close_body));
    assert!(matches!(ev[..], [Event::Closed { .. }]), "{ev:?}");
    let (ev, _, _) = run(&cf(true, 0xa, &[7u8; 125]));
    assert_eq!(ev, [Event::Pong(vec![7u8; 125])]);
}

/// RFC 6455 §5.5: a close announced with the 64-bit length form (len7 = 127)
/// fails with 1002, even when the length it carries is small.
#[test]
fn rfc6455_5_5_close_with_64_bit_length_fails_1002() {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x88, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2];
    frame.extend_from_slice(&key);
    let mut body = *b"\x03\xe8";
    crate::protocol::mask::apply_mask_bytewise(&mut body, key, 0);
    frame.extend_from_slice(&body);
    let (ev, tx, st) = run(&frame);
    assert!(
        matches!(
            ev[..],
            [Event::Failed(ProtocolError::ControlFrameTooLong(_))]
        ),
        "{ev:?}"
    );
    assert_eq!(close_frame_code(&tx), Some(1002));
    assert_eq!(st, CloseState::Closed);
}

/// RFC 6455 §5.5: control frames MUST NOT be fragmented; a close or pong
/// with FIN clear fails with 1002.
#[test]
fn rfc6455_5_5_fragmented_close_and_pong_fail_1002() {
    for (op, payload) in [(8u8, &b"\x03\xe8"[..]), (0xa, &b"x"[..])] {
        let (ev, tx, st) = run(&cf(false, op, payload));
        assert_eq!(
            ev,
            [Event::Failed(ProtocolError::FragmentedControlFrame)],
            "opcode {op:#x}"
        );
        assert_eq!(close_frame_code(&tx), Some(1002), "opcode {op:#x}");
        assert_eq!(st, CloseState::Closed);
    }
}

#[test]
fn rfc6455_5_5_2_ping_gets_pong_with_same_payload() {
    let (ev, tx, _) = run(&cf(true, 9, b"hello"));
    assert_eq!(ev, [Event::Ping(b"hello".to_vec())]);
    assert_eq!(tx, [0x8a, 5, b'h', b'e', b'l', b'l', b'o']);
}

#[test]
fn rfc6455_5_5_3_unsolicited_pong_is_ignored() {
    let (ev, tx, st) = run(&cf(true, 0xa, b"x"));
    assert_eq!(ev, [Event::Pong(b"x".to_vec())]);
    assert!(tx.is_empty());
    assert_eq!(st, CloseState::Open);
}
