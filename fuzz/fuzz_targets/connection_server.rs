//! A server `Connection` fed arbitrary client bytes in fuzzer-chosen reads.
//!
//! Input format (simple, so seeds can be written by hand):
//! `[k] [k × u16 big-endian read sizes] [stream…]` with `k = byte % 16`.
//! The stream is fed in reads of those sizes (cycled; a size of 0 counts as
//! 1), once through `receive` and once through `receive_message` (called
//! until each read is used up, as an echo server does, handing a copy of
//! each message's buffer back with `Connection::recycle`), and also whole, byte
//! by byte (short streams) and to a byte-at-a-time reference decoder written
//! here from RFC 6455.
//!
//! Invariants:
//! - never panics;
//! - split independence: every way of feeding gives the same events and the
//!   same transmitted bytes;
//! - the events equal the reference decoder's (messages, pings, pongs,
//!   close), and a failure has the close code the reference expects;
//! - `buffered_bytes()` stays within `max_message` + 128 (see `BUFFER_BOUND`);
//! - `receive_message` stops right after each complete data message and
//!   nowhere else (before the input is used up and the connection open);
//! - every message is at most `max_message` bytes, text is UTF-8;
//! - nothing follows `Failed` or `Closed`, and the connection then reports
//!   `is_closed()`;
//! - the transmit bytes are valid unmasked, unfragmented server frames: one
//!   pong per ping with the same payload, then at most one close (last), with
//!   the code the failure implies or the peer's code echoed.
//!
//! With `WSFUZZ_STRICT=1` a check that currently fails is enabled (see
//! docs/fuzzing.md, "Findings"): exact equality of
//! `Failed(ControlFrameTooLong(n))` across splits.

#![no_main]

mod harness;

use harness::{LIMITS, check_events, check_transmit, read_sizes_and_stream, strict};
use libfuzzer_sys::fuzz_target;
use wsbroadcaster::protocol::connection::RECYCLE_MAX_CAPACITY;
use wsbroadcaster::protocol::{Connection, Event, MessageKind, ProtocolError, Role};

/// What `buffered_bytes()` may reach: the message buffer is reserved at
/// most `min(frame length, 64 KiB)` up front and grows geometrically but
/// clamped to `max_message`; a control payload (≤ 125 bytes) sits in a `Vec`
/// growing 8, 16, 32, 64, 128, so its capacity is at most 128. Both can be
/// held at once (a ping between two fragments).
/// A buffer handed back with `recycle` adds at most `RECYCLE_MAX_CAPACITY`.
const BUFFER_BOUND: usize = LIMITS.max_message + 128 + RECYCLE_MAX_CAPACITY;

// ----- the reference decoder -----

/// What the reference decoder reports. Failures carry only the close code:
/// the order in which one header breaks several rules is the implementation's
/// choice, but every 1002 rule is checked before every 1009 limit.
#[derive(Debug, PartialEq, Eq)]
enum RefEvent {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Closed(Option<u16>, String),
    Failed(u16),
}

enum RefState {
    Header(Vec<u8>),
    Payload {
        opcode: u8,
        fin: bool,
        key: [u8; 4],
        len: usize,
        got: Vec<u8>,
    },
    Done,
}

/// A straightforward byte-at-a-time RFC 6455 server-side decoder, written
/// independently of `src/protocol`. It checks each rule when the
/// implementation can first see it: opcode and control-frame rules on the
/// second header byte, the 64-bit length's top bit on the tenth, the rest
/// once the whole header (mask key included) is in.
struct Reference {
    state: RefState,
    /// The message being assembled: kind, data, frames so far.
    message: Option<(MessageKind, Vec<u8>, u32)>,
    /// Bytes of an unfinished UTF-8 sequence of the text message.
    utf8_pending: Vec<u8>,
    events: Vec<RefEvent>,
}

fn utf8_status(bytes: &[u8]) -> Result<bool, ()> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(true),
        Err(e) if e.error_len().is_none() => Ok(false),
        Err(_) => Err(()),
    }
}

