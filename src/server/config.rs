//! Server settings, with their documented defaults, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::auth::AuthConfig;
use super::cluster::ClusterConfig;
use super::history::memory::HistoryLimits;
use super::ops::OpsConfig;
use super::route::ChannelLimits;
use super::slow::SlowPolicy;
use super::tls::TlsFiles;
use crate::cidr::Cidr;
use crate::protocol::deflate::ServerDeflate;
use crate::protocol::{HandshakeLimits, Limits};

/// What happens to a message a WebSocket client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMessages {
    /// It goes to the sender's channels (each recipient once, the sender
    /// included), or to every connected client when the sender joined no
    /// channel (the `ws` broadcast example).
    Broadcast,
    /// It goes back to the sender only (for Autobahn).
    Echo,
    /// It is dropped.
    Ignore,
}

/// Everything the server needs to know.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// WebSocket listener. Default `0.0.0.0:8124`.
    pub ws: SocketAddr,
    /// UDP ingress, or `None` for off. Default `127.0.0.1:8125`.
    pub udp: Option<SocketAddr>,
    /// UDP senders accepted; empty means any. Default: empty.
    pub udp_allow: Vec<Cidr>,
    /// Unix stream ingress, or `None` for off. Default `/tmp/wsbroadcaster.sock`.
    pub unix: Option<PathBuf>,
    /// Permissions of the Unix socket file. Default `0o660`.
    pub unix_mode: u32,
    /// Client message policy. Default broadcast.
    pub client_messages: ClientMessages,
    /// Frame, message and fragment limits for client messages.
    pub limits: Limits,
    /// Header limits for the opening handshake.
    pub handshake_limits: HandshakeLimits,
    /// Most WebSocket connections at once; more get 503. Default 100,000
    /// (the process's open-file limit must allow it).
    pub max_connections: usize,
    /// Most bytes queued for one client before it is closed as a slow
    /// consumer (1008). Default 4 MiB.
    pub max_queued_bytes: usize,
    /// Time allowed from accept to a complete upgrade request. Default 10 s.
    pub handshake_timeout: Duration,
    /// A client silent this long gets a ping; zero disables. Default 30 s.
    pub ping_interval: Duration,
    /// A client silent this long (not even a pong) is closed; zero disables.
    /// Default 90 s.
    pub idle_timeout: Duration,
    /// How long to wait for the peer's close frame, and for it to close TCP,
    /// after our close. Default 5 s.
    pub close_timeout: Duration,
    /// How long shutdown waits for close handshakes. Default 2 s.
    pub shutdown_grace: Duration,
    /// Channel name length and channels per connection. Defaults: 64 bytes,
    /// 32 channels.
    pub channels: ChannelLimits,
    /// Send each client `{"id":"<connection id>"}` as its first text
    /// message, right after the upgrade. Default off.
    pub announce_id: bool,
    /// Read messages from standard input, one per line (`serve --stdin`).
    /// Default off.
    pub stdin: bool,
    /// Accept backlog of the TCP listeners (capped by the kernel's
    /// `net.core.somaxconn`). Default 1024.
    pub listen_backlog: i32,
    /// permessage-deflate policy (`--deflate`). Default: shared.
    pub deflate: ServerDeflate,
    /// Broadcasts smaller than this many bytes go out uncompressed even to
    /// clients that negotiated deflate (compressing them gains nothing).
    /// Default 64.
    pub deflate_min_size: usize,
    /// MessagePack-RPC listener, or `None` for off. Default off.
    pub rpc: Option<SocketAddr>,
    /// Who may connect and join channels: allowed origins and the channel
    /// token secret. Default: any origin, channels without tokens.
    pub auth: AuthConfig,
    /// TLS on the WebSocket listener (`wss://`): certificate chain and key
    /// files, reloaded on SIGHUP. Default `None` (plain `ws://`).
    pub tls: Option<TlsFiles>,
    /// The control socket and the admin HTTP endpoint. Default: both off.
    pub ops: OpsConfig,
    /// Cluster mode through Redis pub/sub (`--redis`), or `None` for a
    /// single node. Default off.
    pub cluster: Option<ClusterConfig>,
    /// Per-stream history for recovery (`--history`, `--history-memory`).
    /// Default: off.
    pub history: HistoryLimits,
    /// Slow-consumer policy of channels not named in `channel_policies`
    /// (and of messages to everyone). Default: close.
    pub slow_consumer: SlowPolicy,
    /// Slow-consumer policy per channel (`--channel-policy NAME=POLICY`).
    pub channel_policies: Vec<(Box<str>, SlowPolicy)>,
    /// When broadcasts queued for open WebSocket connections are written
    /// (`--write-delay`). Handshake replies, pongs, closes, catch-ups and
    /// the RPC, admin and control connections are never delayed.
    pub write_delay: WriteDelay,
}

