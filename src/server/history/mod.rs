//! Per-channel message history, so a client that reconnects can catch up.
//!
//! Every message published to a channel (or to everyone, the stream `*`) is
//! appended to that stream's history with the next offset (1, 2, 3, …) under
//! the stream's *epoch*: a random token chosen when the stream is created.
//! A stream that is dropped (restart, or evicted under the memory budget)
//! comes back with a new epoch, so an offset is only ever compared with
//! offsets of the same incarnation and a client can never silently skip
//! what it missed.
//!
//! Clients opt in with `?recover=1` (docs/recovery.md): they get every
//! message wrapped in a JSON envelope carrying its channel, offset and epoch
//! ([`envelope`]), and on reconnect name where they were with
//! `since=CHANNEL:OFFSET:EPOCH`. The envelope frame is built once per
//! publish, stored in the history and shared by every opted-in recipient;
//! clients that did not opt in get the raw payload, as before.
//!
//! The store is behind [`HistoryStore`]. With `--redis-history` the same
//! in-process [`memory::MemoryHistory`] keeps each stream under the
//! positions Redis's sequencer gave (`append` with `Some(at)`): offsets and
//! epochs are the cluster's, and what a node keeps is what it delivered.

pub(crate) mod envelope;
pub(crate) mod memory;
pub(crate) mod pending;
pub(crate) mod request;

use std::fmt;
use std::rc::Rc;

use crate::protocol::MessageKind;

/// The stream that holds messages published to everyone.
pub(crate) const EVERYONE: &str = "*";

/// A stream incarnation's token: 12 characters of `[0-9a-f]` (48 random bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Epoch([u8; EPOCH_LEN]);

pub(crate) const EPOCH_LEN: usize = 12;

impl Epoch {
    /// A fresh random epoch.
    pub(crate) fn random() -> Epoch {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits: u64 = rand::random();
        let mut b = [0u8; EPOCH_LEN];
        for (i, c) in b.iter_mut().enumerate() {
            *c = HEX[((bits >> (4 * i)) & 0xf) as usize];
        }
        Epoch(b)
    }

    /// Parses what `Display` writes; `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Epoch> {
        let b: [u8; EPOCH_LEN] = s.as_bytes().try_into().ok()?;
        b.iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            .then_some(Epoch(b))
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????????????")
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({})", self.as_str())
    }
}

/// Where a stream stands: its epoch and the offset of its newest message
/// (0 before the first one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) epoch: Epoch,
    pub(crate) offset: u64,
}

/// What a reconnecting client said it had seen last on one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Since {
    pub(crate) stream: Box<str>,
    pub(crate) offset: u64,
    pub(crate) epoch: Epoch,
}

/// Why a catch-up could not be served; sent to the client in the
/// position envelope's `reset` field so it reloads its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reset {
    /// The stream's epoch is not the one the client named: its history was
    /// lost (restart, eviction) since the client saw it.
    Epoch,
    /// Messages after the client's offset are no longer all kept (the ring
    /// or the memory budget dropped some), or more are missed than one
    /// catch-up may queue.
    TooOld,
    /// The offset is beyond the newest message of this epoch: it did not
    /// come from this stream.
    Ahead,
    /// `--redis-history`: this node could not cover the catch-up and could
    /// not ask Redis (unreachable, no answer within
    /// `--redis-history-timeout`, or too many catch-ups from Redis at once).
    Unavailable,
}

impl Reset {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reset::Epoch => "epoch",
            Reset::TooOld => "too_old",
            Reset::Ahead => "ahead",
            Reset::Unavailable => "unavailable",
        }
    }
}

/// What joining a stream gives a client.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The stream's position after the replay.
    pub(crate) position: Position,
    /// Stored envelope frames to send before anything live, oldest first.
    pub(crate) replay: Vec<Rc<Vec<u8>>>,
    /// Set when the client's `since` could not be honoured.
    pub(crate) reset: Option<Reset>,
    /// With a shared sequencer (`--redis-history`): this answer is not
    /// authoritative and Redis should be asked instead. Set when the stream
    /// never had a sequenced message here (its epoch is a placeholder), the
    /// feed was interrupted since its last one, or the reset is `epoch`,
    /// `ahead` or a `too_old` because this node's ring does not reach back
    /// far enough (not one because the replay is over the byte budget).
    pub(crate) ask_shared: bool,
}

/// What a store holds right now, for stats and the memory test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) streams: usize,
    pub(crate) messages: usize,
    /// Bytes charged against the budget (see [`memory`] for the rule).
    pub(crate) bytes: usize,
}

/// A history backend. The loop calls it synchronously: `append` for every
/// publish to a channel or to everyone (before delivery, so recipients get
/// the offset), `join` when an opted-in client connects (its replay is
/// queued before any later publish, which is what makes the seam exact on
/// one node), `leave` when it goes.
pub(crate) trait HistoryStore {
    /// Appends a message to `stream` and returns its position and the
    /// envelope frame, encoded once, that every opted-in recipient shares.
    ///
    /// `at` is `None` when this store numbers the stream itself (one node),
    /// or the position a shared sequencer gave the message (`--redis-history`:
    /// Redis numbered it, and every node appends it under that position). A
    /// position that does not follow the stream's newest one (another epoch,
    /// or offsets this node never saw) starts the stream's kept messages
    /// afresh from it, so a client can never be replayed across a hole.
    fn append(
        &mut self,
        stream: &str,
        at: Option<Position>,
        kind: MessageKind,
        payload: &[u8],
    ) -> (Position, Rc<Vec<u8>>);

    /// The shared feed was interrupted (`--redis-history`: the subscription
    /// was lost or re-established): what is kept is no longer known to be
    /// complete. Every stream drops its messages, and a `since` of the
    /// current epoch is answered `too_old` until the next message arrives.
    fn feed_interrupted(&mut self);

    /// An opted-in client joins `stream`: the messages after `since` (if it
    /// names this stream's current epoch and they are all kept and fit in
    /// `max_replay_bytes`), or a reset. The stream is kept (not evicted
    /// while empty) until the matching `leave`.
    fn join(&mut self, stream: &str, since: Option<&Since>, max_replay_bytes: usize) -> Joined;

    /// An opted-in client left `stream`.
    fn leave(&mut self, stream: &str);

    /// Current usage.
    fn usage(&self) -> Usage;
}
