//! Helpers shared by the connection tests: frame builders, the chopping
//! runner and event/transmit checks. Helpers used by one file only live in
//! that file.

use crate::protocol::close::CloseCode;
use crate::protocol::connection::{CloseState, Connection, Event, MessageKind, Role};
use crate::protocol::frame::{FrameHeader, OpCode};
use crate::protocol::limits::Limits;

/// A masked frame as a client sends it.
pub(super) fn cf(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw(fin, 0, opcode, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

/// Any frame, including illegal ones.
pub(super) fn raw(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
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

pub(super) fn server() -> Connection {
    Connection::new(Role::Server, Limits::default())
}

/// Feeds `input` in the given chunk sizes (cycled) and returns the events.
pub(super) fn feed_chunked(conn: &mut Connection, input: &[u8], chunk: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        conn.receive(piece, &mut events);
    }
    events
}

/// The chopping runner: the same bytes fed whole, byte by byte, and split at
/// every point give the same events and the same transmitted bytes (modulo
/// nothing: servers do not mask, so bytes are deterministic).
pub(super) fn run(input: &[u8]) -> (Vec<Event>, Vec<u8>, CloseState) {
    run_with(Limits::default(), input)
}

pub(super) fn run_with(limits: Limits, input: &[u8]) -> (Vec<Event>, Vec<u8>, CloseState) {
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

pub(super) fn text(s: &str) -> Event {
    Event::Message {
        kind: MessageKind::Text,
        data: s.as_bytes().to_vec(),
    }
}

pub(super) fn failed_with(events: &[Event], code: u16) -> bool {
    matches!(events.last(), Some(Event::Failed(e)) if e.close_code() == CloseCode(code))
}

/// The close frame a server sends: code and reason.
pub(super) fn close_frame_code(tx: &[u8]) -> Option<u16> {
    let (h, n) = FrameHeader::decode(tx).ok()??;
    (h.opcode == OpCode::Close && h.len >= 2).then(|| u16::from_be_bytes([tx[n], tx[n + 1]]))
}
