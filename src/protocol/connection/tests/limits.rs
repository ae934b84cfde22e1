//! Limits (1009) and memory: frame, message and fragment limits, and the
//! bounds on what a connection holds.

use super::helpers::*;
use crate::protocol::connection::{Connection, Role};
use crate::protocol::limits::Limits;

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
