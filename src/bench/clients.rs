//! The bench's loop: every WebSocket client on one mio poll, one thread.
//!
//! A client is a non-blocking TCP connect, then the opening handshake
//! ([`ClientHandshake`]), then a [`Connection`] in the client role. Every
//! socket is read into one scratch buffer and the bytes go straight to
//! [`Connection::receive`]; a client owns only its protocol state, its
//! counters and, while the kernel will not take them, unwritten bytes
//! (handshake request, pongs, close frames, the `ws` publisher's messages).
//!
//! The loop runs through phases: connect (ramping, at most
//! `--connect-concurrency` in flight) → hold (idle) or publish → drain
//! (fanout) → close. Publishing is deadline-driven: message `i` is due at
//! `start + i / rate`; the poll timeout is the nearest deadline and the
//! event loop also checks the schedule every few hundred events, so a busy
//! turn does not delay the publisher more than it must.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event as MioEvent;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use slab::Slab;

use super::histogram::Histogram;
use super::publisher::Publisher;
use super::{BenchArgs, Mode, PublishTarget, payload, sys};
use crate::client::WsUrl;
use crate::protocol::handshake::Progress;
use crate::protocol::handshake::client::{ClientHandshake, ClientRequest, ResponseError};
use crate::protocol::{CloseCode, Connection, Event, HandshakeLimits, Limits, MessageKind, Role};

/// The Unix-socket publisher's token (clients use their slab keys).
const UNIX_PUB: Token = Token(usize::MAX - 1);
/// The one receive buffer's size.
const SCRATCH: usize = 64 * 1024;
/// Readiness events per poll.
const EVENTS: usize = 4096;
/// How often the publish schedule is checked inside a busy event batch.
const SCHEDULE_CHECK_EVERY: usize = 256;
/// A message sent later than this after its due time counts as late.
pub(crate) const LATE: Duration = Duration::from_millis(5);
/// How long the final close handshakes may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often connect deadlines are checked.
const TIMEOUT_CHECK: Duration = Duration::from_millis(250);
const SECOND: Duration = Duration::from_secs(1);

/// Where one client stands.
#[derive(Debug)]
enum State {
    /// TCP connect (until `connected`), then waiting for the `101`.
    Handshake {
        hs: Box<ClientHandshake>,
        since: Instant,
        connected: bool,
    },
    /// Upgraded.
    Open(Connection),
}

/// One WebSocket client.
#[derive(Debug)]
struct Client {
    stream: TcpStream,
    /// The TLS session of a `wss://` client (boxed: plain clients pay a
    /// pointer).
    tls: Option<Box<ClientConnection>>,
    state: State,
    /// Plaintext bytes not yet handed on (the handshake request first): to
    /// the kernel, or to the TLS session.
    out: Vec<u8>,
    /// Registered for WRITABLE as well as READABLE.
    writable: bool,
    /// The `ws` publisher, not a subscriber: its own copies are not counted.
    publisher: bool,
    /// The next sequence number expected.
    next_seq: u64,
    /// Messages of this run received.
    delivered: u64,
}

/// Why a client is gone.
#[derive(Debug)]
struct Gone {
    cause: String,
    /// It never got past the handshake (a connection failure).
    in_handshake: bool,
}

/// What handling an event did to a client.
#[derive(Debug, Default)]
struct Outcome {
    /// The handshake completed, this long after the connect started.
    opened: Option<Duration>,
    gone: Option<Gone>,
}

/// Message accounting shared by every subscriber.
#[derive(Debug, Default)]
struct Deliveries {
    run_id: u32,
    /// Messages of this run received by subscribers.
    delivered: u64,
    /// Of those, by subscribers still connected.
    delivered_live: u64,
    /// Received after a later sequence number.
    out_of_order: u64,
    /// Messages that are not this run's (other traffic on the server).
    foreign: u64,
    /// The `ws` publisher's own copies.
    publisher_echoes: u64,
    /// When the last one arrived (nanoseconds since the start).
    last_ns: u64,
    /// Latencies since the last progress line (merged into the total then).
    interval: Histogram,
}

