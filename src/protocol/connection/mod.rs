//! The connection state machine: bytes in, events and bytes out, no I/O.
//!
//! One type serves both roles. The driver (a mio loop, a test, a fuzzer)
//! calls [`Connection::receive`] with whatever bytes arrived, reads the
//! resulting [`Event`]s from the caller-owned vector, and writes out whatever
//! [`Connection::take_transmit`] returns (automatic pongs and close replies,
//! plus frames queued with the `send_*` methods). When
//! [`Connection::is_closed`] turns true and the transmit buffer is drained,
//! the driver shuts the transport.
//!
//! Memory: an idle connection owns no buffers, except at most one message
//! buffer of at most [`RECYCLE_MAX_CAPACITY`] bytes that the caller handed
//! back with [`Connection::recycle`]. A frame header that arrives in pieces
//! is kept in a 14-byte array; a data payload is unmasked straight into the
//! message being assembled; only a control frame's payload (at most 125
//! bytes) gets a small buffer of its own while it is incomplete.

mod compression;
mod receive;
#[cfg(test)]
mod tests;

use super::close::{CloseCode, close_payload};
use super::deflate::DeflateParams;
use super::error::SendError;
use super::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, encode_frame, encode_frame_rsv};
use super::limits::Limits;
use super::utf8::Utf8Validator;

pub use super::error::ProtocolError;

/// The largest message buffer [`Connection::recycle`] keeps (its capacity,
/// in bytes). Small messages are where an allocation per message is a large
/// share of the cost; keeping larger buffers would make every connection
/// that once sent a big message hold that memory while idle.
pub const RECYCLE_MAX_CAPACITY: usize = 1024;

/// Which end of the connection this is; decides masking (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts connections: expects masked frames, sends unmasked ones.
    Server,
    /// Opens connections: expects unmasked frames, masks what it sends.
    Client,
}

/// The type of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text (validated before it is reported).
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    /// The opcode of the first frame of such a message.
    pub fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// What the peer's bytes meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete message. Text has been validated as UTF-8.
    Message {
        /// Text or binary.
        kind: MessageKind,
        /// The payload, unmasked.
        data: Vec<u8>,
    },
    /// A ping arrived; the pong is already queued for transmit.
    Ping(Vec<u8>),
    /// A pong arrived (solicited or not; RFC 6455 §5.5.3 says ignore unsolicited ones).
    Pong(Vec<u8>),
    /// The peer closed the connection (RFC 6455 §5.5.1). If we had not sent a
    /// close yet, the echoed close is queued for transmit. The transport
    /// should be shut once transmit is drained.
    Closed {
        /// The peer's code; `None` when its close frame had no payload (1005).
        code: Option<CloseCode>,
        /// The peer's reason.
        reason: String,
    },
    /// The peer broke the protocol; a close frame with the error's code is
    /// queued and the connection is closed (RFC 6455 §7.1.7).
    Failed(ProtocolError),
}

/// Where the close handshake stands (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseState {
    /// Data flows both ways.
    Open,
    /// We sent a close and wait for the peer's; received data is still
    /// reported, nothing more may be sent.
    CloseSent,
    /// The close handshake completed, or the connection was failed: nothing
    /// more is received or sent except what is already queued.
    Closed,
}

/// Where the frame parser stands.
#[derive(Clone, Copy, Debug)]
enum Rx {
    /// Collecting a header; `len` bytes of it are in `Connection::header`.
    Header { len: u8 },
    /// Reading the payload of the current frame.
    Payload {
        opcode: OpCode,
        fin: bool,
        mask: Option<[u8; 4]>,
        /// Payload bytes read so far, modulo 4: where in the masking key
        /// the next byte is (one byte instead of a count of eight).
        phase: u8,
        /// Payload bytes still to come.
        remaining: u64,
    },
}

/// The message being assembled from data frames.
#[derive(Debug)]
struct Assembly {
    kind: MessageKind,
    data: Vec<u8>,
    fragments: u32,
    /// RSV1 was set on the first frame: the payload is DEFLATE data.
    compressed: bool,
}

/// A WebSocket connection after the opening handshake.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    limits: Limits,
    /// permessage-deflate, when negotiated (boxed: connections without it
    /// pay one pointer).
    compression: Option<Box<compression::Compression>>,
    state: CloseState,
    rx: Rx,
    header: [u8; MAX_HEADER_LEN],
    message: Option<Assembly>,
    utf8: Utf8Validator,
    control: Vec<u8>,
    tx: Vec<u8>,
    /// Set when a data message completes, so `receive_message` can stop.
    message_done: bool,
    /// A message buffer handed back by the caller (empty, capacity at most
    /// `RECYCLE_MAX_CAPACITY`), used for the next message that fits.
    spare: Vec<u8>,
}

