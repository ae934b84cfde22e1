//! A deadline queue: mio has no timers, so the loop asks this queue for the
//! nearest deadline and uses it as the poll timeout.
//!
//! Entries are never removed early: each owner remembers the serial of its
//! current deadline, and an entry whose serial is no longer current is
//! skipped when it comes up (lazy deletion keeps rescheduling O(log n)).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Identifies one scheduled deadline.
pub(crate) type Serial = u64;

/// A point in time in 8 bytes, where an `Instant` takes 16: nanoseconds
/// since the process's first use of `Tick` (584 years of range). Every
/// connection keeps two of them and has an entry in the timer heap, so the
/// 8 bytes saved count (docs/benchmarks.md, idle memory).
///
/// An `Instant` from before that first use maps to it (the first use comes
/// with the first connection's `now`, microseconds apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tick(u64);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Tick {
    pub(crate) fn from_instant(t: Instant) -> Tick {
        let nanos = t.saturating_duration_since(epoch()).as_nanos();
        Tick(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    pub(crate) fn instant(self) -> Instant {
        epoch() + Duration::from_nanos(self.0)
    }
}

/// The queue.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Tick, Serial, usize)>>,
    next_serial: Serial,
}

impl Timers {
    /// Schedules a deadline for `key`; returns its serial, which the owner
    /// keeps to recognise the entry as current.
    pub(crate) fn schedule(&mut self, key: usize, at: Instant) -> Serial {
        self.next_serial += 1;
        self.heap
            .push(Reverse((Tick::from_instant(at), self.next_serial, key)));
        self.next_serial
    }

    /// How long until the nearest deadline (zero if one is due).
    pub(crate) fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _, _))| at.instant().saturating_duration_since(now))
    }

    /// Pops one due entry: `(key, serial)`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(usize, Serial)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= Tick::from_instant(now) => self
                .heap
                .pop()
                .map(|Reverse((_, serial, key))| (key, serial)),
            _ => None,
        }
    }

    /// Entries held (stale ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_and_timeout() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.timeout(t0), None);
        let a = t.schedule(1, t0 + Duration::from_secs(5));
        let b = t.schedule(2, t0 + Duration::from_secs(1));
        assert_eq!(t.timeout(t0), Some(Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(2)), Some((2, b)));
        assert_eq!(t.pop_due(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(9)), Some((1, a)));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn tick_round_trips_an_instant() {
        let _ = Tick::from_instant(Instant::now()); // sets the epoch if unset
        let t0 = Instant::now(); // so this is at or after it
        for later in [
            t0,
            t0 + Duration::from_nanos(1),
            t0 + Duration::from_secs(86_400),
        ] {
            let tick = Tick::from_instant(later);
            assert_eq!(tick.instant(), later);
            assert!(tick < Tick::from_instant(later + Duration::from_nanos(1)));
        }
        // An instant from before the epoch maps to it.
        if let Some(before) = epoch().checked_sub(Duration::from_secs(1)) {
            assert_eq!(Tick::from_instant(before), Tick(0));
        }
    }
}
