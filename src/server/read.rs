//! The read path: every ready socket read until `WouldBlock` into the
//! loop's one scratch buffer, and what was read handed to its connection
//! (a WebSocket peer, an ingress or an operator connection).

use std::io::{self, Read};
use std::time::Instant;

use log::debug;

use super::peer::{PeerCx, PeerState};
use super::{Entry, Server};

impl Server {
    /// Reads until the socket is drained. `short_read_drains`: the event
    /// reported neither end of stream nor an error, so a plain TCP read that
    /// returns less than asked for has emptied the receive queue, and
    /// anything arriving later raises a new edge: no second read that would
    /// only return `WouldBlock` (one system call less per message from a
    /// client that sends one at a time).
    pub(super) fn on_readable(&mut self, key: usize, short_read_drains: bool, now: Instant) {
        loop {
            let mut drains = false;
            let n = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) => {
                    drains = short_read_drains && peer.stream.is_plain();
                    peer.stream.read(&mut self.scratch)
                }
                Some(Entry::Unix(w)) => w.stream.read(&mut self.scratch),
                Some(Entry::Rpc(c)) => c.stream.read(&mut self.scratch),
                Some(Entry::Ops(c)) => c.stream.read(&mut self.scratch),
                None => return,
            };
            match n {
                Ok(0) => return self.on_eof(key, now),
                Ok(n) => {
                    if !self.on_data(key, n, now) {
                        return;
                    }
                    if drains && n < self.scratch.len() {
                        return self.mark_dirty(key);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.entries.get(key) {
                        // Decode once the socket is drained, not per read.
                        Some(Entry::Rpc(_)) => {
                            self.rpc_process(key);
                        }
                        // TLS handshake replies wait to be written.
                        Some(Entry::Ws(_)) => self.mark_dirty(key),
                        _ => {}
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.on_read_error(key, &e, now),
            }
        }
    }

    /// Handles `n` bytes in the scratch buffer; false when the entry is gone.
    fn on_data(&mut self, key: usize, n: usize, now: Instant) -> bool {
        let deadline = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let was_handshake = matches!(peer.state, PeerState::Handshake { .. });
                let mut cx = PeerCx {
                    cfg: &self.cfg,
                    events: &mut self.events,
                    publish: &mut self.publish_queue,
                    stats: &mut self.stats,
                };
                let d = peer.on_bytes(&self.scratch[..n], &mut cx, now);
                let joined = was_handshake && peer.is_upgraded();
                if joined {
                    // Joined before its own first messages are published.
                    self.routes.join(key, peer.id, &peer.channels);
                }
                if joined {
                    self.ops_connected(key);
                    self.join_history(key);
                }
                d
            }
            Some(Entry::Unix(_)) => return self.on_unix_data(key, n),
            Some(Entry::Rpc(_)) => return self.on_rpc_data(key, n),
            Some(Entry::Ops(_)) => return self.on_ops_data(key, n, now),
            None => return false,
        };
        self.apply_deadline(key, deadline);
        self.mark_dirty(key);
        let mut queue = std::mem::take(&mut self.publish_queue);
        for (kind, data) in &queue {
            self.publish_from_client(key, *kind, data, now);
        }
        // Published (copied into the frames and history): the last buffer
        // goes back to the sender's connection for its next message.
        if let (Some((_, data)), Some(Entry::Ws(peer))) = (queue.pop(), self.entries.get_mut(key)) {
            peer.recycle(data);
        }
        self.publish_queue = queue;
        self.publish_queue.clear();
        true
    }

    /// A read failed: the connection goes, unless the peer answers the
    /// failure (plain HTTP on the TLS port gets a 400).
    fn on_read_error(&mut self, key: usize, e: &io::Error, now: Instant) {
        debug!("read error on {key}: {e}");
        let answered = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let mut cx = PeerCx {
                    cfg: &self.cfg,
                    events: &mut self.events,
                    publish: &mut self.publish_queue,
                    stats: &mut self.stats,
                };
                peer.on_read_error(e, &mut cx, now)
            }
            _ => None,
        };
        match answered {
            Some(deadline) => {
                self.apply_deadline(key, deadline);
                self.mark_dirty(key);
            }
            None => self.remove(key),
        }
    }

    fn on_eof(&mut self, key: usize, now: Instant) {
        if let Some(Entry::Ws(peer)) = self.entries.get(key) {
            if matches!(peer.state, PeerState::Open(_)) && peer.close.is_none() {
                debug!("id={} closed TCP without a close frame", peer.id);
            }
        }
        match self.entries.get(key) {
            Some(Entry::Unix(_)) => self.on_unix_eof(key),
            // Answers what was sent, then removes the entry once written.
            Some(Entry::Rpc(_)) => return self.on_rpc_eof(key),
            Some(Entry::Ops(_)) => return self.on_ops_eof(key, now),
            _ => {}
        }
        self.remove(key);
    }
}
