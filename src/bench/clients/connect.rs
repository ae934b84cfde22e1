//! The connect phase: ramping connects up to `--connect-concurrency`, the
//! connect deadline, and the switch to holding or publishing once every
//! connection is open.

use super::*;

impl Bench<'_> {
    /// Starts connects until `--connect-concurrency` are in flight.
    pub(super) fn ramp(&mut self) -> Result<(), String> {
        while self.in_flight < self.args.connect_concurrency && self.started < self.args.connections
        {
            self.start_connect(false)?;
            self.started += 1;
        }
        Ok(())
    }

    pub(super) fn start_connect(&mut self, publisher: bool) -> Result<(), String> {
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

    pub(super) fn check_connect_timeouts(&mut self, now: Instant) -> Result<(), String> {
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
    pub(super) fn connected(&mut self, now: Instant) -> Result<(), String> {
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
}