impl Deliveries {
    fn on_message(&mut self, c: &mut Client, data: &[u8], now_ns: u64) {
        if c.publisher {
            self.publisher_echoes += 1;
            return;
        }
        let data = payload::unwrap_envelope(data);
        let Some((seq, sent_ns)) = payload::decode(data, self.run_id) else {
            self.foreign += 1;
            return;
        };
        self.interval.record(now_ns.saturating_sub(sent_ns));
        self.delivered += 1;
        self.delivered_live += 1;
        c.delivered += 1;
        if seq >= c.next_seq {
            c.next_seq = seq + 1;
        } else {
            self.out_of_order += 1;
        }
        self.last_ns = now_ns;
    }
}

/// What a client needs from the loop while it reads.
struct Cx<'a> {
    scratch: &'a mut [u8],
    events: &'a mut Vec<Event>,
    d: &'a mut Deliveries,
    registry: &'a Registry,
    limits: Limits,
    t0: Instant,
    addr: SocketAddr,
}

impl Client {
    /// After a connect's first readiness: `Ok(true)` once connected.
    fn check_connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads plaintext: through the TLS session on a `wss://` client.
    /// `Ok(0)` at the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = tls.read_tls(&mut self.stream)?;
            if let Err(e) = tls.process_new_packets() {
                let _ = tls.write_tls(&mut self.stream);
                let hint = match e {
                    rustls::Error::InvalidCertificate(_) => {
                        " (does --tls-ca hold the CA that signed the server's certificate?)"
                    }
                    _ => "",
                };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS: {e}{hint}"),
                ));
            }
            if n == 0 {
                continue; // the reader reports the end
            }
        }
    }

    /// Writes `out` until done or the socket is full, and asks for
    /// WRITABLE only while bytes wait.
    fn flush(&mut self, registry: &Registry, key: usize) -> io::Result<()> {
        let mut pos = 0;
        while pos < self.out.len() {
            let written = match self.tls.as_mut() {
                None => self.stream.write(&self.out[pos..]),
                // Sealed into the session's record buffer, written below.
                Some(tls) => match tls.writer().write(&self.out[pos..]) {
                    Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
                    r => r,
                },
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if self.tls.is_some() && !self.write_tls()? {
                break;
            }
        }
        if self.tls.is_some() {
            self.write_tls()?;
        }
        if pos == self.out.len() {
            // An idle client keeps no buffer.
            self.out = Vec::new();
        } else {
            self.out.drain(..pos);
        }
        let want = !self.out.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write());
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, Token(key), interest)?;
            self.writable = want;
        }
        Ok(())
    }

    /// Writes the TLS session's records: `Ok(true)` once none is left.
    fn write_tls(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(true);
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Moves the connection's queued frames (pongs, close) to `out`.
    fn take_transmit(&mut self) {
        if let State::Open(conn) = &mut self.state {
            if conn.has_transmit() {
                let tx = conn.take_transmit();
                if self.out.is_empty() {
                    self.out = tx;
                } else {
                    self.out.extend_from_slice(&tx);
                }
            }
        }
    }

    fn gone(&self, cause: String) -> Outcome {
        Outcome {
            opened: None,
            gone: Some(Gone {
                cause,
                in_handshake: matches!(self.state, State::Handshake { .. }),
            }),
        }
    }

    /// Reads until the socket is drained: the handshake reply, then frames.
    fn on_readable(&mut self, key: usize, cx: &mut Cx<'_>, read_closed: bool) -> Outcome {
        let mut opened = None;
        loop {
            let n = match self.read(cx.scratch) {
                Ok(0) => {
                    let cause = match self.state {
                        State::Handshake { .. } => {
                            format!("{} closed the connection during the handshake", cx.addr)
                        }
                        State::Open(_) => "TCP closed without a close frame".to_owned(),
                    };
                    return Outcome {
                        opened,
                        ..self.gone(cause)
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // TLS handshake records to answer.
                    if self.tls.as_ref().is_some_and(|t| t.wants_write()) {
                        if let Err(e) = self.flush(cx.registry, key) {
                            return Outcome {
                                opened,
                                ..self.gone(format!("write error: {e}"))
                            };
                        }
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Outcome {
                        opened,
                        ..self.gone(format!("read error: {e}"))
                    };
                }
            };
            let now_ns = cx.t0.elapsed().as_nanos() as u64;
            let mut data = &cx.scratch[..n];
            if let State::Handshake { hs, since, .. } = &mut self.state {
                match hs.feed(data) {
                    Ok(Progress::Partial) => continue,
                    Ok(Progress::Complete { consumed, value }) => {
                        opened = Some(since.elapsed());
                        let mut conn = Connection::new(Role::Client, cx.limits);
                        if let Some(params) = value.deflate {
                            conn.set_deflate(params);
                        }
                        self.state = State::Open(conn);
                        data = &data[consumed..];
                    }
                    Err(e) => return self.gone(refusal(&e, data, cx.addr)),
                }
            }
            let mut closed = None;
            if let State::Open(conn) = &mut self.state {
                conn.receive(data, cx.events);
            }
            for ev in cx.events.drain(..) {
                match ev {
                    Event::Message { data, .. } => cx.d.on_message(self, &data, now_ns),
                    Event::Ping(_) | Event::Pong(_) => {}
                    Event::Closed { code, reason } => {
                        let code = code.map_or(CloseCode::NO_STATUS.0, |c| c.0);
                        closed = Some(if reason.is_empty() {
                            format!("server closed with {code}")
                        } else {
                            format!("server closed with {code} ({reason})")
                        });
                    }
                    Event::Failed(e) => {
                        closed = Some(format!("protocol error from the server: {e}"));
                    }
                }
            }
            self.take_transmit();
            let flushed = self.flush(cx.registry, key);
            if let Some(cause) = closed {
                return Outcome {
                    opened,
                    ..self.gone(cause)
                };
            }
            if let Err(e) = flushed {
                return Outcome {
                    opened,
                    ..self.gone(format!("write error: {e}"))
                };
            }
            // A short read drained the socket: with edge-triggered readiness
            // new bytes raise a new event, so skip the read that would only
            // say WouldBlock (unless the peer's FIN is pending too).
            if n < cx.scratch.len() && !read_closed && self.tls.is_none() {
                break;
            }
        }
        Outcome { opened, gone: None }
    }
}

/// Explains a refused handshake, with the server's status line and the
/// start of its body when this read holds them.
fn refusal(e: &ResponseError, bytes: &[u8], addr: SocketAddr) -> String {
    match e {
        ResponseError::Status(code) => {
            let text = String::from_utf8_lossy(bytes);
            if !text.starts_with("HTTP/") {
                return format!("{addr} refused the WebSocket handshake: HTTP status {code}");
            }
            let status = text.lines().next().unwrap_or("").trim();
            let body: String = text
                .split_once("\r\n\r\n")
                .map_or("", |(_, b)| b.trim())
                .chars()
                .take(200)
                .collect();
            if body.is_empty() {
                format!("{addr} refused the WebSocket handshake: {status}")
            } else {
                format!("{addr} refused the WebSocket handshake: {status}: {body}")
            }
        }
        other => format!("{addr}: bad handshake reply: {other}"),
    }
}

fn connect_error(e: &io::Error, addr: SocketAddr) -> String {
    let hint = match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::ConnectionRefused, _) => " (is the server running and listening there?)",
        (io::ErrorKind::AddrNotAvailable, _) => {
            " (out of local ports? see net.ipv4.ip_local_port_range)"
        }
        // EMFILE, ENFILE
        (_, Some(24 | 23)) => " (out of file descriptors: raise the limit with ulimit -n)",
        (io::ErrorKind::TimedOut, _) => " (is a firewall dropping the connection?)",
        _ => "",
    };
    format!("cannot connect to {addr}: {e}{hint}")
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Hold { until: Instant },
    Publish,
    Drain { until: Instant },
    Close { until: Instant },
    Done,
}

