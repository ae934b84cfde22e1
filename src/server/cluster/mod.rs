//! Cluster mode (`serve --redis redis://HOST:PORT[/DB]`): several processes
//! act as one through Redis pub/sub. docs/cluster.md is the reference.
//!
//! ```text
//!             ┌──────────── node A (this process) ─────────────┐
//! ingress ──► │ hub::publish ─► local clients (at once)        │
//!             │      └─► Cluster::relay ─try_send─► publisher ─┼─► PUBLISH P:cluster / P:cluster:NODE
//!             │                                     thread     │
//!             │ hub (local only) ◄─ channel+Waker ◄ subscriber ┼─◄ P:all, P:ch:*, P:id:A.*, P:cluster, P:cluster:A
//!             └────────────────────────────────────  thread  ──┘   (and socket.io#/#* with --socketio-emitter)
//! ```
//!
//! **Exactly once**: a message that enters a node (UDP, Unix socket, stdin,
//! RPC, a client message under `broadcast`) is delivered to that node's
//! clients at once and relayed to Redis once. Every node subscribes to
//! `P:cluster`, so the message comes back to its origin too: the origin
//! recognises its node id in the envelope and skips it (it only uses it as
//! proof that its link works). A message that arrives from Redis is
//! delivered locally and never relayed again. So each client of each node
//! gets it once, and during a Redis outage each node keeps serving its own
//! clients.
//!
//! **Interface**: the loop owns a [`Cluster`]: [`Cluster::relay`] never
//! blocks (a full queue drops and counts); deliveries come back through
//! [`Server::on_cluster`] when the subscriber wakes the loop. Further Redis
//! work that must stay off the loop is one more [`link::Outgoing`] variant
//! handled by the publisher thread, which owns an ordinary (not subscribed)
//! connection, as `Outgoing::Stream` is; [`ClusterConfig::client`] opens
//! more connections to the same server.
//!
//! **Shared history** (`--redis-history`): messages to everyone or to
//! channels are the exception to "delivered at once": the publisher thread
//! has them numbered by [`wire::SEQUENCER`] (one Lua script: `XADD` to each
//! stream, then one `PUBLISH` on `P:stream`), and every node, this one
//! included, delivers them when they come back ([`link::Dest::Stream`]), in
//! Redis's order and under Redis's offsets (docs/recovery.md).

pub(crate) mod catchup;
mod link;
mod publisher;
mod seq;
mod socketio;
mod subscriber;
pub(crate) mod wire;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::Waker;

use self::link::{Counters, Delivery, Dest, Outgoing, Shared};
use self::wire::Target;
use super::route::{ConnId, NodeId};
use super::stats::Stats;
use super::{Entry, Server};
use crate::protocol::MessageKind;

/// Cluster settings (`--redis` and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` (also `redis://:PASSWORD@HOST:PORT/DB`).
    pub url: String,
    /// Prefix of every Redis channel name (`--redis-prefix`). Default
    /// `wsbroadcaster`.
    pub prefix: String,
    /// With `--socketio-emitter`: the socket.io key whose `KEY#/#…`
    /// channels are decoded (default `socket.io`); `None`: off.
    pub socketio_key: Option<String>,
    /// How often each node publishes a heartbeat. Default 1 s.
    pub heartbeat: Duration,
    /// A subscription that brings back none of our own heartbeats for this
    /// long is stalled and re-established. Default 3 s.
    pub stall_timeout: Duration,
    /// Longest wait between two reconnection attempts. Default 5 s.
    pub reconnect_max: Duration,
    /// Messages waiting for the publisher thread, at most; more are dropped
    /// (counted as `cluster_relay_dropped`). Default 65,536.
    pub relay_queue: usize,
    /// Payload bytes waiting for the publisher thread, at most; more are
    /// dropped (counted as `cluster_relay_dropped`). Default 16 MiB
    /// (`--cluster-buffer`).
    pub relay_bytes: usize,
    /// Payload bytes received from Redis and not yet delivered by the loop,
    /// at most, before the subscriber stops reading. Default 16 MiB
    /// (`--cluster-buffer`).
    pub inflight_bytes: usize,
    /// `--max-message` (set by the server): larger messages from Redis are
    /// dropped.
    pub max_message: usize,
    /// `--max-channel-name` (set by the server).
    pub max_channel_name: usize,
    /// `--redis-history`: messages kept per stream in Redis (`MAXLEN ~`,
    /// the server sets it to `--history`); 0: history is per node.
    pub shared_history: usize,
    /// `--history-max-age` (set by the server): a catch-up from Redis
    /// refuses entries older than this (zero: no bound).
    pub history_max_age: Duration,
    /// `--redis-history-timeout`: a join answered by Redis that has no
    /// answer after this long is told `reset: unavailable`. Default 2 s.
    pub catch_up_timeout: Duration,
}

