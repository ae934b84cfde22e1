//! The in-process history: one ring per stream, one memory budget for all.
//!
//! Bounds (docs/recovery.md):
//! - each stream keeps at most `per_stream` messages (`--history`);
//! - everything together is charged at most `max_bytes` (`--history-memory`):
//!   a message costs its envelope frame's length plus [`MESSAGE_OVERHEAD`],
//!   a stream [`STREAM_OVERHEAD`] plus its name. Over the budget, the oldest
//!   message of all streams goes first; a stream left empty and with no
//!   opted-in client connected is dropped (its epoch is gone: a client that
//!   comes back with it is told `reset: epoch`).
//!
//! Streams are ordered by the age of their oldest message in a `BTreeMap`,
//! so finding the globally oldest message is O(log streams), and a publish
//! touches the index only when the stream's oldest message changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Epoch, HistoryStore, Joined, Position, Reset, Since, Usage, envelope};
use crate::protocol::MessageKind;
use crate::protocol::frame::encode_server_frame;

/// Bytes charged per stored message besides its frame: the ring slot, the
/// `Rc` header, the `Vec` header and malloc's rounding. Measured: RSS grew
/// 285 bytes per 128-byte message kept, a 184-byte frame + 101
/// (docs/benchmarks.md).
pub(crate) const MESSAGE_OVERHEAD: usize = 100;
/// Bytes charged per stream besides its name: the map entry, the ring
/// header, the age-index entry (rounded up).
pub(crate) const STREAM_OVERHEAD: usize = 192;

/// The history limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Messages kept per stream (channel, or everyone); 0 turns history and
    /// recovery off. Default 0.
    pub per_stream: usize,
    /// Bytes charged for all streams together. Default 64 MiB.
    pub max_bytes: usize,
    /// Messages older than this are never replayed (`--history-max-age`);
    /// `None`: no time bound. Default `None`.
    pub max_age: Option<Duration>,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            per_stream: 0,
            max_bytes: 64 << 20,
            max_age: None,
        }
    }
}

struct Stored {
    offset: u64,
    /// When it was appended (global order, for the budget).
    tick: u64,
    /// When it was appended, with a time bound set.
    at: Option<Instant>,
    frame: Rc<Vec<u8>>,
}

struct Stream {
    epoch: Epoch,
    /// Offset of the newest message appended (0 before the first).
    last: u64,
    ring: VecDeque<Stored>,
    /// Opted-in clients connected to it: it is not dropped while empty.
    clients: usize,
    /// Its key in the age index.
    age: u64,
    /// With a shared sequencer: messages may have been missed since `last`
    /// (the feed was interrupted), so no `since` can be honoured until the
    /// next message starts the ring afresh.
    unknown: bool,
    /// It has had a message numbered by a shared sequencer: its epoch is
    /// the sequencer's, not a placeholder of this node's.
    sequenced: bool,
}

/// The in-process store.
pub(crate) struct MemoryHistory {
    limits: HistoryLimits,
    streams: HashMap<Rc<str>, Stream>,
    /// Streams by the tick of their oldest message (or of their last
    /// change, when empty).
    by_age: BTreeMap<u64, Rc<str>>,
    tick: u64,
    bytes: usize,
    messages: usize,
}

fn message_cost(frame: &[u8]) -> usize {
    frame.len() + MESSAGE_OVERHEAD
}

fn stream_cost(name: &str) -> usize {
    name.len() + STREAM_OVERHEAD
}

