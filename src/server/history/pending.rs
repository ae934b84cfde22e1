//! Catch-ups served from Redis (`--redis-history`, docs/recovery.md "Across
//! nodes"): when this node's ring cannot answer a join (it started, or its
//! feed was re-established, after the client's offset; or its feed is
//! behind the node the client left; or the stream has had no message here
//! yet), the join is answered by Redis on the catch-up thread. Meanwhile the
//! client's live messages of that stream are held here, and when Redis's
//! answer arrives the replay, the position envelope and the held messages
//! are queued in that order, the held ones already in the replay skipped by
//! offset: no gap, no duplicate at the seam.
//!
//! Why that is exact: Redis numbers a message (`XADD`) before it publishes
//! it, and the question goes to Redis after the join; so every message this
//! node delivered before the join is in Redis's answer, and every one it
//! delivers after is held. The two overlap (what was published while the
//! question travelled) and the overlap is skipped. A hole between them (the
//! node's feed was interrupted meanwhile) is never bridged silently: the
//! position says `reset`.

use std::rc::Rc;

use super::{Epoch, Position, Reset, envelope};
use crate::protocol::MessageKind;
use crate::protocol::frame::encode_server_frame;
use crate::server::outbound::Chunk;

/// What Redis said about one stream.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The stream's position in Redis: the answer to a join without
    /// `since` (the client gets Redis's epoch), or a refusal (`reset`) of
    /// one with it.
    Position { at: Position, reset: Option<Reset> },
    /// Every message after the client's offset `since`, oldest first, as
    /// envelope frames: frame `i` is offset `since + 1 + i` under `epoch`,
    /// and the last one is Redis's newest.
    Replay {
        epoch: Epoch,
        since: u64,
        frames: Vec<Vec<u8>>,
    },
    /// No answer from Redis (`Unavailable`), or the wait was given up
    /// (`TooOld`: the held messages outgrew the client's queue limit).
    Refused(Reset),
}

/// One stream waiting for Redis.
#[derive(Debug)]
struct Waiting {
    stream: Box<str>,
    /// The client named a `since=` for it.
    asked_since: bool,
    /// This node's position when the client joined (said with a refusal
    /// when nothing is held).
    local: Position,
    /// Live messages held meanwhile, oldest first.
    held: Vec<(Position, Rc<Vec<u8>>)>,
    bytes: usize,
}

/// A client's streams waiting for Redis. Boxed in the peer: idle clients
/// pay a pointer.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    waiting: Vec<Waiting>,
    /// What is left of the client's catch-up budget (half of
    /// `--max-queued-bytes`, minus what this node replayed at the join).
    budget: usize,
    /// Bytes held, all streams together.
    bytes: usize,
    /// Streams answered from Redis through an offset this node may not
    /// have delivered yet (its feed lags Redis): live messages up to it are
    /// in the client's replay already and are skipped; the first one past
    /// it ends the skip.
    skips: Vec<(Box<str>, Position)>,
}

/// A stream's catch-up, ready to queue.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Replay, position envelope, held messages.
    pub(crate) chunks: Vec<Chunk>,
    /// Messages replayed from Redis.
    pub(crate) replayed: usize,
    pub(crate) reset: Option<Reset>,
}

impl Pending {
    pub(crate) fn new(budget: usize) -> Pending {
        Pending {
            waiting: Vec::new(),
            budget,
            bytes: 0,
            skips: Vec::new(),
        }
    }

    /// `stream` waits for Redis from now on.
    pub(crate) fn wait(&mut self, stream: &str, asked_since: bool, local: Position) {
        self.waiting.push(Waiting {
            stream: stream.into(),
            asked_since,
            local,
            held: Vec::new(),
            bytes: 0,
        });
    }

    pub(crate) fn is_waiting(&self, stream: &str) -> bool {
        self.waiting.iter().any(|w| *w.stream == *stream)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.skips.is_empty()
    }

