//! What the `connection_server` and `connection_deflate` targets share: the
//! input format, driving a server `Connection` through `receive` and
//! `receive_message` in fuzzer-chosen reads with the per-read invariants,
//! and the checks on the events and on the transmitted frames.
//!
//! Not a target of its own: each of those two includes it with `mod harness;`.

use std::sync::OnceLock;

use wsbroadcaster::protocol::close::parse_close_payload;
use wsbroadcaster::protocol::frame::{FrameHeader, OpCode};
use wsbroadcaster::protocol::{Connection, Event, Limits, MessageKind};

pub const LIMITS: Limits = Limits {
    max_frame: 4096,
    max_message: 8192,
    max_fragments: 16,
};

/// `WSFUZZ_STRICT=1`: compare exactly where a known, reported discrepancy
/// is otherwise normalized away (docs/fuzzing.md, "Findings").
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("WSFUZZ_STRICT").is_some_and(|v| v != "0"))
}

/// Splits `[k] [k × u16 big-endian read sizes] [stream…]` (`k = byte % 16`)
/// into the read sizes (the whole stream when there are none) and the
/// stream; `None` when the input is too short.
pub fn read_sizes_and_stream(data: &[u8]) -> Option<(Vec<usize>, &[u8])> {
    let (&k, rest) = data.split_first()?;
    let k = (k % 16) as usize;
    if rest.len() < 2 * k {
        return None;
    }
    let (size_bytes, stream) = rest.split_at(2 * k);
    let mut sizes: Vec<usize> = size_bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as usize)
        .collect();
    if sizes.is_empty() {
        sizes.push(stream.len());
    }
    Some((sizes, stream))
}

/// What a target does with each message `receive_message` returns, before
/// the next call (e.g. hand its buffer back with `Connection::recycle`).
pub type AfterMessage = fn(&mut Connection, &[u8]);

/// Feeds one read through `receive_message` until it is used up, checking
/// that each call stops exactly after a complete data message.
pub fn receive_by_message(
    conn: &mut Connection,
    mut input: &[u8],
    events: &mut Vec<Event>,
    after_message: AfterMessage,
) {
    while !input.is_empty() {
        let before = events.len();
        let n = conn.receive_message(input, events);
        assert!(n <= input.len(), "consumed {n} of {}", input.len());
        let new = &events[before..];
        let messages = new
            .iter()
            .filter(|e| matches!(e, Event::Message { .. }))
            .count();
        assert!(messages <= 1, "{messages} messages in one receive_message");
        if n < input.len() {
            assert!(n > 0, "no progress");
            assert!(
                matches!(new.last(), Some(Event::Message { .. })),
                "stopped early without a message: {new:?}"
            );
            assert!(!conn.is_closed());
        } else if messages == 1 && !conn.is_closed() {
            // Input used up: the message, if any, must have been the last
            // thing in it.
            assert!(matches!(new.last(), Some(Event::Message { .. })));
        }
        if let Some(Event::Message { data, .. }) = new.last() {
            after_message(conn, data);
        }
        input = &input[n..];
    }
}

/// Feeds `stream` to `conn` in reads of the given sizes (cycled), through
/// `receive_message` (with `after_message`) when `by_message`, and checks
/// the per-read invariants, `buffered_bytes()` within `buffer_bound` among
/// them; returns the events and the transmitted bytes.
pub fn drive(
    mut conn: Connection,
    buffer_bound: usize,
    stream: &[u8],
    sizes: &[usize],
    by_message: Option<AfterMessage>,
) -> (Vec<Event>, Vec<u8>) {
    let mut events = Vec::new();
    let mut tx = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = sizes[i % sizes.len()].max(1).min(stream.len() - pos);
        i += 1;
        let before = events.len();
        let was_closed = conn.is_closed();
        if let Some(after_message) = by_message {
            receive_by_message(&mut conn, &stream[pos..pos + n], &mut events, after_message);
        } else {
            conn.receive(&stream[pos..pos + n], &mut events);
        }
        pos += n;
        if was_closed {
            assert_eq!(events.len(), before, "events after the connection closed");
        }
        let buffered = conn.buffered_bytes();
        assert!(
            buffered <= buffer_bound,
            "buffered_bytes {buffered} > {buffer_bound}"
        );
        if events[before..]
            .iter()
            .any(|e| matches!(e, Event::Failed(_) | Event::Closed { .. }))
        {
            assert!(conn.is_closed());
            assert!(!conn.can_send());
        }
        // Drain as a server loop would, at arbitrary points.
        if i % 2 == 0 {
            tx.extend(conn.take_transmit());
        }
    }
    tx.extend(conn.take_transmit());
    assert!(!conn.has_transmit());
    if conn.is_closed() {
        assert_eq!(
            conn.buffered_bytes(),
            0,
            "a closed connection holds no buffers"
        );
    }
    (events, tx)
}

/// Per-event invariants: every message at most `max_message` bytes (after
/// inflation, with deflate), text UTF-8, control payloads at most 125
/// bytes, nothing after `Closed` or `Failed`.
pub fn check_events(events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Message { kind, data } => {
                assert!(
                    data.len() <= LIMITS.max_message,
                    "a message of {} bytes, past the limit",
                    data.len()
                );
                if *kind == MessageKind::Text {
                    assert!(std::str::from_utf8(data).is_ok(), "text is not UTF-8");
                }
            }
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Closed { .. } | Event::Failed(_) => {
                assert_eq!(i + 1, events.len(), "events after {e:?}");
            }
        }
    }
}

/// Decodes the transmitted bytes as server frames and checks them against
/// the events.
pub fn check_transmit(tx: &[u8], events: &[Event]) {
    let mut pings = events.iter().filter_map(|e| match e {
        Event::Ping(p) => Some(p),
        _ => None,
    });
    let mut pos = 0;
    let mut close = None;
    while pos < tx.len() {
        assert!(close.is_none(), "a frame after the close frame");
        let (h, n) = FrameHeader::decode(&tx[pos..])
            .expect("transmit decodes")
            .expect("transmit holds whole frames");
        assert!(h.mask.is_none(), "server frames are not masked");
        assert!(h.fin && h.rsv == 0, "{h:?}");
        let start = pos + n;
        let end = start + h.len as usize;
        assert!(end <= tx.len(), "truncated frame in transmit");
        let payload = &tx[start..end];
        pos = end;
        match h.opcode {
            OpCode::Pong => assert_eq!(Some(&payload.to_vec()), pings.next(), "pong payload"),
            OpCode::Close => {
                let frame = parse_close_payload(payload).expect("our close frame is valid");
                close = Some(frame.code.map(|c| c.0));
            }
            other => panic!("server sent {other:?} unprompted"),
        }
    }
    assert!(pings.next().is_none(), "a ping without its pong");
    let expected_close = match events.last() {
        Some(Event::Failed(err)) => Some(Some(err.close_code().0)),
        Some(Event::Closed { code, .. }) => Some(code.map(|c| c.0)),
        _ => None,
    };
    assert_eq!(close, expected_close, "close frame vs last event");
}
