//! The broadcast server: one mio readiness loop, no async runtime.
//!
//! ```text
//! TCP bytes ─► WsPeer (handshake, protocol::Connection) ─► client message ─┐
//! UDP datagram ─► ingress::udp ─┐                                           │
//! Unix socket line ─► ingress::unix ─┼─► ingress::addressed ────────────────┤
//! stdin line (thread + Waker) ─► ingress::stdin ─┘                          ├─► hub::publish(route): encode once
//! MessagePack-RPC call ─► ingress::rpc ─────────────────────────────────────┘   ─► each target's Outbound queue
//!                                                                                  └─► writev at the end of the turn
//! ```
//!
//! A route is everyone, a channel or one connection id ([`Route`]), the same
//! for every ingress; the hub's index finds a channel's members without
//! scanning every connection.
//!
//! Each loop turn: wait for readiness (the timeout is the nearest deadline),
//! read every ready socket until `WouldBlock` into one scratch buffer, act on
//! what arrived, fire due deadlines, then flush every connection that got
//! something queued with one vectored write each. WRITABLE interest is
//! registered only while a connection has bytes the kernel would not take.
//!
//! This file holds the [`Server`] and its turn ([`Server::run`]); the
//! loop's parts have a file each: `bind` (startup), `accept` (WebSocket
//! connections), `read` (the read path), `deadlines` (firing timers),
//! `flush` (the write path) and `signals` (shutdown, TLS reload, systemd).

mod accept;
mod auth;
mod bind;
mod cluster;
mod config;
mod deadlines;
mod error;
mod flush;
mod history;
mod hub;
pub mod ingress;
pub mod notify;
mod ops;
mod outbound;
mod peer;
mod read;
mod route;
mod signals;
mod slow;
mod sockets;
mod stats;
mod stream;
mod timers;
pub(crate) mod tls;

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::info;
use mio::net::{TcpListener, UdpSocket, UnixListener};
use mio::{Events, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

pub use auth::{AuthConfig, ChannelSecret, OriginPattern};
pub use bind::{BoundAddrs, check_tls};
pub use cluster::ClusterConfig;
pub use cluster::wire::valid_prefix as valid_redis_prefix;
use config::Fanout;
pub use config::{ClientMessages, ServerConfig, WriteDelay};
pub use error::ServerError;
pub use history::memory::HistoryLimits;
pub use ops::OpsConfig;
pub use route::{BadConnId, ChannelLimits, ConnId, NodeId, Route};
pub use slow::SlowPolicy;
pub use stats::{Receipt, Stats};
pub use tls::{TlsError, TlsFiles};

use history::HistoryStore;
use hub::Routes;
use ingress::rpc::RpcConn;
use ingress::stdin::StdinSource;
use ingress::unix::UnixWriter;
use ops::{ADMIN_LISTENER, CONTROL_LISTENER, Ops, OpsConn};
use peer::WsPeer;
use route::IdGen;
use timers::Timers;

use crate::protocol::{Event, MessageKind};

const WS_LISTENER: Token = Token(usize::MAX - 1);
const UDP: Token = Token(usize::MAX - 2);
const UNIX_LISTENER: Token = Token(usize::MAX - 3);
const SIGNALS: Token = Token(usize::MAX - 4);
const RPC_LISTENER: Token = Token(usize::MAX - 5);
/// The loop's one `mio::Waker` (mio allows one per `Poll`), shared by the
/// threads that hand it work: the stdin reader and the Redis subscriber.
const WAKER: Token = Token(usize::MAX - 6);

/// Size of the loop-wide receive buffer: every socket is read into it, and
/// only an unfinished frame's bytes are kept per connection.
const SCRATCH: usize = 64 * 1024;

/// Something the loop tracks by token.
// WebSocket peers are nearly every entry; boxing them to shrink the rare
// Unix writers would add an allocation and an indirection per client.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Entry {
    Ws(WsPeer),
    Unix(UnixWriter),
    Rpc(RpcConn),
    /// An admin HTTP or control-socket connection (docs/operations.md).
    Ops(OpsConn),
}

