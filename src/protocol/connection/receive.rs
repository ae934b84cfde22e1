//! The receive path: frame headers, payload streaming, message assembly,
//! control frames.

use super::{Assembly, CloseState, Connection, Event, MessageKind, Role, Rx};
use crate::protocol::close::parse_close_payload;
use crate::protocol::deflate::InflateError;
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use crate::protocol::mask::extend_masked;

/// How much of an announced message is reserved up front: enough to avoid
/// regrowth for ordinary messages, small enough that a peer announcing a
/// huge frame and then trickling cannot make us hold memory it never sends.
const MAX_PRERESERVE: u64 = 64 * 1024;

impl Connection {
    /// Feeds bytes received from the peer, appending what they meant to
    /// `events`. Any split of the same byte stream gives the same events.
    ///
    /// Incomplete input is kept (a header in a 14-byte array, payload bytes in
    /// the message being assembled) and completed by the next call; nothing is
    /// parsed twice. After the connection is closed, input is ignored.
    ///
    /// This consumes everything; a driver that answers messages (an echo
    /// server) uses [`Connection::receive_message`] instead, so its answer is
    /// queued before any later frame in the same read is processed.
    pub fn receive(&mut self, mut input: &[u8], events: &mut Vec<Event>) {
        while !input.is_empty() {
            let n = self.receive_message(input, events);
            input = &input[n..];
        }
    }

    /// Like [`Connection::receive`], but stops right after the first complete
    /// data message and returns how many bytes of `input` it consumed; call
    /// again with the rest once the message is handled.
    ///
    /// Why: a peer may send a message and, in the same TCP segment, a frame
    /// that fails the connection (or a close). The message came first, so its
    /// reply must go out before our close frame (Autobahn 3.2, 4.1.3, 5.15,
    /// 7.1.6 check exactly this ordering).
    #[inline]
    pub fn receive_message(&mut self, input: &[u8], events: &mut Vec<Event>) -> usize {
        match self.whole_frame(input, events) {
            Some(n) => n,
            None => self.receive_general(input, events),
        }
    }

    /// The streaming state machine behind [`Connection::receive_message`]:
    /// headers and payloads in any pieces, fragments, control frames,
    /// errors. Out of line, so the whole-frame fast path stays small.
    #[inline(never)]
    fn receive_general(&mut self, input: &[u8], events: &mut Vec<Event>) -> usize {
        let mut pos = 0;
        self.message_done = false;
        while pos < input.len() && self.state != CloseState::Closed {
            let rest = &input[pos..];
            pos += match self.rx {
                Rx::Header { len: 0 } => {
                    // `receive_message` offered the start of `input` to the
                    // fast path already; a later frame gets its own chance.
                    if pos > 0 {
                        if let Some(n) = self.whole_frame(rest, events) {
                            return pos + n;
                        }
                    }
                    // The whole header is usually in this read: decode it
                    // in place.
                    let decoded = FrameHeader::decode(rest);
                    self.header_result(decoded, rest, 0, events)
                }
                Rx::Header { len } => self.read_header(rest, len as usize, events),
                Rx::Payload { .. } => self.read_payload(rest, events),
            };
            if self.message_done {
                self.message_done = false;
                return pos;
            }
        }
        // Closed: the rest of the input is ignored (RFC 6455 §5.5.1).
        input.len()
    }

