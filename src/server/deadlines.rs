//! The loop's use of its deadline queue
//! ([`Timers`](super::timers::Timers)): scheduling a connection's next
//! deadline and firing the ones that came due (handshake, ping, idle and
//! close timeouts; the admin connections' timeout).

use std::time::Instant;

use super::peer::Deadline;
use super::{Entry, Server};

impl Server {
    pub(super) fn apply_deadline(&mut self, key: usize, deadline: Deadline) {
        if let Some(Entry::Ws(peer)) = self.entries.get_mut(key) {
            match deadline {
                Deadline::Keep => {}
                Deadline::At(at) => peer.timer = self.timers.schedule(key, at),
                Deadline::Clear => peer.timer = 0,
            }
        }
    }

    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some((key, serial)) = self.timers.pop_due(now) {
            let outcome = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) if peer.timer == serial => peer.on_deadline(&self.cfg, now),
                // An admin connection past --admin-timeout.
                Some(Entry::Ops(c)) if c.timer == serial && serial != 0 => None,
                _ => continue, // stale entry
            };
            match outcome {
                None => self.remove(key),
                Some(d) => {
                    self.apply_deadline(key, d);
                    self.mark_dirty(key);
                }
            }
        }
    }
}
