//! Routing: one publish, one encoded frame, every target's queue.
//!
//! A [`Route`] names the targets (everyone, a channel, one connection id);
//! [`Routes`] is the index that finds them without scanning every
//! connection. It is kept in step with the connections: a client joins at
//! its upgrade and leaves when it is removed.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Instant;

use log::warn;

use super::cluster::catchup;
use super::cluster::wire::Target;
use super::history::pending::{Answer, Pending};
use super::history::{EVERYONE, Joined, Position, Reset, Usage, envelope};
use super::outbound::Chunk;
use super::peer::{Deadline, PeerDeflate, PeerState, WsPeer};
use super::route::{ConnId, NodeId, Route};
use super::slow::{SlowPolicy, StreamPos};
use super::stats::{Receipt, Stats};
use super::{Entry, Server};
use crate::protocol::deflate::{Deflater, encode_compressed_server_frame};
use crate::protocol::frame::encode_server_frame;
use crate::protocol::{CloseCode, MessageKind};

/// The routing index: channel → member keys, connection id → key. Only
/// upgraded connections are in it. Members are kept ordered (by slab key)
/// so a channel's delivery order is the same as an `All` publish's.
#[derive(Debug)]
pub(crate) struct Routes {
    channels: HashMap<Box<str>, BTreeSet<usize>>,
    /// This node's connections by the counter of their id (every id here
    /// has `node`'s prefix): 16 bytes a bucket instead of 24 with the whole
    /// id, and every connection has one.
    ids: HashMap<u64, usize>,
    node: NodeId,
}

impl Routes {
    /// An empty index for the connections of `node`.
    pub(crate) fn new(node: NodeId) -> Routes {
        Routes {
            channels: HashMap::new(),
            ids: HashMap::new(),
            node,
        }
    }

    /// Adds an upgraded connection under its id and to its channels.
    pub(crate) fn join(&mut self, key: usize, id: ConnId, channels: &[Box<str>]) {
        debug_assert_eq!(id.node(), self.node, "only this node's ids are routed");
        self.ids.insert(id.seq(), key);
        for c in channels {
            match self.channels.get_mut(c) {
                Some(members) => {
                    members.insert(key);
                }
                None => {
                    self.channels.insert(c.clone(), BTreeSet::from([key]));
                }
            }
        }
    }

    /// Removes a connection; a channel left empty is forgotten.
    pub(crate) fn leave(&mut self, key: usize, id: ConnId, channels: &[Box<str>]) {
        if id.node() == self.node && self.ids.get(&id.seq()) == Some(&key) {
            self.ids.remove(&id.seq());
        }
        for c in channels {
            if let Some(members) = self.channels.get_mut(c) {
                members.remove(&key);
                if members.is_empty() {
                    self.channels.remove(c);
                }
            }
        }
    }

    /// The key of the connection with this id.
    pub(crate) fn conn(&self, id: &ConnId) -> Option<usize> {
        if id.node() != self.node {
            return None;
        }
        self.ids.get(&id.seq()).copied()
    }

    /// The keys of a channel's members (none for an unknown channel).
    pub(crate) fn members(&self, channel: &str) -> impl Iterator<Item = usize> + '_ {
        self.channels.get(channel).into_iter().flatten().copied()
    }

    /// Connections in the index (upgraded and not yet removed).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Channels with at least one member.
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Every channel with its number of members.
    pub(crate) fn channel_sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.channels.iter().map(|(c, m)| (&**c, m.len()))
    }
}