/// The server. [`Server::bind`] opens every listener; [`Server::run`] runs
/// the loop until SIGINT or SIGTERM.
pub struct Server {
    poll: Poll,
    cfg: ServerConfig,
    bound: BoundAddrs,
    ws_listener: TcpListener,
    /// The WebSocket listener's TLS configuration (`--tls-cert`).
    tls: Option<tls::Acceptor>,
    udp: Option<UdpSocket>,
    unix: Option<(UnixListener, PathBuf)>,
    rpc: Option<TcpListener>,
    stdin: Option<StdinSource>,
    /// The Redis link in cluster mode.
    cluster: Option<cluster::Cluster>,
    signals: Signals,
    entries: Slab<Entry>,
    ws_count: usize,
    timers: Timers,
    scratch: Vec<u8>,
    events: Vec<Event>,
    publish_queue: Vec<(MessageKind, Vec<u8>)>,
    dirty: Vec<usize>,
    /// Event buffer for [`Self::look_between_writes`] (`None` while in use).
    slice_events: Option<Events>,
    /// `--write-delay`: when the writes held back for open WebSocket
    /// connections are due (`None`: nothing held back).
    write_due: Option<Instant>,
    /// The last large fan-out pass (at least [`flush::FLUSH_SLICE`] connections
    /// written): when it ended, how long it took, and how many frames its
    /// writes carried on average (`--write-delay auto`).
    last_fanout: Option<Fanout>,
    stats: Stats,
    /// Channel members and connection ids of upgraded connections.
    routes: Routes,
    /// Reused list of a publish's target keys.
    targets: Vec<usize>,
    /// Compressors for shared permessage-deflate broadcasts.
    deflaters: hub::SharedDeflaters,
    ids: IdGen,
    /// When a malformed addressed message was last warned about.
    malformed_warned: Option<Instant>,
    /// Per-stream history (`--history`), or `None` when off.
    history: Option<Box<dyn HistoryStore>>,
    /// Counts publishes, so a client on several of a message's channels
    /// gets it once.
    publish_seq: u64,
    shutdown_deadline: Option<Instant>,
    /// systemd's `$NOTIFY_SOCKET`, when run as a `Type=notify` service.
    notifier: Option<notify::Notifier>,
    /// The admin endpoint and the control socket.
    ops: Ops,
}

impl Server {
    /// The addresses actually bound.
    pub fn bound(&self) -> &BoundAddrs {
        &self.bound
    }

    /// The running totals.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs until SIGINT/SIGTERM, then closes every client with 1001, waits
    /// up to the shutdown grace for close handshakes, removes the Unix socket
    /// file and returns.
    pub fn run(mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        // Every listener is bound (bind did it): tell systemd we serve.
        self.notify("READY=1");
        loop {
            let now = Instant::now();
            let mut timeout = self.timers.timeout(now);
            for d in [self.shutdown_deadline, self.write_due]
                .into_iter()
                .flatten()
            {
                let left = d.saturating_duration_since(now);
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            // Connections left dirty by the last pass (a look at the sockets
            // during it found more to send) are written without waiting.
            if !self.dirty.is_empty() && self.write_due.is_none_or(|d| d <= now) {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServerError::Poll(e));
            }
            let now = Instant::now();
            if let Some(c) = &self.cluster {
                c.sync_stats(&mut self.stats);
            }
            self.dispatch(&events, now);
            self.fire_timers(now);
            self.flush_dirty(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.ws_count == 0 || Instant::now() >= deadline {
                    info!("shutdown complete ({} connection(s) left)", self.ws_count);
                    self.ops_shutdown();
                    return Ok(());
                }
            }
        }
    }

    /// Handles what `poll` reported.
    fn dispatch(&mut self, events: &Events, now: Instant) {
        for ev in events.iter() {
            match ev.token() {
                WS_LISTENER => self.accept_ws(now),
                UDP => self.on_udp_readable(),
                UNIX_LISTENER => self.accept_unix(),
                RPC_LISTENER => self.accept_rpc(),
                ADMIN_LISTENER => self.accept_ops(true, now),
                CONTROL_LISTENER => self.accept_ops(false, now),
                WAKER => {
                    self.on_stdin();
                    self.on_cluster();
                }
                SIGNALS => self.on_signal(now),
                Token(key) => {
                    if ev.is_read_closed() || ev.is_error() {
                        self.on_readable(key, false, now);
                    } else if ev.is_readable() {
                        self.on_readable(key, true, now);
                    }
                    if ev.is_writable() {
                        self.mark_dirty(key);
                    }
                }
            }
        }
    }

    /// Drops an entry, logging how a WebSocket connection ended.
    fn remove(&mut self, key: usize) {
        let Some(entry) = self.entries.try_remove(key) else {
            return;
        };
        match entry {
            Entry::Ws(mut peer) => {
                self.ws_count -= 1;
                let _ = self.poll.registry().deregister(&mut peer.stream);
                if peer.is_upgraded() {
                    self.routes.leave(key, peer.id, &peer.channels);
                    self.leave_history(&peer);
                    self.stats.connections_closed += 1;
                    self.ops_disconnected(&peer);
                    let (code, reason, by) = peer.close_summary();
                    info!(
                        "close id={} peer={} code={code} by={by} reason={reason:?}",
                        peer.id, peer.addr
                    );
                }
            }
            Entry::Unix(mut w) => {
                let _ = self.poll.registry().deregister(&mut w.stream);
            }
            Entry::Rpc(mut c) => {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
            Entry::Ops(c) => self.ops_removed(key, c),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((_, path)) = self.unix.take() {
            ingress::unix::remove_socket_file(&path);
        }
    }
}

/// How long shutdown waits, for the documentation of defaults.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
