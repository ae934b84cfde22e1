//! Accepting WebSocket connections: the connection limit, TLS sessions,
//! registration with the loop and the handshake deadline.

use std::io;
use std::time::Instant;

use log::{error, warn};
use mio::{Interest, Token};

use super::peer::WsPeer;
use super::stream::PeerStream;
use super::{Entry, Server};

impl Server {
    pub(super) fn accept_ws(&mut self, now: Instant) {
        loop {
            match self.ws_listener.accept() {
                Ok((stream, addr)) => {
                    if self.shutdown_deadline.is_some() {
                        continue; // dropped: we are going away
                    }
                    // Over the limit, keep a few slots to answer 503 politely;
                    // past those, drop at once so a flood costs nothing.
                    let reject = self.ws_count >= self.cfg.max_connections;
                    if reject && self.ws_count >= self.cfg.max_connections + 64 {
                        self.stats.http_rejected += 1;
                        continue;
                    }
                    let mut stream = match &self.tls {
                        None => PeerStream::plain(stream),
                        Some(acceptor) => match acceptor.session() {
                            Ok(session) => PeerStream::tls(stream, session),
                            Err(e) => {
                                warn!("cannot start TLS for {addr}: {e}");
                                continue;
                            }
                        },
                    };
                    let _ = stream.set_nodelay();
                    let entry = self.entries.vacant_entry();
                    let key = entry.key();
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, Token(key), Interest::READABLE)
                    {
                        warn!("cannot register {addr}: {e}");
                        continue;
                    }
                    let id = self.ids.next_id();
                    let mut peer = WsPeer::new(stream, addr, id, &self.cfg, reject, now);
                    peer.timer = self.timers.schedule(key, now + self.cfg.handshake_timeout);
                    entry.insert(Entry::Ws(peer));
                    self.ws_count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE/ENFILE: keep serving who we have; the backlog
                    // is retried when the next connection arrives.
                    error!("accept failed: {e} (raise the open-file limit, ulimit -n)");
                    return;
                }
            }
        }
    }
}