/// What one recipient gets for a publish.
enum FrameRef<'a> {
    /// Bytes encoded (and compressed) once, shared with other recipients.
    Shared(&'a Rc<Vec<u8>>),
    /// Compressed for this connection only, with its own context
    /// (`--deflate per-connection`).
    Own(MessageKind, &'a [u8]),
}

/// Queues a frame for one connection, or records why it was skipped. The
/// bytes queued (0 when skipped).
fn offer(
    key: usize,
    peer: &mut WsPeer,
    frame: FrameRef<'_>,
    limit: usize,
    receipt: &mut Receipt,
    slow: &mut Vec<usize>,
    dirty: &mut Vec<usize>,
) -> usize {
    let PeerState::Open(conn) = &peer.state else {
        return 0;
    };
    if !conn.can_send() {
        receipt.skipped_closing += 1;
        return 0;
    }
    // The size check comes before any per-connection compression: a frame
    // compressed with a shared context and then dropped would leave the
    // client's inflater out of step.
    let len = match &frame {
        FrameRef::Shared(f) => f.len(),
        FrameRef::Own(_, payload) => payload.len() + 14,
    };
    // Messages held while a catch-up from Redis is in progress count too.
    let held = peer.pending.as_ref().map_or(0, |p| p.bytes());
    if peer.out.queued_bytes() + held + len > limit {
        // Over the limit only because this turn has not flushed yet (a
        // burst from one ingress read)? Offer the kernel what is queued
        // first: a client that reads keeps up; only one whose socket is
        // full too is a slow consumer. A write error shows again at the
        // end-of-turn flush, which drops the connection.
        let _ = peer.flush();
        if !peer.dirty {
            // The end-of-turn flush settles WRITABLE interest.
            peer.dirty = true;
            dirty.push(key);
        }
        if peer.out.queued_bytes() + held + len > limit {
            receipt.skipped_slow += 1;
            slow.push(key);
            return 0;
        }
    }
    let (chunk, bytes) = match frame {
        FrameRef::Shared(f) => (Chunk::Shared(Rc::clone(f)), len),
        FrameRef::Own(kind, payload) => {
            let PeerState::Open(conn) = &mut peer.state else {
                return 0;
            };
            if conn.send_message(kind, payload).is_err() {
                receipt.skipped_closing += 1;
                return 0;
            }
            let frame = conn.take_transmit();
            let n = frame.len();
            (Chunk::Owned(frame), n)
        }
    };
    peer.out.push(chunk);
    if !peer.dirty {
        peer.dirty = true;
        dirty.push(key);
    }
    receipt.queued += 1;
    bytes
}

/// The frames of one publish, each built on first use: plain, and
/// compressed once per window size (no context takeover, so the bytes are
/// the same for every recipient with that window).
struct Frames<'a> {
    kind: MessageKind,
    payload: &'a [u8],
    min_size: usize,
    plain: Option<Rc<Vec<u8>>>,
    compressed: [Option<Rc<Vec<u8>>>; 8],
}

impl<'a> Frames<'a> {
    fn new(kind: MessageKind, payload: &'a [u8], min_size: usize) -> Self {
        Frames {
            kind,
            payload,
            min_size,
            plain: None,
            compressed: Default::default(),
        }
    }

    /// The plain (uncompressed) frame.
    fn plain_rc(&mut self) -> Rc<Vec<u8>> {
        let (kind, payload) = (self.kind, self.payload);
        Rc::clone(
            self.plain
                .get_or_insert_with(|| Rc::new(encode_server_frame(kind.opcode(), payload))),
        )
    }

    fn for_peer(
        &mut self,
        deflate: PeerDeflate,
        shared: &mut SharedDeflaters,
        compressions: &mut u64,
    ) -> FrameRef<'_> {
        match deflate {
            PeerDeflate::Shared(window) if self.payload.len() >= self.min_size => {
                if let Some(slot) = self
                    .compressed
                    .get_mut(usize::from(window.saturating_sub(8)))
                {
                    if slot.is_none() {
                        if let Some(frame) = shared.compress(window, self.kind, self.payload) {
                            *compressions += 1;
                            *slot = Some(Rc::new(frame));
                        }
                    }
                    if let Some(frame) = slot {
                        return FrameRef::Shared(frame);
                    }
                }
            }
            PeerDeflate::PerConnection if self.payload.len() >= self.min_size => {
                return FrameRef::Own(self.kind, self.payload);
            }
            _ => {}
        }
        let (kind, payload) = (self.kind, self.payload);
        FrameRef::Shared(
            self.plain
                .get_or_insert_with(|| Rc::new(encode_server_frame(kind.opcode(), payload))),
        )
    }
}

