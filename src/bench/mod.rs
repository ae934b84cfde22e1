//! `wsbroadcaster bench`: the project's load tool, to point at a deployment.
//!
//! One mio loop, one thread, for every client: N WebSocket subscribers are
//! connected (non-blocking connects, a bounded number in flight, each doing
//! the [`ClientHandshake`](crate::protocol::handshake::client::ClientHandshake)
//! then a [`Connection`](crate::protocol::Connection) in the client role),
//! then either
//!
//! - `idle`: held open for `--hold`, measuring connect time and, with
//!   `--server-pid`, the server's resident memory per connection; or
//! - `fanout`: a publisher sends `--rate` messages per second of `--size`
//!   bytes for `--duration` over UDP, the Unix socket or one more WebSocket
//!   connection. Every message carries its sequence number and send time,
//!   so each subscriber counts loss and reordering and the loop records the
//!   delivery latency in a log-linear histogram.
//!
//! Files: `clients.rs` is the loop (with `clients/`: one client's state
//! machine, the connect and publish phases, the results),
//! `publisher.rs` the UDP/Unix publishers, `payload.rs` the message format,
//! `histogram.rs` the latency histogram, `report.rs` the summary and JSON
//! line, `sys.rs` the /proc and rlimit helpers. Usage and what each figure
//! means: docs/benchmarks.md.

mod clients;
mod histogram;
mod payload;
mod publisher;
mod report;
mod sys;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::units::{parse_duration, parse_size};

/// What the bench does once its connections are open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Publish at a fixed rate and measure delivery, loss and latency.
    Fanout,
    /// Hold the connections open and measure connect time and server memory.
    Idle,
}

/// Where the bench's publisher sends its messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishTarget {
    /// One datagram per message to the server's UDP ingress.
    Udp(SocketAddr),
    /// One line per message on the server's Unix socket.
    Unix(PathBuf),
    /// One more WebSocket connection that sends each message (the server
    /// must run with `--client-messages broadcast`, its default).
    Ws,
}

impl std::fmt::Display for PublishTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishTarget::Udp(a) => write!(f, "udp:{a}"),
            PublishTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            PublishTarget::Ws => write!(f, "ws"),
        }
    }
}

fn parse_publish(s: &str) -> Result<PublishTarget, String> {
    if s == "ws" {
        return Ok(PublishTarget::Ws);
    }
    if let Some(a) = s.strip_prefix("udp:") {
        return a
            .parse()
            .map(PublishTarget::Udp)
            .map_err(|_| format!("{a:?} is not an address (example: udp:127.0.0.1:8125)"));
    }
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() {
            return Err("unix: needs a path (example: unix:/tmp/wsbroadcaster.sock)".into());
        }
        return Ok(PublishTarget::Unix(PathBuf::from(p)));
    }
    Err(format!(
        "{s:?}: expected udp:ADDR, unix:PATH or ws (examples: udp:127.0.0.1:8125, \
         unix:/tmp/wsbroadcaster.sock)"
    ))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000_000.0 => Ok(r),
        _ => Err(format!(
            "{s:?}: expected messages per second, more than 0 (e.g. 100 or 0.5)"
        )),
    }
}

/// `bench` flags. Durations take units (5s, 500ms, 2m); sizes too (128, 4KiB).
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The server's WebSocket URL (ws:// or wss://).
    #[arg(long, default_value = "ws://127.0.0.1:8124/")]
    pub url: String,
    /// WebSocket subscribers to open (a `ws` publisher is one more).
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub connections: usize,
    /// `fanout`: publish and measure delivery; `idle`: hold connections and
    /// measure memory.
    #[arg(long, value_enum, default_value = "fanout")]
    pub mode: Mode,
    /// Publisher: udp:ADDR, unix:PATH or ws (fanout mode).
    #[arg(long, default_value = "udp:127.0.0.1:8125", value_parser = parse_publish)]
    pub publish: PublishTarget,
    /// Messages per second (fanout mode; fractions allowed).
    #[arg(long, default_value = "100", value_parser = parse_rate)]
    pub rate: f64,
    /// Bytes per message (at least 52: sequence number and send time).
    #[arg(long, default_value = "128", value_parser = parse_size)]
    pub size: u64,
    /// How long to publish (fanout mode).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// After publishing, how long to wait for late deliveries (fanout mode).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// How long to hold the connections open (idle mode).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub hold: Duration,
    /// The server's process id, to report its memory (and CPU time) before
    /// and after; the server must run on this machine.
    #[arg(long = "server-pid")]
    pub server_pid: Option<u32>,
    /// Most connections being opened at once. (More than the server's
    /// listen backlog can overflow it: dropped SYNs are retried after 1 s.)
    #[arg(long = "connect-concurrency", default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Time allowed for one connection's TCP connect and handshake.
    #[arg(long = "connect-timeout", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Also print the results as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Trusted certificates for a wss:// --url (PEM; default:
    /// $SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt).
    #[arg(long = "tls-ca", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Offer permessage-deflate on every connection (as browsers do).
    #[arg(long)]
    pub deflate: bool,
    /// No progress lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

