//! Recovery at the hub: an opted-in client joins the history of its
//! streams at its upgrade (replay, then a position per stream), Redis's
//! answers to joins this node could not serve are queued, and a client
//! that leaves releases its streams.

use crate::protocol::MessageKind;
use crate::protocol::frame::encode_server_frame;
use crate::server::cluster::catchup;
use crate::server::history::pending::{Answer, Pending};
use crate::server::history::{EVERYONE, Joined, Reset, Usage, envelope};
use crate::server::outbound::Chunk;
use crate::server::peer::{PeerState, WsPeer};
use crate::server::stats::Stats;
use crate::server::{Entry, Server};

/// Counts a join's outcome.
fn count_join(stats: &mut Stats, joined: &Joined) {
    stats.recovery_replayed += joined.replay.len() as u64;
    if joined.reset.is_some() {
        stats.recovery_resets += 1;
    }
}

impl Server {
    /// An opted-in client that just upgraded joins the history of each of
    /// its streams (everyone's and its channels'): the messages it missed
    /// since its `since=` positions, then a position envelope per stream,
    /// are queued now, before any later publish can reach it. That is the
    /// seam: one loop, so nothing is published between the replay and the
    /// first live message.
    pub(crate) fn join_history(&mut self, key: usize) {
        let Some(history) = self.history.as_mut() else {
            return;
        };
        let Some(Entry::Ws(peer)) = self.entries.get_mut(key) else {
            return;
        };
        if !peer.recover {
            return;
        }
        let since = peer.since.take().map(|s| *s).unwrap_or_default();
        // Half the queue limit at most over all its streams, so a catch-up
        // never makes the client a slow consumer by itself.
        let mut budget = self.cfg.max_queued_bytes / 2;
        // `--redis-history`: what this node's ring cannot answer, Redis does
        // (the stream then waits, its live messages held: `pending`).
        let mut cluster = self.cluster.as_mut().filter(|c| c.shares_history());
        let mut pending: Option<Box<Pending>> = None;
        let streams = std::iter::once(EVERYONE).chain(peer.channels.iter().map(|c| &**c));
        for stream in streams {
            let from = since.iter().find(|s| *s.stream == *stream);
            let mut joined = history.join(stream, from, budget);
            self.stats.recovery_joins += 1;
            if let Some(c) = cluster.as_deref_mut().filter(|_| joined.ask_shared) {
                let asked = from.map(|s| (s.offset, s.epoch));
                if c.ask_history(key, peer.id, stream, asked, budget) {
                    self.stats.recovery_fallbacks += 1;
                    pending
                        .get_or_insert_with(|| Box::new(Pending::new(0)))
                        .wait(stream, from.is_some(), joined.position);
                    continue;
                }
                self.stats.recovery_fallback_unavailable += 1;
                if from.is_some() {
                    joined.replay.clear();
                    joined.reset = Some(Reset::Unavailable);
                }
            }
            count_join(&mut self.stats, &joined);
            for f in joined.replay {
                budget = budget.saturating_sub(f.len());
                peer.out.push(Chunk::Shared(f));
            }
            let json = envelope::position(stream, joined.position, joined.reset);
            peer.out.push(Chunk::Owned(encode_server_frame(
                MessageKind::Text.opcode(),
                json.as_bytes(),
            )));
        }
        if let Some(mut p) = pending {
            p.set_budget(budget);
            peer.pending = Some(p);
        }
        self.mark_dirty(key);
    }

    /// Redis answered a join (`--redis-history`): the replay, the position
    /// and the live messages held meanwhile are queued, in that order.
    pub(crate) fn on_catch_up(&mut self, r: catchup::Reply) {
        let Some(Entry::Ws(peer)) = self.entries.get_mut(r.key) else {
            return; // gone
        };
        if peer.id != r.id {
            return; // gone, and its key reused
        }
        let Some(p) = peer.pending.as_mut() else {
            return;
        };
        let unavailable = matches!(r.answer, Answer::Refused(Reset::Unavailable));
        let Some(done) = p.finish(&r.stream, r.answer) else {
            return; // given up already
        };
        if p.is_empty() {
            peer.pending = None;
        }
        let stats = &mut self.stats;
        stats.recovery_replayed += done.replayed as u64;
        stats.recovery_fallback_replayed += done.replayed as u64;
        stats.recovery_resets += u64::from(done.reset.is_some());
        stats.recovery_fallback_unavailable += u64::from(unavailable);
        if matches!(&peer.state, PeerState::Open(c) if c.can_send()) {
            for c in done.chunks {
                peer.out.push(c);
            }
            self.mark_dirty(r.key);
        }
    }

    /// What the history holds now (all zero when it is off).
    pub(crate) fn history_usage(&self) -> Usage {
        self.history.as_ref().map(|h| h.usage()).unwrap_or_default()
    }

    /// An opted-in client left: its streams may be evicted again.
    pub(crate) fn leave_history(&mut self, peer: &WsPeer) {
        if !peer.recover {
            return;
        }
        if let Some(history) = self.history.as_mut() {
            history.leave(EVERYONE);
            for c in peer.channels.iter() {
                history.leave(c);
            }
        }
    }
}
