//! The subscriber thread: its own subscribed Redis connection; decodes what
//! arrives (envelopes, raw external messages, socket.io packets), checks
//! sequence numbers and its own heartbeats, and hands deliveries to the loop
//! through a bounded channel and the loop's `mio::Waker`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::Waker;

use super::ClusterConfig;
use super::link::{Backoff, Delivery, Dest, Outage, Shared, add, connect};
use super::seq::{SeqCheck, SeqTracker};
use super::socketio;
use super::wire::{self, Channels, Envelope, Incoming, Target};
use crate::protocol::MessageKind;
use crate::server::ingress::kind_of;
use crate::server::route::{ConnId, NodeId, valid_channel_name};

/// How often the subscriber wakes when nothing arrives, to check its link.
const TICK: Duration = Duration::from_millis(100);
/// Nodes tracked for sequence numbers, at most.
const MAX_NODES: usize = 4096;
/// A node not heard from for this long is forgotten.
const NODE_IDLE: Duration = Duration::from_secs(60);
/// Least time between two warnings of one kind (lost messages, malformed
/// input); the rest are counted.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Rate-limited warnings.
struct Warner {
    last: Option<Instant>,
}

impl Warner {
    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// The subscriber's state across reconnections.
struct Subscriber {
    cfg: ClusterConfig,
    names: Channels,
    node: NodeId,
    nonce: u64,
    tx: SyncSender<Delivery>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    seqs: SeqTracker,
    /// When something we published last came back.
    last_own: Instant,
    lost_warn: Warner,
    malformed_warn: Warner,
    collision_warn: Warner,
    /// `P#/#` for `--socketio-emitter` (key and namespace `/`).
    socketio_prefix: Option<String>,
}

/// Why a subscription ended.
enum Ended {
    /// The link failed or stalled: reconnect.
    Link,
    /// The loop is gone: stop.
    Shutdown,
}

/// The subscriber thread: subscribes, hands what arrives to the loop, and
/// re-subscribes after any failure or stall. Stops when the loop is gone.
pub(crate) fn run(
    client: redis::Client,
    cfg: ClusterConfig,
    node: NodeId,
    nonce: u64,
    tx: SyncSender<Delivery>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
) {
    let socketio_prefix = cfg.socketio_key.as_ref().map(|k| format!("{k}#/#"));
    let mut s = Subscriber {
        names: Channels::new(&cfg.prefix, node),
        cfg,
        node,
        nonce,
        tx,
        waker,
        shared,
        seqs: SeqTracker::new(MAX_NODES),
        last_own: Instant::now(),
        lost_warn: Warner { last: None },
        malformed_warn: Warner { last: None },
        collision_warn: Warner { last: None },
        socketio_prefix,
    };
    let mut backoff = Backoff::new(s.cfg.reconnect_max);
    let mut outage = Outage::new("subscriber");
    loop {
        match s.session(&client, &mut outage, &mut backoff) {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Link) => {}
            Err(e) => outage.failed(&e),
        }
        let pause = backoff.fail();
        std::thread::sleep(pause);
    }
}

