//! Routing: one publish, one encoded frame, every target's queue.
//!
//! A [`Route`] names the targets (everyone, a channel, one connection id);
//! [`Routes`] is the index that finds them without scanning every
//! connection. It is kept in step with the connections: a client joins at
//! its upgrade and leaves when it is removed.
//!
//! This file holds the ways into the hub (every `publish*`); the rest has a
//! file per concept: `routes` (the index), `frames` (encode and compress
//! once), `deliver` (queue for every target, slow consumers) and `recovery`
//! (history joins and Redis catch-ups at the hub).

mod deliver;
mod frames;
mod recovery;
mod routes;

use std::time::Instant;

use self::deliver::Streams;
pub(crate) use self::frames::SharedDeflaters;
pub(crate) use self::routes::Routes;
use super::cluster::wire::Target;
use super::history::Position;
use super::route::Route;
use super::stats::Receipt;
use super::{Entry, Server};
use crate::protocol::MessageKind;

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
}