/// The server's figures, when `--server-pid` is given.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerFigures {
    pub(crate) pid: u32,
    /// RSS (KiB) before the bench connected.
    pub(crate) rss_before: u64,
    /// RSS (KiB) with every connection open.
    pub(crate) rss_connected: u64,
    /// RSS (KiB) at the end of the hold, or of the drain.
    pub(crate) rss_after: u64,
    /// CPU seconds (user + system) during the hold, or publish and drain.
    pub(crate) cpu_run: Option<f64>,
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Results {
    pub(crate) connections: usize,
    pub(crate) connect_secs: f64,
    /// Each connection's TCP connect plus handshake time.
    pub(crate) connect_times: Histogram,
    /// Wall time of the hold, or of publishing plus draining.
    pub(crate) run_secs: f64,
    pub(crate) planned: u64,
    pub(crate) published: u64,
    pub(crate) publish_secs: f64,
    pub(crate) drain_secs: f64,
    pub(crate) delivered: u64,
    pub(crate) out_of_order: u64,
    pub(crate) foreign: u64,
    pub(crate) publisher_echoes: u64,
    /// Deliveries per second, from the first publish to the last delivery.
    pub(crate) delivered_per_sec: f64,
    pub(crate) latency: Histogram,
    /// How late each publish was against its schedule.
    pub(crate) lateness: Histogram,
    /// Publishes more than [`LATE`] behind schedule.
    pub(crate) late: u64,
    /// Why publishing stopped before the planned count, if it did.
    pub(crate) publisher_error: Option<String>,
    /// Connections closed before the bench closed them, by cause.
    pub(crate) closed: BTreeMap<String, u64>,
    /// This process's user and system CPU seconds, whole run.
    pub(crate) cpu: Option<(f64, f64)>,
    /// This process's CPU seconds during the hold, or publish and drain.
    pub(crate) cpu_run: Option<f64>,
    pub(crate) server: Option<ServerFigures>,
}

