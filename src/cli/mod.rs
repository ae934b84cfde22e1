//! The command line: `serve`, `client`, `send`, `autobahn-client`. Thin:
//! parsing and wiring only; the logic lives in the library.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::cidr::Cidr;
use crate::client::{BlockingClient, ClientError};
use crate::protocol::{CloseCode, Event, Limits, MessageKind};
use crate::server::{ClientMessages, ClusterConfig, Server, ServerConfig, valid_redis_prefix};
use crate::units::{parse_duration, parse_size};

/// A small, fast WebSocket broadcast server: push a message over UDP or a
/// Unix socket and every connected WebSocket client gets it.
#[derive(Parser, Debug)]
#[command(name = "wsbroadcaster", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the broadcast server.
    Serve(ServeArgs),
    /// Check a `serve --config` file and print the settings `serve` would
    /// run with (file, then WSBROADCASTER_* variables, over the defaults).
    CheckConfig {
        /// The TOML file.
        path: PathBuf,
    },
    /// Connect to a server: stdin lines become text messages, received
    /// messages are printed one per line.
    Client {
        /// ws://host:port/path or wss://host:port/path
        url: String,
        /// Trusted certificates for wss:// (PEM; default: $SSL_CERT_FILE,
        /// else /etc/ssl/certs/ca-certificates.crt).
        #[arg(long = "tls-ca", value_name = "PATH")]
        tls_ca: Option<PathBuf>,
    },
    /// Publish a message over UDP or the Unix socket (from the argument, or
    /// one message per stdin line).
    Send {
        /// UDP ingress address (the default, 127.0.0.1:8125).
        #[arg(long, conflicts_with = "unix")]
        udp: Option<SocketAddr>,
        /// Unix socket path.
        #[arg(long)]
        unix: Option<PathBuf>,
        /// The message; without it, every stdin line is one message.
        message: Option<String>,
    },
    /// Run the Autobahn testsuite's client cases against a fuzzingserver
    /// (reads AUTOBAHN_URL and AUTOBAHN_AGENT from the environment).
    AutobahnClient {
        /// The fuzzingserver (default: $AUTOBAHN_URL or ws://127.0.0.1:9001).
        #[arg(long)]
        url: Option<String>,
        /// Agent name in the report (default: $AUTOBAHN_AGENT or wsbroadcaster).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Load-test a server: open N WebSocket connections, then publish at a
    /// fixed rate over UDP, the Unix socket or WebSocket and report delivered
    /// messages/s, loss and latency percentiles (`--mode fanout`), or hold
    /// them and report connect time and the server's memory per connection
    /// (`--mode idle --server-pid PID`).
    Bench(crate::bench::BenchArgs),
}

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
struct ServeArgs {
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

fn off_or<T: std::str::FromStr>(v: &str, what: &str) -> Result<Option<T>, String> {
    if v == "off" {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| format!("--{what} {v:?}: expected an address or `off`"))
}

impl ServeArgs {
    fn config(&self) -> Result<ServerConfig, String> {
        let unix_mode = u32::from_str_radix(&self.unix_mode, 8)
            .map_err(|_| format!("--unix-mode {:?}: expected octal, e.g. 660", self.unix_mode))?;
        let usize_of =
            |v: u64, what: &str| usize::try_from(v).map_err(|_| format!("--{what} is too large"));
        Ok(ServerConfig {
            ws: self.ws,
            udp: off_or(&self.udp, "udp")?,
            udp_allow: self.udp_allow.clone(),
            unix: if self.unix == "off" {
                None
            } else {
                Some(PathBuf::from(&self.unix))
            },
            unix_mode,
            client_messages: match self.client_messages {
                ClientMessagesArg::Broadcast => ClientMessages::Broadcast,
                ClientMessagesArg::Echo => ClientMessages::Echo,
                ClientMessagesArg::Ignore => ClientMessages::Ignore,
            },
            limits: Limits {
                max_frame: self.max_frame,
                max_message: usize_of(self.max_message, "max-message")?,
                max_fragments: self.max_fragments,
            },
            handshake_limits: crate::protocol::HandshakeLimits {
                max_header_bytes: usize_of(self.max_header_bytes, "max-header-bytes")?,
                ..Default::default()
            },
            max_connections: self.max_connections,
            max_queued_bytes: usize_of(self.max_queued_bytes, "max-queued-bytes")?,
            handshake_timeout: self.handshake_timeout,
            ping_interval: self.ping_interval,
            idle_timeout: self.idle_timeout,
            channels: crate::server::ChannelLimits {
                max_name_bytes: self.max_channel_name,
                max_per_connection: self.max_channels_per_connection,
            },
            announce_id: self.announce_id,
            stdin: self.stdin,
            listen_backlog: self.listen_backlog,
            deflate: match self.deflate {
                DeflateArg::Off => crate::protocol::deflate::ServerDeflate::Off,
                DeflateArg::Shared => crate::protocol::deflate::ServerDeflate::Shared,
                DeflateArg::PerConnection => crate::protocol::deflate::ServerDeflate::PerConnection,
            },
            deflate_min_size: usize_of(self.deflate_min_size, "deflate-min-size")?,
            rpc: off_or(&self.rpc, "rpc")?,
            auth: self.auth()?,
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(crate::server::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            ops: crate::server::OpsConfig {
                admin: off_or(&self.admin, "admin")?,
                control: (self.control != "off").then(|| PathBuf::from(&self.control)),
                control_mode: u32::from_str_radix(&self.control_mode, 8).map_err(|_| {
                    format!(
                        "--control-mode {:?}: expected octal, e.g. 600",
                        self.control_mode
                    )
                })?,
                max_connections: self.ops_max_connections,
                max_queued_bytes: usize_of(self.ops_max_queued, "ops-max-queued")?,
                admin_timeout: self.admin_timeout,
                max_channels_listed: self.stats_channels,
            },
            cluster: self.cluster()?,
            history: crate::server::HistoryLimits {
                per_stream: self.history,
                max_bytes: usize_of(self.history_memory, "history-memory")?,
                max_age: (!self.history_max_age.is_zero()).then_some(self.history_max_age),
            },
            slow_consumer: self.slow_consumer,
            channel_policies: self
                .channel_policy
                .iter()
                .map(|(n, p)| (Box::from(n.as_str()), *p))
                .collect(),
            write_delay: self.write_delay,
            ..ServerConfig::default()
        })
    }
}

impl ServeArgs {
    fn auth(&self) -> Result<crate::server::AuthConfig, String> {
        let channel_secret = match &self.channel_secret_file {
            Some(path) => {
                let (secret, warning) = crate::server::ChannelSecret::from_file(path)?;
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                Some(secret)
            }
            None => None,
        };
        Ok(crate::server::AuthConfig {
            allowed_origins: self.allow_origin.clone(),
            channel_secret,
        })
    }