impl MemoryHistory {
    pub(crate) fn new(limits: HistoryLimits) -> MemoryHistory {
        MemoryHistory {
            limits,
            streams: HashMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            messages: 0,
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The stream, created (with a fresh epoch) if missing.
    fn stream(&mut self, name: &str) -> Rc<str> {
        if let Some((k, _)) = self.streams.get_key_value(name) {
            return Rc::clone(k);
        }
        let key: Rc<str> = Rc::from(name);
        let age = self.next_tick();
        self.by_age.insert(age, Rc::clone(&key));
        self.streams.insert(
            Rc::clone(&key),
            Stream {
                epoch: Epoch::random(),
                last: 0,
                ring: VecDeque::new(),
                clients: 0,
                age,
                unknown: false,
                sequenced: false,
            },
        );
        self.bytes += stream_cost(name);
        key
    }

    /// Moves a stream in the age index to `age`.
    fn reindex(&mut self, key: &Rc<str>, age: u64) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        if s.age != age {
            self.by_age.remove(&s.age);
            s.age = age;
            self.by_age.insert(age, Rc::clone(key));
        }
    }

    /// Drops the oldest message of `key`; the stream's new age.
    fn pop_oldest(&mut self, key: &Rc<str>) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        let Some(old) = s.ring.pop_front() else {
            return;
        };
        self.bytes -= message_cost(&old.frame);
        self.messages -= 1;
        // An emptied stream keeps the age of its last message, so it is
        // next in line to be dropped when the budget needs it.
        let age = s.ring.front().map_or(old.tick, |m| m.tick);
        self.reindex(key, age);
    }

    /// With a time bound: drops `key`'s messages older than it, and says
    /// what time it is. (Expired messages of streams nobody writes to or
    /// joins stay until the budget needs their bytes; they are never
    /// replayed.)
    fn expire(&mut self, key: &Rc<str>) -> Option<Instant> {
        let max_age = self.limits.max_age?;
        let now = Instant::now();
        while let Some(at) = self
            .streams
            .get(key)
            .and_then(|s| s.ring.front())
            .and_then(|m| m.at)
        {
            if now.saturating_duration_since(at) <= max_age {
                break;
            }
            self.pop_oldest(key);
        }
        Some(now)
    }

    /// Evicts until the budget holds: the globally oldest message first,
    /// then empty streams no client is connected to. Empty streams with
    /// clients are moved to the back; if nothing else is left the budget is
    /// exceeded by those (bounded by connections × channels per connection).
    fn enforce_budget(&mut self) {
        let mut pinned_seen = 0;
        while self.bytes > self.limits.max_bytes {
            let Some((_, key)) = self.by_age.first_key_value() else {
                return;
            };
            let key = Rc::clone(key);
            let Some(s) = self.streams.get(&key) else {
                return;
            };
            if !s.ring.is_empty() {
                self.pop_oldest(&key);
            } else if s.clients == 0 {
                let age = s.age;
                self.by_age.remove(&age);
                self.streams.remove(&key);
                self.bytes -= stream_cost(&key);
            } else {
                pinned_seen += 1;
                if pinned_seen > self.streams.len() {
                    return;
                }
                let t = self.next_tick();
                self.reindex(&key, t);
            }
        }
    }
}

impl HistoryStore for MemoryHistory {
    fn append(
        &mut self,
        stream: &str,
        at: Option<Position>,
        kind: MessageKind,
        payload: &[u8],
    ) -> (Position, Rc<Vec<u8>>) {
        let key = self.stream(stream);
        if let Some(at) = at {
            let follows = self.streams.get(&key).is_some_and(|s| {
                !s.unknown && s.epoch == at.epoch && s.last.checked_add(1) == Some(at.offset)
            });
            if !follows {
                // Another epoch, a hole, or the first message since the feed
                // was interrupted: the ring starts afresh at `at`.
                while self.streams.get(&key).is_some_and(|s| !s.ring.is_empty()) {
                    self.pop_oldest(&key);
                }
            }
        }
        let now = self.expire(&key);
        let tick = self.next_tick();
        let per_stream = self.limits.per_stream.max(1);
        let Some(s) = self.streams.get_mut(&key) else {
            unreachable!("created above");
        };
        let at = match at {
            Some(at) => {
                s.epoch = at.epoch;
                s.unknown = false;
                s.sequenced = true;
                s.last = at.offset;
                at
            }
            None => {
                s.last += 1;
                Position {
                    epoch: s.epoch,
                    offset: s.last,
                }
            }
        };
        let json = envelope::message(stream, at, kind, payload);
        let frame = Rc::new(encode_server_frame(
            MessageKind::Text.opcode(),
            json.as_bytes(),
        ));
        let was_empty = s.ring.is_empty();
        s.ring.push_back(Stored {
            offset: at.offset,
            tick,
            at: now,
            frame: Rc::clone(&frame),
        });
        let full = s.ring.len() > per_stream;
        self.bytes += message_cost(&frame);
        self.messages += 1;
        if full {
            self.pop_oldest(&key);
        } else if was_empty {
            self.reindex(&key, tick);
        }
        self.enforce_budget();
        (at, frame)
    }