impl Results {
    /// Connections closed before the bench closed them.
    pub(crate) fn closed_total(&self) -> u64 {
        self.closed.values().sum()
    }
}

fn cpu_total(pid: Option<u32>) -> Option<f64> {
    sys::cpu_secs(pid).map(|(u, s)| u + s)
}

/// The bench's loop and everything it counts.
pub(crate) struct Bench<'a> {
    args: &'a BenchArgs,
    poll: Poll,
    clients: Slab<Client>,
    scratch: Vec<u8>,
    events: Vec<Event>,
    addr: SocketAddr,
    request: ClientRequest,
    /// `wss://`: the TLS configuration and the name to verify.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    limits: Limits,
    t0: Instant,
    phase: Phase,
    // Connecting.
    started: usize,
    in_flight: usize,
    open_subs: usize,
    ws_publisher: Option<usize>,
    connect_start: Instant,
    connect_secs: f64,
    /// Each connection's TCP connect plus handshake time.
    connect_times: Histogram,
    next_timeout_check: Instant,
    // Publishing.
    publisher: Option<Publisher>,
    payload: Vec<u8>,
    publish_start: Instant,
    publish_end: Option<Instant>,
    run_start: Instant,
    run_end: Option<Instant>,
    total: u64,
    published: u64,
    lateness: Histogram,
    late: u64,
    /// Why publishing stopped early, if it did.
    publisher_error: Option<String>,
    // Deliveries.
    d: Deliveries,
    latency: Histogram,
    /// Subscribers still connected.
    live_subs: u64,
    closed: BTreeMap<String, u64>,
    // Reporting.
    next_progress: Instant,
    cpu_run_start: Option<f64>,
    cpu_run: Option<f64>,
    server: Option<ServerFigures>,
    server_cpu_start: Option<f64>,
}

impl<'a> Bench<'a> {
    pub(crate) fn new(args: &'a BenchArgs, addr: SocketAddr, url: &WsUrl) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("cannot create the poll: {e}"))?;
        let size = args.size as usize;
        // Room for any message this run sends, and the server's own default.
        let max = size.saturating_mul(2).max(1 << 20);
        let limits = Limits {
            max_frame: max as u64,
            max_message: max,
            max_fragments: 1 << 16,
        };
        let now = Instant::now();
        let server = match args.server_pid {
            Some(pid) => Some(ServerFigures {
                pid,
                rss_before: sys::rss_kib(pid)?,
                ..ServerFigures::default()
            }),
            None => None,
        };
        let total = if args.mode == Mode::Fanout {
            ((args.rate * args.duration.as_secs_f64()).round() as u64).max(1)
        } else {
            0
        };
        let tls = if url.tls {
            let config = crate::client_tls::client_config(args.tls_ca.as_deref())?;
            Some((config, crate::client_tls::server_name(&url.host)?))
        } else {
            None
        };
        // The UDP or Unix publisher first, so a wrong address fails at once.
        let publisher = match (&args.mode, &args.publish) {
            (Mode::Fanout, PublishTarget::Udp(a)) => Some(Publisher::udp(*a)?),
            (Mode::Fanout, PublishTarget::Unix(p)) => {
                Some(Publisher::unix(p, poll.registry(), UNIX_PUB)?)
            }
            _ => None,
        };
        Ok(Bench {
            args,
            poll,
            clients: Slab::with_capacity(args.connections + 1),
            scratch: vec![0; SCRATCH],
            events: Vec::new(),
            addr,
            request: ClientRequest {
                host: url.host_header(),
                target: url.target.clone(),
                deflate: args.deflate,
                ..ClientRequest::default()
            },
            tls,
            limits,
            t0: now,
            phase: Phase::Connect,
            started: 0,
            in_flight: 0,
            open_subs: 0,
            ws_publisher: None,
            connect_start: now,
            connect_secs: 0.0,
            connect_times: Histogram::default(),
            next_timeout_check: now + TIMEOUT_CHECK,
            publisher,
            payload: Vec::with_capacity(size),
            publish_start: now,
            publish_end: None,
            run_start: now,
            run_end: None,
            total,
            published: 0,
            lateness: Histogram::default(),
            late: 0,
            publisher_error: None,
            d: Deliveries {
                run_id: rand::random(),
                ..Deliveries::default()
            },
            latency: Histogram::default(),
            live_subs: 0,
            closed: BTreeMap::new(),
            next_progress: now + SECOND,
            cpu_run_start: None,
            cpu_run: None,
            server,
            server_cpu_start: None,
        })
    }

