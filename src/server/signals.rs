//! Signals and the service manager: SIGINT/SIGTERM start the shutdown
//! (1001 to every client, listeners closed, the Unix socket file removed),
//! SIGHUP reloads the TLS certificate, and systemd hears `READY=1` and
//! `STOPPING=1` when it asked to.

use std::time::Instant;

use log::{debug, error, info, warn};
use signal_hook::consts::SIGHUP;

use super::peer::{Deadline, PeerState};
use super::{Entry, Server, ingress};
use crate::protocol::CloseCode;

impl Server {
    pub(super) fn on_signal(&mut self, now: Instant) {
        let pending: Vec<i32> = self.signals.pending().collect();
        if pending.contains(&SIGHUP) {
            self.reload_tls();
        }
        let Some(&stop) = pending.iter().find(|&&s| s != SIGHUP) else {
            return;
        };
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!(
            "signal {stop}: shutting down, closing {} connection(s) with 1001",
            self.ws_count
        );
        self.shutdown_deadline = Some(now + self.cfg.shutdown_grace);
        self.notify("STOPPING=1");
        let _ = self.poll.registry().deregister(&mut self.ws_listener);
        if let Some(udp) = self.udp.as_mut() {
            let _ = self.poll.registry().deregister(udp);
        }
        if let Some((mut l, path)) = self.unix.take() {
            let _ = self.poll.registry().deregister(&mut l);
            ingress::unix::remove_socket_file(&path);
        }
        if let Some(mut l) = self.rpc.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.ops.close_listeners(self.poll.registry());
        self.stdin = None;
        let keys: Vec<usize> = self.entries.iter().map(|(k, _)| k).collect();
        for key in keys {
            let deadline = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) => match peer.state {
                    PeerState::Open(_) => peer.close(
                        CloseCode::GOING_AWAY,
                        "server shutting down",
                        &self.cfg,
                        now,
                    ),
                    PeerState::Handshake { .. } => {
                        self.remove(key);
                        continue;
                    }
                    _ => Deadline::Keep,
                },
                // `events` subscribers stay to the end: they see the
                // shutdown's disconnects.
                Some(Entry::Ops(_)) if self.ops.is_subscriber(key) => continue,
                Some(Entry::Unix(_) | Entry::Rpc(_) | Entry::Ops(_)) => {
                    self.remove(key);
                    continue;
                }
                None => continue,
            };
            self.apply_deadline(key, deadline);
            self.mark_dirty(key);
        }
    }

    /// Sends `state` to systemd when it asked for notifications; a failure
    /// is logged, never fatal.
    pub(super) fn notify(&self, state: &str) {
        if let Some(n) = &self.notifier {
            match n.send(state) {
                Ok(()) => debug!("notified {}: {state}", n.name()),
                Err(e) => warn!("cannot notify {} of {state}: {e}", n.name()),
            }
        }
    }

    /// SIGHUP: reads the certificate and key again. Open connections keep
    /// theirs; a failed reload keeps the old ones and says why.
    fn reload_tls(&mut self) {
        let Some(acceptor) = self.tls.as_mut() else {
            info!("SIGHUP: no TLS certificate configured, nothing to reload");
            return;
        };
        match acceptor.reload() {
            Ok(()) => info!(
                "SIGHUP: TLS certificate reloaded from {} (new connections use it)",
                acceptor.files().cert.display()
            ),
            Err(e) => error!("SIGHUP: TLS reload failed, keeping the current certificate: {e}"),
        }
    }
}
