//! A client's deadlines: the handshake timeout, pings and the idle
//! timeout on an open connection, and the close timeout.

use std::time::Instant;

use log::{debug, warn};

use super::{Deadline, PeerState, WsPeer};
use crate::protocol::{CloseCode, CloseState};
use crate::server::config::ServerConfig;
use crate::server::outbound::Chunk;
use crate::server::timers::Tick;

impl WsPeer {
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
    pub(super) fn first_liveness_deadline(&self, cfg: &ServerConfig, now: Instant) -> Deadline {
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
}
