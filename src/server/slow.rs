//! Slow-consumer policies: what happens to a channel's messages for a
//! client whose socket is full (the kernel took less than we queued).
//!
//! - `close` (the default): queue them; past `--max-queued-bytes` the client
//!   is closed with 1008, as it always was.
//! - `drop-oldest`: hold them aside; while the client's queued and held
//!   bytes are over `--max-queued-bytes`, drop the oldest held ones.
//! - `keep-latest` (conflation): hold only the newest one; each new message
//!   replaces the one held. A ticker or a dashboard wants the last value.
//!
//! Held messages are queued, oldest first, as soon as the client's queue is
//! written out completely, so each channel's order is kept. Control frames
//! (close, pong, the handshake reply) never go through here: they are never
//! dropped. An opted-in client (`?recover=1`) is told what it lost with a
//! gap envelope just before the messages that follow the loss.

use std::collections::VecDeque;
use std::rc::Rc;

use super::history::{Epoch, envelope};
use super::outbound::Chunk;
use crate::protocol::MessageKind;
use crate::protocol::frame::encode_server_frame;

/// A channel's slow-consumer policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Queue; close the client with 1008 over the queued-bytes limit.
    #[default]
    Close,
    /// Drop the oldest held messages to stay under the limit.
    DropOldest,
    /// Keep only the newest message (conflation).
    KeepLatest,
}

impl std::str::FromStr for SlowPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<SlowPolicy, String> {
        match s {
            "close" => Ok(SlowPolicy::Close),
            "drop-oldest" => Ok(SlowPolicy::DropOldest),
            "keep-latest" => Ok(SlowPolicy::KeepLatest),
            _ => Err(format!("{s:?}: expected close, drop-oldest or keep-latest")),
        }
    }
}

/// Where a held message sits in its stream, for an opted-in client's gap
/// envelope.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamPos {
    pub(crate) epoch: Epoch,
    pub(crate) offset: u64,
}

#[derive(Debug)]
struct Held {
    stream: Box<str>,
    /// Messages held, oldest first, with their stream position (opted-in
    /// clients only).
    frames: VecDeque<(Option<StreamPos>, Rc<Vec<u8>>)>,
    bytes: usize,
    /// First and last positions dropped since the last release.
    gap: Option<(StreamPos, StreamPos)>,
}

impl Held {
    fn drop_front(&mut self) -> bool {
        let Some((pos, f)) = self.frames.pop_front() else {
            return false;
        };
        self.bytes -= f.len();
        if let Some(p) = pos {
            self.gap = Some(match self.gap {
                // A new epoch starts a new gap (the old one is moot).
                Some((first, _)) if first.epoch == p.epoch => (first, p),
                _ => (p, p),
            });
        }
        true
    }
}

/// A client's held messages; no allocation until it first falls behind.
// Boxed: 8 bytes in every idle connection instead of a 24-byte `Vec`.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub(crate) struct HeldSet(Option<Box<Vec<Held>>>);

impl HeldSet {
    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |v| v.iter().map(|h| h.bytes).sum())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|v| v.is_empty())
    }

    /// Forgets everything held (the client is closing).
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    /// Holds `frame` of `stream` under `policy` (not `Close`); `queued` is
    /// what the client's queue holds, `limit` the queued-bytes limit.
    /// Returns how many messages were dropped.
    pub(crate) fn hold(
        &mut self,
        stream: &str,
        policy: SlowPolicy,
        pos: Option<StreamPos>,
        frame: Rc<Vec<u8>>,
        queued: usize,
        limit: usize,
    ) -> u64 {
        let all = self.0.get_or_insert_with(Default::default);
        let others: usize = all
            .iter()
            .filter(|h| *h.stream != *stream)
            .map(|h| h.bytes)
            .sum();
        let i = match all.iter().position(|h| *h.stream == *stream) {
            Some(i) => i,
            None => {
                all.push(Held {
                    stream: stream.into(),
                    frames: VecDeque::new(),
                    bytes: 0,
                    gap: None,
                });
                all.len() - 1
            }
        };
        let h = &mut all[i];
        let mut dropped = 0;
        if policy == SlowPolicy::KeepLatest {
            while h.drop_front() {
                dropped += 1;
            }
        }
        h.bytes += frame.len();
        h.frames.push_back((pos, frame));
        if policy == SlowPolicy::DropOldest {
            while queued + others + h.bytes > limit && h.drop_front() {
                dropped += 1;
            }
        }
        dropped
    }

    /// Everything held, as chunks to queue: per stream a gap envelope
    /// (opted-in clients) and then the messages, oldest first.
    pub(crate) fn release(&mut self) -> Vec<Chunk> {
        let Some(all) = self.0.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for h in *all {
            if let Some((first, last)) = h.gap {
                let json = envelope::gap(&h.stream, &last.epoch, first.offset, last.offset);
                out.push(Chunk::Owned(encode_server_frame(
                    MessageKind::Text.opcode(),
                    json.as_bytes(),
                )));
            }
            out.extend(h.frames.into_iter().map(|(_, f)| Chunk::Shared(f)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: usize) -> Rc<Vec<u8>> {
        Rc::new(vec![b'x'; n])
    }

    fn pos(epoch: Epoch, offset: u64) -> Option<StreamPos> {
        Some(StreamPos { epoch, offset })
    }

    fn lens(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .map(|c| match c {
                Chunk::Shared(f) => format!("msg{}", f.len()),
                Chunk::Owned(b) => String::from_utf8_lossy(&b[2..]).into_owned(),
            })
            .collect()
    }

    #[test]
    fn keep_latest_keeps_one_and_marks_the_gap() {
        let e = Epoch::parse("0123456789ab").unwrap();
        let mut h = HeldSet::default();
        assert!(h.is_empty());
        assert_eq!(
            h.hold("t", SlowPolicy::KeepLatest, pos(e, 1), f(10), 0, 100),
            0
        );
        assert_eq!(
            h.hold("t", SlowPolicy::KeepLatest, pos(e, 2), f(11), 0, 100),
            1
        );
        assert_eq!(
            h.hold("t", SlowPolicy::KeepLatest, pos(e, 3), f(12), 0, 100),
            1
        );
        assert_eq!(h.hold("u", SlowPolicy::KeepLatest, None, f(5), 0, 100), 0);
        assert_eq!(h.bytes(), 17);
        let out = lens(&h.release());
        assert_eq!(
            out,
            [
                r#"{"ch":"t","ep":"0123456789ab","off":2,"gap":1}"#,
                "msg12",
                "msg5"
            ]
        );
        assert!(h.is_empty());
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn drop_oldest_stays_under_the_limit() {
        let mut h = HeldSet::default();
        let mut dropped = 0;
        for _ in 0..10 {
            dropped += h.hold("d", SlowPolicy::DropOldest, None, f(10), 50, 100);
        }
        assert_eq!(h.bytes(), 50, "queued 50 + held 50 = the limit");
        assert_eq!(dropped, 5);
        assert_eq!(lens(&h.release()), ["msg10"; 5]);
    }
}