impl Reference {
    fn new() -> Self {
        Reference {
            state: RefState::Header(Vec::new()),
            message: None,
            utf8_pending: Vec::new(),
            events: Vec::new(),
        }
    }

    fn fail(&mut self, code: u16) {
        self.events.push(RefEvent::Failed(code));
        self.state = RefState::Done;
    }

    fn run(mut self, stream: &[u8]) -> Vec<RefEvent> {
        for &b in stream {
            self.byte(b);
            if matches!(self.state, RefState::Done) {
                break;
            }
        }
        self.events
    }

    fn byte(&mut self, b: u8) {
        match &mut self.state {
            RefState::Done => {}
            RefState::Header(h) => {
                h.push(b);
                let h = h.clone();
                self.header_byte(&h);
            }
            RefState::Payload { key, got, .. } => {
                let i = got.len();
                got.push(b ^ key[i % 4]);
                self.payload_byte();
            }
        }
    }

    fn header_byte(&mut self, h: &[u8]) {
        if h.len() < 2 {
            return;
        }
        let fin = h[0] & 0x80 != 0;
        let rsv = h[0] & 0x70;
        let opcode = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        let len7 = (h[1] & 0x7f) as usize;
        let control = opcode >= 8;
        if h.len() == 2 {
            if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
                return self.fail(1002);
            }
            if control && (!fin || len7 > 125) {
                return self.fail(1002);
            }
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if len7 == 127 && h.len() == 10 && h[2] & 0x80 != 0 {
            return self.fail(1002);
        }
        let need = 2 + ext + if masked { 4 } else { 0 };
        if h.len() < need {
            return;
        }
        let mut len: u64 = 0;
        for &x in &h[2..2 + ext] {
            len = (len << 8) | x as u64;
        }
        if ext == 0 {
            len = len7 as u64;
        }
        // The rest of the rules, all 1002 before the 1009 limits.
        if rsv != 0 || !masked {
            return self.fail(1002);
        }
        if !control {
            match (opcode, &self.message) {
                (0, None) => return self.fail(1002),
                (1 | 2, Some(_)) => return self.fail(1002),
                _ => {}
            }
            if len > LIMITS.max_frame {
                return self.fail(1009);
            }
            let so_far = self.message.as_ref().map_or(0, |m| m.1.len());
            if so_far as u64 + len > LIMITS.max_message as u64 {
                return self.fail(1009);
            }
            let frames = self.message.as_ref().map_or(0, |m| m.2);
            if frames >= LIMITS.max_fragments {
                return self.fail(1009);
            }
            if opcode != 0 {
                let kind = if opcode == 1 {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.message = Some((kind, Vec::new(), 0));
                self.utf8_pending.clear();
            }
            if let Some(m) = self.message.as_mut() {
                m.2 += 1;
            }
        }
        let key = [h[need - 4], h[need - 3], h[need - 2], h[need - 1]];
        self.state = RefState::Payload {
            opcode,
            fin,
            key,
            len: len as usize,
            got: Vec::new(),
        };
        if len == 0 {
            self.end_frame();
        }
    }

    fn payload_byte(&mut self) {
        let RefState::Payload {
            opcode, len, got, ..
        } = &self.state
        else {
            unreachable!()
        };
        let (opcode, done, last) = (*opcode, got.len() == *len, *got.last().unwrap());
        if opcode < 8 {
            let m = self.message.as_mut().expect("data frame without a message");
            if m.0 == MessageKind::Text {
                self.utf8_pending.push(last);
                match utf8_status(&self.utf8_pending) {
                    Ok(true) => self.utf8_pending.clear(),
                    Ok(false) => {}
                    Err(()) => return self.fail(1007),
                }
            }
        }
        if done {
            self.end_frame();
        }
    }

    fn end_frame(&mut self) {
        let RefState::Payload {
            opcode, fin, got, ..
        } = std::mem::replace(&mut self.state, RefState::Header(Vec::new()))
        else {
            unreachable!()
        };
        match opcode {
            0..=2 => {
                let m = self.message.as_mut().expect("data frame without a message");
                m.1.extend_from_slice(&got);
                if fin {
                    let (kind, data, _) = self.message.take().unwrap();
                    if kind == MessageKind::Text && !self.utf8_pending.is_empty() {
                        return self.fail(1007);
                    }
                    self.events.push(RefEvent::Message(kind, data));
                }
            }
            9 => self.events.push(RefEvent::Ping(got)),
            10 => self.events.push(RefEvent::Pong(got)),
            8 => {
                if got.is_empty() {
                    self.events.push(RefEvent::Closed(None, String::new()));
                    self.state = RefState::Done;
                    return;
                }
                if got.len() == 1 {
                    return self.fail(1002);
                }
                let code = u16::from_be_bytes([got[0], got[1]]);
                // RFC 6455 §7.4.1/§7.4.2 and the IANA registry.
                let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
                if !valid {
                    return self.fail(1002);
                }
                match String::from_utf8(got[2..].to_vec()) {
                    Ok(reason) => {
                        self.events.push(RefEvent::Closed(Some(code), reason));
                        self.state = RefState::Done;
                    }
                    Err(_) => self.fail(1007),
                }
            }
            _ => unreachable!(),
        }
    }
}

// ----- driving the implementation -----

/// Feeds `stream` to a fresh server connection (see [`harness::drive`]);
/// through `receive_message`, each message's buffer is handed back with
/// `recycle`: recycled buffers must not change any later event.
fn drive(stream: &[u8], sizes: &[usize], by_message: bool) -> (Vec<Event>, Vec<u8>) {
    let conn = Connection::new(Role::Server, LIMITS);
    let recycle: harness::AfterMessage = |conn, data| conn.recycle(data.to_vec());
    harness::drive(
        conn,
        BUFFER_BOUND,
        stream,
        sizes,
        by_message.then_some(recycle),
    )
}

/// Makes events comparable across splits where a known, reported
/// discrepancy would otherwise stop the run (see docs/fuzzing.md).
fn normalize(mut events: Vec<Event>) -> Vec<Event> {
    if !strict() {
        for e in &mut events {
            if let Event::Failed(ProtocolError::ControlFrameTooLong(n)) = e {
                *n = 0;
            }
        }
    }
    events
}

fn to_ref(e: &Event) -> RefEvent {
    match e {
        Event::Message { kind, data } => RefEvent::Message(*kind, data.clone()),
        Event::Ping(p) => RefEvent::Ping(p.clone()),
        Event::Pong(p) => RefEvent::Pong(p.clone()),
        Event::Closed { code, reason } => RefEvent::Closed(code.map(|c| c.0), reason.clone()),
        Event::Failed(err) => RefEvent::Failed(err.close_code().0),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((sizes, stream)) = read_sizes_and_stream(data) else {
        return;
    };

    let (whole, whole_tx) = drive(stream, &[stream.len()], false);
    let (split, split_tx) = drive(stream, &sizes, false);
    assert_eq!(
        normalize(split),
        normalize(whole.clone()),
        "split {sizes:?} vs whole"
    );
    assert_eq!(split_tx, whole_tx, "transmit: split vs whole");
    let (by_message, by_message_tx) = drive(stream, &sizes, true);
    assert_eq!(
        normalize(by_message),
        normalize(whole.clone()),
        "receive_message {sizes:?} vs whole"
    );
    assert_eq!(
        by_message_tx, whole_tx,
        "transmit: receive_message vs whole"
    );
    if stream.len() <= 1024 {
        let (bytewise, bytewise_tx) = drive(stream, &[1], false);
        assert_eq!(
            normalize(bytewise),
            normalize(whole.clone()),
            "byte by byte vs whole"
        );
        assert_eq!(bytewise_tx, whole_tx, "transmit: byte by byte vs whole");
    }

    check_events(&whole);
    check_transmit(&whole_tx, &whole);

    // The reference decoder agrees.
    let expected = Reference::new().run(stream);
    let got: Vec<RefEvent> = whole.iter().map(to_ref).collect();
    assert_eq!(got, expected, "implementation vs reference");
});
