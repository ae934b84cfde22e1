//! Recycled message buffers (`Connection::recycle`).

use super::helpers::*;
use crate::protocol::connection::{Connection, Event, RECYCLE_MAX_CAPACITY};

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