    fn fanout_ws(&self) -> bool {
        self.args.mode == Mode::Fanout && self.args.publish == PublishTarget::Ws
    }

    fn progress(&self, line: std::fmt::Arguments<'_>) {
        if !self.args.quiet {
            eprintln!("{line}");
        }
    }

    /// Runs every phase; the figures, or why the run could not go on.
    pub(crate) fn run(mut self) -> Result<Results, String> {
        let mut events = Events::with_capacity(EVENTS);
        let n = self.args.connections;
        self.progress(format_args!(
            "bench: {}, {n} connection(s) to {} ({})",
            match self.args.mode {
                Mode::Fanout => "fanout",
                Mode::Idle => "idle",
            },
            self.args.url,
            self.addr
        ));
        if self.fanout_ws() {
            // The publisher first: a refused connection fails fast.
            self.start_connect(true)?;
        }
        loop {
            let now = Instant::now();
            self.tick(now)?;
            if self.phase == Phase::Done {
                break;
            }
            let timeout = self
                .next_deadline()
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll failed: {e}"));
            }
            for (i, ev) in events.iter().enumerate() {
                self.on_event(ev)?;
                if i % SCHEDULE_CHECK_EVERY == SCHEDULE_CHECK_EVERY - 1
                    && self.phase == Phase::Publish
                {
                    self.publish_due(Instant::now())?;
                }
            }
        }
        Ok(self.results())
    }

    /// The nearest thing the loop must do without being woken.
    fn next_deadline(&self) -> Instant {
        let phase = match self.phase {
            Phase::Connect => self.next_timeout_check,
            Phase::Publish => self.due(self.published),
            Phase::Drain { .. } if self.outstanding() == 0 => Instant::now(),
            Phase::Hold { until } | Phase::Drain { until } | Phase::Close { until } => until,
            Phase::Done => Instant::now(),
        };
        phase.min(self.next_progress)
    }

    /// Deliveries still expected by the subscribers still connected.
    fn outstanding(&self) -> u64 {
        (self.published * self.live_subs).saturating_sub(self.d.delivered_live)
    }

    fn due(&self, i: u64) -> Instant {
        self.publish_start + Duration::from_secs_f64(i as f64 / self.args.rate)
    }

    /// Timed work: ramping connects, publishing, phase changes, progress.
    fn tick(&mut self, now: Instant) -> Result<(), String> {
        match self.phase {
            Phase::Connect => {
                self.ramp()?;
                if now >= self.next_timeout_check {
                    self.check_connect_timeouts(now)?;
                    self.next_timeout_check = now + TIMEOUT_CHECK;
                }
                let publisher_ready = !self.fanout_ws()
                    || self
                        .ws_publisher
                        .and_then(|k| self.clients.get(k))
                        .is_some_and(|c| matches!(c.state, State::Open(_)));
                if self.open_subs == self.args.connections && publisher_ready {
                    self.connected(now)?;
                }
            }
            Phase::Publish => self.publish_due(now)?,
            Phase::Hold { until } => {
                if now >= until {
                    self.end_run(now);
                    self.start_close(now);
                }
            }
            Phase::Drain { until } => {
                if self.outstanding() == 0 || now >= until {
                    self.end_run(now);
                    self.start_close(now);
                }
            }
            Phase::Close { until } => {
                if self.clients.is_empty() || now >= until {
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }
        if now >= self.next_progress {
            self.print_progress(now);
            while self.next_progress <= now {
                self.next_progress += SECOND;
            }
        }
        Ok(())
    }

    fn print_progress(&mut self, now: Instant) {
        let p99 = self.d.interval.quantile(0.99);
        let had = self.d.interval.count() > 0;
        self.latency.merge(&self.d.interval);
        self.d.interval.clear();
        match self.phase {
            Phase::Connect => self.progress(format_args!(
                "connected {}/{} ({} in flight)",
                self.open_subs, self.args.connections, self.in_flight
            )),
            Phase::Hold { .. } => {
                let rss = self
                    .server
                    .as_ref()
                    .and_then(|s| sys::rss_kib(s.pid).ok())
                    .map_or(String::new(), |k| format!(" server_rss={k}KiB"));
                self.progress(format_args!(
                    "t={}s open={} closed={}{rss}",
                    now.duration_since(self.run_start).as_secs_f64().round(),
                    self.live_subs,
                    self.closed.values().sum::<u64>()
                ));
            }
            Phase::Publish | Phase::Drain { .. } => {
                let p99 = if had {
                    format!("{}ms", super::report::ms(p99))
                } else {
                    "-".to_owned()
                };
                let closed = self.closed.values().sum::<u64>();
                let closed = if closed > 0 {
                    format!(" closed={closed}")
                } else {
                    String::new()
                };
                self.progress(format_args!(
                    "t={}s published={} delivered={} p99={p99}{closed}{}",
                    now.duration_since(self.publish_start).as_secs_f64().round(),
                    self.published,
                    self.d.delivered,
                    if matches!(self.phase, Phase::Drain { .. }) {
                        " (draining)"
                    } else {
                        ""
                    }
                ));
            }
            Phase::Close { .. } | Phase::Done => {}
        }
    }

    // ----- connecting -----

    /// Starts connects until `--connect-concurrency` are in flight.
    fn ramp(&mut self) -> Result<(), String> {
        while self.in_flight < self.args.connect_concurrency && self.started < self.args.connections
        {
            self.start_connect(false)?;
            self.started += 1;
        }
        Ok(())
    }

    fn start_connect(&mut self, publisher: bool) -> Result<(), String> {
        let mut stream = TcpStream::connect(self.addr).map_err(|e| connect_error(&e, self.addr))?;
        let entry = self.clients.vacant_entry();
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(entry.key()),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("cannot register a socket: {e}"))?;
        let (hs, request) = ClientHandshake::new(&self.request, HandshakeLimits::default());
        let tls = match &self.tls {
            Some((config, name)) => Some(Box::new(
                ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| format!("cannot start TLS: {e}"))?,
            )),
            None => None,
        };
        if publisher {
            self.ws_publisher = Some(entry.key());
        }
        entry.insert(Client {
            stream,
            tls,
            state: State::Handshake {
                hs: Box::new(hs),
                since: Instant::now(),
                connected: false,
            },
            out: request,
            writable: true,
            publisher,
            next_seq: 0,
            delivered: 0,
        });
        self.in_flight += 1;
        Ok(())
    }

    fn check_connect_timeouts(&mut self, now: Instant) -> Result<(), String> {
        let limit = self.args.connect_timeout;
        for (_, c) in self.clients.iter() {
            if let State::Handshake {
                since, connected, ..
            } = &c.state
            {
                if now.duration_since(*since) >= limit {
                    let what = if *connected {
                        "no handshake reply"
                    } else {
                        "TCP connect not complete"
                    };
                    return Err(format!(
                        "{}: {what} within {limit:?} ({} of {} connections open); the server \
                         may be overloaded or its listen backlog full (try a lower \
                         --connect-concurrency)",
                        self.addr, self.open_subs, self.args.connections
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every connection is open: start holding or publishing.
    fn connected(&mut self, now: Instant) -> Result<(), String> {
        self.connect_secs = now.duration_since(self.connect_start).as_secs_f64();
        self.progress(format_args!(
            "connected {}/{} in {:.2}s",
            self.open_subs, self.args.connections, self.connect_secs
        ));
        if let Some(s) = self.server.as_mut() {
            s.rss_connected = sys::rss_kib(s.pid)?;
            self.server_cpu_start = cpu_total(Some(s.pid));
        }
        self.cpu_run_start = cpu_total(None);
        self.run_start = now;
        self.next_progress = now + SECOND;
        match self.args.mode {
            Mode::Idle => {
                self.phase = Phase::Hold {
                    until: now + self.args.hold,
                };
            }
            Mode::Fanout => {
                self.publish_start = Instant::now();
                self.phase = Phase::Publish;
            }
        }
        Ok(())
    }

    // ----- publishing -----

    /// Sends every message that is due.
    fn publish_due(&mut self, now: Instant) -> Result<(), String> {
        while self.published < self.total {
            let due = self.due(self.published);
            if due > now {
                return Ok(());
            }
            let sent = Instant::now();
            let late = sent.saturating_duration_since(due);
            self.lateness.record(late.as_nanos() as u64);
            if late > LATE {
                self.late += 1;
            }
            let sent_ns = sent.duration_since(self.t0).as_nanos() as u64;
            payload::encode(
                &mut self.payload,
                self.d.run_id,
                self.published,
                sent_ns,
                self.args.size as usize,
            );
            if let Err(e) = self.send_payload() {
                if self.published == 0 {
                    return Err(e);
                }
                // Mid-run (the server went away?): stop publishing, still
                // drain and report what was delivered.
                self.publisher_error = Some(e);
                break;
            }
            self.published += 1;
        }
        self.stop_publishing();
        Ok(())
    }

    /// Publishing is over (done, or the publisher failed): drain.
    fn stop_publishing(&mut self) {
        let end = Instant::now();
        self.publish_end = Some(end);
        self.phase = Phase::Drain {
            until: end + self.args.drain,
        };
    }

    fn send_payload(&mut self) -> Result<(), String> {
        if let Some(p) = self.publisher.as_mut() {
            return p.send(&self.payload);
        }
        let key = self.ws_publisher.ok_or("no publisher")?;
        let Some(c) = self.clients.get_mut(key) else {
            return Err("the ws publisher's connection is gone".into());
        };
        let State::Open(conn) = &mut c.state else {
            return Err("the ws publisher is not connected".into());
        };
        conn.send_message(MessageKind::Text, &self.payload)
            .map_err(|e| format!("the ws publisher cannot send: {e}"))?;
        c.take_transmit();
        c.flush(self.poll.registry(), key)
            .map_err(|e| format!("the ws publisher's connection failed: {e}"))
    }

    /// The hold, or the publish and drain, is over: take the measurements.
    fn end_run(&mut self, now: Instant) {
        self.run_end = Some(now);
        self.cpu_run = cpu_total(None).zip(self.cpu_run_start).map(|(b, a)| b - a);
        if let Some(s) = self.server.as_mut() {
            s.rss_after = sys::rss_kib(s.pid).unwrap_or(0);
            s.cpu_run = cpu_total(Some(s.pid))
                .zip(self.server_cpu_start)
                .map(|(b, a)| b - a);
        }
    }

    // ----- events -----

    fn on_event(&mut self, ev: &MioEvent) -> Result<(), String> {
        if ev.token() == UNIX_PUB {
            return match self.publisher.as_mut() {
                Some(p) => p.flush(),
                None => Ok(()),
            };
        }
        let key = ev.token().0;
        let Bench {
            clients,
            scratch,
            events,
            d,
            poll,
            limits,
            t0,
            addr,
            ..
        } = self;
        let Some(c) = clients.get_mut(key) else {
            return Ok(());
        };
        let mut outcome = Outcome::default();
        if let State::Handshake {
            connected: false, ..
        } = c.state
        {
            if !(ev.is_writable() || ev.is_error() || ev.is_read_closed()) {
                return Ok(());
            }
            match c.check_connected() {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    if let State::Handshake { connected, .. } = &mut c.state {
                        *connected = true;
                    }
                    let _ = c.stream.set_nodelay(true);
                    if let Err(e) = c.flush(poll.registry(), key) {
                        outcome = c.gone(format!("cannot send the handshake: {e}"));
                    }
                }
                Err(e) => outcome = c.gone(connect_error(&e, *addr)),
            }
        }
        if outcome.gone.is_none() && (ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
            let mut cx = Cx {
                scratch,
                events,
                d,
                registry: poll.registry(),
                limits: *limits,
                t0: *t0,
                addr: *addr,
            };
            outcome = c.on_readable(key, &mut cx, ev.is_read_closed());
        }
        let pending = !c.out.is_empty() || c.tls.as_ref().is_some_and(|t| t.wants_write());
        if outcome.gone.is_none() && ev.is_writable() && pending {
            if let Err(e) = c.flush(poll.registry(), key) {
                outcome = c.gone(format!("write error: {e}"));
            }
        }
        if let Some(took) = outcome.opened {
            self.connect_times.record(took.as_nanos() as u64);
            self.in_flight -= 1;
            if !self.clients[key].publisher {
                self.open_subs += 1;
                self.live_subs += 1;
            }
        }
        match outcome.gone {
            Some(g) => self.on_gone(key, g),
            None => Ok(()),
        }
    }

    /// A client is gone: a connection failure is fatal (the run needs all
    /// N), a closed subscriber is counted, as expected once we closed.
    fn on_gone(&mut self, key: usize, g: Gone) -> Result<(), String> {
        let mut c = self.clients.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
        if matches!(self.phase, Phase::Close { .. } | Phase::Done) {
            return Ok(());
        }
        if g.in_handshake {
            return Err(format!(
                "{} ({} of {} connections were open)",
                g.cause, self.open_subs, self.args.connections
            ));
        }
        if c.publisher {
            let e = format!("the ws publisher's connection ended: {}", g.cause);
            return match self.phase {
                Phase::Publish if self.published > 0 => {
                    self.publisher_error = Some(e);
                    self.stop_publishing();
                    Ok(())
                }
                Phase::Drain { .. } => Ok(()),
                _ => Err(e),
            };
        }
        self.live_subs -= 1;
        self.d.delivered_live -= c.delivered;
        *self.closed.entry(g.cause).or_insert(0) += 1;
        Ok(())
    }

    /// Closes every connection with 1000 and waits (bounded) for the replies.
    fn start_close(&mut self, now: Instant) {
        self.publisher = None;
        let keys: Vec<usize> = self.clients.iter().map(|(k, _)| k).collect();
        self.phase = Phase::Close {
            until: now + CLOSE_WAIT,
        };
        for key in keys {
            let c = &mut self.clients[key];
            let ok = match &mut c.state {
                State::Open(conn) => conn.close(CloseCode::NORMAL, "bench done").is_ok(),
                State::Handshake { .. } => false,
            };
            c.take_transmit();
            if !ok || c.flush(self.poll.registry(), key).is_err() {
                let mut c = self.clients.remove(key);
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
    }

    fn results(mut self) -> Results {
        self.latency.merge(&self.d.interval);
        self.d.interval.clear();
        let publish_secs = self
            .publish_end
            .map_or(0.0, |e| e.duration_since(self.publish_start).as_secs_f64());
        let drain_secs = match (self.publish_end, self.run_end) {
            (Some(p), Some(r)) => r.saturating_duration_since(p).as_secs_f64(),
            _ => 0.0,
        };
        let publish_start_ns = self.publish_start.duration_since(self.t0).as_nanos() as u64;
        let span = self.d.last_ns.saturating_sub(publish_start_ns) as f64 / 1e9;
        let delivered_per_sec = if span > 0.0 {
            self.d.delivered as f64 / span
        } else {
            0.0
        };
        Results {
            connections: self.args.connections,
            connect_secs: self.connect_secs,
            connect_times: self.connect_times,
            run_secs: self
                .run_end
                .map_or(0.0, |e| e.duration_since(self.run_start).as_secs_f64()),
            planned: self.total,
            published: self.published,
            publish_secs,
            drain_secs,
            delivered: self.d.delivered,
            out_of_order: self.d.out_of_order,
            foreign: self.d.foreign,
            publisher_echoes: self.d.publisher_echoes,
            delivered_per_sec,
            latency: self.latency,
            lateness: self.lateness,
            late: self.late,
            publisher_error: self.publisher_error,
            closed: self.closed,
            cpu: sys::cpu_secs(None),
            cpu_run: self.cpu_run,
            server: self.server,
        }
    }
}
