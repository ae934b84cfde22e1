//! The write path: connections with something queued are marked dirty and
//! written at the end of the loop turn, one vectored write each, with a
//! look at the sockets every [`FLUSH_SLICE`] connections and the
//! `--write-delay` window applied to broadcasts.

use std::io;
use std::time::{Duration, Instant};

use log::debug;

use super::peer::PeerState;
use super::sockets::set_write_interest;
use super::{Entry, Server};

/// Connections written in one flush pass between two looks at the sockets
/// ([`Server::look_between_writes`]): about a millisecond of writes on a
/// small host, one `epoll_wait` each time.
pub(super) const FLUSH_SLICE: usize = 256;

impl Server {
    pub(super) fn mark_dirty(&mut self, key: usize) {
        let (dirty, wants) = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let wants = peer.wants_flush();
                peer.urgent |= wants;
                (&mut peer.dirty, wants)
            }
            Some(Entry::Rpc(c)) => (&mut c.dirty, !c.out.is_empty()),
            Some(Entry::Ops(c)) => (&mut c.dirty, !c.out.is_empty()),
            _ => return,
        };
        if !*dirty && wants {
            *dirty = true;
            self.dirty.push(key);
        }
    }

    /// One vectored write per connection that has something queued; every
    /// [`FLUSH_SLICE`] connections written, a look at the sockets. With
    /// `--write-delay`, connections that only got broadcasts (the hub queues
    /// them without [`Self::mark_dirty`], which marks the rest urgent) are
    /// written only once the window that started with the first frame held
    /// has passed (or at shutdown); they stay on the dirty list until then.
    /// `auto` opens such a window only right after a large fan-out pass, as
    /// long as that pass took ([`WriteDelay::due`](super::WriteDelay::due));
    /// in that mode only, a pass that wrote [`FLUSH_SLICE`] connections or
    /// more is timed for it ([`WriteDelay::meter`](super::WriteDelay::meter)).
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        if self.write_due.is_none() && self.shutdown_deadline.is_none() {
            self.write_due = self.cfg.write_delay.due(now, self.last_fanout);
        }
        let hold = self.shutdown_deadline.is_none() && self.write_due.is_some_and(|due| now < due);
        if !hold {
            self.write_due = None;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut meter = self.cfg.write_delay.meter(dirty.len(), FLUSH_SLICE);
        let mut held = 0;
        let mut written = 0;
        for i in 0..dirty.len() {
            let key = dirty[i];
            if written == FLUSH_SLICE {
                written = 0;
                self.look_between_writes();
            }
            if hold && matches!(self.entries.get(key), Some(Entry::Ws(p)) if !p.urgent) {
                // Still dirty: keep it for the flush when the window ends.
                dirty[held] = key;
                held += 1;
                continue;
            }
            match self.entries.get(key) {
                Some(Entry::Rpc(_)) => {
                    self.flush_rpc(key);
                    continue;
                }
                Some(Entry::Ops(_)) => {
                    self.flush_ops(key);
                    continue;
                }
                _ => {}
            }
            let Some(Entry::Ws(peer)) = self.entries.get_mut(key) else {
                continue;
            };
            peer.dirty = false;
            peer.urgent = false;
            written += 1;
            if let Some(m) = meter.as_mut() {
                m.count(peer.out.chunks());
            }
            let was_flushing = matches!(peer.state, PeerState::Flushing);
            match peer.flush() {
                Ok(drained) => {
                    set_write_interest(
                        self.poll.registry(),
                        &mut peer.stream,
                        key,
                        &mut peer.writable_interest,
                        drained,
                    );
                    if was_flushing && drained {
                        let at = now + self.cfg.close_timeout;
                        peer.timer = self.timers.schedule(key, at);
                    }
                }
                Err(e) => {
                    debug!("write error on {key}: {e}");
                    self.remove(key);
                }
            }
        }
        // A connection removed above queued a disconnect event for the
        // `events` subscribers: flush them too.
        dirty.truncate(held);
        if held == 0 {
            self.write_due = None;
        }
        if let Some(fanout) = meter.and_then(|m| m.finish()) {
            self.last_fanout = Some(fanout);
        }
        // Removals queued disconnect events for the `events` subscribers:
        // flush those now. Anything else that became dirty during the pass
        // (through a look between writes) stays for the next one, which
        // polls without waiting.
        let added = std::mem::replace(&mut self.dirty, dirty);
        for key in added {
            match self.entries.get(key) {
                Some(Entry::Ops(_)) => self.flush_ops(key),
                Some(_) => self.dirty.push(key),
                None => {}
            }
        }
    }

    /// A look at the sockets in the middle of a flush pass, without
    /// waiting: what arrived meanwhile is handled now, so a message
    /// published during a long fan-out joins the queues of the connections
    /// not written yet and shares their write (connections already written
    /// get it on the next pass, in order).
    fn look_between_writes(&mut self) {
        let Some(mut events) = self.slice_events.take() else {
            return; // already inside one
        };
        match self.poll.poll(&mut events, Some(Duration::ZERO)) {
            Ok(()) => self.dispatch(&events, Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => debug!("poll between writes: {e}"),
        }
        self.slice_events = Some(events);
    }
}