impl Subscriber {
    /// One connection: subscribe, then read until it fails or stalls.
    fn session(
        &mut self,
        client: &redis::Client,
        outage: &mut Outage,
        backoff: &mut Backoff,
    ) -> redis::RedisResult<Ended> {
        let mut conn = connect(client)?;
        let mut ps = conn.as_pubsub();
        let mut channels = vec![
            self.names.all(),
            self.names.cluster(),
            self.names.cluster_node(self.node),
        ];
        if self.cfg.shared_history > 0 {
            channels.push(self.names.stream());
        }
        ps.subscribe(&channels)?;
        let mut patterns = vec![self.names.channel_pattern(), self.names.own_ids_pattern()];
        if let Some(p) = &self.socketio_prefix {
            patterns.push(format!("{p}*"));
        }
        ps.psubscribe(&patterns)?;
        ps.set_read_timeout(Some(TICK))?;
        if !outage.recovered(&self.shared.counters) {
            info!(
                "cluster: subscribed to {} (channels {}, patterns {})",
                self.cfg.display_url(),
                channels.join(" "),
                patterns.join(" ")
            );
        }
        backoff.reset();
        if self.cfg.shared_history > 0 {
            // What was sequenced before this subscription (or while the last
            // one was failing) never reached this node: say so before the
            // first message of the new one.
            let interrupted = Delivery {
                dest: Dest::FeedInterrupted,
                kind: MessageKind::Binary,
                payload: Vec::new(),
            };
            if !self.deliver(interrupted) {
                return Ok(Ended::Shutdown);
            }
        }
        self.last_own = Instant::now();
        let mut forget_at = Instant::now() + NODE_IDLE;
        loop {
            match ps.get_message() {
                Ok(msg) => {
                    if !self.on_message(msg.get_channel_name(), msg.get_payload_bytes()) {
                        return Ok(Ended::Shutdown);
                    }
                }
                Err(e) if e.is_timeout() => {
                    if self.shared.closed.load(Ordering::Relaxed) {
                        return Ok(Ended::Shutdown);
                    }
                }
                Err(e) => {
                    outage.failed(&e);
                    return Ok(Ended::Link);
                }
            }
            let now = Instant::now();
            let silent = now.saturating_duration_since(self.last_own);
            if silent > self.cfg.stall_timeout {
                add(&self.shared.counters.stalls, 1);
                warn!(
                    "cluster: none of this node's heartbeats came back from Redis for {:.1} s (limit {:?}): the subscription is stalled; resubscribing",
                    silent.as_secs_f64(),
                    self.cfg.stall_timeout
                );
                return Ok(Ended::Link);
            }
            if now >= forget_at {
                self.seqs.forget_idle(now, NODE_IDLE);
                forget_at = now + NODE_IDLE;
            }
        }
    }

    /// Handles one message; false when the loop is gone.
    fn on_message(&mut self, channel: &str, payload: &[u8]) -> bool {
        let counters = &self.shared.counters;
        let max = self.cfg.max_message;
        if let Some(p) = &self.socketio_prefix {
            if channel.starts_with(p.as_str()) {
                return match socketio::decode(payload, self.cfg.max_channel_name) {
                    Ok(e) if e.json.len() <= max => {
                        add(&counters.socketio_messages, 1);
                        self.deliver(Delivery {
                            dest: Dest::Rooms {
                                rooms: e.rooms,
                                except: e.except,
                            },
                            kind: MessageKind::Text,
                            payload: e.json.into_bytes(),
                        })
                    }
                    Ok(e) => {
                        let why = format!("{} bytes of JSON, over --max-message", e.json.len());
                        self.malformed(true, channel, &why)
                    }
                    Err(why) => self.malformed(true, channel, &why),
                };
            }
        }
        if payload.len() > max + 64 {
            let why = format!("{} bytes, over --max-message", payload.len());
            return self.malformed(false, channel, &why);
        }
        let (target, kind, payload) = match self.names.classify(channel) {
            Incoming::ExternalAll => (Target::All, kind_of(payload), payload.to_vec()),
            Incoming::ExternalChannel(name)
                if valid_channel_name(name.as_bytes(), self.cfg.max_channel_name) =>
            {
                (
                    Target::Channels(vec![name.to_owned()]),
                    kind_of(payload),
                    payload.to_vec(),
                )
            }
            Incoming::ExternalConn(id) => match id.parse::<ConnId>() {
                Ok(id) => (Target::Conn(id), kind_of(payload), payload.to_vec()),
                Err(_) => return self.malformed(false, channel, "not a connection id"),
            },
            Incoming::Envelope => return self.on_envelope(channel, payload),
            Incoming::Stream => {
                return match wire::decode_sequenced(payload, self.cfg.max_channel_name) {
                    Ok(m) if m.payload.len() <= max => {
                        // Our own too: with shared history a node delivers
                        // its publishes when they come back numbered.
                        add(&counters.received, 1);
                        self.deliver(Delivery {
                            dest: Dest::Stream {
                                target: m.target,
                                at: m.at,
                            },
                            kind: m.kind,
                            payload: m.payload,
                        })
                    }
                    Ok(_) => self.malformed(false, channel, "over --max-message"),
                    Err(why) => self.malformed(false, channel, &why),
                };
            }
            Incoming::ExternalChannel(_) => {
                return self.malformed(false, channel, "not a valid channel name");
            }
            Incoming::Unknown => return self.malformed(false, channel, "not one of our channels"),
        };
        if payload.len() > max {
            let why = format!("{} bytes, over --max-message", payload.len());
            return self.malformed(false, channel, &why);
        }
        add(&counters.external, 1);
        self.deliver(Delivery {
            dest: Dest::Target(target),
            kind,
            payload,
        })
    }