    fn cluster(&self) -> Result<Option<ClusterConfig>, String> {
        let Some(url) = &self.redis else {
            if self.socketio_emitter {
                log::warn!("--socketio-emitter has no effect without --redis");
            }
            if self.redis_history || self.local_history {
                log::warn!("--redis-history and --local-history have no effect without --redis");
            }
            return Ok(None);
        };
        let mut c = ClusterConfig::new(url).map_err(|e| format!("--redis {e}"))?;
        if !valid_redis_prefix(&self.redis_prefix) {
            return Err(format!(
                "--redis-prefix {:?}: expected 1 to 64 bytes of A-Z a-z 0-9 _ . - :",
                self.redis_prefix
            ));
        }
        c.prefix = self.redis_prefix.clone();
        if self.socketio_emitter {
            if !valid_redis_prefix(&self.socketio_key) {
                return Err(format!(
                    "--socketio-key {:?}: expected 1 to 64 bytes of A-Z a-z 0-9 _ . - :",
                    self.socketio_key
                ));
            }
            c.socketio_key = Some(self.socketio_key.clone());
        }
        if self.cluster_heartbeat.is_zero() || self.cluster_stall_timeout <= self.cluster_heartbeat
        {
            return Err(
                "--cluster-stall-timeout must be longer than --cluster-heartbeat (which must be more than 0)"
                    .into(),
            );
        }
        c.heartbeat = self.cluster_heartbeat;
        c.stall_timeout = self.cluster_stall_timeout;
        let buffer = usize::try_from(self.cluster_buffer)
            .map_err(|_| "--cluster-buffer is too large".to_owned())?;
        c.relay_bytes = buffer;
        c.inflight_bytes = buffer;
        if (self.redis_history || self.local_history) && self.history == 0 {
            log::warn!("--redis-history and --local-history have no effect without --history");
        }
        if !self.local_history {
            // Shared history is the default with --redis and --history.
            c.shared_history = self.history;
        }
        if self.redis_history_timeout.is_zero() {
            return Err("--redis-history-timeout must be more than 0".into());
        }
        c.catch_up_timeout = self.redis_history_timeout;
        Ok(Some(c))
    }
}

fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::new();
    match level {
        Some(l) => {
            b.parse_filters(l);
        }
        None => match std::env::var("RUST_LOG") {
            Ok(v) => {
                b.parse_filters(&v);
            }
            Err(_) => {
                b.filter_level(log::LevelFilter::Info);
            }
        },
    }
    b.target(env_logger::Target::Stderr).init();
}

/// The command-line definition, with `serve`'s environment variables.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", crate::config_file::with_env)
}

