//! `serve`: its flags (this file), their conversion into a
//! [`ServerConfig`](crate::server::ServerConfig) (`config`), and running the
//! server (`run`).

mod config;
mod run;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::cidr::Cidr;
use crate::units::{parse_duration, parse_size};

pub(super) use run::serve;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeflateArg {
    /// Decline permessage-deflate.
    Off,
    /// No context takeover either way: a broadcast is compressed once for
    /// all clients, and no connection keeps compression memory.
    Shared,
    /// Context takeover where the client allows it: better ratios, a
    /// compressor per connection, per-recipient compression.
    PerConnection,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ClientMessagesArg {
    Broadcast,
    Echo,
    Ignore,
}

/// `serve` flags. Sizes take units (64KiB, 16MiB); durations too (30s, 500ms; 0 disables).
/// Every flag is also a `--config` file key (its long name) and a
/// `WSBROADCASTER_*` variable, derived by `config_file` from this definition:
/// a new flag needs nothing more.
#[derive(Parser, Debug)]
pub(super) struct ServeArgs {
    /// Read settings from this TOML file: each key is a flag's long name
    /// (`max-message = "2MiB"`). Flags and WSBROADCASTER_* variables override
    /// it. See docs/deployment.md.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// WebSocket listener address.
    #[arg(long, default_value = "0.0.0.0:8124")]
    ws: SocketAddr,
    /// UDP ingress address, or `off`. Loopback by default: opening it to the
    /// network is an explicit choice.
    #[arg(long, default_value = "127.0.0.1:8125")]
    udp: String,
    /// Accept UDP datagrams only from this range (repeatable; default: any).
    #[arg(long = "udp-allow", value_name = "CIDR")]
    udp_allow: Vec<Cidr>,
    /// Unix stream ingress path, or `off`.
    #[arg(long, default_value = "/tmp/wsbroadcaster.sock")]
    unix: String,
    /// Permissions of the Unix socket file (octal).
    #[arg(long = "unix-mode", default_value = "660")]
    unix_mode: String,
    /// What happens to messages clients send.
    #[arg(long = "client-messages", value_enum, default_value = "broadcast")]
    client_messages: ClientMessagesArg,
    /// Largest message a client may send (and largest UDP/Unix message).
    #[arg(long = "max-message", default_value = "1MiB", value_parser = parse_size)]
    max_message: u64,
    /// Largest frame a client may send.
    #[arg(long = "max-frame", default_value = "1MiB", value_parser = parse_size)]
    max_frame: u64,
    /// Most fragments in one client message.
    #[arg(long = "max-fragments", default_value_t = 4096)]
    max_fragments: u32,
    /// Largest HTTP request head (upgrade request).
    #[arg(long = "max-header-bytes", default_value = "8KiB", value_parser = parse_size)]
    max_header_bytes: u64,
    /// Most WebSocket connections at once; more get 503.
    #[arg(long = "max-connections", default_value_t = 100_000)]
    max_connections: usize,
    /// Most bytes queued for one client; past it the client is closed with 1008.
    #[arg(long = "max-queued-bytes", default_value = "4MiB", value_parser = parse_size)]
    max_queued_bytes: u64,
    /// Time allowed for the upgrade request.
    #[arg(long = "handshake-timeout", default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Ping a client silent this long (0: never).
    #[arg(long = "ping-interval", default_value = "30s", value_parser = parse_duration)]
    ping_interval: Duration,
    /// Close a client silent this long, pongs included (0: never).
    #[arg(long = "idle-timeout", default_value = "90s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Most channels one client may join (`?channel=a&channel=b`); more get 400.
    #[arg(long = "max-channels-per-connection", default_value_t = 32)]
    max_channels_per_connection: usize,
    /// Longest channel name in bytes (names are [A-Za-z0-9_.-]).
    #[arg(long = "max-channel-name", default_value_t = 64)]
    max_channel_name: usize,
    /// Send each client `{"id":"<connection id>"}` as its first message.
    #[arg(long = "announce-id")]
    announce_id: bool,
    /// Publish every stdin line (`tail -f app.log | wsbroadcaster serve --stdin`).
    #[arg(long)]
    stdin: bool,
    /// MessagePack-RPC listener address (e.g. 127.0.0.1:18800), or `off`.
    #[arg(long, default_value = "off")]
    rpc: String,
    /// Accept backlog of the WebSocket and RPC listeners (the kernel caps it
    /// at net.core.somaxconn).
    #[arg(long = "listen-backlog", default_value_t = 1024)]
    listen_backlog: i32,
    /// permessage-deflate (RFC 7692) policy.
    #[arg(long, value_enum, default_value = "shared")]
    deflate: DeflateArg,
    /// Broadcasts smaller than this go out uncompressed.
    #[arg(long = "deflate-min-size", default_value = "64", value_parser = parse_size)]
    deflate_min_size: u64,
    /// Serve wss:// on the WebSocket listener with this certificate chain
    /// (PEM, leaf first); needs --tls-key. Reloaded on SIGHUP.
    #[arg(long = "tls-cert", value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, RSA or EC); needs --tls-cert.
    #[arg(long = "tls-key", value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Cluster mode: act as one with every node on this Redis server
    /// (redis://HOST:PORT[/DB]; docs/cluster.md). Off: a single node, no
    /// Redis needed.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Prefix of the Redis channel names (PREFIX:all, PREFIX:ch:NAME, ...).
    #[arg(long = "redis-prefix", default_value = "wsbroadcaster")]
    redis_prefix: String,
    /// Also deliver what socket.io emitters publish (KEY#/#... channels,
    /// MessagePack packets) as JSON text messages. Needs --redis (without
    /// it, this and the other cluster flags have no effect).
    #[arg(long = "socketio-emitter")]
    socketio_emitter: bool,
    /// The socket.io emitters' key (their `key` option).
    #[arg(long = "socketio-key", default_value = "socket.io")]
    socketio_key: String,
    /// How often each node publishes a heartbeat on Redis.
    #[arg(long = "cluster-heartbeat", default_value = "1s", value_parser = parse_duration)]
    cluster_heartbeat: Duration,
    /// Resubscribe when none of our heartbeats came back for this long.
    #[arg(long = "cluster-stall-timeout", default_value = "3s", value_parser = parse_duration)]
    cluster_stall_timeout: Duration,
    /// Most message bytes waiting for Redis (more reach local clients
    /// only), and most received from Redis waiting for the event loop
    /// (then the node stops reading Redis).
    #[arg(long = "cluster-buffer", default_value = "16MiB", value_parser = parse_size)]
    cluster_buffer: u64,
    /// Share history and offsets between nodes through Redis: the default
    /// whenever --redis and --history are both on (this flag only says so).
    /// One sequencer per stream in Redis numbers every message to everyone
    /// or to channels, each node delivers them in that order when they come
    /// back, and what a node's history cannot cover is replayed from Redis,
    /// so a client can recover on any node (docs/recovery.md, "Across nodes").
    #[arg(long = "redis-history", conflicts_with = "local_history")]
    redis_history: bool,
    /// With --redis and --history: keep history per node instead (each node
    /// delivers its own publishes at once, also during a Redis outage; a
    /// client that comes back to another node is told `reset: epoch`).
    #[arg(long = "local-history")]
    local_history: bool,
    /// With --redis-history: a reconnecting client whose catch-up this
    /// node's history cannot cover is answered from Redis; with no answer
    /// within this time it is told `reset: unavailable`.
    #[arg(long = "redis-history-timeout", default_value = "2s", value_parser = parse_duration)]
    redis_history_timeout: Duration,
    /// Messages kept per channel (and for messages to everyone) so clients
    /// that opt in with `?recover=1` can catch up after a reconnect (0: off).
    /// See docs/recovery.md.
    #[arg(long, default_value_t = 0)]
    history: usize,
    /// Memory charged to the history of all channels together; the oldest
    /// messages go first.
    #[arg(long = "history-memory", default_value = "64MiB", value_parser = parse_size)]
    history_memory: u64,
    /// Messages older than this are never replayed (0: no time bound).
    #[arg(long = "history-max-age", default_value = "0", value_parser = parse_duration)]
    history_max_age: Duration,
    /// What a client that falls behind gets on channels without their own
    /// --channel-policy (and for messages to everyone): close (1008 over
    /// --max-queued-bytes), drop-oldest, keep-latest.
    #[arg(long = "slow-consumer", default_value = "close")]
    slow_consumer: crate::server::SlowPolicy,
    /// A channel's slow-consumer policy, NAME=POLICY (repeatable), e.g.
    /// --channel-policy ticker=keep-latest.
    #[arg(long = "channel-policy", value_name = "NAME=POLICY", value_parser = parse_channel_policy)]
    channel_policy: Vec<(String, crate::server::SlowPolicy)>,
    /// When to write broadcasts to clients: `0` (at the end of every loop
    /// turn), a fixed coalescing window such as `50ms` (at most 1s: several
    /// messages per write, for up to that much more latency), or `auto`
    /// (hold them only right after a large fan-out of small writes, for as
    /// long as it took, at most 100ms: at most about half the time goes to
    /// such writes).
    #[arg(long = "write-delay", default_value = "0", value_parser = parse_write_delay)]
    write_delay: crate::server::WriteDelay,
    /// Log level: error, warn, info, debug, trace (default: $RUST_LOG, else info).
    #[arg(long = "log-level")]
    log_level: Option<String>,
    /// Browser origin allowed to connect (repeatable; default: any). Others
    /// get 403 before the upgrade. `https://example.com`, `https://*.example.com`,
    /// `null`, or `*`.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origin: Vec<crate::server::OriginPattern>,
    /// File holding the secret channel tokens are signed with (HMAC-SHA256);
    /// with it, joining a channel needs `token=` (docs/operations.md).
    #[arg(long = "channel-secret-file", value_name = "PATH")]
    channel_secret_file: Option<PathBuf>,
    /// Admin HTTP endpoint (GET /metrics, /stats, /connections; POST
    /// /publish), e.g. 127.0.0.1:9090, or `off`. No authentication: keep it
    /// on loopback.
    #[arg(long, default_value = "off")]
    admin: String,
    /// Control socket path (stats, connections, kick, publish, events), or
    /// `off`.
    #[arg(long, default_value = "off")]
    control: String,
    /// Permissions of the control socket file (octal).
    #[arg(long = "control-mode", default_value = "600")]
    control_mode: String,
    /// Most admin connections, and most control connections, at once.
    #[arg(long = "ops-max-connections", default_value_t = 64)]
    ops_max_connections: usize,
    /// Most bytes of replies or events waiting for one control-socket reader;
    /// an events subscriber past it loses events (counted, and told).
    #[arg(long = "ops-max-queued", default_value = "1MiB", value_parser = parse_size)]
    ops_max_queued: u64,
    /// Time an admin connection has from accept to its response.
    #[arg(long = "admin-timeout", default_value = "10s", value_parser = parse_duration)]
    admin_timeout: Duration,
    /// Channels listed by name in stats and /metrics (the largest ones).
    #[arg(long = "stats-channels", default_value_t = 100)]
    stats_channels: usize,
}

/// Longest `--write-delay`: past it the window is a stall, not a batching aid.
const MAX_WRITE_DELAY: Duration = Duration::from_secs(1);

fn parse_write_delay(v: &str) -> Result<crate::server::WriteDelay, String> {
    if v == "auto" {
        return Ok(crate::server::WriteDelay::Auto);
    }
    let d = parse_duration(v).map_err(|e| format!("{e} (or `auto`)"))?;
    if d > MAX_WRITE_DELAY {
        return Err(format!(
            "at most {}ms (got {}ms)",
            MAX_WRITE_DELAY.as_millis(),
            d.as_millis()
        ));
    }
    Ok(crate::server::WriteDelay::Fixed(d))
}

fn parse_channel_policy(v: &str) -> Result<(String, crate::server::SlowPolicy), String> {
    let (name, policy) = v
        .split_once('=')
        .ok_or_else(|| format!("{v:?}: expected NAME=POLICY, e.g. ticker=keep-latest"))?;
    let channel_name = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if name != "*" && !channel_name(name) {
        return Err(format!(
            "{name:?} is not a channel name ([A-Za-z0-9_.-], or * for everyone)"
        ));
    }
    Ok((name.to_owned(), policy.parse()?))
}