impl ClusterConfig {
    /// Defaults for `url`; checks that it is a Redis URL.
    pub fn new(url: &str) -> Result<ClusterConfig, String> {
        let cfg = ClusterConfig {
            url: url.to_owned(),
            prefix: "wsbroadcaster".into(),
            socketio_key: None,
            heartbeat: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(3),
            reconnect_max: Duration::from_secs(5),
            relay_queue: 65_536,
            relay_bytes: 16 << 20,
            inflight_bytes: 16 << 20,
            max_message: 1 << 20,
            max_channel_name: 64,
            shared_history: 0,
            history_max_age: Duration::ZERO,
            catch_up_timeout: Duration::from_secs(2),
        };
        cfg.client()?;
        Ok(cfg)
    }

    /// A Redis client for `url` (connects lazily).
    pub fn client(&self) -> Result<redis::Client, String> {
        if !(self.url.starts_with("redis://") || self.url.starts_with("redis+unix://")) {
            return Err(format!(
                "{}: expected redis://HOST:PORT[/DB]",
                self.display_url()
            ));
        }
        redis::Client::open(self.url.as_str())
            .map_err(|e| format!("{}: not a Redis URL: {e}", self.display_url()))
    }

    /// The URL without its password, for logs.
    pub fn display_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***{}", &self.url[..scheme], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

/// Deliveries handled per loop turn, at most, so Redis cannot starve the
/// sockets.
const PER_TURN: usize = 1024;
/// Deliveries waiting for the loop before the subscriber blocks.
const CHANNEL: usize = 1024;
/// Least time between two "relay queue full" warnings.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// The loop's end of the cluster link.
#[derive(Debug)]
pub(crate) struct Cluster {
    node: NodeId,
    relay_tx: SyncSender<Outgoing>,
    rx: Receiver<Delivery>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
    /// `ClusterConfig::relay_bytes`.
    relay_bytes: usize,
    /// `--redis-history`: messages to streams are numbered by Redis and
    /// delivered here when they come back from it.
    shared_history: bool,
    /// `--redis-history`: joins answered by Redis (the catch-up thread).
    catch_up: Option<CatchUpLink>,
    full_warned: Option<Instant>,
}

/// The loop's end of the catch-up thread.
#[derive(Debug)]
struct CatchUpLink {
    tx: SyncSender<catchup::Request>,
    rx: Receiver<catchup::Reply>,
    /// Requests sent and not yet answered (at most
    /// [`catchup::MAX_IN_FLIGHT`]).
    in_flight: usize,
    timeout: Duration,
}

impl Cluster {
    /// Starts the publisher and subscriber threads; the subscriber wakes
    /// the loop with `waker` (the loop's one Waker, shared with the stdin
    /// reader: on a wake the loop checks both).
    pub(crate) fn start(
        cfg: &ClusterConfig,
        node: NodeId,
        waker: Arc<Waker>,
    ) -> Result<Cluster, String> {
        let client = cfg.client()?;
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            inflight: Default::default(),
            relay_queued: Default::default(),
            closed: Default::default(),
        });
        let nonce = rand::random::<u64>();
        let (relay_tx, relay_rx) = sync_channel(cfg.relay_queue.max(1));
        let (tx, rx) = sync_channel(CHANNEL);
        {
            let (client, cfg, shared) = (client.clone(), cfg.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("redis-pub".into())
                .spawn(move || publisher::run(client, cfg, node, nonce, relay_rx, shared))
                .map_err(|e| e.to_string())?;
        }
        {
            let (cfg, shared, waker) = (cfg.clone(), Arc::clone(&shared), Arc::clone(&waker));
            std::thread::Builder::new()
                .name("redis-sub".into())
                .spawn(move || subscriber::run(client, cfg, node, nonce, tx, waker, shared))
                .map_err(|e| e.to_string())?;
        }
        let catch_up = if cfg.shared_history > 0 {
            let (req_tx, req_rx) = sync_channel(catchup::MAX_IN_FLIGHT);
            let (rep_tx, rep_rx) = sync_channel(catchup::MAX_IN_FLIGHT);
            let (client, thread_cfg, shared, waker) = (
                cfg.client()?,
                cfg.clone(),
                Arc::clone(&shared),
                Arc::clone(&waker),
            );
            std::thread::Builder::new()
                .name("redis-catchup".into())
                .spawn(move || {
                    catchup::run(client, thread_cfg, node, req_rx, rep_tx, waker, shared)
                })
                .map_err(|e| e.to_string())?;
            Some(CatchUpLink {
                tx: req_tx,
                rx: rep_rx,
                in_flight: 0,
                timeout: cfg.catch_up_timeout,
            })
        } else {
            None
        };
        info!(
            "cluster: node {node} on {} (prefix {:?})",
            cfg.display_url(),
            cfg.prefix
        );
        Ok(Cluster {
            node,
            relay_tx,
            rx,
            waker,
            shared,
            relay_bytes: cfg.relay_bytes,
            shared_history: cfg.shared_history > 0,
            catch_up,
            full_warned: None,
        })
    }