/// The `serve` definition the config file is checked against.
fn serve_command() -> clap::Command {
    crate::config_file::with_env(ServeArgs::command().name("serve"))
}

/// Parses `argv`; for `serve --config PATH` (or WSBROADCASTER_CONFIG), merges
/// the file's settings under the flags and the environment. A bad file is a
/// message naming each bad key and line.
fn parse_args(argv: Vec<std::ffi::OsString>) -> Result<Cli, ArgsError> {
    let first = command().try_get_matches_from(&argv)?;
    let path = match first.subcommand() {
        Some(("serve", m)) => m.get_one::<PathBuf>(crate::config_file::CONFIG_ID).cloned(),
        _ => None,
    };
    let Some(path) = path else {
        return Ok(Cli::from_arg_matches(&first)?);
    };
    let mut file = crate::config_file::ConfigFile::load(&path, &serve_command())
        .map_err(|e| ArgsError::Config(e.to_string()))?;
    // The subcommand is the first token clap did not take as a top-level
    // flag; `wsbroadcaster` has no top-level flag with a value.
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == "serve")
        .map_or(1, |i| i + 1);
    let (_, serve_matches) = first.subcommand().expect("serve matched");
    let merged = file.merge_into(&argv, at, serve_matches);
    let m = command().try_get_matches_from(merged).map_err(|e| {
        ArgsError::Config(format!(
            "{}: {}",
            path.display(),
            crate::config_file::clap_message(&e)
        ))
    })?;
    Ok(Cli::from_arg_matches(&m)?)
}

/// Why the command line was not accepted.
enum ArgsError {
    /// Flags (clap prints usage and exits 2; `--help` exits 0).
    Clap(clap::Error),
    /// The config file: every bad key and line.
    Config(String),
}

impl From<clap::Error> for ArgsError {
    fn from(e: clap::Error) -> Self {
        ArgsError::Clap(e)
    }
}

