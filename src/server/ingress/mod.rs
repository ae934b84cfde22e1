//! Ingresses turn outside messages into publishes. Every source's framing
//! is documented in docs/ingress.md.

pub mod addressed;
pub(crate) mod rpc;
pub(crate) mod stdin;
pub mod udp;
pub mod unix;

use std::time::{Duration, Instant};

use log::{debug, warn};

use crate::protocol::MessageKind;
use crate::server::Server;

/// Least time between two warnings about malformed addressed messages (the
/// rest are counted, and logged at debug).
const MALFORMED_WARN_EVERY: Duration = Duration::from_secs(1);

impl Server {
    /// Publishes one UDP datagram, Unix-socket line or stdin line, already
    /// stripped of its framing: raw (to everyone) or in the addressed form
    /// ([`addressed::parse`]). A malformed addressed message is dropped,
    /// counted and logged (at most one warning a second); never broadcast.
    pub(crate) fn publish_addressed(&mut self, msg: &[u8], source: &str, now: Instant) {
        match addressed::parse(msg, self.cfg.channels.max_name_bytes) {
            Ok((route, payload)) => {
                self.publish(&route, kind_of(payload), payload, now);
            }
            Err(e) => {
                self.stats.addressed_malformed += 1;
                let shown = String::from_utf8_lossy(&msg[..msg.len().min(80)]).into_owned();
                let due = self
                    .malformed_warned
                    .is_none_or(|at| now.duration_since(at) >= MALFORMED_WARN_EVERY);
                if due {
                    self.malformed_warned = Some(now);
                    warn!(
                        "{source}: dropped a malformed addressed message {shown:?}: {e} ({} dropped so far)",
                        self.stats.addressed_malformed
                    );
                } else {
                    debug!("{source}: dropped a malformed addressed message {shown:?}: {e}");
                }
            }
        }
    }
}

/// Valid UTF-8 goes out as text, anything else as binary.
pub fn kind_of(payload: &[u8]) -> MessageKind {
    if std::str::from_utf8(payload).is_ok() {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

/// Strips one trailing `\n` or `\r\n` (what `echo` and `nc` add).
pub fn strip_newline(payload: &[u8]) -> &[u8] {
    payload
        .strip_suffix(b"\n")
        .map(|p| p.strip_suffix(b"\r").unwrap_or(p))
        .unwrap_or(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_helpers() {
        assert_eq!(strip_newline(b"hi\n"), b"hi");
        assert_eq!(strip_newline(b"hi\r\n"), b"hi");
        assert_eq!(strip_newline(b"hi\n\n"), b"hi\n");
        assert_eq!(strip_newline(b"hi"), b"hi");
        assert_eq!(strip_newline(b"\r"), b"\r");
        assert_eq!(kind_of("héllo".as_bytes()), MessageKind::Text);
        assert_eq!(kind_of(b"\xff"), MessageKind::Binary);
    }
}