/// When broadcasts queued for open WebSocket connections are written
/// (`--write-delay`; docs/architecture.md, docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteDelay {
    /// Held only while the loop is busy fanning out with small writes:
    /// once a pass over the connections has written many of them (a large
    /// fan-out) with fewer than [`WriteDelay::AUTO_FRAMES`] frames per write
    /// on average, broadcasts queued before that pass's own duration has
    /// passed again wait for it (at most [`WriteDelay::AUTO_MAX`]) and are
    /// then written together, so the loop spends at most about half its
    /// time in such writes and messages that come faster than a fan-out
    /// takes share one write per connection. A server that is not busy, or
    /// whose writes already carry several frames each (it batches by itself
    /// at saturation, and waiting would only cut its throughput), writes at
    /// the end of every loop turn, as with `Fixed(0)`.
    Auto,
    /// A fixed coalescing window: broadcasts are written at most this long
    /// after the first of them was queued, all connections together. Zero
    /// writes at the end of every loop turn (the default).
    Fixed(Duration),
}

impl WriteDelay {
    /// The longest hold `Auto` makes, however long a fan-out pass took.
    pub const AUTO_MAX: Duration = Duration::from_millis(100);
    /// `Auto` holds only after a pass whose writes carried fewer frames
    /// than this on average. While writes carry few frames, the fixed cost
    /// of a write (the system call, a TCP segment, the receiver's wake-up:
    /// 8-10 µs on loopback) dominates, and merging writes saves CPU; a loop
    /// whose writes already carry several frames is batching by itself at
    /// saturation, and holding it half the time would cut its capacity (4
    /// still let it hold every other pass at 10,000 clients × 20 msg/s;
    /// docs/benchmarks.md).
    pub const AUTO_FRAMES: usize = 8;

    /// When broadcasts queued `now` are due, if they are to be held at all,
    /// given the last large fan-out pass.
    pub(crate) fn due(self, now: Instant, last_fanout: Option<Fanout>) -> Option<Instant> {
        match self {
            WriteDelay::Fixed(d) if d.is_zero() => None,
            WriteDelay::Fixed(d) => Some(now + d),
            WriteDelay::Auto => {
                let f = last_fanout.filter(|f| f.frames_per_write < WriteDelay::AUTO_FRAMES)?;
                let due = f.end + f.took.min(WriteDelay::AUTO_MAX);
                (now < due).then_some(due)
            }
        }
    }

    /// A meter for a flush pass over `dirty` connections, when this mode
    /// reads fan-outs (`Auto` only: the other modes measure nothing) and
    /// the pass can be large (`dirty` at least `large`).
    pub(crate) fn meter(self, dirty: usize, large: usize) -> Option<FanoutMeter> {
        (self == WriteDelay::Auto && dirty >= large).then(|| FanoutMeter {
            started: Instant::now(),
            large: large.max(1),
            writes: 0,
            frames: 0,
        })
    }
}

/// A large fan-out pass of the loop (one write to each of many
/// connections), as `--write-delay auto` sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fanout {
    /// When the pass ended.
    pub(crate) end: Instant,
    /// How long it took.
    pub(crate) took: Duration,
    /// Frames per write, on average (rounded down).
    pub(crate) frames_per_write: usize,
}

/// Measures one flush pass for `--write-delay auto` ([`WriteDelay::meter`]):
/// when it started, and the frames its WebSocket writes carried.
#[derive(Debug)]
pub(crate) struct FanoutMeter {
    started: Instant,
    /// Writes that make the pass a large fan-out (at least 1).
    large: usize,
    writes: usize,
    frames: usize,
}

impl FanoutMeter {
    /// One WebSocket write carrying `frames` queued frames.
    pub(crate) fn count(&mut self, frames: usize) {
        self.writes += 1;
        self.frames += frames;
    }

    /// The pass, ending now, if it wrote enough connections to be a large
    /// fan-out.
    pub(crate) fn finish(self) -> Option<Fanout> {
        (self.writes >= self.large).then(|| {
            let end = Instant::now();
            Fanout {
                end,
                took: end - self.started,
                frames_per_write: self.frames / self.writes,
            }
        })
    }
}