/// Counts a join's outcome.
fn count_join(stats: &mut Stats, joined: &Joined) {
    stats.recovery_replayed += joined.replay.len() as u64;
    if joined.reset.is_some() {
        stats.recovery_resets += 1;
    }
}

/// The loop's compressors for shared (no context takeover) broadcasts, one
/// per window size in use, created on first use.
#[derive(Default)]
pub(crate) struct SharedDeflaters {
    by_window: [Option<Box<Deflater>>; 8],
}

impl std::fmt::Debug for SharedDeflaters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedDeflaters")
    }
}

impl SharedDeflaters {
    /// One compressed server frame (RSV1 set) for `window`.
    fn compress(&mut self, window: u8, kind: MessageKind, payload: &[u8]) -> Option<Vec<u8>> {
        let slot = self
            .by_window
            .get_mut(usize::from(window.checked_sub(8)?))?;
        if slot.is_none() {
            *slot = Some(Box::new(Deflater::new(window)?));
        }
        let deflater = slot.as_mut()?;
        let mut compressed = Vec::new();
        deflater.compress(payload, &mut compressed);
        deflater.reset();
        Some(encode_compressed_server_frame(kind.opcode(), &compressed))
    }
}

/// The streams of one publish.
#[derive(Clone, Copy)]
enum Streams<'a> {
    /// Everyone (the stream `*`).
    Everyone,
    /// One channel.
    One(&'a str),
    /// Several channels (a client's message to its channels).
    Channels(&'a [Box<str>]),
    /// Several channels, named by another node.
    Names(&'a [String]),
    /// The keys in `Server::targets` (one connection id, socket.io rooms):
    /// no stream, no history.
    Targets,
}

impl<'a> Streams<'a> {
    fn len(self) -> usize {
        match self {
            Streams::Channels(c) => c.len(),
            Streams::Names(c) => c.len(),
            _ => 1,
        }
    }

    /// Stream `i`'s name (`None` for a direct message).
    fn get(self, i: usize) -> Option<&'a str> {
        match self {
            Streams::Everyone => Some(EVERYONE),
            Streams::One(name) => Some(name),
            Streams::Channels(c) => c.get(i).map(|c| &**c),
            Streams::Names(c) => c.get(i).map(|c| c.as_str()),
            Streams::Targets => None,
        }
    }
}

/// One stream's part of a publish: where its targets come from, its
/// slow-consumer policy and, with history on, its position and the
/// envelope frame every opted-in recipient shares.
struct Part<'a> {
    /// `*` for everyone, a channel name, or `None` for one connection id.
    stream: Option<&'a str>,
    policy: SlowPolicy,
    envelope: Option<(Position, Rc<Vec<u8>>)>,
}

impl Server {
    /// Publishes a message along `route`; every ingress ends here.
    ///
    /// The frame is encoded once; every recipient's queue gets a reference to
    /// the same bytes. A recipient whose queue would pass the queued-bytes
    /// limit is a slow consumer: its unstarted frames are dropped and it is
    /// closed with 1008, so it can neither hold unbounded memory nor slow
    /// anyone else down (unless the channel's policy holds its messages
    /// aside instead: [`super::slow`]).
    ///
    /// In cluster mode the message is also relayed to the other nodes
    /// (once; see `cluster`): this node's clients get it from here, at once,
    /// whatever the state of Redis.
    pub(crate) fn publish(
        &mut self,
        route: &Route,
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        let target = Target::of(route);
        if let Some(c) = self.cluster.as_mut().filter(|c| c.sequences(&target)) {
            // `--redis-history`: delivered here when it comes back numbered.
            let relayed = c.relay(target, kind, payload);
            return Receipt {
                relayed,
                ..Receipt::default()
            };
        }
        let mut receipt = self.publish_local(route, kind, payload, now);
        if let Some(c) = self.cluster.as_mut() {
            receipt.relayed = c.relay(target, kind, payload);
        }
        receipt
    }

