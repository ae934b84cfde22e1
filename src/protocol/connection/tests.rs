//! Tests of the connection state machine: one per RFC rule, a chopping
//! runner that feeds every case whole, byte by byte and at every split, and
//! proptest properties.

use super::*;
use crate::protocol::frame::{FrameHeader, encode_frame};
use proptest::prelude::*;

/// A masked frame as a client sends it.
fn cf(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw(fin, 0, opcode, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

/// Any frame, including illegal ones.
fn raw(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let start = out.len();
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
    out.extend_from_slice(payload);
    if let Some(k) = mask {
        crate::protocol::mask::apply_mask_bytewise(&mut out[start + 4..], k, 0);
    }
    out
}

fn server() -> Connection {
    Connection::new(Role::Server, Limits::default())
}

/// Feeds `input` in the given chunk sizes (cycled) and returns the events.
fn feed_chunked(conn: &mut Connection, input: &[u8], chunk: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        conn.receive(piece, &mut events);
    }
    events
}

/// The chopping runner: the same bytes fed whole, byte by byte, and split at
/// every point give the same events and the same transmitted bytes (modulo
/// nothing: servers do not mask, so bytes are deterministic).
fn run(input: &[u8]) -> (Vec<Event>, Vec<u8>, CloseState) {
    run_with(Limits::default(), input)
}

fn run_with(limits: Limits, input: &[u8]) -> (Vec<Event>, Vec<u8>, CloseState) {
    let mut whole = Connection::new(Role::Server, limits);
    let expected = feed_chunked(&mut whole, input, input.len());
    let expected_tx = whole.take_transmit();
    let mut bytewise = Connection::new(Role::Server, limits);
    assert_eq!(
        feed_chunked(&mut bytewise, input, 1),
        expected,
        "byte by byte"
    );
    assert_eq!(bytewise.take_transmit(), expected_tx);
    if input.len() <= 300 {
        for split in 0..=input.len() {
            let mut c = Connection::new(Role::Server, limits);
            let mut events = Vec::new();
            c.receive(&input[..split], &mut events);
            c.receive(&input[split..], &mut events);
            assert_eq!(events, expected, "split at {split}");
            assert_eq!(c.take_transmit(), expected_tx, "split at {split}");
        }
    }
    (expected, expected_tx, whole.close_state())
}

fn text(s: &str) -> Event {
    Event::Message {
        kind: MessageKind::Text,
        data: s.as_bytes().to_vec(),
    }
}

fn failed_with(events: &[Event], code: u16) -> bool {
    matches!(events.last(), Some(Event::Failed(e)) if e.close_code() == CloseCode(code))
}

/// The close frame a server sends: code and reason.
fn close_frame_code(tx: &[u8]) -> Option<u16> {
    let (h, n) = FrameHeader::decode(tx).ok()??;
    (h.opcode == OpCode::Close && h.len >= 2).then(|| u16::from_be_bytes([tx[n], tx[n + 1]]))
}

// ----- RFC 6455 §5.1 / §5.3: masking -----

#[test]
fn rfc6455_5_1_server_rejects_unmasked_frames() {
    let (ev, tx, st) = run(&raw(true, 0, 1, b"hi", None));
    assert!(failed_with(&ev, 1002));
    assert_eq!(close_frame_code(&tx), Some(1002));
    assert_eq!(st, CloseState::Closed);
}

#[test]
fn rfc6455_5_1_client_rejects_masked_frames() {
    let mut c = Connection::new(Role::Client, Limits::default());
    let mut ev = Vec::new();
    c.receive(&cf(true, 1, b"hi"), &mut ev);
    assert!(failed_with(&ev, 1002));
    // The client's own close frame is masked (§5.3).
    let tx = c.take_transmit();
    assert_eq!(tx[1] & 0x80, 0x80);
}

#[test]
fn rfc6455_5_3_client_masks_with_a_fresh_key_per_frame() {
    let mut c = Connection::new(Role::Client, Limits::default());
    c.send_message(MessageKind::Text, b"same").unwrap();
    c.send_message(MessageKind::Text, b"same").unwrap();
    let tx = c.take_transmit();
    let (h1, n1) = FrameHeader::decode(&tx).unwrap().unwrap();
    let (h2, _) = FrameHeader::decode(&tx[n1 + 4..]).unwrap().unwrap();
    assert!(h1.mask.is_some() && h2.mask.is_some());
    // Two random 32-bit keys collide with probability 2^-32.
    assert_ne!(h1.mask, h2.mask);
    // A server decodes them.
    let (ev, _, _) = run(&tx);
    assert_eq!(ev, [text("same"), text("same")]);
}

#[test]
fn rfc6455_5_1_server_frames_are_unmasked() {
    let mut c = server();
    c.send_message(MessageKind::Binary, &[1, 2, 3]).unwrap();
    assert_eq!(c.take_transmit(), [0x82, 0x03, 1, 2, 3]);
}

// ----- §5.2: header rules -----

#[test]
fn rfc6455_5_2_reserved_bits_without_extension_fail() {
    for rsv in 1..8 {
        let (ev, tx, _) = run(&raw(true, rsv, 1, b"x", Some([1, 2, 3, 4])));
        assert!(failed_with(&ev, 1002), "rsv {rsv}");
        assert_eq!(close_frame_code(&tx), Some(1002));
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

// ----- limits: 1009 -----

#[test]
fn frame_over_the_limit_fails_1009_before_its_payload() {
    let limits = Limits {
        max_frame: 100,
        ..Limits::default()
    };
    let mut c = Connection::new(Role::Server, limits);
    let frame = cf(true, 2, &[0u8; 101]);
    let mut ev = Vec::new();
    // The header alone (2 + 2 length + 4 mask bytes) is enough to refuse it.
    c.receive(&frame[..8], &mut ev);
    assert!(failed_with(&ev, 1009));
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn message_over_the_limit_fails_1009() {
    let limits = Limits {
        max_message: 10,
        ..Limits::default()
    };
    let mut input = cf(false, 1, b"12345");
    input.extend(cf(false, 0, b"12345"));
    input.extend(cf(true, 0, b"1"));
    let (ev, tx, _) = run_with(limits, &input);
    assert!(failed_with(&ev, 1009));
    assert_eq!(close_frame_code(&tx), Some(1009));
}

#[test]
fn too_many_fragments_fails_1009() {
    let limits = Limits {
        max_fragments: 3,
        ..Limits::default()
    };
    let mut ok = cf(false, 1, b"a");
    ok.extend(cf(false, 0, b"b"));
    ok.extend(cf(true, 0, b"c"));
    assert_eq!(run_with(limits, &ok).0, [text("abc")]);
    let mut bad = cf(false, 1, b"a");
    bad.extend(cf(false, 0, b""));
    bad.extend(cf(false, 0, b""));
    bad.extend(cf(true, 0, b""));
    assert!(failed_with(&run_with(limits, &bad).0, 1009));
}

// ----- §5.4: fragmentation -----

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

// ----- §8.1: UTF-8 -----

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

// ----- §5.5.1 / §7: close -----

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

// ----- §5.5.2: ping/pong -----

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

/// Found in review: a message growing by doubling could hold twice the
/// limit. Capacity now stays within `max_message`.
#[test]
fn unfinished_message_never_holds_more_than_the_limit() {
    let limits = Limits {
        max_frame: 256,
        max_message: 512,
        max_fragments: 8,
    };
    let mut c = Connection::new(Role::Server, limits);
    let mut ev = Vec::new();
    c.receive(&cf(false, 2, &[1; 200]), &mut ev);
    c.receive(&cf(false, 0, &[2; 256]), &mut ev);
    c.receive(&cf(false, 0, &[3; 56]), &mut ev);
    assert!(ev.is_empty());
    assert!(c.buffered_bytes() <= 512, "{}", c.buffered_bytes());
    let defaults = Limits::default();
    let mut c = Connection::new(Role::Server, defaults);
    let mut big = cf(false, 2, &vec![0; defaults.max_message - 10]);
    big.extend(cf(false, 0, &[0; 5]));
    for chunk in big.chunks(4096) {
        c.receive(chunk, &mut ev);
    }
    assert!(
        c.buffered_bytes() <= defaults.max_message,
        "{}",
        c.buffered_bytes()
    );
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

#[test]
fn idle_connection_holds_no_buffers() {
    let mut c = server();
    let mut ev = Vec::new();
    c.receive(&cf(true, 1, &[b'a'; 1000]), &mut ev);
    c.receive(&cf(true, 9, b"p"), &mut ev);
    assert_eq!(c.buffered_bytes(), 0);
    let _ = c.take_transmit();
    assert!(!c.has_transmit());
}

// ----- §5.5: control-frame rules for close and pong (not only ping) -----

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

// ----- §7.1.7: failing the connection -----

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

// ----- §5.4 / §5.5.1: close inside a fragmented message -----

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

// ----- §5.3: a client masks its automatic replies -----

/// RFC 6455 §5.3: a client masks every frame, including the pong it queues
/// by itself and its echo of the server's close; a server decodes them.
#[test]
fn rfc6455_5_3_client_masks_its_pong_and_close_reply() {
    let mut c = Connection::new(Role::Client, Limits::default());
    let mut ev = Vec::new();
    c.receive(&raw(true, 0, 9, b"hello", None), &mut ev);
    c.receive(&raw(true, 0, 8, b"\x03\xe8bye", None), &mut ev);
    assert_eq!(ev[0], Event::Ping(b"hello".to_vec()));
    assert!(matches!(
        ev[1],
        Event::Closed {
            code: Some(CloseCode::NORMAL),
            ..
        }
    ));
    let tx = c.take_transmit();
    let (pong, n1) = FrameHeader::decode(&tx).unwrap().unwrap();
    assert_eq!(pong.opcode, OpCode::Pong);
    assert!(pong.mask.is_some(), "pong is masked");
    assert_eq!(tx[1] & 0x80, 0x80);
    let second = n1 + pong.len as usize;
    let (close, n2) = FrameHeader::decode(&tx[second..]).unwrap().unwrap();
    assert_eq!(close.opcode, OpCode::Close);
    assert!(close.mask.is_some(), "close reply is masked");
    assert_eq!(tx[second + 1] & 0x80, 0x80);
    assert_eq!(second + n2 + close.len as usize, tx.len());
    // A server accepts both (it would fail 1002 on an unmasked frame).
    let (ev, stx, st) = run(&tx);
    assert_eq!(
        ev,
        [
            Event::Pong(b"hello".to_vec()),
            Event::Closed {
                code: Some(CloseCode::NORMAL),
                reason: String::new()
            }
        ]
    );
    assert_eq!(stx, [0x88, 2, 0x03, 0xe8]);
    assert_eq!(st, CloseState::Closed);
}

// ----- §5.2: lenient length decoding -----

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

// ----- memory: the up-front reservation is bounded -----

/// A peer announcing 1 MiB and sending 10 bytes makes us hold at most 64 KiB
/// (`MAX_PRERESERVE`), not the announced length.
#[test]
fn announced_length_reserves_at_most_64_kib() {
    let limits = Limits {
        max_frame: 4 << 20,
        max_message: 4 << 20,
        ..Limits::default()
    };
    let mut c = Connection::new(Role::Server, limits);
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0u8; 10]);
    let mut ev = Vec::new();
    c.receive(&frame, &mut ev);
    assert!(ev.is_empty(), "{ev:?}");
    assert!(c.buffered_bytes() >= 10);
    assert!(c.buffered_bytes() <= 64 * 1024, "{}", c.buffered_bytes());
}

// ----- recycled message buffers -----

/// Receives `input` and returns the one message's data.
fn one_message(c: &mut Connection, input: &[u8]) -> Vec<u8> {
    let mut ev = Vec::new();
    c.receive(input, &mut ev);
    match ev.pop() {
        Some(Event::Message { data, .. }) if ev.is_empty() => data,
        other => panic!("expected one message, got {other:?} after {ev:?}"),
    }
}

/// A buffer handed back is used for the next message that fits (same
/// allocation), holds exactly that message's bytes (nothing left over from
/// the previous one), and counts in `buffered_bytes` while it is kept.
#[test]
fn recycled_buffer_is_reused_and_cleared() {
    let mut c = server();
    let first = one_message(&mut c, &cf(true, 0x2, &[7u8; 100]));
    assert_eq!(first, vec![7u8; 100]);
    let (ptr, cap) = (first.as_ptr(), first.capacity());
    c.recycle(first);
    assert_eq!(c.buffered_bytes(), cap);
    // A shorter message, and a text one: same buffer, only its own bytes.
    let second = one_message(&mut c, &cf(true, 0x1, b"hello"));
    assert_eq!(second, b"hello");
    assert_eq!(second.as_ptr(), ptr);
    assert_eq!(c.buffered_bytes(), 0);
    c.recycle(second);
    // A message that does not fit gets its own buffer; the spare stays.
    let big = one_message(&mut c, &cf(true, 0x2, &[9u8; 300]));
    assert_eq!(big, vec![9u8; 300]);
    assert_ne!(big.as_ptr(), ptr);
    assert_eq!(c.buffered_bytes(), cap);
    // The larger of two is kept.
    c.recycle(big);
    assert_eq!(c.buffered_bytes(), 300);
    c.recycle(Vec::with_capacity(10));
    assert_eq!(c.buffered_bytes(), 300);
}

/// The fragmented (general) path and a split frame use the recycled buffer
/// too, with the same events as without recycling.
#[test]
fn recycled_buffer_on_the_general_path() {
    let mut input = cf(false, 0x1, b"frag");
    input.extend(cf(true, 0x0, b"mented"));
    let mut c = server();
    let buf = Vec::with_capacity(64);
    let ptr = buf.as_ptr();
    c.recycle(buf);
    let mut ev = Vec::new();
    for piece in input.chunks(3) {
        c.receive(piece, &mut ev);
    }
    assert_eq!(ev, vec![text("fragmented")]);
    let Some(Event::Message { data, .. }) = ev.pop() else {
        unreachable!()
    };
    assert_eq!(data.as_ptr(), ptr);
}

/// Buffers over `RECYCLE_MAX_CAPACITY` are not kept, so an idle connection
/// never holds more than that.
#[test]
fn recycle_keeps_at_most_the_cap() {
    let mut c = server();
    c.recycle(Vec::with_capacity(RECYCLE_MAX_CAPACITY + 1));
    assert_eq!(c.buffered_bytes(), 0);
    c.recycle(Vec::with_capacity(RECYCLE_MAX_CAPACITY));
    assert_eq!(c.buffered_bytes(), RECYCLE_MAX_CAPACITY);
    let big = one_message(&mut c, &cf(true, 0x2, &vec![1u8; RECYCLE_MAX_CAPACITY + 5]));
    assert_eq!(big.len(), RECYCLE_MAX_CAPACITY + 5);
    c.recycle(big);
    assert_eq!(c.buffered_bytes(), RECYCLE_MAX_CAPACITY);
}

/// A closed or failed connection drops its spare and keeps nothing handed
/// back afterwards.
#[test]
fn closed_connection_drops_its_spare() {
    let mut c = server();
    c.recycle(Vec::with_capacity(100));
    let mut ev = Vec::new();
    c.receive(&cf(true, 0x8, &1000u16.to_be_bytes()), &mut ev);
    assert!(c.is_closed());
    assert_eq!(c.buffered_bytes(), 0);
    c.recycle(Vec::with_capacity(100));
    assert_eq!(c.buffered_bytes(), 0);

    let mut c = server();
    c.recycle(Vec::with_capacity(100));
    c.receive(&cf(true, 0x3, b""), &mut ev);
    assert!(failed_with(&ev, 1002));
    assert_eq!(c.buffered_bytes(), 0);
}

/// Invalid UTF-8 in a whole frame fails 1007 with a recycled buffer as
/// without one, and the recycled buffer is not lost on the way (the fast
/// path puts it back before the general path reports the error).
#[test]
fn recycled_buffer_and_invalid_utf8() {
    let mut c = server();
    c.recycle(Vec::with_capacity(64));
    let mut ev = Vec::new();
    c.receive(&cf(true, 0x1, &[b'a', 0xff, b'b']), &mut ev);
    assert!(failed_with(&ev, 1007), "{ev:?}");
    // Valid text after a recycled round trip is unaffected.
    let mut c = server();
    c.recycle(Vec::with_capacity(64));
    assert_eq!(
        one_message(&mut c, &cf(true, 0x1, "é€".as_bytes())),
        "é€".as_bytes()
    );
}

/// The whole-frame fast path gives exactly what the general path gives:
/// for both roles (masked and unmasked frames, each also in the wrong
/// form), every length class (7-bit, 16-bit, 64-bit, and 16-bit/64-bit
/// forms of small lengths), limits exactly at and one below the length,
/// no fragments allowed, valid and invalid text, a reserved bit, no FIN, a
/// frame one byte short, one followed by a ping, and with a recycled buffer
/// or none. Fed whole, a frame takes the fast path; in two reads split
/// after its first byte, the general one.
#[test]
fn whole_frame_fast_path_matches_general_path() {
    let key = [0xa1, 0xb2, 0xc3, 0xd4];
    let mut frames: Vec<(Role, Vec<u8>, usize)> = Vec::new();
    for role in [Role::Server, Role::Client] {
        let own = match role {
            Role::Server => Some(key),
            Role::Client => None,
        };
        let wrong = match role {
            Role::Server => None,
            Role::Client => Some(key),
        };
        for len in [0, 1, 16, 125, 126, 1000, 0xffff, 0x10000] {
            let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for mask in [own, wrong] {
                for (fin, rsv, op) in [(true, 0, 0x1), (true, 0, 0x2), (false, 0, 0x2)] {
                    frames.push((role, raw(fin, rsv, op, &data, mask), len));
                }
                frames.push((role, raw(true, 0b100, 0x2, &data, mask), len));
            }
        }
        // Invalid UTF-8 at the start, middle and end; a truncated code point.
        for bad in [
            &b"\xffabc"[..],
            b"ab\xc3\x28cd",
            b"abc\xed\xa0\x80",
            b"abc\xe2\x82",
        ] {
            frames.push((role, raw(true, 0, 0x1, bad, own), bad.len()));
        }
        // Small lengths in the 16-bit and 64-bit forms (not minimal, legal).
        let mut h16 = vec![0x82, 126 | own.map_or(0, |_| 0x80), 0, 3];
        let mut h64 = vec![0x81, 127 | own.map_or(0, |_| 0x80), 0, 0, 0, 0, 0, 0, 0, 3];
        for h in [&mut h16, &mut h64] {
            let start = h.len();
            if let Some(k) = own {
                h.extend_from_slice(&k);
            }
            h.extend_from_slice(b"xyz");
            if let Some(k) = own {
                crate::protocol::mask::apply_mask_bytewise(&mut h[start + 4..], k, 0);
            }
        }
        frames.push((role, h16, 3));
        frames.push((role, h64, 3));
        // 64-bit length with the top bit set (the largest: no overflow).
        let mut top = vec![0x82, 127 | own.map_or(0, |_| 0x80)];
        top.extend_from_slice(&[0xff; 8]);
        if let Some(k) = own {
            top.extend_from_slice(&k);
        }
        frames.push((role, top, 1));
    }
    for (role, frame, len) in frames {
        let len = len as u64;
        let mut limit_cases = vec![Limits::default()];
        for l in [len, len.saturating_sub(1)] {
            limit_cases.push(Limits {
                max_frame: l,
                ..Limits::default()
            });
            limit_cases.push(Limits {
                max_message: l as usize,
                ..Limits::default()
            });
        }
        limit_cases.push(Limits {
            max_fragments: 0,
            ..Limits::default()
        });
        limit_cases.push(Limits {
            max_frame: u64::MAX,
            max_message: usize::MAX,
            ..Limits::default()
        });
        for limits in limit_cases {
            for recycle in [false, true] {
                // The frame whole, one byte short, and followed by a ping.
                let mut followed = frame.clone();
                followed.extend(raw(true, 0, 0x9, b"p", role_mask(role, key)));
                for input in [&frame[..], &frame[..frame.len() - 1], &followed[..]] {
                    let feed = |pieces: &[&[u8]]| {
                        let mut c = Connection::new(role, limits);
                        if recycle {
                            c.recycle(Vec::with_capacity(64));
                        }
                        let mut ev = Vec::new();
                        for p in pieces {
                            c.receive(p, &mut ev);
                        }
                        (ev, c.take_transmit(), c.close_state(), c.buffered_bytes())
                    };
                    let whole = feed(&[input]);
                    let split = feed(&[&input[..1], &input[1..]]);
                    let ctx = format!(
                        "{role:?} {limits:?} recycle {recycle} {:02x?}",
                        &input[..input.len().min(12)]
                    );
                    assert_eq!(whole.0, split.0, "events: {ctx}");
                    assert_eq!(whole.2, split.2, "state: {ctx}");
                    if role == Role::Server {
                        // A client masks its replies with fresh keys.
                        assert_eq!(whole.1, split.1, "transmit: {ctx}");
                    }
                    assert_eq!(whole.3, split.3, "buffered: {ctx}");
                }
            }
        }
    }
}

fn role_mask(role: Role, key: [u8; 4]) -> Option<[u8; 4]> {
    match role {
        Role::Server => Some(key),
        Role::Client => None,
    }
}

// ----- property tests -----

fn opcode_strategy() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=125, 126usize..=0xffff, 0x10000usize..0x12000]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// encode → decode round trip over every opcode, length class and mask.
    #[test]
    fn frame_round_trip(op in opcode_strategy(), fin in any::<bool>(), len in len_strategy(),
                        mask in proptest::option::of(any::<[u8; 4]>()), seed in any::<u8>()) {
        // Control frames are valid only unfragmented and up to 125 bytes (§5.5).
        let (fin, len) = if op.is_control() { (true, len % 126) } else { (fin, len) };
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let mut out = Vec::new();
        encode_frame(&mut out, fin, op, &payload, mask);
        let (h, n) = FrameHeader::decode(&out).unwrap().unwrap();
        prop_assert_eq!((h.fin, h.opcode, h.mask, h.len), (fin, op, mask, len as u64));
        let mut body = out[n..].to_vec();
        if let Some(k) = h.mask { crate::protocol::mask::apply_mask(&mut body, k, 0); }
        prop_assert_eq!(body, payload);
    }

    /// Masking twice is the identity, at any phase.
    #[test]
    fn mask_twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..300),
                              key in any::<[u8; 4]>(), offset in 0usize..4) {
        let mut m = data.clone();
        crate::protocol::mask::apply_mask(&mut m, key, offset);
        crate::protocol::mask::apply_mask(&mut m, key, offset);
        prop_assert_eq!(m, data);
    }

    /// Any split of a valid stream gives the same events as feeding it whole.
    #[test]
    fn any_split_gives_same_events(msgs in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 1usize..4), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut stream = Vec::new();
        for (is_text, data, frags) in &msgs {
            let data: Vec<u8> = if *is_text { String::from_utf8_lossy(data).into_owned().into_bytes() } else { data.clone() };
            let step = data.len().div_ceil(*frags).max(1);
            let pieces: Vec<&[u8]> = if data.is_empty() { vec![&data[..]] } else { data.chunks(step).collect() };
            for (i, p) in pieces.iter().enumerate() {
                let op = if i > 0 { 0 } else if *is_text { 1 } else { 2 };
                stream.extend(cf(i + 1 == pieces.len(), op, p));
                if i == 0 { stream.extend(cf(true, 9, b"ping")); }
            }
        }
        let mut whole = server();
        let expected = feed_chunked(&mut whole, &stream, stream.len());
        prop_assert_eq!(expected.iter().filter(|e| matches!(e, Event::Message { .. })).count(), msgs.len());
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut c = server();
        let mut events = Vec::new();
        let mut start = 0;
        for p in points { c.receive(&stream[start..p], &mut events); start = p; }
        c.receive(&stream[start..], &mut events);
        prop_assert_eq!(events, expected);
        prop_assert_eq!(c.take_transmit(), whole.take_transmit());
    }

    /// Arbitrary bytes never panic and never make the connection hold more
    /// than the limits allow.
    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                                 chunk in 1usize..64) {
        let limits = Limits { max_frame: 256, max_message: 512, max_fragments: 8 };
        let mut c = Connection::new(Role::Server, limits);
        let mut events = Vec::new();
        for piece in data.chunks(chunk) {
            c.receive(piece, &mut events);
            // The message limit plus one control frame's payload (125 bytes,
            // held in a Vec whose capacity may round up to 128).
            prop_assert!(c.buffered_bytes() <= 512 + 128, "{}", c.buffered_bytes());
        }
        for e in &events {
            if let Event::Message { data, .. } = e { prop_assert!(data.len() <= 512); }
        }
    }
}

