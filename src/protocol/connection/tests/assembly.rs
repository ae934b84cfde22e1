//! RFC 6455 §5.4: fragmentation and message assembly, and
//! `receive_message` stopping after each complete message.

use super::helpers::*;
use crate::protocol::close::CloseCode;
use crate::protocol::connection::{CloseState, Event, MessageKind};

#[test]
fn rfc6455_5_4_fragments_assemble_with_control_frames_between() {
    let mut input = cf(false, 1, b"Hel");
    input.extend(cf(true, 9, b"ping!"));
    input.extend(cf(false, 0, b"lo, "));
    input.extend(cf(true, 0xa, b"unsolicited"));
    input.extend(cf(true, 0, b"world"));
    let (ev, tx, st) = run(&input);
    assert_eq!(
        ev,
        [
            Event::Ping(b"ping!".to_vec()),
            Event::Pong(b"unsolicited".to_vec()),
            text("Hello, world"),
        ]
    );
    assert_eq!(tx, [0x8a, 5, b'p', b'i', b'n', b'g', b'!']);
    assert_eq!(st, CloseState::Open);
}

#[test]
fn rfc6455_5_4_continuation_without_start_fails() {
    let (ev, _, _) = run(&cf(true, 0, b"x"));
    assert!(failed_with(&ev, 1002));
}

#[test]
fn rfc6455_5_4_new_message_inside_fragmented_one_fails() {
    let mut input = cf(false, 1, b"a");
    input.extend(cf(true, 2, b"b"));
    let (ev, _, _) = run(&input);
    assert!(failed_with(&ev, 1002));
}

/// RFC 6455 §5.4 / §5.5.1: a close between fragments closes cleanly (the
/// close is echoed) and the unfinished message is never reported.
#[test]
fn rfc6455_5_4_close_in_the_middle_of_a_fragmented_message() {
    let mut input = cf(false, 1, b"Hel");
    input.extend(cf(false, 0, b"lo, "));
    input.extend(cf(true, 8, b"\x03\xe8bye"));
    input.extend(cf(true, 0, b"world"));
    let (ev, tx, st) = run(&input);
    assert_eq!(
        ev,
        [Event::Closed {
            code: Some(CloseCode::NORMAL),
            reason: "bye".into()
        }]
    );
    assert_eq!(tx, [0x88, 2, 0x03, 0xe8]);
    assert_eq!(st, CloseState::Closed);
    // The partial message is dropped, not held.
    let mut c = server();
    let mut ev = Vec::new();
    c.receive(&input, &mut ev);
    assert_eq!(c.buffered_bytes(), 0);
}

/// `receive_message` stops after each data message, so a reply can be
/// queued before a later frame fails or closes the connection (Autobahn 3.2).
#[test]
fn receive_message_stops_after_each_message() {
    let mut input = cf(true, 1, b"first");
    input.extend(raw(true, 2, 1, b"bad rsv", Some([9, 9, 9, 9])));
    let mut c = server();
    let mut ev = Vec::new();
    let n = c.receive_message(&input, &mut ev);
    assert_eq!(n, cf(true, 1, b"first").len());
    assert_eq!(ev, [text("first")]);
    c.send_message(MessageKind::Text, b"first").unwrap();
    ev.clear();
    assert_eq!(c.receive_message(&input[n..], &mut ev), input.len() - n);
    assert!(failed_with(&ev, 1002));
    let tx = c.take_transmit();
    // The echo, then the close: in that order.
    assert_eq!(&tx[..7], &[0x81, 5, b'f', b'i', b'r', b's', b't']);
    assert_eq!(close_frame_code(&tx[7..]), Some(1002));
}
