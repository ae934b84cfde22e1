//! One WebSocket client as the server sees it: the opening handshake, the
//! open connection, and the orderly shutdown of the TCP stream.
//!
//! This file holds a client's state and its way out (the flush that ends
//! in shutting the TCP stream); the rest has a file each: `handshake` (the
//! upgrade request), `open` (frames in, the close handshake) and
//! `liveness` (handshake, ping, idle and close deadlines).

mod handshake;
mod liveness;
mod open;

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Instant;

use super::config::ServerConfig;
use super::history::Since;
use super::history::pending::Pending;
use super::outbound::Outbound;
use super::route::ConnId;
use super::slow::HeldSet;
use super::stats::Stats;
use super::stream::PeerStream;
use super::timers::{Serial, Tick};
use crate::protocol::handshake::server::RequestParser;
use crate::protocol::{CloseCode, Connection, Event, MessageKind};

/// Where a client stands.
#[derive(Debug)]
pub(crate) enum PeerState {
    /// Reading the upgrade request. `reject` is set when the server was at
    /// its connection limit on accept: the request is answered 503.
    Handshake {
        parser: Box<RequestParser>,
        reject: bool,
    },
    /// Upgraded.
    Open(Connection),
    /// Writing final bytes (an HTTP refusal, or our last close frame), then
    /// the write side is shut.
    Flushing,
    /// Write side shut; reading until the client closes too, so the final
    /// bytes are not destroyed by a TCP reset.
    Linger,
}

/// How broadcasts are compressed for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerDeflate {
    /// No permessage-deflate: plain frames.
    Off,
    /// No context takeover: the frame compressed once per message for every
    /// client with this window size (`--deflate shared`).
    Shared(u8),
    /// The connection's own compression context (`--deflate per-connection`).
    PerConnection,
}

/// How a connection ended, for the close log line.
#[derive(Debug, Clone)]
pub(crate) struct CloseInfo {
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) by: &'static str,
}

/// A client's address in 16 bytes instead of `SocketAddr`'s 32: IPv4
/// inline, IPv6 (28 bytes with its flow label and scope id) boxed. Only
/// shown, in logs and operator reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerAddr {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => PeerAddr::V4(a),
            SocketAddr::V6(a) => PeerAddr::V6(Box::new(a)),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::V4(a) => a.fmt(f),
            PeerAddr::V6(a) => a.fmt(f),
        }
    }
}

/// A WebSocket client.
#[derive(Debug)]
pub(crate) struct WsPeer {
    /// The socket, plain or TLS; the peer reads and writes plaintext.
    pub(crate) stream: PeerStream,
    pub(crate) addr: PeerAddr,
    pub(crate) id: ConnId,
    /// Channels chosen in the upgrade request (`?channel=a&channel=b`);
    /// empty (no allocation) for a client that joined none.
    pub(crate) channels: Box<[Box<str>]>,
    /// How broadcasts are compressed for this client.
    pub(crate) deflate: PeerDeflate,
    /// Opted in to recovery (`?recover=1` or `since=`): gets envelopes.
    pub(crate) recover: bool,
    /// The `since=` positions of the upgrade request, until the client has
    /// joined the history (`None` otherwise; boxed twice to keep this one
    /// pointer wide in every connection).
    pub(crate) since: Option<Box<Box<[Since]>>>,
    pub(crate) state: PeerState,
    pub(crate) out: Outbound,
    /// Messages held aside by a slow-consumer policy while it is behind.
    pub(crate) held: HeldSet,
    /// Streams whose catch-up Redis is answering (`--redis-history`), with
    /// their live messages held meanwhile; `None` (no allocation) otherwise.
    pub(crate) pending: Option<Box<Pending>>,
    /// The last publish this client got a raw frame of (a message sent to
    /// several of its channels reaches it once).
    pub(crate) seen: u64,
    /// WRITABLE interest is registered (only while bytes are queued).
    pub(crate) writable_interest: bool,
    /// Already in the loop's list of connections to flush.
    pub(crate) dirty: bool,
    /// Something other than a broadcast was queued (the upgrade reply, a
    /// pong, a close, a catch-up) or the socket became writable again: flush
    /// at the end of this turn even inside a `--write-delay` window.
    pub(crate) urgent: bool,
    /// When bytes last arrived and when we last pinged (8-byte `Tick`s:
    /// every idle connection carries them).
    pub(crate) last_read: Tick,
    pub(crate) last_ping: Tick,
    /// Serial of the current deadline; older queue entries are stale.
    pub(crate) timer: Serial,
    /// How the connection ended, once it has (boxed: an open connection
    /// pays one pointer instead of 48 bytes).
    pub(crate) close: Option<Box<CloseInfo>>,
}

/// What a peer needs from the loop while it handles input.
pub(crate) struct PeerCx<'a> {
    pub(crate) cfg: &'a ServerConfig,
    pub(crate) events: &'a mut Vec<Event>,
    /// Messages to publish once the peer is done (client messages under `broadcast`).
    pub(crate) publish: &'a mut Vec<(MessageKind, Vec<u8>)>,
    pub(crate) stats: &'a mut Stats,
}

