//! Operating the server while it runs: the control socket (`--control
//! PATH`: `stats`, `connections`, `kick`, `publish`, `events`) and the admin
//! HTTP endpoint (`--admin ADDR`: `/metrics`, `/stats`, `/connections`,
//! `POST /publish`). Both live in the same mio loop as everything else
//! (docs/operations.md).
//!
//! The control socket is a second Unix socket, not the publish socket:
//! there every line is a message (`echo stats | nc -U` must keep
//! broadcasting "stats"), and the two have different trust: publishing is
//! for the backend, while kicking clients and reading peer addresses is for
//! operators, so the control file gets its own, tighter mode (0600).
//!
//! Every connection here is bounded: at most `--ops-max-connections` of each
//! kind, a request line or head of bounded size, at most
//! `--ops-max-queued` bytes of replies or events waiting for a control
//! reader (an `events` subscriber that falls behind loses events, counted,
//! and is told how many), and admin requests have `--admin-timeout` to
//! finish.

mod admin;
mod control;
mod json;
mod report;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error, warn};
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::error::bind_err;
use super::outbound::{Chunk, Outbound};
use super::peer::WsPeer;
use super::sockets::{listen_tcp, set_write_interest};
use super::timers::Serial;
use super::{Entry, Server, ServerError};

/// Token of the admin HTTP listener.
pub(crate) const ADMIN_LISTENER: Token = Token(usize::MAX - 20);
/// Token of the control socket listener.
pub(crate) const CONTROL_LISTENER: Token = Token(usize::MAX - 21);

/// Settings of the control socket and the admin endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsConfig {
    /// Admin HTTP listener (`--admin`), or `None` for off. Default off;
    /// meant for loopback (it has no authentication).
    pub admin: Option<SocketAddr>,
    /// Control socket path (`--control`), or `None` for off. Default off.
    pub control: Option<PathBuf>,
    /// Permissions of the control socket file. Default `0o600`.
    pub control_mode: u32,
    /// Most admin connections, and most control connections, at once;
    /// more are closed at accept and counted. Default 64.
    pub max_connections: usize,
    /// Most bytes of replies or events waiting for one control-socket
    /// reader (an admin connection gets one response, sized by the report
    /// it asked for). Default 1 MiB.
    pub max_queued_bytes: usize,
    /// Time an admin connection has from accept to its response being
    /// written. Default 10 s.
    pub admin_timeout: Duration,
    /// Channels listed by name in `stats` and `/metrics` (the largest
    /// ones); the total is always given. Default 100.
    pub max_channels_listed: usize,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            admin: None,
            control: None,
            control_mode: 0o600,
            max_connections: 64,
            max_queued_bytes: 1 << 20,
            admin_timeout: Duration::from_secs(10),
            max_channels_listed: 100,
        }
    }
}

/// The listeners and the loop-wide state of the operator interfaces.
#[derive(Debug)]
pub(crate) struct Ops {
    admin: Option<TcpListener>,
    control: Option<(UnixListener, PathBuf)>,
    admin_conns: usize,
    control_conns: usize,
    /// Keys of the control connections streaming `events`.
    subscribers: Vec<usize>,
    started: SystemTime,
    started_at: Instant,
}

impl Ops {
    /// Binds what `cfg` asks for and registers it.
    pub(crate) fn bind(
        cfg: &OpsConfig,
        backlog: i32,
        registry: &Registry,
    ) -> Result<Ops, ServerError> {
        let admin = match cfg.admin {
            Some(addr) => {
                if !addr.ip().is_loopback() {
                    warn!(
                        "--admin {addr} is not a loopback address: the admin endpoint has no authentication and can publish and read peer addresses"
                    );
                }
                let mut l = listen_tcp(addr, backlog)
                    .map_err(bind_err(format!("admin HTTP listener {addr}")))?;
                registry
                    .register(&mut l, ADMIN_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some(l)
            }
            None => None,
        };
        let control = match &cfg.control {
            Some(path) => {
                let mut l = super::ingress::unix::bind(path, cfg.control_mode).map_err(|e| {
                    match e {
                        // The publish socket's advice (--unix) does not apply here.
                        ServerError::UnixSocketInUse(p) => ServerError::Bind {
                            what: format!("control socket {}", p.display()),
                            source: io::Error::new(
                                io::ErrorKind::AddrInUse,
                                "another running instance answers on it (use --control PATH for a different socket)",
                            ),
                        },
                        e => e,
                    }
                })?;
                registry
                    .register(&mut l, CONTROL_LISTENER, Interest::READABLE)
                    .map_err(ServerError::Poll)?;
                Some((l, path.clone()))
            }
            None => None,
        };
        Ok(Ops {
            admin,
            control,
            admin_conns: 0,
            control_conns: 0,
            subscribers: Vec::new(),
            started: SystemTime::now(),
            started_at: Instant::now(),
        })
    }

    /// True for a control connection streaming `events`.
    pub(crate) fn is_subscriber(&self, key: usize) -> bool {
        self.subscribers.contains(&key)
    }

    /// The admin address actually bound.
    pub(crate) fn admin_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.admin.as_ref().map(|l| l.local_addr()).transpose()
    }