    /// With `--redis-history`, a message to everyone or to channels is not
    /// delivered when it enters this node: [`Cluster::relay`] has Redis number
    /// it, and every node, this one included, delivers it when it comes back
    /// with its positions (docs/recovery.md, "Across nodes").
    pub(crate) fn sequences(&self, target: &Target) -> bool {
        self.shared_history && !matches!(target, Target::Conn(_))
    }

    /// Hands a message that entered this node to the publisher thread;
    /// never blocks. True when queued; false (counted, logged at most once a
    /// second) when `relay_bytes` or `relay_queue` is reached (with
    /// `--redis-history` such a message then reaches nobody). A send to one of this node's own
    /// connections is not relayed (it was delivered, or that connection is
    /// gone).
    pub(crate) fn relay(&mut self, target: Target, kind: MessageKind, payload: &[u8]) -> bool {
        if let Target::Conn(id) = &target {
            if id.node() == self.node {
                return false;
            }
        }
        let len = payload.len();
        let queued = &self.shared.relay_queued;
        let full = queued.load(Ordering::Acquire) + len > self.relay_bytes;
        let sent = !full && {
            let payload = payload.to_vec();
            let m = if self.sequences(&target) {
                Outgoing::Stream {
                    target,
                    kind,
                    payload,
                }
            } else {
                Outgoing::Message {
                    target,
                    kind,
                    payload,
                }
            };
            queued.fetch_add(len, Ordering::AcqRel);
            match self.relay_tx.try_send(m) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    queued.fetch_sub(len, Ordering::AcqRel);
                    false
                }
            }
        };
        if sent {
            return true;
        }
        let dropped = &self.shared.counters.relay_dropped;
        dropped.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if self
            .full_warned
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            self.full_warned = Some(now);
            warn!(
                "cluster: the Redis publisher is behind (over --cluster-buffer); messages reach this node's clients only ({} not relayed so far)",
                dropped.load(Ordering::Relaxed)
            );
        }
        false
    }

    /// With `--redis-history`: true when joins this node's ring cannot
    /// answer go to Redis.
    pub(crate) fn shares_history(&self) -> bool {
        self.catch_up.is_some()
    }

    /// Asks Redis to answer a join (the catch-up thread); never blocks.
    /// False when [`catchup::MAX_IN_FLIGHT`] are in progress or the thread
    /// is gone: the client is told `unavailable`.
    pub(crate) fn ask_history(
        &mut self,
        key: usize,
        id: ConnId,
        stream: &str,
        since: Option<(u64, crate::server::history::Epoch)>,
        max_bytes: usize,
    ) -> bool {
        let Some(link) = self.catch_up.as_mut() else {
            return false;
        };
        if link.in_flight >= catchup::MAX_IN_FLIGHT {
            return false;
        }
        let req = catchup::Request {
            key,
            id,
            stream: stream.into(),
            since,
            max_bytes,
            deadline: Instant::now() + link.timeout,
        };
        match link.tx.try_send(req) {
            Ok(()) => {
                link.in_flight += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Copies the threads' counters into `stats`.
    pub(crate) fn sync_stats(&self, stats: &mut Stats) {
        let c = &self.shared.counters;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        stats.cluster_relayed = l(&c.relayed);
        stats.cluster_relay_dropped = l(&c.relay_dropped);
        stats.cluster_received = l(&c.received);
        stats.cluster_external = l(&c.external);
        stats.cluster_malformed = l(&c.malformed);
        stats.cluster_lost = l(&c.lost);
        stats.cluster_stalls = l(&c.stalls);
        stats.cluster_reconnects = l(&c.reconnects);
        stats.cluster_id_collisions = l(&c.id_collisions);
        stats.socketio_messages = l(&c.socketio_messages);
        stats.socketio_malformed = l(&c.socketio_malformed);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
    }
}

impl Server {
    /// Delivers what the subscriber thread has handed over (woken by its
    /// Waker) to local clients only: never relayed again.
    pub(crate) fn on_cluster(&mut self) {
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        if let Some(link) = self.cluster.as_mut().and_then(|c| c.catch_up.as_mut()) {
            while let Ok(r) = link.rx.try_recv() {
                link.in_flight = link.in_flight.saturating_sub(1);
                answers.push(r);
            }
        }
        for r in answers {
            self.on_catch_up(r);
        }
        if let Some(c) = &self.cluster {
            for _ in 0..PER_TURN {
                match c.rx.try_recv() {
                    Ok(d) => {
                        c.shared
                            .inflight
                            .fetch_sub(d.payload.len(), Ordering::AcqRel);
                        batch.push(d);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if batch.len() == PER_TURN {
                // Come back for the rest next turn.
                let _ = c.waker.wake();
            }
        }
        if self.shutdown_deadline.is_some() {
            return;
        }
        let now = Instant::now();
        let shared = self.cluster.as_ref().is_some_and(|c| c.shared_history);
        for d in batch {
            match &d.dest {
                Dest::Stream { target, at } => {
                    let channels = match target {
                        Target::Channels(list) => Some(list.as_slice()),
                        _ => None,
                    };
                    self.publish_sequenced(channels, at, d.kind, &d.payload, now);
                }
                Dest::FeedInterrupted => {
                    if let Some(h) = self.history.as_mut() {
                        h.feed_interrupted();
                    }
                }
                Dest::Target(t @ (Target::All | Target::Channels(_))) if shared => {
                    // Not numbered by the sequencer (an external publisher,
                    // or a node without --redis-history): delivered live,
                    // never kept, so the streams' offsets stay Redis's.
                    self.deliver_unkept(t, d.kind, &d.payload, now);
                }
                Dest::Target(Target::All) => {
                    self.publish_local(&super::Route::All, d.kind, &d.payload, now);
                }
                Dest::Target(Target::Conn(id)) => {
                    self.publish_local(&super::Route::Conn(*id), d.kind, &d.payload, now);
                }
                Dest::Target(Target::Channels(list)) => {
                    self.publish_local_channels(list, d.kind, &d.payload, now);
                }
                Dest::Rooms { rooms, except } => {
                    self.deliver_rooms(rooms, except, d.kind, &d.payload, now);
                }
            }
        }
    }

    /// Every member of `target` (everyone, or the union of channels) once,
    /// as a message to no stream: not kept, `{"direct":true,…}` for opted-in
    /// clients.
    fn deliver_unkept(&mut self, target: &Target, kind: MessageKind, payload: &[u8], now: Instant) {
        self.targets.clear();
        match target {
            Target::Channels(list) => {
                for c in list {
                    self.targets.extend(self.routes.members(c));
                }
            }
            _ => self.all_keys(),
        }
        self.deliver_to_targets(kind, payload, now);
    }

    /// Every open WebSocket connection's key into `self.targets`.
    fn all_keys(&mut self) {
        let keys = self.entries.iter().filter_map(|(k, e)| match e {
            Entry::Ws(p) if self.routes.conn(&p.id) == Some(k) => Some(k),
            _ => None,
        });
        self.targets.extend(keys);
    }

    /// A socket.io emit: the members of `rooms` (everyone when empty) minus
    /// those of `except`; a room is a channel, and also the connection whose
    /// id it is.
    fn deliver_rooms(
        &mut self,
        rooms: &[String],
        except: &[String],
        kind: MessageKind,
        payload: &[u8],
        now: Instant,
    ) {
        let members = |routes: &super::hub::Routes, room: &str, out: &mut Vec<usize>| {
            out.extend(routes.members(room));
            if let Ok(id) = room.parse::<ConnId>() {
                out.extend(routes.conn(&id));
            }
        };
        let shared = self.cluster.as_ref().is_some_and(|c| c.shared_history);
        if rooms.is_empty() && except.is_empty() && !shared {
            self.publish_local(&super::Route::All, kind, payload, now);
            return;
        }
        self.targets.clear();
        if rooms.is_empty() {
            self.all_keys();
        } else {
            for r in rooms {
                members(&self.routes, r, &mut self.targets);
            }
        }
        if !except.is_empty() {
            let mut out = Vec::new();
            for r in except {
                members(&self.routes, r, &mut out);
            }
            self.targets.retain(|k| !out.contains(k));
        }
        self.deliver_to_targets(kind, payload, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        let c = ClusterConfig::new("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(c.prefix, "wsbroadcaster");
        assert_eq!(c.display_url(), "redis://127.0.0.1:6379/2");
        assert!(ClusterConfig::new("redis+unix:///run/redis.sock").is_ok());
        let with_password = ClusterConfig::new("redis://:s3cret@10.0.0.1:6379").unwrap();
        assert_eq!(with_password.display_url(), "redis://***@10.0.0.1:6379");
        for bad in ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://", ""] {
            let e = ClusterConfig::new(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = ClusterConfig::new("rediss://:s3cret@x:1").unwrap_err();
        assert!(
            !e.contains("s3cret") && e.contains("redis://HOST:PORT"),
            "{e}"
        );
    }
}