/// A deadline the peer wants after handling input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Keep whatever is scheduled.
    Keep,
    /// Schedule this one (replacing the current one).
    At(Instant),
    /// No deadline any more (an open connection with liveness checks off).
    Clear,
}

impl WsPeer {
    pub(crate) fn new(
        stream: PeerStream,
        addr: SocketAddr,
        id: ConnId,
        cfg: &ServerConfig,
        reject: bool,
        now: Instant,
    ) -> Self {
        WsPeer {
            stream,
            addr: addr.into(),
            id,
            channels: Box::default(),
            recover: false,
            since: None,
            held: HeldSet::default(),
            pending: None,
            seen: 0,
            state: PeerState::Handshake {
                parser: Box::new(RequestParser::new(cfg.handshake_limits)),
                reject,
            },
            out: Outbound::default(),
            writable_interest: false,
            dirty: false,
            urgent: false,
            last_read: Tick::from_instant(now),
            last_ping: Tick::from_instant(now),
            timer: 0,
            close: None,
            deflate: PeerDeflate::Off,
        }
    }

    /// True once the client has been upgraded (it counts as a connection).
    pub(crate) fn is_upgraded(&self) -> bool {
        self.close.is_some() || matches!(self.state, PeerState::Open(_))
    }

    /// Handles bytes read from the socket.
    pub(crate) fn on_bytes(&mut self, data: &[u8], cx: &mut PeerCx<'_>, now: Instant) -> Deadline {
        self.last_read = Tick::from_instant(now);
        match &mut self.state {
            PeerState::Handshake { .. } => self.on_handshake(data, cx, now),
            PeerState::Open(_) => self.on_frames(data, cx, now),
            PeerState::Flushing | PeerState::Linger => Deadline::Keep,
        }
    }

    /// Hands a message buffer this peer's connection produced back to it,
    /// for its next message (see `Connection::recycle`).
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if let PeerState::Open(conn) = &mut self.state {
            conn.recycle(buf);
        }
    }

    /// Something waits for the socket: queued frames, or TLS records.
    pub(crate) fn wants_flush(&self) -> bool {
        !self.out.is_empty() || self.stream.wants_write()
    }

    /// Writes queued bytes. `Ok(true)` when everything was written.
    ///
    /// Messages a slow-consumer policy held aside are queued as soon as the
    /// queue is written out, and written at once.
    pub(crate) fn flush(&mut self) -> std::io::Result<bool> {
        let mut drained = self.stream.write_from(&mut self.out)?;
        if drained && !self.held.is_empty() {
            let sendable = matches!(&self.state, PeerState::Open(c) if c.can_send());
            let chunks = self.held.release();
            if sendable {
                for c in chunks {
                    self.out.push(c);
                }
                drained = self.stream.write_from(&mut self.out)?;
            }
        }
        if drained && matches!(self.state, PeerState::Flushing) {
            // Everything final is out: shut our side (after TLS
            // close_notify), then wait for the client's FIN so the bytes are
            // not lost to a reset (RFC 6455 §7.1.1: the server closes the
            // TCP connection first).
            if !self.stream.close_write()? {
                return Ok(false);
            }
            self.state = PeerState::Linger;
        }
        Ok(drained)
    }

    /// The log line's close fields.
    pub(crate) fn close_summary(&self) -> (u16, &str, &str) {
        match &self.close {
            Some(c) => (c.code, c.reason.as_str(), c.by),
            None => (
                CloseCode::ABNORMAL.0,
                "connection dropped without a close frame",
                "client",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addr_shows_as_the_socket_addr() {
        for text in ["127.0.0.1:8124", "[::1]:443", "[fe80::1%2]:80"] {
            let addr: SocketAddr = text.parse().unwrap();
            let shown = PeerAddr::from(addr).to_string();
            assert_eq!(shown, addr.to_string());
            assert_eq!(shown, text);
        }
    }

    /// Every connection, idle or busy, is one slab entry as large as a
    /// `WsPeer`, so this size is most of the server's memory per idle
    /// connection (docs/benchmarks.md, "Idle memory per connection": 10,000
    /// idle clients cost 10,000 of these plus their timer entry and routing
    /// bucket). The bounds are today's sizes on a 64-bit target in a test
    /// (debug) build, where mio's socket is 8 bytes larger than in release.
    /// Before adding a field here, box what is rarely used (as `close`,
    /// `since`, `pending`, `held` and the TLS session are) or make it
    /// smaller; raise a bound only with a new measurement in that section.
    #[test]
    fn per_connection_state_stays_small() {
        use std::mem::size_of;
        assert!(
            size_of::<WsPeer>() <= 400,
            "WsPeer grew to {} bytes",
            size_of::<WsPeer>()
        );
        assert!(
            size_of::<Connection>() <= 176,
            "protocol::Connection grew to {} bytes",
            size_of::<Connection>()
        );
        assert!(size_of::<PeerAddr>() <= 16);
        assert!(size_of::<Option<Box<CloseInfo>>>() <= 8);
        assert!(size_of::<super::super::timers::Tick>() <= 8);
    }
}