    fn on_envelope(&mut self, channel: &str, payload: &[u8]) -> bool {
        let env = match wire::decode_envelope(payload, self.cfg.max_channel_name) {
            Ok(e) => e,
            Err(why) => return self.malformed(false, channel, &why),
        };
        let now = Instant::now();
        let (node, seq) = match &env {
            Envelope::Message { node, seq, .. } | Envelope::Heartbeat { node, seq, .. } => {
                (*node, *seq)
            }
        };
        if let Envelope::Heartbeat { nonce, .. } = &env {
            if node == self.node && *nonce != self.nonce {
                add(&self.shared.counters.id_collisions, 1);
                if self.collision_warn.due(now) {
                    error!(
                        "cluster: another process uses this node's id {node}: messages between the two are lost, and targeted sends may reach the wrong node; restart one of them"
                    );
                }
                return true;
            }
        }
        if seq != 0 {
            match self.seqs.observe(node, seq, now) {
                SeqCheck::Gap(n) => {
                    add(&self.shared.counters.lost, n);
                    if self.lost_warn.due(now) {
                        warn!(
                            "cluster: {n} message(s) from node {node} never arrived (sequence jumped to {seq}); {} lost so far",
                            self.shared.counters.lost.load(Ordering::Relaxed)
                        );
                    }
                }
                SeqCheck::Behind => debug!("cluster: node {node} sequence went back to {seq}"),
                SeqCheck::First | SeqCheck::InOrder => {}
            }
        }
        if node == self.node {
            // Our own message back: proof the link works; already delivered
            // locally when it entered (the exactly-once rule).
            self.last_own = now;
            return true;
        }
        match env {
            Envelope::Heartbeat { .. } => true,
            Envelope::Message {
                target,
                kind,
                payload,
                ..
            } => {
                if payload.len() > self.cfg.max_message {
                    let why = format!("{} bytes, over --max-message", payload.len());
                    return self.malformed(false, channel, &why);
                }
                add(&self.shared.counters.received, 1);
                self.deliver(Delivery {
                    dest: Dest::Target(target),
                    kind,
                    payload,
                })
            }
        }
    }

    /// Counts and (rate-limited) logs a message that cannot be delivered.
    fn malformed(&mut self, socketio: bool, channel: &str, why: &str) -> bool {
        let c = &self.shared.counters;
        let counter = if socketio {
            &c.socketio_malformed
        } else {
            &c.malformed
        };
        add(counter, 1);
        let shown: String = channel.chars().take(100).collect();
        if self.malformed_warn.due(Instant::now()) {
            warn!(
                "cluster: dropped a message on Redis channel {shown:?}: {why} ({} dropped so far)",
                counter.load(Ordering::Relaxed)
            );
        } else {
            debug!("cluster: dropped a message on Redis channel {shown:?}: {why}");
        }
        true
    }

    /// Hands a delivery to the loop; waits while the loop has more than
    /// `cfg.inflight_bytes` to take. False when the loop is gone.
    fn deliver(&mut self, d: Delivery) -> bool {
        let len = d.payload.len();
        while self.shared.inflight.load(Ordering::Acquire) > self.cfg.inflight_bytes {
            if self.shared.closed.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.shared.inflight.fetch_add(len, Ordering::AcqRel);
        if self.tx.send(d).is_err() {
            return false;
        }
        let _ = self.waker.wake();
        true
    }
}