impl BenchArgs {
    fn check(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.connect_concurrency == 0 {
            return Err("--connect-concurrency must be at least 1".into());
        }
        if self.mode == Mode::Fanout {
            if self.size < payload::MIN_SIZE as u64 {
                return Err(format!(
                    "--size {} is too small: each message carries a sequence number and a \
                     timestamp, so it needs at least {} bytes",
                    self.size,
                    payload::MIN_SIZE
                ));
            }
            if self.size > 64 << 20 {
                return Err("--size is larger than 64 MiB".into());
            }
            if matches!(self.publish, PublishTarget::Udp(_)) && self.size > 65_507 {
                return Err(format!(
                    "--size {} does not fit in one UDP datagram (at most 65507 bytes); \
                     use --publish unix:PATH or ws",
                    self.size
                ));
            }
            if self.duration.is_zero() {
                return Err("--duration must be more than 0".into());
            }
            let total = self.rate * self.duration.as_secs_f64();
            if total < 1.0 {
                return Err(format!(
                    "--rate {} for --duration {:?} publishes no message",
                    self.rate, self.duration
                ));
            }
        }
        Ok(())
    }
}

/// Runs the bench: connects, publishes or holds, prints the report.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    args.check()?;
    let url = crate::client::WsUrl::parse(&args.url)?;
    let addr = resolve(&url.host, url.port)?;
    let extra = u64::from(args.mode == Mode::Fanout && args.publish == PublishTarget::Ws);
    let conns = args.connections as u64 + extra;
    // Sockets, plus stdio, the poll and a publisher, plus a margin.
    sys::ensure_open_files(conns + 64)?;
    // Every connection to one address:port needs a local port of its own.
    if let Some(ports) = sys::ephemeral_ports().filter(|&p| conns > p) {
        return Err(format!(
            "{conns} connections to {addr} need {conns} local ports but \
             net.ipv4.ip_local_port_range allows {ports}; widen it (sysctl) or use \
             fewer --connections"
        ));
    }
    let results = clients::Bench::new(args, addr, &url)?.run()?;
    report::print(args, &results);
    match results.publisher_error {
        Some(e) => Err(format!("the run is incomplete: {e}")),
        None => Ok(()),
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{host}:{port} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchArgs, String> {
        let argv = std::iter::once("bench").chain(argv.iter().copied());
        let w = Wrap::try_parse_from(argv).map_err(|e| e.to_string())?;
        w.args.check()?;
        Ok(w.args)
    }

    #[test]
    fn flags() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.mode, Mode::Fanout);
        assert_eq!(
            a.publish,
            PublishTarget::Udp("127.0.0.1:8125".parse().unwrap())
        );
        assert_eq!((a.connections, a.size), (1000, 128));
        let a = parse(&[
            "-n",
            "10",
            "--publish",
            "unix:/tmp/x.sock",
            "--rate",
            "0.5",
            "--duration",
            "4s",
        ])
        .unwrap();
        assert_eq!(a.publish, PublishTarget::Unix("/tmp/x.sock".into()));
        assert_eq!(a.publish.to_string(), "unix:/tmp/x.sock");
        assert_eq!(
            parse(&["--publish", "ws"]).unwrap().publish,
            PublishTarget::Ws
        );
        assert!(parse(&["--publish", "tcp:1.2.3.4:5"]).is_err());
        assert!(parse(&["--publish", "udp:nowhere"]).is_err());
        assert!(parse(&["--size", "10"]).is_err());
        assert!(parse(&["--size", "100KiB"]).is_err(), "too big for UDP");
        assert!(parse(&["--size", "100KiB", "--publish", "ws"]).is_ok());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--rate", "0.1", "--duration", "5s"]).is_err());
        assert!(parse(&["-n", "0"]).is_err());
        let a = parse(&["--mode", "idle", "--hold", "30s", "--server-pid", "42"]).unwrap();
        assert_eq!(
            (a.mode, a.hold, a.server_pid),
            (Mode::Idle, Duration::from_secs(30), Some(42))
        );
    }
}