    /// The control socket path.
    pub(crate) fn control_path(&self) -> Option<PathBuf> {
        self.control.as_ref().map(|(_, p)| p.clone())
    }

    /// Stops listening (shutdown) and removes the control socket file.
    pub(crate) fn close_listeners(&mut self, registry: &Registry) {
        if let Some(mut l) = self.admin.take() {
            let _ = registry.deregister(&mut l);
        }
        if let Some((mut l, path)) = self.control.take() {
            let _ = registry.deregister(&mut l);
            super::ingress::unix::remove_socket_file(&path);
        }
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        if let Some((_, path)) = self.control.take() {
            super::ingress::unix::remove_socket_file(&path);
        }
    }
}

/// An admin or control connection's socket.
#[derive(Debug)]
pub(crate) enum OpsStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for OpsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            OpsStream::Tcp(s) => s.read(buf),
            OpsStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for OpsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            OpsStream::Tcp(s) => s.write(buf),
            OpsStream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            OpsStream::Tcp(s) => s.write_vectored(bufs),
            OpsStream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl mio::event::Source for OpsStream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            OpsStream::Tcp(s) => s.register(r, t, i),
            OpsStream::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            OpsStream::Tcp(s) => s.reregister(r, t, i),
            OpsStream::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            OpsStream::Tcp(s) => s.deregister(r),
            OpsStream::Unix(s) => s.deregister(r),
        }
    }
}

/// What an operator connection speaks.
#[derive(Debug)]
pub(crate) enum Role {
    /// One HTTP/1.1 request, one response, then the connection closes.
    Admin(admin::AdminState),
    /// Command lines; possibly an `events` stream.
    Control(control::ControlState),
}

/// One admin or control connection.
#[derive(Debug)]
pub(crate) struct OpsConn {
    pub(crate) stream: OpsStream,
    role: Role,
    /// Received bytes not yet handled (a partial line or request).
    input: Vec<u8>,
    pub(crate) out: Outbound,
    pub(crate) dirty: bool,
    writable_interest: bool,
    /// No more input is handled: the connection is closed once `out` is
    /// written (an answered admin request, a control reader that closed
    /// its side, or one that broke a limit).
    finished: bool,
    /// Admin connections: the serial of the `--admin-timeout` deadline.
    pub(crate) timer: Serial,
}

impl OpsConn {
    fn queue(&mut self, bytes: Vec<u8>) {
        self.out.push(Chunk::Owned(bytes));
    }
}