impl ServerConfig {
    /// The slow-consumer policy of a stream (a channel name, or `*`).
    pub(crate) fn policy_for(&self, stream: &str) -> SlowPolicy {
        self.channel_policies
            .iter()
            .find(|(c, _)| **c == *stream)
            .map_or(self.slow_consumer, |(_, p)| *p)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ws: "0.0.0.0:8124".parse().expect("valid address"),
            udp: Some("127.0.0.1:8125".parse().expect("valid address")),
            udp_allow: Vec::new(),
            unix: Some(PathBuf::from("/tmp/wsbroadcaster.sock")),
            unix_mode: 0o660,
            client_messages: ClientMessages::Broadcast,
            limits: Limits::default(),
            handshake_limits: HandshakeLimits::default(),
            max_connections: 100_000,
            max_queued_bytes: 4 << 20,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            close_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(2),
            channels: ChannelLimits::default(),
            announce_id: false,
            stdin: false,
            listen_backlog: 1024,
            deflate: ServerDeflate::Shared,
            deflate_min_size: 64,
            rpc: None,
            auth: AuthConfig::default(),
            tls: None,
            ops: OpsConfig::default(),
            cluster: None,
            history: HistoryLimits::default(),
            slow_consumer: SlowPolicy::Close,
            channel_policies: Vec::new(),
            write_delay: WriteDelay::Fixed(Duration::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn fanout(end: Instant, took: Duration, frames_per_write: usize) -> Fanout {
        Fanout {
            end,
            took,
            frames_per_write,
        }
    }

    #[test]
    fn zero_never_holds_and_a_fixed_window_always_does() {
        let now = Instant::now();
        let busy = Some(fanout(now, 50 * MS, 1));
        assert_eq!(WriteDelay::Fixed(Duration::ZERO).due(now, busy), None);
        assert_eq!(
            WriteDelay::Fixed(20 * MS).due(now, None),
            Some(now + 20 * MS)
        );
        assert_eq!(
            WriteDelay::Fixed(20 * MS).due(now, busy),
            Some(now + 20 * MS)
        );
    }

    #[test]
    fn auto_holds_only_within_one_fan_out_duration_of_the_last_one() {
        let end = Instant::now();
        let took = 40 * MS;
        let auto = WriteDelay::Auto;
        // No large fan-out yet: written at once.
        assert_eq!(auto.due(end, None), None);
        // Right after one, and until as long as it took has passed again.
        let last = Some(fanout(end, took, 1));
        assert_eq!(auto.due(end, last), Some(end + took));
        assert_eq!(auto.due(end + 39 * MS, last), Some(end + took));
        // After that the loop is not busy: no hold.
        assert_eq!(auto.due(end + took, last), None);
        assert_eq!(auto.due(end + 500 * MS, last), None);
    }

    #[test]
    fn auto_does_not_hold_when_writes_already_carry_several_frames() {
        let end = Instant::now();
        let took = 40 * MS;
        let small = Some(fanout(end, took, WriteDelay::AUTO_FRAMES - 1));
        let batched = Some(fanout(end, took, WriteDelay::AUTO_FRAMES));
        assert_eq!(WriteDelay::Auto.due(end, small), Some(end + took));
        assert_eq!(WriteDelay::Auto.due(end, batched), None);
    }

    #[test]
    fn only_auto_measures_a_pass_and_only_a_large_one() {
        for fixed in [Duration::ZERO, 20 * MS] {
            assert!(WriteDelay::Fixed(fixed).meter(1000, 256).is_none());
        }
        assert!(WriteDelay::Auto.meter(255, 256).is_none());
        // A pass that started large but wrote fewer connections (the rest
        // were held or gone) is not a fan-out.
        let mut m = WriteDelay::Auto.meter(256, 256).expect("auto measures");
        for _ in 0..255 {
            m.count(1);
        }
        assert!(m.finish().is_none());
        let before = Instant::now();
        let mut m = WriteDelay::Auto.meter(300, 256).expect("auto measures");
        for i in 0..300 {
            m.count(if i % 2 == 0 { 1 } else { 4 });
        }
        let f = m.finish().expect("a large fan-out");
        // 150 x 1 + 150 x 4 frames over 300 writes, rounded down.
        assert_eq!(f.frames_per_write, 2);
        assert!(f.end >= before && f.took <= f.end - before);
    }

    #[test]
    fn auto_holds_at_most_auto_max() {
        let end = Instant::now();
        let slow = Some(fanout(end, 3 * WriteDelay::AUTO_MAX, 1));
        assert_eq!(
            WriteDelay::Auto.due(end, slow),
            Some(end + WriteDelay::AUTO_MAX)
        );
        assert_eq!(WriteDelay::Auto.due(end + WriteDelay::AUTO_MAX, slow), None);
    }
}