    fn join(&mut self, stream: &str, since: Option<&Since>, max_replay_bytes: usize) -> Joined {
        let key = self.stream(stream);
        self.expire(&key);
        let Some(s) = self.streams.get_mut(&key) else {
            unreachable!("created above");
        };
        s.clients += 1;
        let position = Position {
            epoch: s.epoch,
            offset: s.last,
        };
        let mut joined = Joined {
            position,
            replay: Vec::new(),
            reset: None,
            ask_shared: !s.sequenced || s.unknown,
        };
        let Some(since) = since else {
            // Creating the stream may have pushed the budget over.
            self.enforce_budget();
            return joined;
        };
        let mut over_budget = false;
        joined.reset = if since.epoch != s.epoch {
            Some(Reset::Epoch)
        } else if s.unknown {
            Some(Reset::TooOld)
        } else if since.offset > s.last {
            Some(Reset::Ahead)
        } else {
            // Everything after `since.offset` must still be in the ring.
            let first_kept = s.ring.front().map_or(s.last + 1, |m| m.offset);
            if since.offset + 1 < first_kept {
                Some(Reset::TooOld)
            } else {
                let skip = s.ring.len() - (s.last - since.offset) as usize;
                let mut bytes = 0;
                let mut too_big = false;
                for m in s.ring.iter().skip(skip) {
                    bytes += m.frame.len();
                    if bytes > max_replay_bytes {
                        too_big = true;
                        break;
                    }
                    joined.replay.push(Rc::clone(&m.frame));
                }
                if too_big {
                    joined.replay.clear();
                    // Redis would refuse it too: the budget is the same.
                    over_budget = true;
                    Some(Reset::TooOld)
                } else {
                    None
                }
            }
        };
        joined.ask_shared |= joined.reset.is_some() && !over_budget;
        self.enforce_budget();
        joined
    }

    fn feed_interrupted(&mut self) {
        let keys: Vec<Rc<str>> = self.streams.keys().cloned().collect();
        for key in keys {
            while self.streams.get(&key).is_some_and(|s| !s.ring.is_empty()) {
                self.pop_oldest(&key);
            }
            if let Some(s) = self.streams.get_mut(&key) {
                s.unknown = true;
            }
        }
    }