impl Connection {
    /// A connection in the open state, right after a successful handshake.
    pub fn new(role: Role, limits: Limits) -> Self {
        Connection {
            role,
            limits,
            compression: None,
            state: CloseState::Open,
            rx: Rx::Header { len: 0 },
            header: [0; MAX_HEADER_LEN],
            message: None,
            utf8: Utf8Validator::new(),
            control: Vec::new(),
            tx: Vec::new(),
            message_done: false,
            spare: Vec::new(),
        }
    }

    /// Turns on permessage-deflate with the negotiated parameters (RFC 7692):
    /// RSV1 becomes legal on the first frame of a data message, compressed
    /// messages are inflated (the message limit applies to the inflated
    /// size), and `send_message` compresses.
    pub fn set_deflate(&mut self, params: DeflateParams) {
        self.compression = Some(Box::new(compression::Compression::new(params, self.role)));
    }

    /// Whether permessage-deflate is on.
    pub fn deflate_enabled(&self) -> bool {
        self.compression.is_some()
    }

    // ----- getters -----

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where the close handshake stands.
    pub fn close_state(&self) -> CloseState {
        self.state
    }

    /// True once the connection is closed (handshake done or failed): the
    /// driver should flush [`take_transmit`](Self::take_transmit) and shut
    /// the transport.
    pub fn is_closed(&self) -> bool {
        self.state == CloseState::Closed
    }

    /// True while data messages may be sent (no close sent or received).
    pub fn can_send(&self) -> bool {
        self.state == CloseState::Open
    }

    /// True when frames are queued for transmit.
    pub fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Bytes the parser holds for an unfinished frame or message (for
    /// accounting; bounded by the limits).
    pub fn buffered_bytes(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity())
            + self.control.capacity()
            + self.spare.capacity()
    }

    // ----- outputs -----

    /// Takes every byte queued for transmit, leaving no buffer behind.
    pub fn take_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tx)
    }

    // ----- commands -----

    /// Hands back the buffer of a message this connection reported (an
    /// [`Event::Message`]'s `data`) once the caller is done with it, so the
    /// next message that fits is received into it instead of a new
    /// allocation. At most one buffer is kept, and only if its capacity is at
    /// most [`RECYCLE_MAX_CAPACITY`] (the larger of the two is kept); anything
    /// else is dropped, as is everything once the connection is closed. Its
    /// contents are cleared and never reach another message.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= RECYCLE_MAX_CAPACITY
            && buf.capacity() > self.spare.capacity()
            && self.state != CloseState::Closed
        {
            buf.clear();
            self.spare = buf;
        }
    }

    /// An empty buffer with room for `len` bytes: the recycled one if it is
    /// big enough, else a new one of exactly `len`.
    fn message_buffer(&mut self, len: usize) -> Vec<u8> {
        if len > 0 && self.spare.capacity() >= len {
            std::mem::take(&mut self.spare)
        } else {
            Vec::with_capacity(len)
        }
    }

    /// Queues a complete data message as one frame.
    pub fn send_message(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        if !self.can_send() {
            return Err(SendError::Closing);
        }
        if let Some(compressed) = self.compression.as_mut().and_then(|c| c.compress(data)) {
            let mask = self.mask_key();
            encode_frame_rsv(&mut self.tx, 0b100, kind.opcode(), &compressed, mask);
            return Ok(());
        }
        self.push_frame(kind.opcode(), data);
        Ok(())
    }

    /// Queues a ping (payload at most 125 bytes, RFC 6455 §5.5).
    pub fn send_ping(&mut self, data: &[u8]) -> Result<(), SendError> {
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlPayloadTooLong(data.len()));
        }
        if !self.can_send() {
            return Err(SendError::Closing);
        }
        self.push_frame(OpCode::Ping, data);
        Ok(())
    }

    /// Starts the close handshake (RFC 6455 §7.1.2): queues a close frame;
    /// afterwards nothing but the peer's close is awaited. The reason is cut
    /// to 123 bytes.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        if !code.is_valid_on_wire() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if self.state != CloseState::Open {
            return Err(SendError::Closing);
        }
        self.push_frame(OpCode::Close, &close_payload(code, reason));
        self.state = CloseState::CloseSent;
        Ok(())
    }

    /// Encodes a frame into the transmit buffer, masked with a fresh random
    /// key when this is a client (RFC 6455 §5.3).
    fn push_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.mask_key();
        encode_frame(&mut self.tx, true, opcode, payload, mask);
    }

    fn mask_key(&self) -> Option<[u8; 4]> {
        match self.role {
            Role::Server => None,
            Role::Client => Some(rand::random::<[u8; 4]>()),
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): queue a close with the
    /// error's code unless one was sent already, then stop.
    fn fail(&mut self, err: ProtocolError, events: &mut Vec<Event>) {
        if self.state == CloseState::Open {
            self.push_frame(OpCode::Close, &close_payload(err.close_code(), err.name()));
        }
        self.state = CloseState::Closed;
        self.message = None;
        self.control = Vec::new();
        self.spare = Vec::new();
        if let Some(c) = self.compression.as_mut() {
            c.abandon();
        }
        events.push(Event::Failed(err));
    }
}
