//! Delivery: one publish queued for every target of every stream, under
//! the queued-bytes limit and each stream's slow-consumer policy.

use std::rc::Rc;
use std::time::Instant;

use log::warn;

use super::frames::{FrameRef, Frames};
use crate::protocol::frame::encode_server_frame;
use crate::protocol::{CloseCode, MessageKind};
use crate::server::history::pending::Answer;
use crate::server::history::{EVERYONE, Position, Reset, envelope};
use crate::server::outbound::Chunk;
use crate::server::peer::{Deadline, PeerState, WsPeer};
use crate::server::slow::{SlowPolicy, StreamPos};
use crate::server::stats::Receipt;
use crate::server::{Entry, Server};

/// The streams of one publish.
#[derive(Clone, Copy)]
pub(super) enum Streams<'a> {
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

impl Server {
    /// Encodes once (and compresses once per window size) and queues for
    /// every target of every stream: raw frames for clients that did not
    /// opt in (once per publish, whatever the number of streams), the
    /// stream's shared envelope for those that did.
    ///
    /// `at`: each stream's position when Redis numbered the message
    /// (`--redis-history`), else empty (this node's history numbers it).
    pub(super) fn deliver(
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