    /// The common case in one step: `input` starts with a complete frame
    /// that is a whole message (FIN set, RSV bits 0, text or binary), masked
    /// as the role requires, within the limits, while the connection is not
    /// closed and no frame or message is in progress. The header is decoded
    /// here for exactly that shape, and the payload is unmasked straight
    /// into the event's buffer (a recycled one or one sized exactly),
    /// without the streaming state machine. Returns the bytes used, or
    /// `None` (having changed nothing) for anything else, which then takes
    /// the general path: so the events are the same however the input was
    /// split, and every error is decided by the general path alone.
    #[inline(always)]
    fn whole_frame(&mut self, input: &[u8], events: &mut Vec<Event>) -> Option<usize> {
        let [b0, b1, ..] = *input else {
            return None;
        };
        let kind = match b0 {
            0x81 => MessageKind::Text,
            0x82 => MessageKind::Binary,
            _ => return None,
        };
        // RFC 6455 §5.1: a server takes only masked frames, a client only
        // unmasked ones. With the expected MASK bit cleared, what is left
        // must be a 7-bit length code.
        let masked = self.role == Role::Server;
        let (len, mut used) = match b1 ^ if masked { 0x80 } else { 0 } {
            n @ 0..=125 => (u64::from(n), 2),
            126 => (u64::from(u16::from_be_bytes(*input[2..].first_chunk()?)), 4),
            127 => {
                let len = u64::from_be_bytes(*input[2..].first_chunk()?);
                if len >> 63 != 0 {
                    return None; // the general path fails it (§5.2)
                }
                (len, 10)
            }
            _ => return None,
        };
        let key = if masked {
            let key: [u8; 4] = *input[used..].first_chunk()?;
            used += 4;
            Some(key)
        } else {
            None
        };
        // No overflow: `len` < 2^63.
        let end = used as u64 + len;
        if end > input.len() as u64
            || len > self.limits.max_frame
            || len > self.limits.max_message as u64
            || self.limits.max_fragments == 0
            || !matches!(self.rx, Rx::Header { len: 0 })
            || self.message.is_some()
            || self.state == CloseState::Closed
        {
            return None;
        }
        let payload = &input[used..end as usize];
        // The buffer the general path would take (`message_buffer`).
        let recycled = !payload.is_empty() && self.spare.capacity() >= payload.len();
        // The event goes in first, and the buffer and then the payload go
        // into it where it lies. Built after the copy (the obvious order),
        // the event and the buffer went through the stack and were read
        // back as 16-byte words just written with narrower stores, which
        // the CPU cannot forward: ~25 % more CPU time per 16-byte frame
        // (docs/benchmarks.md).
        events.push(Event::Message {
            kind,
            data: Vec::new(),
        });
        let Some(Event::Message { data, .. }) = events.last_mut() else {
            unreachable!("the event just pushed")
        };
        if recycled {
            std::mem::swap(data, &mut self.spare);
        } else {
            *data = Vec::with_capacity(payload.len());
        }
        match key {
            Some(key) => extend_masked(data, payload, key, 0),
            None => data.extend_from_slice(payload),
        }
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            // The general path reports it at the first bad byte, with the
            // same outcome; the recycled buffer goes back unchanged.
            if let Some(Event::Message { mut data, .. }) = events.pop() {
                if recycled {
                    data.clear();
                    self.spare = data;
                }
            }
            return None;
        }
        Some(end as usize)
    }

    /// Reads the rest of a header of which `have` bytes (more than 0) are
    /// kept; returns how many bytes of `input` were used.
    fn read_header(&mut self, input: &[u8], have: usize, events: &mut Vec<Event>) -> usize {
        let take = (MAX_HEADER_LEN - have).min(input.len());
        self.header[have..have + take].copy_from_slice(&input[..take]);
        let decoded =
            FrameHeader::decode(&self.header[..have + take]).map(|r| r.map(|(h, n)| (h, n - have)));
        self.header_result(decoded, input, have, events)
    }

    /// Acts on a header decoded from `have` kept bytes and the start of
    /// `input`: fail, keep the bytes for more, or start the frame. Returns
    /// how many bytes of `input` were used.
    fn header_result(
        &mut self,
        decoded: Result<Option<(FrameHeader, usize)>, ProtocolError>,
        input: &[u8],
        have: usize,
        events: &mut Vec<Event>,
    ) -> usize {
        match decoded {
            Err(e) => {
                self.fail(e, events);
                input.len()
            }
            Ok(None) => {
                // Not enough for a header: keep what we have (never more
                // than 14 bytes, since a full header would have decoded).
                let take = (MAX_HEADER_LEN - have).min(input.len());
                if have == 0 {
                    self.header[..take].copy_from_slice(&input[..take]);
                }
                self.rx = Rx::Header {
                    len: (have + take) as u8,
                };
                take
            }
            Ok(Some((header, used))) => {
                self.start_frame(header, events);
                used
            }
        }
    }

    /// Checks a frame header against the role, extensions, message state and
    /// limits, then sets up the payload read.
    fn start_frame(&mut self, h: FrameHeader, events: &mut Vec<Event>) {
        if let Err(e) = self.check_frame(&h) {
            return self.fail(e, events);
        }
        if !h.opcode.is_control() && h.opcode != OpCode::Continuation {
            let kind = if h.opcode == OpCode::Text {
                MessageKind::Text
            } else {
                MessageKind::Binary
            };
            self.utf8.reset();
            let data = self.message_buffer(h.len.min(MAX_PRERESERVE) as usize);
            self.message = Some(Assembly {
                kind,
                data,
                fragments: 0,
                compressed: h.rsv & 0b100 != 0,
            });
        }
        if let Some(m) = self.message.as_mut().filter(|_| !h.opcode.is_control()) {
            m.fragments += 1;
        }
        self.rx = Rx::Payload {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            phase: 0,
            remaining: h.len,
        };
        if h.len == 0 {
            self.finish_frame(events);
        }
    }

    fn check_frame(&self, h: &FrameHeader) -> Result<(), ProtocolError> {
        // RSV1 means "compressed" only with permessage-deflate, and only on
        // the first frame of a data message (RFC 7692 §6.1); everything else
        // with a reserved bit set is an error (RFC 6455 §5.2).
        let allowed = match (&self.compression, h.opcode) {
            (Some(_), OpCode::Text | OpCode::Binary) => 0b100,
            _ => 0,
        };
        if h.rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        // RFC 6455 §5.1: a server MUST close on an unmasked client frame; a
        // client MUST close on a masked server frame.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedServerFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            return Ok(()); // length and FIN were checked by the decoder (§5.5)
        }
        // RFC 6455 §5.4: fragments of one message are not interleaved.
        match (h.opcode, &self.message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            _ => {}
        }
        if h.len > self.limits.max_frame {
            return Err(ProtocolError::FrameTooBig {
                len: h.len,
                limit: self.limits.max_frame,
            });
        }
        // For a compressed message the limit applies to the inflated size,
        // checked as it is produced; the wire size says nothing about it.
        let compressed = h.rsv & 0b100 != 0 || self.message.as_ref().is_some_and(|m| m.compressed);
        let so_far = self.message.as_ref().map_or(0, |m| m.data.len() as u64);
        if !compressed && so_far + h.len > self.limits.max_message as u64 {
            return Err(ProtocolError::MessageTooBig {
                limit: self.limits.max_message,
            });
        }
        let fragments = self.message.as_ref().map_or(0, |m| m.fragments);
        if fragments >= self.limits.max_fragments {
            return Err(ProtocolError::TooManyFragments {
                limit: self.limits.max_fragments,
            });
        }
        Ok(())
    }

    /// Reads payload bytes of the current frame; returns how many were used.
    fn read_payload(&mut self, input: &[u8], events: &mut Vec<Event>) -> usize {
        let Rx::Payload {
            opcode,
            mask,
            phase: key_phase,
            remaining,
            ..
        } = &mut self.rx
        else {
            unreachable!("read_payload outside a payload")
        };
        let take = (*remaining).min(input.len() as u64) as usize;
        let phase = usize::from(*key_phase);
        *key_phase = ((phase + take) % 4) as u8;
        *remaining -= take as u64;
        let (opcode, mask, finished) = (*opcode, *mask, *remaining == 0);

        if !opcode.is_control() && self.message.as_ref().is_some_and(|m| m.compressed) {
            return self
                .read_compressed(&input[..take], mask, phase, finished, events)
                .unwrap_or(input.len());
        }
        let target = if opcode.is_control() {
            &mut self.control
        } else {
            match self.message.as_mut() {
                Some(m) => &mut m.data,
                None => unreachable!("data frame without a message"),
            }
        };
        let start = target.len();
        if !opcode.is_control() && target.capacity() - start < take {
            // Grow geometrically but never past the message limit, so an
            // unfinished message holds at most `max_message` bytes (plain
            // doubling could reach twice the limit).
            let want = (target.capacity() * 2)
                .clamp(start + take, self.limits.max_message.max(start + take));
            target.reserve_exact(want - start);
        }
        match mask {
            Some(key) => extend_masked(target, &input[..take], key, phase),
            None => target.extend_from_slice(&input[..take]),
        }
        // RFC 6455 §8.1, checked per received chunk so a bad sequence fails
        // at once, not at the end of the frame or message.
        let utf8_ok = match &self.message {
            Some(m) if !opcode.is_control() && m.kind == MessageKind::Text => {
                self.utf8.feed(&m.data[start..]).is_ok()
            }
            _ => true,
        };
        if !utf8_ok {
            self.fail(ProtocolError::InvalidUtf8, events);
            return input.len();
        }
        if finished {
            self.finish_frame(events);
        }
        take
    }

    /// The current frame's payload is complete.
    fn finish_frame(&mut self, events: &mut Vec<Event>) {
        let Rx::Payload { opcode, fin, .. } = self.rx else {
            unreachable!("finish_frame outside a payload")
        };
        self.rx = Rx::Header { len: 0 };
        match opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if fin {
                    self.finish_message(events);
                }
            }
            OpCode::Ping => {
                let payload = std::mem::take(&mut self.control);
                // RFC 6455 §5.5.2: answer with a pong carrying the same data,
                // unless we already sent a close (§5.5.1: nothing after it).
                if self.state == CloseState::Open {
                    self.push_frame(OpCode::Pong, &payload);
                }
                events.push(Event::Ping(payload));
            }
            OpCode::Pong => {
                events.push(Event::Pong(std::mem::take(&mut self.control)));
            }
            OpCode::Close => {
                let payload = std::mem::take(&mut self.control);
                match parse_close_payload(&payload) {
                    Err(e) => self.fail(e, events),
                    Ok(frame) => {
                        // RFC 6455 §5.5.1: answer a close with a close,
                        // echoing the status code; then the TCP connection
                        // may be closed.
                        if self.state == CloseState::Open {
                            let reply = frame.code.map(|c| c.0.to_be_bytes());
                            self.push_frame(OpCode::Close, reply.as_ref().map_or(&[], |c| &c[..]));
                        }
                        self.state = CloseState::Closed;
                        self.message = None;
                        self.spare = Vec::new();
                        events.push(Event::Closed {
                            code: frame.code,
                            reason: frame.reason,
                        });
                    }
                }
            }
        }
    }

    /// Inflates a chunk of a compressed message; `None` when the connection
    /// failed (the rest of the input is then ignored), else the bytes used.
    fn read_compressed(
        &mut self,
        chunk: &[u8],
        mask: Option<[u8; 4]>,
        phase: usize,
        finished: bool,
        events: &mut Vec<Event>,
    ) -> Option<usize> {
        let (Some(c), Some(m)) = (self.compression.as_mut(), self.message.as_mut()) else {
            unreachable!("compressed message without compression state")
        };
        let start = m.data.len();
        let limit = self.limits.max_message;
        let inflated = c.inflate_chunk(chunk, mask, phase, &mut m.data, limit);
        // Bytes produced before any inflate error came first in the stream:
        // check them (up to the limit) before reporting the error, so the
        // outcome does not depend on how the input was split into reads.
        let end = m.data.len().min(limit);
        if m.kind == MessageKind::Text
            && start < end
            && self.utf8.feed(&m.data[start..end]).is_err()
        {
            self.fail(ProtocolError::InvalidUtf8, events);
            return None;
        }
        if let Err(e) = inflated {
            self.fail_inflate(e, events);
            return None;
        }
        if finished {
            self.finish_frame(events);
        }
        Some(chunk.len())
    }

    fn fail_inflate(&mut self, e: InflateError, events: &mut Vec<Event>) {
        let err = match e {
            InflateError::TooBig => ProtocolError::MessageTooBig {
                limit: self.limits.max_message,
            },
            InflateError::Corrupt => ProtocolError::InvalidCompressedData,
        };
        self.fail(err, events);
    }

    fn finish_message(&mut self, events: &mut Vec<Event>) {
        let Some(mut m) = self.message.take() else {
            return;
        };
        if m.compressed {
            let c = self
                .compression
                .as_mut()
                .expect("compressed message without compression state");
            let start = m.data.len();
            let limit = self.limits.max_message;
            let inflated = c.end_message(&mut m.data, limit);
            let end = m.data.len().min(limit);
            if m.kind == MessageKind::Text
                && start < end
                && self.utf8.feed(&m.data[start..end]).is_err()
            {
                return self.fail(ProtocolError::InvalidUtf8, events);
            }
            if let Err(e) = inflated {
                return self.fail_inflate(e, events);
            }
        }
        if m.kind == MessageKind::Text && self.utf8.finish().is_err() {
            return self.fail(ProtocolError::InvalidUtf8, events);
        }
        events.push(Event::Message {
            kind: m.kind,
            data: m.data,
        });
        self.message_done = true;
    }
}
