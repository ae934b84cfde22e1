//! RFC 6455 §5.1 / §5.3: who masks, who must not, and fresh keys.

use super::helpers::*;
use crate::protocol::close::CloseCode;
use crate::protocol::connection::{CloseState, Connection, Event, MessageKind, Role};
use crate::protocol::frame::{FrameHeader, OpCode};
use crate::protocol::limits::Limits;

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