/// `check-config PATH`: the file is checked exactly as `serve --config`
/// reads it; prints the effective settings (a valid config file itself).
fn check_config(path: &std::path::Path) -> ExitCode {
    use crate::config_file::{ConfigFile, render_effective};
    let cmd = serve_command();
    let mut file = match ConfigFile::load(path, &cmd) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let argv = [std::ffi::OsString::from("serve")];
    let checked = cmd
        .clone()
        .try_get_matches_from(argv.clone())
        .and_then(|env_only| {
            cmd.clone()
                .try_get_matches_from(file.merge_into(&argv, 0, &env_only))
        })
        .map_err(|e| crate::config_file::clap_message(&e))
        .and_then(|m| {
            let args = ServeArgs::from_arg_matches(&m).map_err(|e| e.to_string())?;
            let cfg = args.config()?;
            // The certificate and key are read as `serve` would read them.
            if let Some(files) = &cfg.tls {
                crate::server::check_tls(files).map_err(|e| format!("TLS: {e}"))?;
            }
            Ok(m)
        });
    match checked {
        Ok(m) => {
            print!("{}", render_effective(&cmd, &m, Some(&file)));
            eprintln!("{}: OK", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match parse_args(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(ArgsError::Clap(e)) => e.exit(),
        Err(ArgsError::Config(e)) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::CheckConfig { path } => check_config(&path),
        Command::Client { url, tls_ca } => report(client(&url, tls_ca.as_deref())),
        Command::Send { udp, unix, message } => report(send(udp, unix, message)),
        Command::AutobahnClient { url, agent } => report(autobahn_client(url, agent)),
        Command::Bench(args) => report(crate::bench::run(&args)),
    }
}

fn report(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging(args.log_level.as_deref());
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Machine-readable start-up lines on stdout, so scripts and tests can
    // find the ports (port 0 picks a free one).
    let b = server.bound().clone();
    let mut out = std::io::stdout().lock();
    let scheme = if b.tls { "wss" } else { "ws" };
    let _ = writeln!(out, "listening {scheme} {}", b.ws);
    if let Some(u) = b.udp {
        let _ = writeln!(out, "listening udp {u}");
    }
    if let Some(p) = &b.unix {
        let _ = writeln!(out, "listening unix {}", p.display());
    }
    if let Some(r) = b.rpc {
        let _ = writeln!(out, "listening rpc {r}");
    }
    if let Some(a) = b.admin {
        let _ = writeln!(out, "listening admin {a}");
    }
    if let Some(p) = &b.control {
        let _ = writeln!(out, "listening control {}", p.display());
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    log::info!(
        "wsbroadcaster {} serving {scheme}://{} (connection ids {}.N)",
        env!("CARGO_PKG_VERSION"),
        b.ws,
        b.node
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(url: &str, tls_ca: Option<&std::path::Path>) -> Result<(), String> {
    let tls = if url.starts_with("wss://") {
        Some(crate::client_tls::client_config(tls_ca)?)
    } else {
        None
    };
    let mut c = BlockingClient::connect_tls(url, Limits::default(), false, tls)
        .map_err(|e| format!("{url}: {e}"))?;
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(None);
    });
    let mut stdout = std::io::stdout();
    let mut closing = false;
    loop {
        while let Ok(line) = rx.try_recv() {
            match line {
                Some(l) => c
                    .send(MessageKind::Text, l.as_bytes())
                    .map_err(|e| e.to_string())?,
                None if !closing => {
                    closing = true;
                    c.close(CloseCode::NORMAL, "").map_err(|e| e.to_string())?;
                }
                None => {}
            }
        }
        match c.next_event() {
            Ok(Some(Event::Message { data, .. })) => {
                stdout
                    .write_all(&data)
                    .and_then(|_| stdout.write_all(b"\n"))
                    .map_err(|e| e.to_string())?;
                stdout.flush().map_err(|e| e.to_string())?;
            }
            Ok(Some(Event::Closed { code, reason })) => {
                eprintln!("closed: {} {reason}", code.map_or(1005, |c| c.0));
            }
            Ok(Some(Event::Failed(e))) => return Err(format!("protocol error from server: {e}")),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn send(
    udp: Option<SocketAddr>,
    unix: Option<PathBuf>,
    message: Option<String>,
) -> Result<(), String> {
    let messages: Vec<String> = match message {
        Some(m) => vec![m],
        None => std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
    };
    if let Some(path) = unix {
        let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
            format!(
                "{}: {e} (is the server running with --unix?)",
                path.display()
            )
        })?;
        for m in &messages {
            s.write_all(m.as_bytes())
                .and_then(|_| s.write_all(b"\n"))
                .map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let addr = udp.unwrap_or_else(|| "127.0.0.1:8125".parse().expect("valid address"));
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("valid");
    let sock = std::net::UdpSocket::bind(local).map_err(|e| e.to_string())?;
    for m in &messages {
        sock.send_to(m.as_bytes(), addr)
            .map_err(|e| format!("{addr}: {e}"))?;
    }
    Ok(())
}

fn autobahn_client(url: Option<String>, agent: Option<String>) -> Result<(), String> {
    let url = url
        .or_else(|| std::env::var("AUTOBAHN_URL").ok())
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = agent
        .or_else(|| std::env::var("AUTOBAHN_AGENT").ok())
        .unwrap_or_else(|| "wsbroadcaster".into());
    let limits = Limits {
        max_frame: 64 << 20,
        max_message: 64 << 20,
        max_fragments: 1 << 20,
    };
    let count = {
        let mut c = BlockingClient::connect(&format!("{url}/getCaseCount"), limits)
            .map_err(|e| e.to_string())?;
        let mut n = None;
        while let Some(ev) = c.next_event().map_err(|e| e.to_string())? {
            if let Event::Message { data, .. } = ev {
                n = String::from_utf8_lossy(&data).trim().parse::<u32>().ok();
            }
        }
        n.ok_or("the fuzzingserver sent no case count")?
    };
    eprintln!("autobahn-client: {count} cases against {url} as {agent}");
    for case in 1..=count {
        let case_url = format!("{url}/runCase?case={case}&agent={agent}");
        match BlockingClient::connect_with(&case_url, limits, true) {
            Ok(mut c) => {
                while let Ok(Some(ev)) = c.next_event() {
                    if let Event::Message { kind, data } = ev {
                        let _ = c.send(kind, &data);
                    }
                }
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
        if case % 50 == 0 {
            eprintln!("autobahn-client: {case}/{count}");
        }
    }
    let mut c = BlockingClient::connect(&format!("{url}/updateReports?agent={agent}"), limits)
        .map_err(|e| e.to_string())?;
    while let Ok(Some(_)) = c.next_event() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::{ConfigFile, Source, env_name, key_of, source_of};
    use clap::ArgAction;
    use std::path::Path;

    /// A value the flag accepts, when one can be told from its definition.
    fn sample(arg: &clap::Arg) -> Option<String> {
        match arg.get_action() {
            ArgAction::SetTrue => Some("true".into()),
            ArgAction::SetFalse => Some("false".into()),
            ArgAction::Count => Some("1".into()),
            _ => {
                let v = arg
                    .get_default_values()
                    .first()
                    .map(|d| d.to_string_lossy().into_owned())
                    .or_else(|| {
                        arg.get_possible_values()
                            .first()
                            .map(|p| p.get_name().to_owned())
                    })?;
                Some(format!("{v:?}"))
            }
        }
    }

    /// Every `serve` flag, today's and any added later, is a config key
    /// (its long name), has its WSBROADCASTER_* variable, and a file value
    /// reaches the parsed settings with the file as its source.
    #[test]
    fn every_serve_flag_is_a_config_key_and_an_environment_variable() {
        let cmd = serve_command();
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let Some(key) = key_of(arg) else { continue };
            let id = arg.get_id().as_str();
            assert_eq!(
                arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                Some(env_name(key)),
                "--{key} has its environment variable"
            );
            if id == crate::config_file::CONFIG_ID {
                continue;
            }
            let path = Path::new("every.toml");
            let Some(value) = sample(arg) else {
                // No default and no listed values (a path, a URL): any
                // value may be refused, but never as an unknown key.
                match ConfigFile::parse(path, &format!("{key} = \"x\"\n"), &cmd) {
                    Ok(_) => {}
                    Err(e) => {
                        let e = e.to_string();
                        assert!(
                            e.starts_with(&format!("every.toml:1: {key}: ")),
                            "--{key}: {e}"
                        );
                    }
                }
                checked += 1;
                continue;
            };
            let text = format!("# every flag is a key\n{key} = {value}\n");
            let mut file = ConfigFile::parse(path, &text, &cmd)
                .unwrap_or_else(|e| panic!("--{key} as `{key} = {value}`: {e}"));
            let argv = [std::ffi::OsString::from("serve")];
            let env_only = cmd.clone().try_get_matches_from(argv.clone()).unwrap();
            let merged = file.merge_into(&argv, 0, &env_only);
            let m = cmd
                .clone()
                .try_get_matches_from(merged)
                .unwrap_or_else(|e| panic!("--{key}: {e}"));
            if matches!(arg.get_action(), ArgAction::SetFalse) {
                // `false` is the flag given: still from the file.
                assert!(!m.get_flag(id));
            }
            if env_only.value_source(id) != Some(clap::parser::ValueSource::EnvVariable) {
                assert_eq!(
                    source_of(&cmd, &m, Some(&file), id),
                    Some(Source::File(2)),
                    "--{key} set from the file"
                );
            }
            let args = ServeArgs::from_arg_matches(&m).unwrap_or_else(|e| panic!("--{key}: {e}"));
            args.config()
                .unwrap_or_else(|e| panic!("--{key} = {value}: {e}"));
            checked += 1;
        }
        assert!(checked >= 23, "only {checked} flags seen");
    }

    /// The top-level parser merges a file under the flags.
    #[test]
    fn serve_config_merges_under_flags() {
        let dir = std::env::temp_dir().join(format!("wsb-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s.toml");
        std::fs::write(&f, "max-fragments = 7\nlisten-backlog = 5\n").unwrap();
        let argv: Vec<std::ffi::OsString> = [
            "wsbroadcaster",
            "serve",
            "--listen-backlog",
            "9",
            "--config",
        ]
        .iter()
        .map(Into::into)
        .chain(std::iter::once(f.clone().into_os_string()))
        .collect();
        let Ok(Cli {
            command: Command::Serve(args),
        }) = parse_args(argv)
        else {
            panic!("serve with a config file parses");
        };
        assert_eq!((args.max_fragments, args.listen_backlog), (7, 9));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Shared history is the default with --redis and --history;
    /// --local-history opts out.
    #[test]
    fn redis_and_history_share_history_unless_local() {
        let shared = |extra: &[&str]| {
            let argv = [
                "wsbroadcaster",
                "serve",
                "--redis",
                "redis://127.0.0.1:6379",
            ]
            .iter()
            .chain(extra)
            .map(Into::into)
            .collect();
            match parse_args(argv) {
                Ok(Cli {
                    command: Command::Serve(args),
                }) => args.cluster().map(|c| c.map(|c| c.shared_history)),
                Ok(_) => Err("not serve".into()),
                Err(_) => Err("refused".into()),
            }
        };
        assert_eq!(shared(&["--history", "50"]), Ok(Some(50)));
        assert_eq!(
            shared(&["--history", "50", "--redis-history"]),
            Ok(Some(50))
        );
        assert_eq!(shared(&["--history", "50", "--local-history"]), Ok(Some(0)));
        assert_eq!(shared(&[]), Ok(Some(0)), "no history, nothing to share");
        assert!(shared(&["--history", "5", "--local-history", "--redis-history"]).is_err());
    }
}
