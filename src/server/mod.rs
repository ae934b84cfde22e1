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

mod auth;
mod cluster;
mod config;
mod error;
mod history;
mod hub;
pub mod ingress;
pub mod notify;
mod ops;
mod outbound;
mod peer;
mod route;
mod slow;
mod sockets;
mod stats;
mod stream;
mod timers;
pub(crate) mod tls;

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, UdpSocket, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

pub use auth::{AuthConfig, ChannelSecret, OriginPattern};
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

/// Reads and checks a certificate and key exactly as `serve` does at start
/// (for `check-config`).
pub fn check_tls(files: &TlsFiles) -> Result<(), TlsError> {
    tls::load(files).map(|_| ())
}

use error::bind_err;
use history::HistoryStore;
use history::memory::MemoryHistory;
use hub::Routes;
use ingress::rpc::RpcConn;
use ingress::stdin::StdinSource;
use ingress::unix::UnixWriter;
use ops::{ADMIN_LISTENER, CONTROL_LISTENER, Ops, OpsConn};
use peer::{Deadline, PeerCx, PeerState, WsPeer};
use route::IdGen;
use sockets::{listen_tcp, set_write_interest};
use stream::PeerStream;
use timers::Timers;

use crate::protocol::{CloseCode, Event, MessageKind};

/// Connections written in one flush pass between two looks at the sockets
/// ([`Server::look_between_writes`]): about a millisecond of writes on a
/// small host, one `epoll_wait` each time.
const FLUSH_SLICE: usize = 256;

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

