//! RFC 6455 §5.5.1 and §7: the close handshake, close codes and reasons,
//! what may be sent after a close, and failing the connection (§7.1.7).

use super::helpers::*;
use crate::protocol::close::CloseCode;
use crate::protocol::connection::{CloseState, Event, MessageKind};
use crate::protocol::error::{ProtocolError, SendError};

#[test]
fn rfc6455_5_5_1_close_is_echoed_and_closes() {
    let (ev, tx, st) = run(&cf(true, 8, b"\x03\xe8bye"));
    assert_eq!(
        ev,
        [Event::Closed {
            code: Some(CloseCode::NORMAL),
            reason: "bye".into()
        }]
    );
    assert_eq!(tx, [0x88, 2, 0x03, 0xe8]);
    assert_eq!(st, CloseState::Closed);
}

#[test]
fn rfc6455_5_5_1_empty_close_is_answered_with_empty_close() {
    let (ev, tx, _) = run(&cf(true, 8, b""));
    assert_eq!(
        ev,
        [Event::Closed {
            code: None,
            reason: String::new()
        }]
    );
    assert_eq!(tx, [0x88, 0]);
}

#[test]
fn rfc6455_5_5_1_one_byte_close_fails_1002() {
    let (ev, tx, _) = run(&cf(true, 8, b"\x03"));
    assert!(failed_with(&ev, 1002));
    assert_eq!(close_frame_code(&tx), Some(1002));
}

#[test]
fn rfc6455_7_4_invalid_close_codes_fail_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let (ev, _, _) = run(&cf(true, 8, &code.to_be_bytes()));
        assert!(failed_with(&ev, 1002), "code {code}");
    }
    for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let (ev, tx, _) = run(&cf(true, 8, &code.to_be_bytes()));
        assert!(matches!(ev[0], Event::Closed { .. }), "code {code}");
        assert_eq!(close_frame_code(&tx), Some(code));
    }
}

#[test]
fn rfc6455_5_5_1_close_reason_must_be_utf8() {
    let (ev, _, _) = run(&cf(true, 8, b"\x03\xe8\xce\xba\xff"));
    assert!(failed_with(&ev, 1007));
}

#[test]
fn rfc6455_5_5_1_nothing_after_close_is_processed() {
    let mut input = cf(true, 8, b"\x03\xe8");
    input.extend(cf(true, 1, b"late"));
    input.extend(cf(true, 9, b"late ping"));
    let (ev, tx, _) = run(&input);
    assert_eq!(ev.len(), 1);
    assert_eq!(tx, [0x88, 2, 0x03, 0xe8]);
}

#[test]
fn rfc6455_7_1_2_after_sending_close_no_data_is_sent_and_peer_close_completes() {
    let mut c = server();
    c.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
    assert_eq!(c.close_state(), CloseState::CloseSent);
    assert_eq!(close_frame_code(&c.take_transmit()), Some(1001));
    assert_eq!(
        c.send_message(MessageKind::Text, b"x"),
        Err(SendError::Closing)
    );
    assert_eq!(c.send_ping(b""), Err(SendError::Closing));
    assert_eq!(c.close(CloseCode::NORMAL, ""), Err(SendError::Closing));
    // Data still arriving is reported; a ping is not answered any more.
    let mut ev = Vec::new();
    c.receive(&cf(true, 1, b"in flight"), &mut ev);
    c.receive(&cf(true, 9, b"p"), &mut ev);
    c.receive(&cf(true, 8, b"\x03\xe9"), &mut ev);
    assert_eq!(ev[0], text("in flight"));
    assert!(matches!(
        ev[2],
        Event::Closed {
            code: Some(CloseCode(1001)),
            ..
        }
    ));
    assert!(c.is_closed());
    assert!(c.take_transmit().is_empty(), "no pong, no second close");
}

#[test]
fn send_errors_for_misuse() {
    let mut c = server();
    assert_eq!(
        c.send_ping(&[0; 126]),
        Err(SendError::ControlPayloadTooLong(126))
    );
    assert_eq!(
        c.close(CloseCode(1005), ""),
        Err(SendError::InvalidCloseCode(1005))
    );
    let long = "x".repeat(500);
    c.close(CloseCode::NORMAL, &long).unwrap();
    assert_eq!(c.take_transmit().len(), 2 + 125, "reason cut to 123 bytes");
}

/// RFC 6455 §7.1.7 / §5.5.1: after our own close (CloseSent), a protocol
/// error from the peer fails the connection without a second close frame.
#[test]
fn rfc6455_7_1_7_no_second_close_after_our_own() {
    let mut c = server();
    c.close(CloseCode::GOING_AWAY, "bye").unwrap();
    assert_eq!(close_frame_code(&c.take_transmit()), Some(1001));
    assert_eq!(c.close_state(), CloseState::CloseSent);
    let mut ev = Vec::new();
    // An unmasked frame: a protocol error (§5.1).
    c.receive(&raw(true, 0, 1, b"hi", None), &mut ev);
    assert_eq!(ev, [Event::Failed(ProtocolError::UnmaskedClientFrame)]);
    assert!(c.is_closed());
    assert!(!c.has_transmit());
    assert!(c.take_transmit().is_empty(), "no second close frame");
}

/// RFC 6455 §7.1.7: once the connection is failed, further input is ignored:
/// no events, nothing more to transmit.
#[test]
fn rfc6455_7_1_7_input_after_failure_is_ignored() {
    let mut later = cf(true, 1, b"late text");
    later.extend(cf(true, 9, b"late ping"));
    later.extend(cf(true, 8, b"\x03\xe8"));
    later.extend(raw(true, 0, 1, b"another error", None));
    // In one stream (through the chopping runner) ...
    let mut input = raw(true, 4, 1, b"bad rsv", Some([9, 9, 9, 9]));
    input.extend_from_slice(&later);
    let (ev, tx, st) = run(&input);
    assert_eq!(ev, [Event::Failed(ProtocolError::ReservedBits(4))]);
    assert_eq!(close_frame_code(&tx), Some(1002));
    assert_eq!(
        tx.len(),
        2 + 2 + "reserved_bits".len(),
        "one close frame only"
    );
    assert_eq!(st, CloseState::Closed);
    // ... and in later calls, after the failure close was taken.
    let mut c = server();
    let mut ev = Vec::new();
    c.receive(&raw(true, 0, 1, b"hi", None), &mut ev);
    assert!(failed_with(&ev, 1002));
    let _ = c.take_transmit();
    ev.clear();
    c.receive(&later, &mut ev);
    assert_eq!(c.receive_message(&later, &mut ev), later.len());
    assert!(ev.is_empty(), "{ev:?}");
    assert!(!c.has_transmit());
    assert_eq!(c.buffered_bytes(), 0);
}
