//! A client's opening handshake (RFC 6455 §4.2): the upgrade request
//! read and checked (connection limit, channels, origin and token,
//! recovery, permessage-deflate), then answered with the upgrade or a
//! refusal the client can read.

use std::time::Instant;

use log::{debug, info};

use super::{Deadline, PeerCx, PeerDeflate, PeerState, WsPeer};
use crate::protocol::deflate::{ServerDeflate, negotiate};
use crate::protocol::handshake::Progress;
use crate::protocol::handshake::server::{RequestError, http_response, reason_phrase};
use crate::protocol::{Connection, MessageKind, Role};
use crate::server::auth::unix_now;
use crate::server::history::request::recovery_from_query;
use crate::server::outbound::Chunk;
use crate::server::route::channels_from_query;
use crate::server::tls;

impl WsPeer {
    /// Reads the upgrade request; once it is complete, answers it (the
    /// upgrade, or a refusal the client can read) and hands the bytes after
    /// it to the open connection.
    pub(super) fn on_handshake(
        &mut self,
        data: &[u8],
        cx: &mut PeerCx<'_>,
        now: Instant,
    ) -> Deadline {
        let PeerState::Handshake { parser, reject } = &mut self.state else {
            return Deadline::Keep;
        };
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
                    return self.refuse(http_response(503, &[("Retry-After", "5")], body), cx, now);
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

    fn refuse(&mut self, response: Vec<u8>, cx: &PeerCx<'_>, now: Instant) -> Deadline {
        self.out.push(Chunk::Owned(response));
        self.state = PeerState::Flushing;
        Deadline::At(now + cx.cfg.close_timeout)
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
        if !(tls::is_plain_http(e) && matches!(self.state, PeerState::Handshake { .. })) {
            return None;
        }
        cx.stats.http_rejected += 1;
        info!("refused {}: plain HTTP on the TLS port (400)", self.addr);
        self.stream.downgrade();
        let body = "Bad Request: this port speaks TLS; connect with wss:// (or https://)\n";
        Some(self.refuse(http_response(400, &[], body), cx, now))
    }
}
