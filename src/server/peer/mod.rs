//! One WebSocket client as the server sees it: the opening handshake, the
//! open connection, and the orderly shutdown of the TCP stream.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Instant;

use log::{debug, info, warn};

use super::auth::unix_now;
use super::config::{ClientMessages, ServerConfig};
use super::history::Since;
use super::history::pending::Pending;
use super::history::request::recovery_from_query;
use super::outbound::{Chunk, Outbound};
use super::route::{ConnId, channels_from_query};
use super::slow::HeldSet;
use super::stats::Stats;
use super::stream::PeerStream;
use super::timers::{Serial, Tick};
use crate::protocol::deflate::{ServerDeflate, negotiate};
use crate::protocol::handshake::Progress;
use crate::protocol::handshake::server::{
    RequestError, RequestParser, http_response, reason_phrase,
};
use crate::protocol::{CloseCode, CloseState, Connection, Event, MessageKind, Role};

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
            PeerState::Handshake { parser, reject } => {
                let reject = *reject;
                match parser.feed(data) {
                    Ok(Progress::Partial) => Deadline::Keep,
                    Ok(Progress::Complete { value, consumed }) => {
                        if reject {
                            cx.stats.http_rejected += 1;
                            info!(
                                "refused {} : at the connection limit ({})",
                                self.addr, cx.cfg.max_connections
                            );
                            let body = "server is at its connection limit, try again later\n";
                            return self.refuse(
                                http_response(503, &[("Retry-After", "5")], body),
                                cx,
                                now,
                            );
                        }
                        // Channels are checked before the upgrade, so a bad
                        // name is an HTTP error the client can read.
                        match channels_from_query(value.query(), &cx.cfg.channels) {
                            Ok(channels) => self.channels = channels,
                            Err(e) => {
                                cx.stats.http_rejected += 1;
                                info!("refused {}: {e} (400)", self.addr);
                                let body = format!("Bad Request: {e}\n");
                                return self.refuse(http_response(400, &[], &body), cx, now);
                            }
                        }
                        // Origin and channel token (docs/operations.md).
                        if let Err(refused) = cx.cfg.auth.admit(
                            value.origin.as_deref(),
                            &self.channels,
                            value.query(),
                            unix_now(),
                        ) {
                            cx.stats.http_rejected += 1;
                            refused.count(cx.stats);
                            let status = refused.status();
                            info!("refused {}: {refused} ({status})", self.addr);
                            let body = format!("{}: {refused}\n", reason_phrase(status));
                            return self.refuse(http_response(status, &[], &body), cx, now);
                        }
                        let history_on = cx.cfg.history.per_stream > 0;
                        match recovery_from_query(value.query(), &self.channels, history_on) {
                            Ok(Some(since)) => {
                                self.recover = true;
                                self.since = (!since.is_empty()).then(|| Box::new(since));
                            }
                            Ok(None) => {}
                            Err(e) => {
                                cx.stats.http_rejected += 1;
                                info!("refused {}: {e} (400)", self.addr);
                                let body = format!("Bad Request: {e}\n");
                                return self.refuse(http_response(400, &[], &body), cx, now);
                            }
                        }
                        // permessage-deflate (RFC 7692): the first acceptable offer.
                        let negotiated = negotiate(&value.extensions, cx.cfg.deflate);
                        let answer = negotiated.as_ref().map(|(_, a)| a.as_str());
                        self.out.push(Chunk::Owned(value.accept_with(None, answer)));
                        let mut conn = Connection::new(Role::Server, cx.cfg.limits);
                        if let Some((params, _)) = negotiated {
                            conn.set_deflate(params);
                            self.deflate = match cx.cfg.deflate {
                                ServerDeflate::PerConnection => PeerDeflate::PerConnection,
                                _ => PeerDeflate::Shared(params.server_max_window_bits),
                            };
                        }
                        if cx.cfg.announce_id {
                            // The client's first message: its id, as JSON.
                            let hello = format!("{{\"id\":\"{}\"}}", self.id);
                            if conn
                                .send_message(MessageKind::Text, hello.as_bytes())
                                .is_ok()
                            {
                                self.out.push(Chunk::Owned(conn.take_transmit()));
                            }
                        }
                        self.state = PeerState::Open(conn);
                        cx.stats.connections_opened += 1;
                        info!(
                            "open id={} peer={} path={:?} channels={:?} origin={:?}",
                            self.id,
                            self.addr,
                            value.target,
                            self.channels,
                            value.origin.as_deref().unwrap_or("-")
                        );
                        let first = self.on_frames(&data[consumed..], cx, now);
                        match first {
                            Deadline::Keep => self.first_liveness_deadline(cx.cfg, now),
                            d => d,
                        }
                    }
                    Err(err) => {
                        cx.stats.http_rejected += 1;
                        let response = match &err {
                            RequestError::NotWebSocket { method, path } => {
                                debug!("plain HTTP {method} {path} from {}: 404", self.addr);
                                http_response(
                                    404,
                                    &[],
                                    "Not Found: this is a WebSocket server; HTTP requests publish nothing\n",
                                )
                            }
                            _ => {
                                info!("refused {}: {} ({})", self.addr, err, err.status());
                                err.response()
                            }
                        };
                        self.refuse(response, cx, now)
                    }
                }
            }
            PeerState::Open(_) => self.on_frames(data, cx, now),
            PeerState::Flushing | PeerState::Linger => Deadline::Keep,
        }
    }

    fn refuse(&mut self, response: Vec<u8>, cx: &PeerCx<'_>, now: Instant) -> Deadline {
        self.out.push(Chunk::Owned(response));
        self.state = PeerState::Flushing;
        Deadline::At(now + cx.cfg.close_timeout)
    }

    /// Feeds frames to the connection and acts on its events.
    fn on_frames(&mut self, data: &[u8], cx: &mut PeerCx<'_>, now: Instant) -> Deadline {
        let PeerState::Open(conn) = &mut self.state else {
            return Deadline::Keep;
        };
        let was = conn.close_state();
        let mut input = data;
        while !input.is_empty() {
            let n = conn.receive_message(input, cx.events);
            input = &input[n..];
            for event in cx.events.drain(..) {
                match event {
                    Event::Message { kind, data } => {
                        cx.stats.client_messages += 1;
                        // The buffer goes back to the connection for its
                        // next message once used (`Server::on_data` does
                        // it for published ones).
                        match cx.cfg.client_messages {
                            ClientMessages::Broadcast => cx.publish.push((kind, data)),
                            ClientMessages::Echo => {
                                let _ = conn.send_message(kind, &data);
                                conn.recycle(data);
                            }
                            ClientMessages::Ignore => conn.recycle(data),
                        }
                    }
                    Event::Ping(_) | Event::Pong(_) => {}
                    Event::Closed { code, reason } => {
                        if self.close.is_none() {
                            self.close = Some(Box::new(CloseInfo {
                                code: code.map_or(CloseCode::NO_STATUS.0, |c| c.0),
                                reason,
                                by: "client",
                            }));
                        }
                    }
                    Event::Failed(err) => {
                        cx.stats.protocol_errors += 1;
                        debug!("id={} protocol error: {err}", self.id);
                        self.close = Some(Box::new(CloseInfo {
                            code: err.close_code().0,
                            reason: err.to_string(),
                            by: "server",
                        }));
                    }
                }
            }
        }
        if conn.has_transmit() {
            self.out.push(Chunk::Owned(conn.take_transmit()));
        }
        // A client that sends pings (or echo-mode messages) but never reads
        // would grow its queue without bound: the queued-bytes limit covers
        // everything queued for it, not only broadcasts.
        if self.out.queued_bytes() > cx.cfg.max_queued_bytes && conn.can_send() {
            cx.stats.slow_consumer_closes += 1;
            warn!(
                "id={} peer={} does not read its replies ({} bytes queued): closing with 1008",
                self.id,
                self.addr,
                self.out.queued_bytes()
            );
            self.out.discard_unstarted();
            self.held.clear();
            return self.close(
                CloseCode::POLICY_VIOLATION,
                "slow consumer: queued bytes over limit",
                cx.cfg,
                now,
            );
        }
        if conn.is_closed() {
            self.state = PeerState::Flushing;
            return Deadline::At(now + cx.cfg.close_timeout);
        }
        if was != conn.close_state() {
            return Deadline::At(now + cx.cfg.close_timeout);
        }
        Deadline::Keep
    }

    /// Hands a message buffer this peer's connection produced back to it,
    /// for its next message (see `Connection::recycle`).
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if let PeerState::Open(conn) = &mut self.state {
            conn.recycle(buf);
        }
    }

    /// Starts a close handshake from our side (shutdown, idle, slow consumer).
    pub(crate) fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        cfg: &ServerConfig,
        now: Instant,
    ) -> Deadline {
        match &mut self.state {
            PeerState::Open(conn) => {
                // Held messages would follow the close frame: drop them.
                self.held.clear();
                if conn.close(code, reason).is_ok() {
                    self.out.push(Chunk::Owned(conn.take_transmit()));
                    self.close = Some(Box::new(CloseInfo {
                        code: code.0,
                        reason: reason.to_owned(),
                        by: "server",
                    }));
                }
                Deadline::At(now + cfg.close_timeout)
            }
            _ => Deadline::Keep,
        }
    }

    /// The next liveness check for an open connection, if pings or the idle
    /// timeout are enabled.
    pub(crate) fn liveness_deadline(&self, cfg: &ServerConfig) -> Option<Instant> {
        let last_read = self.last_read.instant();
        let idle = (!cfg.idle_timeout.is_zero()).then(|| last_read + cfg.idle_timeout);
        let ping = (!cfg.ping_interval.is_zero())
            .then(|| self.last_read.max(self.last_ping).instant() + cfg.ping_interval);
        match (idle, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The deadline right after the upgrade, in place of the handshake's.
    ///
    /// The handshake's timer entry is still queued. When it is due no later
    /// than the first liveness check (the defaults: 10 s against 30 s), it
    /// is kept as an early wake-up instead of queuing a second entry:
    /// [`Self::on_deadline`] finds nothing due then and schedules the real
    /// check from `last_read`, as it does for any early wake-up. An idle
    /// connection so holds one timer entry, not two.
    fn first_liveness_deadline(&self, cfg: &ServerConfig, now: Instant) -> Deadline {
        match self.liveness_deadline(cfg) {
            None => Deadline::Clear,
            // `last_read` is `now`, and the handshake entry is due at
            // most `handshake_timeout` after it.
            Some(at) if at.saturating_duration_since(now) >= cfg.handshake_timeout => {
                Deadline::Keep
            }
            Some(at) => Deadline::At(at),
        }
    }

    /// A deadline came due. Returns `None` when the peer must be dropped now.
    pub(crate) fn on_deadline(&mut self, cfg: &ServerConfig, now: Instant) -> Option<Deadline> {
        match &mut self.state {
            PeerState::Handshake { .. } => {
                debug!("handshake timeout for {}", self.addr);
                None
            }
            PeerState::Flushing | PeerState::Linger => None,
            PeerState::Open(conn) if conn.close_state() != CloseState::Open => {
                if let Some(c) = self.close.as_mut() {
                    c.reason.push_str(" (close timeout)");
                }
                None
            }
            PeerState::Open(conn) => {
                if !cfg.idle_timeout.is_zero()
                    && now.duration_since(self.last_read.instant()) >= cfg.idle_timeout
                {
                    warn!("id={} silent for {:?}: closing", self.id, cfg.idle_timeout);
                    return Some(self.close(CloseCode::GOING_AWAY, "idle timeout", cfg, now));
                }
                if !cfg.ping_interval.is_zero()
                    && now.duration_since(self.last_read.max(self.last_ping).instant())
                        >= cfg.ping_interval
                {
                    let _ = conn.send_ping(b"");
                    self.out.push(Chunk::Owned(conn.take_transmit()));
                    self.last_ping = Tick::from_instant(now);
                }
                Some(
                    self.liveness_deadline(cfg)
                        .map_or(Deadline::Clear, Deadline::At),
                )
            }
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

    /// A read failed. A client that spoke plain HTTP to the TLS port gets a
    /// plain-text 400 saying so (the deadline to apply); any other error
    /// ends the connection (`None`).
    pub(crate) fn on_read_error(
        &mut self,
        e: &std::io::Error,
        cx: &mut PeerCx<'_>,
        now: Instant,
    ) -> Option<Deadline> {
        if !(super::tls::is_plain_http(e) && matches!(self.state, PeerState::Handshake { .. })) {
            return None;
        }
        cx.stats.http_rejected += 1;
        info!("refused {}: plain HTTP on the TLS port (400)", self.addr);
        self.stream.downgrade();
        let body = "Bad Request: this port speaks TLS; connect with wss:// (or https://)\n";
        Some(self.refuse(http_response(400, &[], body), cx, now))
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