    /// A live message of `stream` at `at`: true when the client got it
    /// already, in a replay from Redis that reached past this node's feed.
    pub(crate) fn replayed_already(&mut self, stream: &str, at: Position) -> bool {
        let Some(i) = self.skips.iter().position(|(s, _)| **s == *stream) else {
            return false;
        };
        let through = self.skips[i].1;
        if at.epoch == through.epoch && at.offset <= through.offset {
            return true;
        }
        self.skips.swap_remove(i);
        false
    }

    /// Bytes held for all streams: they count toward the client's queued
    /// bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The catch-up budget left.
    #[cfg(test)]
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// Holds a live message of a waiting stream; false when `stream` is not
    /// waiting.
    pub(crate) fn hold(&mut self, stream: &str, at: Position, frame: Rc<Vec<u8>>) -> bool {
        let Some(w) = self.waiting.iter_mut().find(|w| *w.stream == *stream) else {
            return false;
        };
        w.bytes += frame.len();
        self.bytes += frame.len();
        w.held.push((at, frame));
        true
    }

    /// Ends `stream`'s wait with `answer`: what to queue, in order. `None`
    /// when it is not waiting (already finished or given up).
    pub(crate) fn finish(&mut self, stream: &str, answer: Answer) -> Option<Finished> {
        let i = self.waiting.iter().position(|w| *w.stream == *stream)?;
        let w = self.waiting.remove(i);
        self.bytes -= w.bytes;
        let mut chunks = Vec::new();
        let mut replayed = 0;
        // Where the client stands after the answer, and whether held
        // messages up to there are already covered by it.
        let (mut epoch, mut last, mut reset, covered) = match answer {
            Answer::Replay {
                epoch,
                since,
                frames,
            } => {
                let newest = since + frames.len() as u64;
                let bytes: usize = frames.iter().map(Vec::len).sum();
                if bytes > self.budget {
                    (epoch, newest, Some(Reset::TooOld), true)
                } else {
                    self.budget -= bytes;
                    replayed = frames.len();
                    chunks.extend(frames.into_iter().map(Chunk::Owned));
                    (epoch, newest, None, true)
                }
            }
            Answer::Position { at, reset } => (at.epoch, at.offset, reset, w.asked_since),
            // A join without `since=` asked for nothing that can be refused.
            Answer::Refused(r) => (
                w.local.epoch,
                w.local.offset,
                w.asked_since.then_some(r),
                false,
            ),
        };
        let (answered_epoch, answered_last) = (epoch, last);
        if covered {
            // Redis may have answered through messages this node's feed has
            // not delivered yet: when they come, they are not news.
            self.skips.retain(|(s, _)| **s != *w.stream);
            self.skips.push((
                w.stream.clone(),
                Position {
                    epoch: answered_epoch,
                    offset: answered_last,
                },
            ));
        }
        let mut held = w
            .held
            .into_iter()
            .filter(|(p, _)| !(covered && p.epoch == answered_epoch && p.offset <= answered_last))
            .peekable();
        if let Some((first, _)) = held.peek() {
            if first.epoch != epoch || Some(first.offset) != last.checked_add(1) {
                // Not contiguous with the answer: the position moves to just
                // before the first held message, and a client that asked to
                // catch up is told it could not.
                if w.asked_since && reset.is_none() {
                    reset = Some(if first.epoch == epoch {
                        Reset::TooOld
                    } else {
                        Reset::Epoch
                    });
                }
                epoch = first.epoch;
                last = first.offset.saturating_sub(1);
            }
        }
        let json = envelope::position(
            &w.stream,
            Position {
                epoch,
                offset: last,
            },
            reset,
        );
        chunks.push(Chunk::Owned(encode_server_frame(
            MessageKind::Text.opcode(),
            json.as_bytes(),
        )));
        chunks.extend(held.map(|(_, f)| Chunk::Shared(f)));
        Some(Finished {
            chunks,
            replayed,
            reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Epoch {
        Epoch::parse(s).unwrap()
    }

    fn at(e: Epoch, offset: u64) -> Position {
        Position { epoch: e, offset }
    }

    /// A frame whose bytes say which offset it is.
    fn frame(off: u64) -> Vec<u8> {
        format!("m{off}").into_bytes()
    }

    fn shown(f: &Finished) -> Vec<String> {
        f.chunks
            .iter()
            .map(|c| match c {
                Chunk::Shared(b) => String::from_utf8_lossy(b).into_owned(),
                Chunk::Owned(b) if b.first() == Some(&0x81) => {
                    String::from_utf8_lossy(&b[2..]).into_owned()
                }
                Chunk::Owned(b) => String::from_utf8_lossy(b).into_owned(),
            })
            .collect()
    }

    fn hold(p: &mut Pending, s: &str, e: Epoch, range: std::ops::RangeInclusive<u64>) {
        for off in range {
            assert!(p.hold(s, at(e, off), Rc::new(frame(off))));
        }
    }

    #[test]
    fn the_seam_has_no_gap_and_no_duplicate() {
        let e = ep("0123456789ab");
        let mut p = Pending::new(1 << 20);
        p.wait("news", true, at(ep("aaaaaaaaaaaa"), 0));
        assert!(p.is_waiting("news") && !p.is_waiting("other"));
        assert!(!p.hold("other", at(e, 1), Rc::new(frame(1))));
        // Redis answers 4..=8; meanwhile the node delivered 7..=10.
        hold(&mut p, "news", e, 7..=10);
        assert_eq!(p.bytes(), 4 * 2 + 1);
        let f = p
            .finish(
                "news",
                Answer::Replay {
                    epoch: e,
                    since: 3,
                    frames: (4..=8).map(frame).collect(),
                },
            )
            .unwrap();
        assert_eq!((f.replayed, f.reset), (5, None));
        assert_eq!(
            shown(&f),
            [
                "m4",
                "m5",
                "m6",
                "m7",
                "m8",
                r#"{"ch":"news","ep":"0123456789ab","off":8}"#,
                "m9",
                "m10"
            ]
        );
        // The node had delivered past the replay: the next live message
        // (11) is news, and ends the skip.
        assert!(!p.replayed_already("news", at(e, 11)));
        assert!(p.is_empty());
        assert_eq!(p.bytes(), 0);
        assert_eq!(p.budget(), (1 << 20) - 10);
        assert!(p.finish("news", Answer::Refused(Reset::TooOld)).is_none());
    }

    #[test]
    fn what_the_replay_had_before_this_node_delivered_it_is_not_sent_twice() {
        // Redis answers through 12 while this node's feed has delivered only
        // up to 9 (held 7..=9): 10..=12 arrive live after the answer and are
        // in the replay already; 13 is news.
        let e = ep("0123456789ab");
        let mut p = Pending::new(1 << 20);
        p.wait("news", true, at(e, 6));
        hold(&mut p, "news", e, 7..=9);
        let f = p
            .finish(
                "news",
                Answer::Replay {
                    epoch: e,
                    since: 1,
                    frames: (2..=12).map(frame).collect(),
                },
            )
            .unwrap();
        let mut want: Vec<String> = (2..=12).map(|i| format!("m{i}")).collect();
        want.push(r#"{"ch":"news","ep":"0123456789ab","off":12}"#.to_owned());
        assert_eq!(shown(&f), want);
        assert!(!p.is_empty(), "the skip is kept until the feed catches up");
        for off in 10..=12 {
            assert!(p.replayed_already("news", at(e, off)), "{off}");
        }
        assert!(!p.replayed_already("other", at(e, 13)));
        assert!(!p.replayed_already("news", at(e, 13)));
        assert!(p.is_empty());
        // A new epoch ends a skip too.
        p.wait("news", true, at(e, 13));
        p.finish(
            "news",
            Answer::Replay {
                epoch: e,
                since: 13,
                frames: vec![frame(14)],
            },
        )
        .unwrap();
        assert!(!p.replayed_already("news", at(ep("ffffffffffff"), 1)));
        assert!(p.is_empty());
    }

    #[test]
    fn a_hole_or_a_new_epoch_after_the_replay_is_a_reset() {
        let e = ep("0123456789ab");
        let mut p = Pending::new(1 << 20);
        p.wait("a", true, at(e, 0));
        hold(&mut p, "a", e, 12..=13); // 9..=11 never reached the node
        let f = p
            .finish(
                "a",
                Answer::Replay {
                    epoch: e,
                    since: 5,
                    frames: (6..=8).map(frame).collect(),
                },
            )
            .unwrap();
        assert_eq!(f.reset, Some(Reset::TooOld));
        assert_eq!(
            shown(&f)[3..],
            [
                r#"{"ch":"a","ep":"0123456789ab","off":11,"reset":"too_old"}"#,
                "m12",
                "m13"
            ]
        );
        let other = ep("bbbbbbbbbbbb");
        p.wait("a", true, at(e, 0));
        hold(&mut p, "a", other, 1..=1);
        let f = p
            .finish(
                "a",
                Answer::Replay {
                    epoch: e,
                    since: 5,
                    frames: vec![],
                },
            )
            .unwrap();
        assert_eq!(f.reset, Some(Reset::Epoch));
        assert_eq!(
            shown(&f),
            [
                r#"{"ch":"a","ep":"bbbbbbbbbbbb","off":0,"reset":"epoch"}"#,
                "m1"
            ]
        );
    }

    #[test]
    fn refusals_and_positions() {
        let e = ep("0123456789ab");
        let local = at(ep("aaaaaaaaaaaa"), 3);
        // Redis could not be asked: the node's position, or just before
        // what is held.
        let mut p = Pending::new(100);
        p.wait("a", true, local);
        p.wait("b", true, local);
        hold(&mut p, "b", e, 5..=6);
        let f = p.finish("a", Answer::Refused(Reset::Unavailable)).unwrap();
        assert_eq!(
            shown(&f),
            [r#"{"ch":"a","ep":"aaaaaaaaaaaa","off":3,"reset":"unavailable"}"#]
        );
        let f = p.finish("b", Answer::Refused(Reset::TooOld)).unwrap();
        assert_eq!(
            shown(&f),
            [
                r#"{"ch":"b","ep":"0123456789ab","off":4,"reset":"too_old"}"#,
                "m5",
                "m6"
            ]
        );
        // A join without since gets Redis's epoch; what was held after it
        // is delivered, even what Redis had numbered before it answered.
        p.wait("c", false, local);
        hold(&mut p, "c", e, 9..=10);
        let f = p
            .finish(
                "c",
                Answer::Position {
                    at: at(e, 9),
                    reset: None,
                },
            )
            .unwrap();
        assert_eq!(f.reset, None);
        assert_eq!(
            shown(&f),
            [r#"{"ch":"c","ep":"0123456789ab","off":8}"#, "m9", "m10"]
        );
        // A refusal from Redis (reset epoch) skips what its position covers.
        p.wait("d", true, local);
        hold(&mut p, "d", e, 9..=10);
        let f = p
            .finish(
                "d",
                Answer::Position {
                    at: at(e, 9),
                    reset: Some(Reset::Epoch),
                },
            )
            .unwrap();
        assert_eq!(
            shown(&f),
            [
                r#"{"ch":"d","ep":"0123456789ab","off":9,"reset":"epoch"}"#,
                "m10"
            ]
        );
        // A replay over the budget left is refused as too old.
        p.wait("e", true, local);
        let f = p
            .finish(
                "e",
                Answer::Replay {
                    epoch: e,
                    since: 0,
                    frames: vec![vec![0; 101]],
                },
            )
            .unwrap();
        assert_eq!((f.replayed, f.reset), (0, Some(Reset::TooOld)));
        assert_eq!(
            shown(&f),
            [r#"{"ch":"e","ep":"0123456789ab","off":1,"reset":"too_old"}"#]
        );
    }
}