    /// Publishes to this node's clients only (what arrives from the other
    /// nodes ends here; it goes into this node's history too).
    pub(crate) fn publish_local(
        &mut self,
        route: &Route,
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        match route {
            Route::All => self.deliver(Streams::Everyone, kind, payload, now, &[]),
            Route::Channel(name) => self.deliver(Streams::One(name), kind, payload, now, &[]),
            Route::Conn(id) => {
                self.targets.clear();
                self.targets.extend(self.routes.conn(id));
                self.deliver(Streams::Targets, kind, payload, now, &[])
            }
        }
    }

    /// Publishes to several channels at once, this node only (a client
    /// message relayed by another node): each member once.
    pub(crate) fn publish_local_channels(
        &mut self,
        channels: &[String],
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        self.deliver(Streams::Names(channels), kind, payload, now, &[])
    }

    /// Delivers a message Redis numbered (`--redis-history`) to this node's
    /// clients: to everyone (`at[0]` is its position in `*`) or to the
    /// union of `channels` (`at[i]`: its position in channel `i`). It is
    /// appended to this node's history under those positions.
    pub(crate) fn publish_sequenced(
        &mut self,
        channels: Option<&[String]>,
        at: &[Position],
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        match channels {
            None => self.deliver(Streams::Everyone, kind, payload, now, at),
            Some(c) => self.deliver(Streams::Names(c), kind, payload, now, at),
        }
    }

    /// Delivers to the keys in `self.targets` (duplicates allowed: each
    /// connection gets the message once), this node only. No stream: not
    /// kept in the history (socket.io emitter rooms).
    pub(crate) fn deliver_to_targets(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        self.targets.sort_unstable();
        self.targets.dedup();
        self.deliver(Streams::Targets, kind, payload, now, &[])
    }

    /// Publishes a message a client sent (`--client-messages broadcast`): to
    /// the sender's channels, each member once however many of them it
    /// shares with the sender, or to everyone when the sender joined none.
    /// (An opted-in member gets one envelope per channel: each channel's
    /// history has the message under its own offset.)
    pub(crate) fn publish_from_client(
        &mut self,
        sender: usize,
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) -> Receipt {
        // Borrowed out of the sender for the publish (no copy), put back after.
        let channels = match self.entries.get_mut(sender) {
            Some(Entry::Ws(peer)) => std::mem::take(&mut peer.channels),
            _ => return Receipt::default(),
        };
        let receipt = if channels.is_empty() {
            self.publish(&Route::All, kind, payload, now)
        } else {
            let t = Target::Channels(channels.iter().map(|c| c.to_string()).collect());
            if let Some(c) = self.cluster.as_mut().filter(|c| c.sequences(&t)) {
                // `--redis-history`: delivered here when it comes back numbered.
                Receipt {
                    relayed: c.relay(t, kind, payload),
                    ..Receipt::default()
                }
            } else {
                let mut receipt =
                    self.deliver(Streams::Channels(&channels), kind, payload, now, &[]);
                if let Some(c) = self.cluster.as_mut() {
                    receipt.relayed = c.relay(t, kind, payload);
                }
                receipt
            }
        };
        if let Some(Entry::Ws(peer)) = self.entries.get_mut(sender) {
            peer.channels = channels;
        }
        receipt
    }

