//! UDP ingress: one datagram is one message (docs/ingress.md).

use std::io;
use std::time::Instant;

use log::{debug, warn};

use super::strip_newline;
use crate::server::Server;

impl Server {
    /// Reads every waiting datagram and publishes each.
    pub(crate) fn on_udp_readable(&mut self) {
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(sock) = self.udp.as_ref() {
            match sock.recv_from(&mut scratch) {
                Ok((n, from)) => {
                    if !self.cfg.udp_allow.is_empty()
                        && !self.cfg.udp_allow.iter().any(|c| c.contains(from.ip()))
                    {
                        self.stats.udp_dropped += 1;
                        debug!("UDP datagram from {from} dropped: not in --udp-allow");
                        continue;
                    }
                    let payload = strip_newline(&scratch[..n]);
                    if payload.len() > self.cfg.limits.max_message {
                        self.stats.udp_dropped += 1;
                        warn!(
                            "UDP datagram from {from} dropped: {} bytes exceeds --max-message",
                            payload.len()
                        );
                        continue;
                    }
                    self.publish_addressed(payload, "UDP", Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("UDP receive failed: {e}");
                    break;
                }
            }
        }
        self.scratch = scratch;
    }
}