impl Server {
    /// Accepts waiting admin (`admin` true) or control connections, up to
    /// the limit; more are closed at once and counted.
    pub(crate) fn accept_ops(&mut self, admin: bool, now: Instant) {
        loop {
            let accepted = if admin {
                let Some(l) = self.ops.admin.as_ref() else {
                    return;
                };
                l.accept().map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    (OpsStream::Tcp(s), a.to_string())
                })
            } else {
                let Some((l, _)) = self.ops.control.as_ref() else {
                    return;
                };
                l.accept()
                    .map(|(s, _)| (OpsStream::Unix(s), "control socket".to_owned()))
            };
            let (mut stream, from) = match accepted {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    error!("admin/control accept failed: {e}");
                    return;
                }
            };
            let count = if admin {
                &mut self.ops.admin_conns
            } else {
                &mut self.ops.control_conns
            };
            if *count >= self.cfg.ops.max_connections {
                self.stats.ops_connections_refused += 1;
                warn!(
                    "{} connection from {from} refused: {} open (--ops-max-connections)",
                    if admin { "admin" } else { "control" },
                    self.cfg.ops.max_connections
                );
                continue; // dropped: closed
            }
            let entry = self.entries.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(key), Interest::READABLE)
            {
                warn!("cannot register {from}: {e}");
                continue;
            }
            *count += 1;
            debug!(
                "{} connection from {from} ({key})",
                if admin { "admin" } else { "control" }
            );
            let timer = if admin {
                self.timers.schedule(key, now + self.cfg.ops.admin_timeout)
            } else {
                0
            };
            entry.insert(Entry::Ops(OpsConn {
                stream,
                role: if admin {
                    Role::Admin(admin::AdminState::default())
                } else {
                    Role::Control(control::ControlState::default())
                },
                input: Vec::new(),
                out: Outbound::default(),
                dirty: false,
                writable_interest: false,
                finished: false,
                timer,
            }));
        }
    }

    /// `n` bytes in the scratch buffer from an operator connection; false
    /// when the entry is gone.
    pub(crate) fn on_ops_data(&mut self, key: usize, n: usize, now: Instant) -> bool {
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return false;
        };
        if c.finished || matches!(&c.role, Role::Control(s) if s.events) {
            return true; // nothing more is handled: read and discarded
        }
        c.input.extend_from_slice(&self.scratch[..n]);
        match c.role {
            Role::Admin(_) => self.admin_input(key, now),
            Role::Control(_) => self.control_input(key, now),
        }
        self.mark_dirty(key);
        matches!(self.entries.get(key), Some(Entry::Ops(_)))
    }

    /// The reader closed its side: a control connection answers a last line
    /// without a newline, then closes once its replies are written. An
    /// `events` subscriber keeps streaming (`nc -N` closes its sending
    /// side after `events`) until a write fails.
    pub(crate) fn on_ops_eof(&mut self, key: usize, now: Instant) {
        let pending_line = match self.entries.get_mut(key) {
            Some(Entry::Ops(c)) => {
                matches!(&c.role, Role::Control(s) if !s.events)
                    && !c.finished
                    && !c.input.is_empty()
            }
            _ => return,
        };
        if pending_line {
            if let Some(Entry::Ops(c)) = self.entries.get_mut(key) {
                c.input.push(b'\n');
            }
            self.control_input(key, now);
        }
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return;
        };
        if matches!(&c.role, Role::Control(s) if s.events) {
            self.mark_dirty(key);
            return;
        }
        c.finished = true;
        c.input = Vec::new();
        if c.out.is_empty() {
            self.remove(key);
        } else {
            self.mark_dirty(key);
        }
    }

    /// Writes an operator connection's queue; a finished one is closed once
    /// everything is written.
    pub(crate) fn flush_ops(&mut self, key: usize) {
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return;
        };
        c.dirty = false;
        let mut drained = match c.out.write_to(&mut c.stream) {
            Ok(drained) => drained,
            Err(e) => {
                debug!("admin/control {key}: write error: {e}");
                return self.remove(key);
            }
        };
        if drained && !c.finished && self.control_drained(key) {
            // A `dropped` notice for an events subscriber that caught up.
            let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
                return;
            };
            drained = match c.out.write_to(&mut c.stream) {
                Ok(drained) => drained,
                Err(e) => {
                    debug!("admin/control {key}: write error: {e}");
                    return self.remove(key);
                }
            };
        }
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return;
        };
        set_write_interest(
            self.poll.registry(),
            &mut c.stream,
            key,
            &mut c.writable_interest,
            drained,
        );
        if !drained || !c.finished {
            return;
        }
        match &c.stream {
            // The response is complete: shut our side (the client sees the
            // end) and read until the client closes too (or the admin
            // timeout), so unread request bytes cannot turn the close into
            // a reset that destroys the response.
            OpsStream::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            OpsStream::Unix(_) => self.remove(key),
        }
    }

    /// Flushes the `events` subscribers that a removal during the
    /// end-of-turn flush made dirty (flushing them produces no event).
    pub(crate) fn flush_subscribers(&mut self, keys: Vec<usize>) {
        for key in keys {
            self.flush_ops(key);
        }
    }

    /// The end of shutdown: connections whose close handshake did not
    /// finish within the grace are reported to `events` subscribers as
    /// disconnected (with the 1001 they were sent), and the subscribers get
    /// what is queued for them (one non-blocking write each).
    pub(crate) fn ops_shutdown(&mut self) {
        if self.ops.subscribers.is_empty() {
            return;
        }
        let left: Vec<usize> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Ws(_)))
            .map(|(k, _)| k)
            .collect();
        for key in left {
            self.remove(key);
        }
        let subscribers = self.ops.subscribers.clone();
        self.flush_subscribers(subscribers);
    }

    /// Bookkeeping when an operator connection is removed.
    pub(crate) fn ops_removed(&mut self, key: usize, mut c: OpsConn) {
        let _ = self.poll.registry().deregister(&mut c.stream);
        match c.role {
            Role::Admin(_) => self.ops.admin_conns -= 1,
            Role::Control(s) => {
                self.ops.control_conns -= 1;
                if s.events {
                    self.ops.subscribers.retain(|&k| k != key);
                }
            }
        }
    }

    /// A WebSocket client was upgraded: tell `events` subscribers.
    pub(crate) fn ops_connected(&mut self, key: usize) {
        if self.ops.subscribers.is_empty() {
            return;
        }
        let Some(Entry::Ws(peer)) = self.entries.get(key) else {
            return;
        };
        let line = control::event_line("connect", peer, None);
        self.send_event(line);
    }

    /// An upgraded WebSocket client is gone: tell `events` subscribers.
    pub(crate) fn ops_disconnected(&mut self, peer: &WsPeer) {
        if self.ops.subscribers.is_empty() {
            return;
        }
        let line = control::event_line("disconnect", peer, Some(peer.close_summary()));
        self.send_event(line);
    }
}

/// Unix time in milliseconds.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