    fn leave(&mut self, stream: &str) {
        if let Some(s) = self.streams.get_mut(stream) {
            s.clients = s.clients.saturating_sub(1);
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            streams: self.streams.len(),
            messages: self.messages,
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(per_stream: usize, max_bytes: usize) -> MemoryHistory {
        MemoryHistory::new(HistoryLimits {
            per_stream,
            max_bytes,
            max_age: None,
        })
    }

    #[test]
    fn sequenced_positions_are_kept_and_holes_start_afresh() {
        let mut h = store(100, 1 << 20);
        let e = Epoch::parse("0123456789ab").unwrap();
        let at = |offset| Some(Position { epoch: e, offset });
        // A client joined before any message: a placeholder epoch, which
        // only Redis can replace.
        let j = h.join("a", None, 1 << 20);
        assert!(j.ask_shared);
        let first = j.position;
        for off in 41..=43 {
            let (p, f) = h.append("a", at(off), MessageKind::Text, b"x");
            assert_eq!(p, at(off).unwrap());
            assert!(String::from_utf8_lossy(&f).contains(&format!("\"off\":{off},")));
        }
        let j = h.join("a", Some(&since("a", first.offset, first.epoch)), 1 << 20);
        assert_eq!(
            j.reset,
            Some(Reset::Epoch),
            "the placeholder is not Redis's epoch"
        );
        let j = h.join("a", Some(&since("a", 40, e)), 1 << 20);
        assert_eq!(
            (j.reset, j.replay.len(), j.position, j.ask_shared),
            (None, 3, at(43).unwrap(), false)
        );
        // Before what this node saw, or beyond it: Redis may know more.
        assert!(h.join("a", Some(&since("a", 39, e)), 1 << 20).ask_shared);
        assert!(h.join("a", Some(&since("a", 44, e)), 1 << 20).ask_shared);
        // Over the byte budget: Redis would refuse it too.
        let j = h.join("a", Some(&since("a", 40, e)), 10);
        assert_eq!((j.reset, j.ask_shared), (Some(Reset::TooOld), false));
        // 44 never arrived: the ring starts again at 45, never across the hole.
        h.append("a", at(45), MessageKind::Text, b"y");
        assert_eq!(h.usage().messages, 1);
        let j = h.join("a", Some(&since("a", 43, e)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::TooOld));
        let j = h.join("a", Some(&since("a", 44, e)), 1 << 20);
        assert_eq!((j.reset, j.replay.len()), (None, 1));
        // The feed was interrupted: nothing after 45 is known to be complete.
        h.feed_interrupted();
        assert_eq!(h.usage().messages, 0);
        let j = h.join("a", Some(&since("a", 45, e)), 1 << 20);
        assert_eq!((j.reset, j.ask_shared), (Some(Reset::TooOld), true));
        assert!(h.join("a", None, 1 << 20).ask_shared, "interrupted");
        // The next message (whatever its offset) starts it again.
        h.append("a", at(50), MessageKind::Text, b"z");
        let j = h.join("a", Some(&since("a", 49, e)), 1 << 20);
        assert_eq!((j.reset, j.replay.len()), (None, 1));
        let j = h.join("a", Some(&since("a", 45, e)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::TooOld));
    }

    #[test]
    fn the_time_bound_is_never_replayed_across() {
        let mut h = MemoryHistory::new(HistoryLimits {
            per_stream: 100,
            max_bytes: 1 << 20,
            max_age: Some(Duration::from_millis(100)),
        });
        let (p1, _) = h.append("a", None, MessageKind::Text, b"old");
        std::thread::sleep(Duration::from_millis(200));
        let (p2, _) = h.append("a", None, MessageKind::Text, b"new");
        assert_eq!(h.usage().messages, 1, "the expired message was dropped");
        let j = h.join("a", Some(&since("a", 0, p1.epoch)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::TooOld), "message 1 is gone");
        let j = h.join("a", Some(&since("a", 1, p1.epoch)), 1 << 20);
        assert_eq!((j.reset, j.replay.len()), (None, 1));
        std::thread::sleep(Duration::from_millis(200));
        let j = h.join("a", Some(&since("a", 1, p2.epoch)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::TooOld), "expired on join too");
        assert_eq!(h.usage().messages, 0);
        // Up to date: nothing missed, nothing to say.
        let j = h.join("a", Some(&since("a", 2, p2.epoch)), 1 << 20);
        assert_eq!(j.reset, None);
    }

    fn since(stream: &str, offset: u64, epoch: Epoch) -> Since {
        Since {
            stream: stream.into(),
            offset,
            epoch,
        }
    }

    fn text(frame: &[u8]) -> String {
        // Server frames here are short, unmasked, one frame: skip the header.
        let len = frame[1] as usize;
        let (hdr, n) = if len == 126 {
            (4, u16::from_be_bytes([frame[2], frame[3]]) as usize)
        } else {
            (2, len)
        };
        String::from_utf8(frame[hdr..hdr + n].to_vec()).unwrap()
    }

    #[test]
    fn offsets_count_up_per_stream_and_catch_up_is_exact() {
        let mut h = store(100, 1 << 20);
        let (a1, _) = h.append("a", None, MessageKind::Text, b"1");
        let (b1, _) = h.append("b", None, MessageKind::Text, b"x");
        let (a2, f2) = h.append("a", None, MessageKind::Text, b"2");
        let (a3, _) = h.append("a", None, MessageKind::Text, b"3");
        assert_eq!((a1.offset, a2.offset, a3.offset, b1.offset), (1, 2, 3, 1));
        assert_eq!(a1.epoch, a3.epoch);
        assert_ne!(a1.epoch, b1.epoch, "each stream has its own epoch");
        assert_eq!(
            text(&f2),
            format!(r#"{{"ch":"a","ep":"{}","off":2,"data":"2"}}"#, a1.epoch)
        );
        let j = h.join("a", Some(&since("a", 1, a1.epoch)), 1 << 20);
        assert_eq!(j.reset, None);
        assert_eq!(j.position, a3);
        let got: Vec<String> = j.replay.iter().map(|f| text(f)).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].contains(r#""off":2,"data":"2""#));
        assert!(got[1].contains(r#""off":3,"data":"3""#));
        // Up to date: nothing to replay.
        let j = h.join("a", Some(&since("a", 3, a1.epoch)), 1 << 20);
        assert_eq!((j.replay.len(), j.reset), (0, None));
        // From before the first message of the epoch: everything.
        let j = h.join("a", Some(&since("a", 0, a1.epoch)), 1 << 20);
        assert_eq!((j.replay.len(), j.reset), (3, None));
    }

    #[test]
    fn resets_say_why() {
        let mut h = store(3, 1 << 20);
        let mut ep = None;
        for i in 0..5 {
            ep = Some(
                h.append("a", None, MessageKind::Text, format!("{i}").as_bytes())
                    .0
                    .epoch,
            );
        }
        let ep = ep.unwrap();
        // Kept: 3, 4, 5. From 2 on is complete; from 1 is not.
        assert_eq!(
            h.join("a", Some(&since("a", 2, ep)), 1 << 20).replay.len(),
            3
        );
        let j = h.join("a", Some(&since("a", 1, ep)), 1 << 20);
        assert_eq!((j.replay.len(), j.reset), (0, Some(Reset::TooOld)));
        let j = h.join("a", Some(&since("a", 6, ep)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::Ahead));
        let other = Epoch::parse("000000000000").unwrap();
        let j = h.join("a", Some(&since("a", 5, other)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::Epoch));
        assert_eq!(j.position.offset, 5);
        // A replay larger than allowed is refused as too old.
        let j = h.join("a", Some(&since("a", 2, ep)), 10);
        assert_eq!((j.replay.len(), j.reset), (0, Some(Reset::TooOld)));
    }

    #[test]
    fn the_budget_bounds_bytes_and_drops_the_oldest_first() {
        let budget = 8 * 1024;
        let mut h = store(1000, budget);
        let payload = vec![b'x'; 100];
        for i in 0..1000 {
            let ch = format!("c{}", i % 7);
            h.append(&ch, None, MessageKind::Text, &payload);
            assert!(h.usage().bytes <= budget, "{:?}", h.usage());
        }
        let u = h.usage();
        assert!(u.messages > 10 && u.messages < 60, "{u:?}");
        // The newest message of the last stream written is still there.
        let key = h.stream("c5");
        let s = &h.streams[&key];
        assert_eq!(s.ring.back().unwrap().offset, s.last);
        // Streams nobody is joined to and emptied by the budget are dropped:
        // a client coming back with their epoch is told.
        let mut h = store(1000, 2048);
        let (old, _) = h.append("quiet", None, MessageKind::Text, b"q");
        for _ in 0..100 {
            h.append("busy", None, MessageKind::Text, &payload);
        }
        assert!(!h.streams.contains_key("quiet"));
        let j = h.join("quiet", Some(&since("quiet", 1, old.epoch)), 1 << 20);
        assert_eq!(j.reset, Some(Reset::Epoch));
        assert_eq!(j.position.offset, 0);
    }

    #[test]
    fn joined_streams_survive_the_budget() {
        let mut h = store(1000, 2048);
        let j = h.join("kept", None, 1 << 20);
        let payload = vec![b'x'; 100];
        for _ in 0..100 {
            h.append("busy", None, MessageKind::Text, &payload);
        }
        let again = h.join("kept", Some(&since("kept", 0, j.position.epoch)), 1 << 20);
        assert_eq!(again.reset, None, "an empty joined stream keeps its epoch");
        h.leave("kept");
        h.leave("kept");
        for _ in 0..100 {
            h.append("busy", None, MessageKind::Text, &payload);
        }
        assert!(!h.streams.contains_key("kept"));
        assert!(h.usage().bytes <= 2048);
    }
}
