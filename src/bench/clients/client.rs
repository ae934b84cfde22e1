//! One WebSocket client of the bench: its TCP (and TLS) stream, the opening
//! handshake, then a [`Connection`] in the client role; the per-subscriber
//! message accounting ([`Deliveries`]) and the error texts for a refused
//! handshake or a failed connect.

use super::*;

/// Where one client stands.
#[derive(Debug)]
pub(super) enum State {
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
pub(super) struct Client {
    pub(super) stream: TcpStream,
    /// The TLS session of a `wss://` client (boxed: plain clients pay a
    /// pointer).
    pub(super) tls: Option<Box<ClientConnection>>,
    pub(super) state: State,
    /// Plaintext bytes not yet handed on (the handshake request first): to
    /// the kernel, or to the TLS session.
    pub(super) out: Vec<u8>,
    /// Registered for WRITABLE as well as READABLE.
    pub(super) writable: bool,
    /// The `ws` publisher, not a subscriber: its own copies are not counted.
    pub(super) publisher: bool,
    /// The next sequence number expected.
    pub(super) next_seq: u64,
    /// Messages of this run received.
    pub(super) delivered: u64,
}

/// Why a client is gone.
#[derive(Debug)]
pub(super) struct Gone {
    pub(super) cause: String,
    /// It never got past the handshake (a connection failure).
    pub(super) in_handshake: bool,
}

/// What handling an event did to a client.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// The handshake completed, this long after the connect started.
    pub(super) opened: Option<Duration>,
    pub(super) gone: Option<Gone>,
}

/// Message accounting shared by every subscriber.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    pub(super) run_id: u32,
    /// Messages of this run received by subscribers.
    pub(super) delivered: u64,
    /// Of those, by subscribers still connected.
    pub(super) delivered_live: u64,
    /// Received after a later sequence number.
    pub(super) out_of_order: u64,
    /// Messages that are not this run's (other traffic on the server).
    pub(super) foreign: u64,
    /// The `ws` publisher's own copies.
    pub(super) publisher_echoes: u64,
    /// When the last one arrived (nanoseconds since the start).
    pub(super) last_ns: u64,
    /// Latencies since the last progress line (merged into the total then).
    pub(super) interval: Histogram,
}

impl Deliveries {
    pub(super) fn on_message(&mut self, c: &mut Client, data: &[u8], now_ns: u64) {
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
pub(super) struct Cx<'a> {
    pub(super) scratch: &'a mut [u8],
    pub(super) events: &'a mut Vec<Event>,
    pub(super) d: &'a mut Deliveries,
    pub(super) registry: &'a Registry,
    pub(super) limits: Limits,
    pub(super) t0: Instant,
    pub(super) addr: SocketAddr,
}

impl Client {
    /// After a connect's first readiness: `Ok(true)` once connected.
    pub(super) fn check_connected(&mut self) -> io::Result<bool> {
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
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
    pub(super) fn flush(&mut self, registry: &Registry, key: usize) -> io::Result<()> {
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
    pub(super) fn write_tls(&mut self) -> io::Result<bool> {
        match self.tls.as_mut() {
            Some(tls) => crate::server::tls::write_records(tls, &mut self.stream),
            None => Ok(true),
        }
    }

    /// Moves the connection's queued frames (pongs, close) to `out`.
    pub(super) fn take_transmit(&mut self) {
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

    pub(super) fn gone(&self, cause: String) -> Outcome {
        Outcome {
            opened: None,
            gone: Some(Gone {
                cause,
                in_handshake: matches!(self.state, State::Handshake { .. }),
            }),
        }
    }

    /// Reads until the socket is drained: the handshake reply, then frames.
    pub(super) fn on_readable(
        &mut self,
        key: usize,
        cx: &mut Cx<'_>,
        read_closed: bool,
    ) -> Outcome {
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
pub(super) fn refusal(e: &ResponseError, bytes: &[u8], addr: SocketAddr) -> String {
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

pub(super) fn connect_error(e: &io::Error, addr: SocketAddr) -> String {
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
