//! RFC 6455 §8.1: text is valid UTF-8, checked per received chunk (fail
//! fast), and binary is not checked.

use super::helpers::*;
use crate::protocol::connection::{Event, MessageKind};

#[test]
fn rfc6455_8_1_invalid_utf8_fails_1007() {
    let (ev, tx, _) = run(&cf(
        true,
        1,
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ));
    assert!(failed_with(&ev, 1007));
    assert_eq!(close_frame_code(&tx), Some(1007));
}

/// Fails fast: the error is reported as soon as the bad bytes arrive, while
/// the frame's payload is still incomplete (Autobahn 6.4.x).
#[test]
fn rfc6455_8_1_invalid_utf8_fails_in_the_middle_of_a_fragment() {
    let payload =
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\xce\xba\xe1\xbd\xb9";
    let frame = cf(true, 1, payload);
    let mut c = server();
    let mut ev = Vec::new();
    // header (6) + the first 12 payload bytes, up to the bad F4 90.
    c.receive(&frame[..6 + 11], &mut ev);
    assert!(ev.is_empty());
    c.receive(&frame[6 + 11..6 + 13], &mut ev);
    assert!(failed_with(&ev, 1007), "{ev:?}");
}

#[test]
fn rfc6455_8_1_text_ending_mid_code_point_fails() {
    let mut input = cf(false, 1, b"a\xe2\x82");
    input.extend(cf(true, 0, b""));
    let (ev, _, _) = run(&input);
    assert!(failed_with(&ev, 1007));
    // Split across fragments is fine.
    let mut input = cf(false, 1, b"a\xe2\x82");
    input.extend(cf(true, 0, b"\xac"));
    assert_eq!(run(&input).0, [text("a€")]);
}

#[test]
fn binary_messages_are_not_utf8_checked() {
    let (ev, _, _) = run(&cf(true, 2, b"\xff\xfe"));
    assert_eq!(
        ev,
        [Event::Message {
            kind: MessageKind::Binary,
            data: vec![0xff, 0xfe]
        }]
    );
}