/// The addresses the server actually bound (port 0 resolved).
#[derive(Clone, Debug)]
pub struct BoundAddrs {
    /// The WebSocket listener.
    pub ws: SocketAddr,
    /// The UDP ingress, if on.
    pub udp: Option<SocketAddr>,
    /// The Unix socket path, if on.
    pub unix: Option<PathBuf>,
    /// The MessagePack-RPC listener, if on.
    pub rpc: Option<SocketAddr>,
    /// The admin HTTP listener, if on.
    pub admin: Option<SocketAddr>,
    /// The control socket path, if on.
    pub control: Option<PathBuf>,
    /// This process's connection-id prefix.
    pub node: NodeId,
    /// The WebSocket listener speaks TLS (`wss://`).
    pub tls: bool,
}

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
    /// The last large fan-out pass (at least [`FLUSH_SLICE`] connections
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
    /// Opens the listeners named in `cfg`.
    pub fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        let poll = Poll::new().map_err(ServerError::Poll)?;
        // Certificates first: a bad file fails before any port is taken.
        let tls = match &cfg.tls {
            Some(files) => Some(tls::Acceptor::new(files.clone()).map_err(ServerError::Tls)?),
            None => None,
        };
        let mut ws_listener = listen_tcp(cfg.ws, cfg.listen_backlog)
            .map_err(bind_err(format!("WebSocket listener {}", cfg.ws)))?;
        let ws_addr = ws_listener.local_addr().map_err(ServerError::Poll)?;
        poll.registry()
            .register(&mut ws_listener, WS_LISTENER, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let mut udp = match cfg.udp {
            Some(addr) => {
                Some(UdpSocket::bind(addr).map_err(bind_err(format!("UDP ingress {addr}")))?)
            }
            None => None,
        };
        let udp_addr = match udp.as_mut() {
            Some(sock) => {
                poll.registry()
                    .register(sock, UDP, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some(sock.local_addr().map_err(ServerError::Poll)?)
            }
            None => None,
        };
        let unix = match &cfg.unix {
            Some(path) => {
                let mut l = ingress::unix::bind(path, cfg.unix_mode)?;
                poll.registry()
                    .register(&mut l, UNIX_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some((l, path.clone()))
            }
            None => None,
        };
        let rpc = match cfg.rpc {
            Some(addr) => {
                let mut l = listen_tcp(addr, cfg.listen_backlog)
                    .map_err(bind_err(format!("MessagePack-RPC listener {addr}")))?;
                poll.registry()
                    .register(&mut l, RPC_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some(l)
            }
            None => None,
        };
        let rpc_addr = match &rpc {
            Some(l) => Some(l.local_addr().map_err(ServerError::Poll)?),
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServerError::Poll)?);
        let stdin = if cfg.stdin {
            Some(
                ingress::stdin::spawn(Arc::clone(&waker), cfg.limits.max_message)
                    .map_err(bind_err("the stdin reader"))?,
            )
        } else {
            None
        };
        let ops = Ops::bind(&cfg.ops, cfg.listen_backlog, poll.registry())?;
        let node = NodeId::random();
        let cluster = match &cfg.cluster {
            Some(c) => {
                let mut c = c.clone();
                c.max_message = cfg.limits.max_message;
                c.max_channel_name = cfg.channels.max_name_bytes;
                c.history_max_age = cfg.history.max_age.unwrap_or_default();
                Some(
                    cluster::Cluster::start(&c, node, Arc::clone(&waker))
                        .map_err(ServerError::Cluster)?,
                )
            }
            None => None,
        };
        let mut signals =
            Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(bind_err("signal handlers"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(ServerError::Poll)?;
        let bound = BoundAddrs {
            ws: ws_addr,
            udp: udp_addr,
            unix: unix.as_ref().map(|(_, p)| p.clone()),
            rpc: rpc_addr,
            admin: ops.admin_addr().map_err(ServerError::Poll)?,
            control: ops.control_path(),
            node,
            tls: tls.is_some(),
        };
        Ok(Server {
            poll,
            bound,
            ws_listener,
            tls,
            udp,
            unix,
            rpc,
            stdin,
            cluster,
            signals,
            entries: Slab::new(),
            ws_count: 0,
            timers: Timers::default(),
            scratch: vec![0; SCRATCH],
            events: Vec::new(),
            publish_queue: Vec::new(),
            dirty: Vec::new(),
            slice_events: Some(Events::with_capacity(256)),
            write_due: None,
            last_fanout: None,
            stats: Stats::default(),
            routes: Routes::new(node),
            targets: Vec::new(),
            deflaters: hub::SharedDeflaters::default(),
            ids: IdGen::new(node),
            malformed_warned: None,
            history: (cfg.history.per_stream > 0)
                .then(|| Box::new(MemoryHistory::new(cfg.history)) as Box<dyn HistoryStore>),
            publish_seq: 0,
            shutdown_deadline: None,
            notifier: notify::Notifier::from_env().unwrap_or_else(|e| {
                warn!("no readiness notification: {e}");
                None
            }),
            ops,
            cfg,
        })
    }

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

    /// A look at the sockets in the middle of a flush pass, without
    /// waiting: what arrived meanwhile is handled now, so a message
    /// published during a long fan-out joins the queues of the connections
    /// not written yet and shares their write (connections already written
    /// get it on the next pass, in order).
    fn look_between_writes(&mut self) {
        let Some(mut events) = self.slice_events.take() else {
            return; // already inside one
        };
        match self.poll.poll(&mut events, Some(Duration::ZERO)) {
            Ok(()) => self.dispatch(&events, Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => debug!("poll between writes: {e}"),
        }
        self.slice_events = Some(events);
    }

    fn accept_ws(&mut self, now: Instant) {
        loop {
            match self.ws_listener.accept() {
                Ok((stream, addr)) => {
                    if self.shutdown_deadline.is_some() {
                        continue; // dropped: we are going away
                    }
                    // Over the limit, keep a few slots to answer 503 politely;
                    // past those, drop at once so a flood costs nothing.
                    let reject = self.ws_count >= self.cfg.max_connections;
                    if reject && self.ws_count >= self.cfg.max_connections + 64 {
                        self.stats.http_rejected += 1;
                        continue;
                    }
                    let mut stream = match &self.tls {
                        None => PeerStream::plain(stream),
                        Some(acceptor) => match acceptor.session() {
                            Ok(session) => PeerStream::tls(stream, session),
                            Err(e) => {
                                warn!("cannot start TLS for {addr}: {e}");
                                continue;
                            }
                        },
                    };
                    let _ = stream.set_nodelay();
                    let entry = self.entries.vacant_entry();
                    let key = entry.key();
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, Token(key), Interest::READABLE)
                    {
                        warn!("cannot register {addr}: {e}");
                        continue;
                    }
                    let id = self.ids.next_id();
                    let mut peer = WsPeer::new(stream, addr, id, &self.cfg, reject, now);
                    peer.timer = self.timers.schedule(key, now + self.cfg.handshake_timeout);
                    entry.insert(Entry::Ws(peer));
                    self.ws_count += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE/ENFILE: keep serving who we have; the backlog
                    // is retried when the next connection arrives.
                    error!("accept failed: {e} (raise the open-file limit, ulimit -n)");
                    return;
                }
            }
        }
    }

    /// Reads until the socket is drained. `short_read_drains`: the event
    /// reported neither end of stream nor an error, so a plain TCP read that
    /// returns less than asked for has emptied the receive queue, and
    /// anything arriving later raises a new edge: no second read that would
    /// only return `WouldBlock` (one system call less per message from a
    /// client that sends one at a time).
    fn on_readable(&mut self, key: usize, short_read_drains: bool, now: Instant) {
        loop {
            let mut drains = false;
            let n = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) => {
                    drains = short_read_drains && peer.stream.is_plain();
                    peer.stream.read(&mut self.scratch)
                }
                Some(Entry::Unix(w)) => w.stream.read(&mut self.scratch),
                Some(Entry::Rpc(c)) => c.stream.read(&mut self.scratch),
                Some(Entry::Ops(c)) => c.stream.read(&mut self.scratch),
                None => return,
            };
            match n {
                Ok(0) => return self.on_eof(key, now),
                Ok(n) => {
                    if !self.on_data(key, n, now) {
                        return;
                    }
                    if drains && n < self.scratch.len() {
                        return self.mark_dirty(key);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.entries.get(key) {
                        // Decode once the socket is drained, not per read.
                        Some(Entry::Rpc(_)) => {
                            self.rpc_process(key);
                        }
                        // TLS handshake replies wait to be written.
                        Some(Entry::Ws(_)) => self.mark_dirty(key),
                        _ => {}
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.on_read_error(key, &e, now),
            }
        }
    }

    /// Handles `n` bytes in the scratch buffer; false when the entry is gone.
    fn on_data(&mut self, key: usize, n: usize, now: Instant) -> bool {
        let deadline = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let was_handshake = matches!(peer.state, PeerState::Handshake { .. });
                let mut cx = PeerCx {
                    cfg: &self.cfg,
                    events: &mut self.events,
                    publish: &mut self.publish_queue,
                    stats: &mut self.stats,
                };
                let d = peer.on_bytes(&self.scratch[..n], &mut cx, now);
                let joined = was_handshake && peer.is_upgraded();
                if joined {
                    // Joined before its own first messages are published.
                    self.routes.join(key, peer.id, &peer.channels);
                }
                if joined {
                    self.ops_connected(key);
                    self.join_history(key);
                }
                d
            }
            Some(Entry::Unix(_)) => return self.on_unix_data(key, n),
            Some(Entry::Rpc(_)) => return self.on_rpc_data(key, n),
            Some(Entry::Ops(_)) => return self.on_ops_data(key, n, now),
            None => return false,
        };
        self.apply_deadline(key, deadline);
        self.mark_dirty(key);
        let mut queue = std::mem::take(&mut self.publish_queue);
        for (kind, data) in &queue {
            self.publish_from_client(key, *kind, data, now);
        }
        // Published (copied into the frames and history): the last buffer
        // goes back to the sender's connection for its next message.
        if let (Some((_, data)), Some(Entry::Ws(peer))) = (queue.pop(), self.entries.get_mut(key)) {
            peer.recycle(data);
        }
        self.publish_queue = queue;
        self.publish_queue.clear();
        true
    }

    /// A read failed: the connection goes, unless the peer answers the
    /// failure (plain HTTP on the TLS port gets a 400).
    fn on_read_error(&mut self, key: usize, e: &io::Error, now: Instant) {
        debug!("read error on {key}: {e}");
        let answered = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let mut cx = PeerCx {
                    cfg: &self.cfg,
                    events: &mut self.events,
                    publish: &mut self.publish_queue,
                    stats: &mut self.stats,
                };
                peer.on_read_error(e, &mut cx, now)
            }
            _ => None,
        };
        match answered {
            Some(deadline) => {
                self.apply_deadline(key, deadline);
                self.mark_dirty(key);
            }
            None => self.remove(key),
        }
    }

    fn on_eof(&mut self, key: usize, now: Instant) {
        if let Some(Entry::Ws(peer)) = self.entries.get(key) {
            if matches!(peer.state, PeerState::Open(_)) && peer.close.is_none() {
                debug!("id={} closed TCP without a close frame", peer.id);
            }
        }
        match self.entries.get(key) {
            Some(Entry::Unix(_)) => self.on_unix_eof(key),
            // Answers what was sent, then removes the entry once written.
            Some(Entry::Rpc(_)) => return self.on_rpc_eof(key),
            Some(Entry::Ops(_)) => return self.on_ops_eof(key, now),
            _ => {}
        }
        self.remove(key);
    }

    fn apply_deadline(&mut self, key: usize, deadline: Deadline) {
        if let Some(Entry::Ws(peer)) = self.entries.get_mut(key) {
            match deadline {
                Deadline::Keep => {}
                Deadline::At(at) => peer.timer = self.timers.schedule(key, at),
                Deadline::Clear => peer.timer = 0,
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((key, serial)) = self.timers.pop_due(now) {
            let outcome = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) if peer.timer == serial => peer.on_deadline(&self.cfg, now),
                // An admin connection past --admin-timeout.
                Some(Entry::Ops(c)) if c.timer == serial && serial != 0 => None,
                _ => continue, // stale entry
            };
            match outcome {
                None => self.remove(key),
                Some(d) => {
                    self.apply_deadline(key, d);
                    self.mark_dirty(key);
                }
            }
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        let (dirty, wants) = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => {
                let wants = peer.wants_flush();
                peer.urgent |= wants;
                (&mut peer.dirty, wants)
            }
            Some(Entry::Rpc(c)) => (&mut c.dirty, !c.out.is_empty()),
            Some(Entry::Ops(c)) => (&mut c.dirty, !c.out.is_empty()),
            _ => return,
        };
        if !*dirty && wants {
            *dirty = true;
            self.dirty.push(key);
        }
    }

    /// One vectored write per connection that has something queued; every
    /// [`FLUSH_SLICE`] connections written, a look at the sockets. With
    /// `--write-delay`, connections that only got broadcasts (the hub queues
    /// them without [`Self::mark_dirty`], which marks the rest urgent) are
    /// written only once the window that started with the first frame held
    /// has passed (or at shutdown); they stay on the dirty list until then.
    /// `auto` opens such a window only right after a large fan-out pass, as
    /// long as that pass took ([`WriteDelay::due`]); in that mode only, a
    /// pass that wrote [`FLUSH_SLICE`] connections or more is timed for it
    /// ([`WriteDelay::meter`]).
    fn flush_dirty(&mut self, now: Instant) {
        if self.write_due.is_none() && self.shutdown_deadline.is_none() {
            self.write_due = self.cfg.write_delay.due(now, self.last_fanout);
        }
        let hold = self.shutdown_deadline.is_none() && self.write_due.is_some_and(|due| now < due);
        if !hold {
            self.write_due = None;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut meter = self.cfg.write_delay.meter(dirty.len(), FLUSH_SLICE);
        let mut held = 0;
        let mut written = 0;
        for i in 0..dirty.len() {
            let key = dirty[i];
            if written == FLUSH_SLICE {
                written = 0;
                self.look_between_writes();
            }
            if hold && matches!(self.entries.get(key), Some(Entry::Ws(p)) if !p.urgent) {
                // Still dirty: keep it for the flush when the window ends.
                dirty[held] = key;
                held += 1;
                continue;
            }
            match self.entries.get(key) {
                Some(Entry::Rpc(_)) => {
                    self.flush_rpc(key);
                    continue;
                }
                Some(Entry::Ops(_)) => {
                    self.flush_ops(key);
                    continue;
                }
                _ => {}
            }
            let Some(Entry::Ws(peer)) = self.entries.get_mut(key) else {
                continue;
            };
            peer.dirty = false;
            peer.urgent = false;
            written += 1;
            if let Some(m) = meter.as_mut() {
                m.count(peer.out.chunks());
            }
            let was_flushing = matches!(peer.state, PeerState::Flushing);
            match peer.flush() {
                Ok(drained) => {
                    set_write_interest(
                        self.poll.registry(),
                        &mut peer.stream,
                        key,
                        &mut peer.writable_interest,
                        drained,
                    );
                    if was_flushing && drained {
                        let at = now + self.cfg.close_timeout;
                        peer.timer = self.timers.schedule(key, at);
                    }
                }
                Err(e) => {
                    debug!("write error on {key}: {e}");
                    self.remove(key);
                }
            }
        }
        // A connection removed above queued a disconnect event for the
        // `events` subscribers: flush them too.
        dirty.truncate(held);
        if held == 0 {
            self.write_due = None;
        }
        if let Some(fanout) = meter.and_then(|m| m.finish()) {
            self.last_fanout = Some(fanout);
        }
        // Removals queued disconnect events for the `events` subscribers:
        // flush those now. Anything else that became dirty during the pass
        // (through a look between writes) stays for the next one, which
        // polls without waiting.
        let added = std::mem::replace(&mut self.dirty, dirty);
        for key in added {
            match self.entries.get(key) {
                Some(Entry::Ops(_)) => self.flush_ops(key),
                Some(_) => self.dirty.push(key),
                None => {}
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

    fn on_signal(&mut self, now: Instant) {
        let pending: Vec<i32> = self.signals.pending().collect();
        if pending.contains(&SIGHUP) {
            self.reload_tls();
        }
        let Some(&stop) = pending.iter().find(|&&s| s != SIGHUP) else {
            return;
        };
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!(
            "signal {stop}: shutting down, closing {} connection(s) with 1001",
            self.ws_count
        );
        self.shutdown_deadline = Some(now + self.cfg.shutdown_grace);
        self.notify("STOPPING=1");
        let _ = self.poll.registry().deregister(&mut self.ws_listener);
        if let Some(udp) = self.udp.as_mut() {
            let _ = self.poll.registry().deregister(udp);
        }
        if let Some((mut l, path)) = self.unix.take() {
            let _ = self.poll.registry().deregister(&mut l);
            ingress::unix::remove_socket_file(&path);
        }
        if let Some(mut l) = self.rpc.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.ops.close_listeners(self.poll.registry());
        self.stdin = None;
        let keys: Vec<usize> = self.entries.iter().map(|(k, _)| k).collect();
        for key in keys {
            let deadline = match self.entries.get_mut(key) {
                Some(Entry::Ws(peer)) => match peer.state {
                    PeerState::Open(_) => peer.close(
                        CloseCode::GOING_AWAY,
                        "server shutting down",
                        &self.cfg,
                        now,
                    ),
                    PeerState::Handshake { .. } => {
                        self.remove(key);
                        continue;
                    }
                    _ => Deadline::Keep,
                },
                // `events` subscribers stay to the end: they see the
                // shutdown's disconnects.
                Some(Entry::Ops(_)) if self.ops.is_subscriber(key) => continue,
                Some(Entry::Unix(_) | Entry::Rpc(_) | Entry::Ops(_)) => {
                    self.remove(key);
                    continue;
                }
                None => continue,
            };
            self.apply_deadline(key, deadline);
            self.mark_dirty(key);
        }
    }
}

impl Server {
    /// Sends `state` to systemd when it asked for notifications; a failure
    /// is logged, never fatal.
    fn notify(&self, state: &str) {
        if let Some(n) = &self.notifier {
            match n.send(state) {
                Ok(()) => debug!("notified {}: {state}", n.name()),
                Err(e) => warn!("cannot notify {} of {state}: {e}", n.name()),
            }
        }
    }

    /// SIGHUP: reads the certificate and key again. Open connections keep
    /// theirs; a failed reload keeps the old ones and says why.
    fn reload_tls(&mut self) {
        let Some(acceptor) = self.tls.as_mut() else {
            info!("SIGHUP: no TLS certificate configured, nothing to reload");
            return;
        };
        match acceptor.reload() {
            Ok(()) => info!(
                "SIGHUP: TLS certificate reloaded from {} (new connections use it)",
                acceptor.files().cert.display()
            ),
            Err(e) => error!("SIGHUP: TLS reload failed, keeping the current certificate: {e}"),
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
