//! Routing: one publish, one encoded frame, every target's queue.

use std::rc::Rc;
use std::time::Instant;

use log::warn;

use super::outbound::Chunk;
use super::peer::{Deadline, PeerState};
use super::stats::Receipt;
use super::{Entry, Server};
use crate::protocol::frame::encode_server_frame;
use crate::protocol::{CloseCode, MessageKind};

impl Server {
    /// Publishes a message to every open WebSocket connection.
    ///
    /// The frame is encoded once; every recipient's queue gets a reference to
    /// the same bytes. A recipient whose queue would pass the queued-bytes
    /// limit is a slow consumer: its unstarted frames are dropped and it is
    /// closed with 1008, so it can neither hold unbounded memory nor slow
    /// anyone else down.
    pub(crate) fn publish(&mut self, kind: MessageKind, payload: &[u8], now: Instant) -> Receipt {
        let frame = Rc::new(encode_server_frame(kind.opcode(), payload));
        let limit = self.cfg.max_queued_bytes;
        let mut receipt = Receipt::default();
        let mut slow = Vec::new();
        for (key, entry) in self.entries.iter_mut() {
            let Entry::Ws(peer) = entry else { continue };
            let PeerState::Open(conn) = &peer.state else {
                continue;
            };
            if !conn.can_send() {
                receipt.skipped_closing += 1;
                continue;
            }
            if peer.out.queued_bytes() + frame.len() > limit {
                receipt.skipped_slow += 1;
                slow.push(key);
                continue;
            }
            peer.out.push(Chunk::Shared(Rc::clone(&frame)));
            if !peer.dirty {
                peer.dirty = true;
                self.dirty.push(key);
            }
            receipt.queued += 1;
        }
        for key in slow {
            self.close_slow_consumer(key, now);
        }
        self.stats.record(&receipt, payload.len());
        receipt
    }

    fn close_slow_consumer(&mut self, key: usize, now: Instant) {
        let Some(Entry::Ws(peer)) = self.entries.get_mut(key) else {
            return;
        };
        warn!(
            "id={} peer={} is a slow consumer ({} bytes queued, limit {}): closing with 1008",
            peer.id,
            peer.addr,
            peer.out.queued_bytes(),
            self.cfg.max_queued_bytes
        );
        peer.out.discard_unstarted();
        let d = peer.close(
            CloseCode::POLICY_VIOLATION,
            "slow consumer: queued bytes over limit",
            &self.cfg,
            now,
        );
        if let Deadline::At(at) = d {
            peer.timer = self.timers.schedule(key, at);
        }
        self.mark_dirty(key);
    }
}