    /// Encodes once (and compresses once per window size) and queues for
    /// every target of every stream: raw frames for clients that did not
    /// opt in (once per publish, whatever the number of streams), the
    /// stream's shared envelope for those that did.
    ///
    /// `at`: each stream's position when Redis numbered the message
    /// (`--redis-history`), else empty (this node's history numbers it).
    fn deliver(
        &mut self,
        streams: Streams<'_>,
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
        at: &[Position],
    ) -> Receipt {
        let limit = self.cfg.max_queued_bytes;
        self.publish_seq += 1;
        let seq = self.publish_seq;
        let mut frames = Frames::new(kind, payload, self.cfg.deflate_min_size);
        let mut direct_envelope: Option<Rc<Vec<u8>>> = None;
        let mut receipt = Receipt::default();
        let mut slow = Vec::new();
        let mut compressions = 0;
        let mut bytes = 0;
        let mut gave_up = 0;
        for i in 0..streams.len() {
            let stream = streams.get(i);
            let part = Part {
                stream,
                policy: stream.map_or(SlowPolicy::Close, |s| self.cfg.policy_for(s)),
                envelope: match (stream, self.history.as_mut()) {
                    (Some(s), Some(h)) => Some(h.append(s, at.get(i).copied(), kind, payload)),
                    _ => None,
                },
            };
            // For `Streams::Targets` the caller filled `self.targets`.
            let mut targets = std::mem::take(&mut self.targets);
            let all = stream == Some(EVERYONE);
            match stream {
                Some(EVERYONE) => targets.clear(),
                Some(name) => {
                    targets.clear();
                    targets.extend(self.routes.members(name));
                }
                None => {}
            }
            let holdable = part.policy != SlowPolicy::Close && part.stream.is_some();
            let mut visit = |key: usize, entry: Option<&mut Entry>| {
                let Some(Entry::Ws(peer)) = entry else {
                    return;
                };
                if !peer.recover {
                    if peer.seen == seq {
                        return; // got it through another of its channels
                    }
                    peer.seen = seq;
                }
                let env = part.envelope.as_ref().filter(|_| peer.recover);
                if let (Some((at, f)), Some(p)) = (env, peer.pending.as_mut()) {
                    let stream = part.stream.unwrap_or(EVERYONE);
                    if p.replayed_already(stream, *at) {
                        if p.is_empty() {
                            peer.pending = None;
                        }
                        return;
                    }
                    if p.is_waiting(stream) {
                        // Redis is answering this client's join of the
                        // stream: hold its live messages until then.
                        if peer.out.queued_bytes() + p.bytes() + f.len() <= limit {
                            p.hold(stream, *at, Rc::clone(f));
                            receipt.queued += 1;
                            return;
                        }
                        // Held messages would pass the queue limit: stop
                        // waiting, say so, and deliver what was held.
                        if let Some(done) = p.finish(stream, Answer::Refused(Reset::TooOld)) {
                            gave_up += u64::from(done.reset.is_some());
                            for c in done.chunks {
                                peer.out.push(c);
                            }
                        }
                        if p.is_empty() {
                            peer.pending = None;
                        }
                    }
                }
                if holdable {
                    // Over the limit only because this turn has not flushed
                    // yet? Offer the kernel what is queued first: only a
                    // client whose socket is full is behind.
                    let len = env.map_or(payload.len() + 14, |(_, f)| f.len());
                    if !peer.out.is_behind() && peer.out.queued_bytes() + len > limit {
                        let _ = peer.flush();
                        if !peer.dirty {
                            peer.dirty = true;
                            self.dirty.push(key);
                        }
                    }
                    if peer.out.is_behind() {
                        let PeerState::Open(conn) = &peer.state else {
                            return;
                        };
                        if !conn.can_send() {
                            receipt.skipped_closing += 1;
                            return;
                        }
                        // Held frames go out uncompressed: compressing with a
                        // per-connection context now and sending later would
                        // put the client's inflater out of step.
                        let (pos, frame) = match env {
                            Some((at, f)) => (
                                Some(StreamPos {
                                    epoch: at.epoch,
                                    offset: at.offset,
                                }),
                                Rc::clone(f),
                            ),
                            None => (None, frames.plain_rc()),
                        };
                        let queued = peer.out.queued_bytes();
                        let stream = part.stream.unwrap_or(EVERYONE);
                        receipt.dropped +=
                            peer.held
                                .hold(stream, part.policy, pos, frame, queued, limit)
                                as usize;
                        receipt.held += 1;
                        return;
                    }
                }
                let frame = match (env, peer.recover) {
                    (Some((_, f)), _) => FrameRef::Shared(f),
                    (None, true) => FrameRef::Shared(direct_envelope.get_or_insert_with(|| {
                        let json = envelope::direct(kind, payload);
                        Rc::new(encode_server_frame(
                            MessageKind::Text.opcode(),
                            json.as_bytes(),
                        ))
                    })),
                    (None, false) => {
                        frames.for_peer(peer.deflate, &mut self.deflaters, &mut compressions)
                    }
                };
                bytes += offer(
                    key,
                    peer,
                    frame,
                    limit,
                    &mut receipt,
                    &mut slow,
                    &mut self.dirty,
                );
            };
            if all {
                for (key, entry) in self.entries.iter_mut() {
                    visit(key, Some(entry));
                }
            } else {
                for &key in &targets {
                    visit(key, self.entries.get_mut(key));
                }
            }
            self.targets = targets;
        }
        slow.sort_unstable();
        slow.dedup();
        for key in slow {
            self.close_slow_consumer(key, now);
        }
        self.stats.recovery_resets += gave_up;
        self.stats.deflate_compressions += compressions;
        self.stats.bytes_queued += bytes as u64;
        self.stats.record(&receipt, payload.len());
        receipt
    }

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
        peer.held.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::route::NodeId;

