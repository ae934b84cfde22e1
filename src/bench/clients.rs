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
//!
//! Files: this one is the loop ([`Bench`]: phases, events, closing);
//! `client.rs` one client's state machine and the delivery accounting,
//! `connect.rs` and `publish.rs` the connect and publish phases,
//! `results.rs` the figures a run ends with.

mod client;
mod connect;
mod publish;
mod results;

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

use client::{Client, Cx, Deliveries, Gone, Outcome, State, connect_error};
pub(crate) use results::{Results, ServerFigures};

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
}
