//! An open connection: frames in, client messages handed to the loop,
//! replies queued under the queued-bytes limit, and the close handshake
//! (RFC 6455 §5.5.1, §7).

use std::time::Instant;

use log::{debug, warn};

use super::{CloseInfo, Deadline, PeerCx, PeerState, WsPeer};
use crate::protocol::{CloseCode, Event};
use crate::server::config::{ClientMessages, ServerConfig};
use crate::server::outbound::Chunk;

impl WsPeer {
    /// Feeds frames to the connection and acts on its events.
    pub(super) fn on_frames(&mut self, data: &[u8], cx: &mut PeerCx<'_>, now: Instant) -> Deadline {
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
}