    fn names(v: &[&str]) -> Box<[Box<str>]> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    fn members(r: &Routes, c: &str) -> Vec<usize> {
        r.members(c).collect()
    }

    #[test]
    fn join_and_leave_keep_the_index_exact() {
        let node = NodeId::random();
        let (a, b, c) = (
            ConnId::new(node, 1),
            ConnId::new(node, 2),
            ConnId::new(node, 3),
        );
        let mut r = Routes::new(node);
        r.join(7, a, &names(&["news", "sport"]));
        r.join(3, b, &names(&["news"]));
        r.join(5, c, &names(&[]));
        assert_eq!(members(&r, "news"), [3, 7], "ordered by key");
        assert_eq!(members(&r, "sport"), [7]);
        assert_eq!(members(&r, "nobody"), Vec::<usize>::new());
        assert_eq!(
            (r.conn(&a), r.conn(&b), r.conn(&c)),
            (Some(7), Some(3), Some(5))
        );
        assert_eq!((r.len(), r.channel_count()), (3, 2));

        r.leave(7, a, &names(&["news", "sport"]));
        assert_eq!(members(&r, "news"), [3]);
        assert_eq!(members(&r, "sport"), Vec::<usize>::new());
        assert_eq!(r.channel_count(), 1, "an empty channel is forgotten");
        assert_eq!(r.conn(&a), None);

        // Slab keys are reused: a new connection on key 7 is a new member.
        let d = ConnId::new(node, 4);
        r.join(7, d, &names(&["sport"]));
        assert_eq!(members(&r, "sport"), [7]);
        assert_eq!(r.conn(&d), Some(7));

        r.leave(3, b, &names(&["news"]));
        r.leave(5, c, &names(&[]));
        r.leave(7, d, &names(&["sport"]));
        assert_eq!((r.len(), r.channel_count()), (0, 0));
    }

    #[test]
    fn another_nodes_id_with_the_same_counter_is_not_routed() {
        let node = NodeId::parse("aaaaaa").unwrap();
        let other = NodeId::parse("bbbbbb").unwrap();
        let mut r = Routes::new(node);
        r.join(4, ConnId::new(node, 9), &names(&[]));
        assert_eq!(r.conn(&ConnId::new(node, 9)), Some(4));
        assert_eq!(r.conn(&ConnId::new(other, 9)), None);
        r.leave(4, ConnId::new(other, 9), &names(&[]));
        assert_eq!(
            r.conn(&ConnId::new(node, 9)),
            Some(4),
            "not removed by a foreign id"
        );
    }

    #[test]
    fn leave_only_removes_its_own_id() {
        let node = NodeId::random();
        let a = ConnId::new(node, 1);
        let mut r = Routes::new(node);
        r.join(1, a, &names(&["x"]));
        r.leave(2, a, &names(&["x"])); // a stale key: nothing of key 1 goes
        assert_eq!(r.conn(&a), Some(1));
        assert_eq!(members(&r, "x"), [1]);
    }
}