// ----- RFC 7692: permessage-deflate -----

mod deflate {
    use super::*;
    use crate::protocol::deflate::DeflateParams;

    fn params(takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn pair(takeover: bool, limits: Limits) -> (Connection, Connection) {
        let mut client = Connection::new(Role::Client, limits);
        let mut server = Connection::new(Role::Server, limits);
        client.set_deflate(params(takeover));
        server.set_deflate(params(takeover));
        (client, server)
    }

    /// RFC 7692 §6, §7.2: messages compressed by one end inflate at the
    /// other, with and without context takeover, at every split.
    #[test]
    fn rfc7692_7_2_round_trip_both_ways() {
        for takeover in [false, true] {
            let (mut client, mut server) = pair(takeover, Limits::default());
            let texts = ["Hello", "Hello", "", "κόσμε κόσμε κόσμε κόσμε"];
            for t in texts {
                client
                    .send_message(MessageKind::Text, t.as_bytes())
                    .unwrap();
            }
            let wire = client.take_transmit();
            assert_eq!(wire[0] & 0x40, 0x40, "RSV1 marks the compressed message");
            for split in 0..wire.len() {
                let (_, mut s) = pair(takeover, Limits::default());
                let mut ev = Vec::new();
                s.receive(&wire[..split], &mut ev);
                s.receive(&wire[split..], &mut ev);
                let got: Vec<Event> = texts.iter().map(|t| text(t)).collect();
                assert_eq!(ev, got, "takeover {takeover} split {split}");
            }
            let mut ev = Vec::new();
            server.receive(&wire, &mut ev);
            server
                .send_message(MessageKind::Binary, &[7u8; 5000])
                .unwrap();
            let back = server.take_transmit();
            assert!(
                back.len() < 100,
                "5000 equal bytes compress: {}",
                back.len()
            );
            client.receive(&back, &mut ev);
            assert_eq!(
                ev.last(),
                Some(&Event::Message {
                    kind: MessageKind::Binary,
                    data: vec![7u8; 5000]
                })
            );
        }
    }

    /// The limit applies to the inflated size: a bomb fails with 1009 and
    /// the memory is released.
    #[test]
    fn rfc7692_inflated_size_is_limited() {
        let limits = Limits {
            max_message: 64 * 1024,
            ..Limits::default()
        };
        let (mut client, mut server) = pair(false, Limits::default());
        client
            .send_message(MessageKind::Binary, &vec![0u8; 8 << 20])
            .unwrap();
        let wire = client.take_transmit();
        assert!(wire.len() < 20_000);
        let (_, mut s) = pair(false, limits);
        let mut ev = Vec::new();
        s.receive(&wire, &mut ev);
        assert!(failed_with(&ev, 1009), "{ev:?}");
        assert_eq!(s.buffered_bytes(), 0);
        drop(server.take_transmit());
    }

    /// RFC 7692 §6.1: RSV1 only on the first frame of a data message.
    #[test]
    fn rfc7692_6_1_rsv1_on_continuation_or_control_fails() {
        let (_, mut s) = pair(false, Limits::default());
        let mut input = cf(false, 1, b"a");
        input.extend(raw(true, 0b100, 0, b"b", Some([1, 2, 3, 4])));
        let mut ev = Vec::new();
        s.receive(&input, &mut ev);
        assert!(failed_with(&ev, 1002));
        let (_, mut s) = pair(false, Limits::default());
        let mut ev = Vec::new();
        s.receive(&raw(true, 0b100, 9, b"", Some([1, 2, 3, 4])), &mut ev);
        assert!(failed_with(&ev, 1002));
        // RSV2/RSV3 stay reserved.
        let (_, mut s) = pair(false, Limits::default());
        let mut ev = Vec::new();
        s.receive(&raw(true, 0b010, 1, b"x", Some([1, 2, 3, 4])), &mut ev);
        assert!(failed_with(&ev, 1002));
    }

    /// RFC 7692 §8: data that does not inflate fails the connection (1007).
    #[test]
    fn rfc7692_8_corrupt_data_fails_1007() {
        let (_, mut s) = pair(false, Limits::default());
        let mut ev = Vec::new();
        s.receive(
            &raw(
                true,
                0b100,
                2,
                &[0xff, 0xff, 0xff, 0xff],
                Some([1, 2, 3, 4]),
            ),
            &mut ev,
        );
        assert!(failed_with(&ev, 1007), "{ev:?}");
    }

    /// Invalid UTF-8 inside a compressed text message fails (1007).
    #[test]
    fn compressed_text_is_utf8_checked() {
        let (mut client, _) = pair(false, Limits::default());
        // Compress invalid UTF-8 as if it were binary, then relabel it text.
        client
            .send_message(MessageKind::Binary, b"ok \xff\xfe bad")
            .unwrap();
        let mut wire = client.take_transmit();
        wire[0] = (wire[0] & 0xf0) | 0x1;
        let (_, mut s) = pair(false, Limits::default());
        let mut ev = Vec::new();
        s.receive(&wire, &mut ev);
        assert!(failed_with(&ev, 1007), "{ev:?}");
    }

    /// Found by the connection_deflate fuzz target: a compressed message
    /// that passes the limit (or holds bad UTF-8) and then turns corrupt must
    /// fail the same way whatever the read split: stream order decides.
    #[test]
    fn inflate_failures_do_not_depend_on_the_split() {
        let limits = Limits {
            max_message: 8192,
            ..Limits::default()
        };
        let compress = |data: &[u8]| {
            let mut d = crate::protocol::deflate::Deflater::new(15).unwrap();
            let mut c = Vec::new();
            d.compress(data, &mut c);
            c
        };
        let cases: [(u8, Vec<u8>); 2] = [
            // Too big (10 KiB of zeros, limit 8 KiB), then garbage.
            (2, [compress(&[0u8; 10_240]), vec![0xff; 16]].concat()),
            // Invalid UTF-8 in a text message, then garbage.
            (
                1,
                [compress(b"valid so far \xff\xfe then not"), vec![0xff; 16]].concat(),
            ),
        ];
        for (opcode, payload) in cases {
            let frame = raw(true, 0b100, opcode, &payload, Some([1, 2, 3, 4]));
            let (_, mut whole) = pair(false, limits);
            let mut expected = Vec::new();
            whole.receive(&frame, &mut expected);
            for chunk in [1, 2, 7, 64] {
                let (_, mut s) = pair(false, limits);
                let ev = feed_chunked(&mut s, &frame, chunk);
                assert_eq!(ev, expected, "opcode {opcode} chunk {chunk}");
                assert_eq!(s.take_transmit(), whole.take_transmit());
                whole = pair(false, limits).1;
                whole.receive(&frame, &mut Vec::new());
            }
            assert!(
                matches!(expected.last(), Some(Event::Failed(_))),
                "{expected:?}"
            );
        }
    }

    /// Without negotiation RSV1 stays a protocol error.
    #[test]
    fn rsv1_without_negotiation_fails() {
        let (ev, _, _) = run(&raw(true, 0b100, 1, b"x", Some([1, 2, 3, 4])));
        assert!(failed_with(&ev, 1002));
    }
}
