//! What the server reports about itself, in three forms from one
//! [`Snapshot`]: JSON (`GET /stats`, `json stats`), text for people
//! (`stats` on the control socket) and the Prometheus text format
//! (`GET /metrics`). docs/operations.md explains every number.

use std::fmt::Write;

use super::json::Obj;
use crate::server::peer::WsPeer;
use crate::server::stats::Stats;
use crate::server::{Entry, Server};

/// The help line of every counter, by its `Stats` name. docs/operations.md
/// has the same meanings at more length (a test checks that every counter
/// is documented there).
const COUNTER_HELP: &[(&str, &str)] = &[
    ("connections_opened", "WebSocket connections upgraded."),
    (
        "connections_closed",
        "WebSocket connections closed after their upgrade, for any reason.",
    ),
    (
        "http_rejected",
        "Requests to the WebSocket port refused with an HTTP status (400, 401, 403, 404, 426, 431, 503).",
    ),
    (
        "messages_published",
        "Messages published, from any ingress (UDP, Unix socket, stdin, RPC, admin, control, WebSocket clients).",
    ),
    (
        "frames_queued",
        "Frames queued for WebSocket clients: one per recipient of each publish.",
    ),
    (
        "bytes_published",
        "Payload bytes published (once per message, whatever the number of recipients).",
    ),
    (
        "slow_consumer_closes",
        "WebSocket clients closed with 1008 for letting more than --max-queued-bytes pile up.",
    ),
    (
        "protocol_errors",
        "WebSocket connections failed for a protocol error (1002, 1007, 1009).",
    ),
    (
        "udp_dropped",
        "UDP datagrams dropped: sender not in --udp-allow, or larger than --max-message.",
    ),
    (
        "unix_line_too_long",
        "Unix-socket writers closed for a line longer than --max-message.",
    ),
    (
        "addressed_malformed",
        "UDP, Unix-socket and stdin messages dropped because their @address was malformed.",
    ),
    (
        "stdin_line_too_long",
        "stdin lines dropped for being longer than --max-message.",
    ),
    (
        "rpc_calls",
        "MessagePack-RPC requests and notifications handled.",
    ),
    (
        "rpc_errors",
        "MessagePack-RPC calls answered with an error, and RPC connections closed for bad input.",
    ),
    (
        "deflate_compressions",
        "Broadcast messages compressed with permessage-deflate.",
    ),
    (
        "origin_refused",
        "Upgrades refused with 403: Origin not allowed by --allow-origin.",
    ),
    (
        "token_missing",
        "Upgrades refused with 401: channels asked for without a token.",
    ),
    (
        "token_invalid",
        "Upgrades refused with 400 or 403: malformed or forged channel token.",
    ),
    (
        "token_expired",
        "Upgrades refused with 403: expired channel token.",
    ),
    (
        "token_wrong_channel",
        "Upgrades refused with 403: a channel the token does not grant.",
    ),
    (
        "client_messages",
        "Messages received from WebSocket clients.",
    ),
    (
        "bytes_queued",
        "Bytes queued for WebSocket clients by publishes: frame header and payload, once per recipient.",
    ),
    ("kicks", "Connections closed by a control-socket kick."),
    ("control_commands", "Control-socket commands handled."),
    (
        "control_errors",
        "Control-socket commands answered with an error, and control connections closed for breaking a limit.",
    ),
    (
        "events_dropped",
        "Connect and disconnect events dropped for events subscribers that did not keep up.",
    ),
    ("admin_requests", "Admin HTTP requests answered."),
    (
        "admin_errors",
        "Admin HTTP requests answered with a 4xx or 5xx status.",
    ),
    (
        "ops_connections_refused",
        "Admin and control connections refused at --ops-max-connections.",
    ),
    (
        "cluster_relayed",
        "Cluster: messages published to Redis for the other nodes.",
    ),
    (
        "cluster_relay_dropped",
        "Cluster: messages that reached this node's clients only (Redis link down, publisher queue full, or PUBLISH failed).",
    ),
    (
        "cluster_received",
        "Cluster: messages from other nodes delivered here.",
    ),
    (
        "cluster_external",
        "Cluster: raw messages from Redis publishers (PREFIX:all, PREFIX:ch:NAME, PREFIX:id:ID) delivered here.",
    ),
    (
        "cluster_malformed",
        "Cluster: messages on the node's Redis channels dropped as undeliverable (bad envelope, channel or id, too large).",
    ),
    (
        "cluster_lost",
        "Cluster: messages missing by per-node sequence number (never arrived from Redis).",
    ),
    (
        "cluster_stalls",
        "Cluster: Redis subscriptions that stopped bringing back this node's heartbeats and were re-established.",
    ),
    (
        "cluster_reconnects",
        "Cluster: Redis connections re-established after a failure.",
    ),
    (
        "cluster_id_collisions",
        "Cluster: heartbeats from another process using this node's id.",
    ),
    (
        "socketio_messages",
        "socket.io emitter packets delivered (--socketio-emitter).",
    ),
    (
        "socketio_malformed",
        "socket.io emitter packets dropped: malformed, not an event, binary arguments, or too large.",
    ),
    (
        "policy_held",
        "Messages held aside for clients behind on a drop-oldest or keep-latest channel.",
    ),
    (
        "policy_dropped",
        "Messages dropped for clients behind on a drop-oldest or keep-latest channel.",
    ),
    (
        "recovery_joins",
        "Streams joined by clients that opted in to recovery (one per stream per connection).",
    ),
    (
        "recovery_replayed",
        "Messages replayed from the history to reconnecting clients.",
    ),
    (
        "recovery_resets",
        "Catch-ups refused with a reset (epoch changed, offset too old or ahead, Redis unavailable).",
    ),
    (
        "recovery_fallbacks",
        "Joins this node's history could not answer, answered from Redis (--redis-history).",
    ),
    (
        "recovery_fallback_replayed",
        "Messages replayed from Redis to reconnecting clients (--redis-history).",
    ),
    (
        "recovery_fallback_unavailable",
        "Joins answered reset unavailable: Redis unreachable, too slow or too busy (--redis-history).",
    ),
];

/// The help text of a counter (a generic one for a counter added without
/// its line here; the unit test below catches that).
fn counter_help(name: &str) -> &'static str {
    COUNTER_HELP
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("See docs/operations.md.", |(_, h)| h)
}

/// The gauges, with their help lines (the counters are `Stats`).
pub(crate) const GAUGES: &[(&str, &str)] = &[
    (
        "connections",
        "WebSocket connections open now (upgraded, not yet closed).",
    ),
    ("channels", "Channels with at least one member now."),
    (
        "channel_connections",
        "Members of a channel now (the --stats-channels largest channels).",
    ),
    (
        "queued_bytes",
        "Bytes queued for WebSocket clients and not yet written, over all connections.",
    ),
    (
        "events_subscribers",
        "Control connections streaming events.",
    ),
    (
        "history_bytes",
        "Bytes the history is charged now (--history-memory bounds it).",
    ),
    ("history_messages", "Messages kept in the history now."),
    (
        "history_streams",
        "Streams (channels, and * for everyone) with a history now.",
    ),
    (
        "start_time_seconds",
        "When the server started, in Unix seconds.",
    ),
    (
        "info",
        "Always 1; the labels name the version and the connection-id node prefix.",
    ),
];

/// Everything the server reports, taken at one moment.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) counters: Stats,
    pub(crate) connections: usize,
    pub(crate) channels_total: usize,
    /// The largest channels, largest first (ties by name), at most
    /// `--stats-channels` of them.
    pub(crate) channels: Vec<(String, usize)>,
    pub(crate) queued_bytes: u64,
    pub(crate) events_subscribers: usize,
    pub(crate) history: crate::server::history::Usage,
    pub(crate) start_unix_ms: u64,
    pub(crate) uptime_secs: u64,
    pub(crate) node: String,
}

impl Server {
    /// The numbers now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut channels: Vec<(String, usize)> = self
            .routes
            .channel_sizes()
            .map(|(c, n)| (c.to_owned(), n))
            .collect();
        channels.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        channels.truncate(self.cfg.ops.max_channels_listed);
        let queued_bytes = self
            .entries
            .iter()
            .map(|(_, e)| match e {
                Entry::Ws(p) => p.out.queued_bytes() as u64,
                _ => 0,
            })
            .sum();
        Snapshot {
            counters: self.stats,
            connections: self.routes.len(),
            channels_total: self.routes.channel_count(),
            channels,
            queued_bytes,
            events_subscribers: self.ops.subscribers.len(),
            history: self.history_usage(),
            start_unix_ms: super::unix_ms(self.ops.started),
            uptime_secs: self.ops.started_at.elapsed().as_secs(),
            node: self.bound.node.to_string(),
        }
    }

    /// Every open connection: a JSON array (`json_out`), or one line each
    /// for people.
    pub(crate) fn connections_report(&self, json_out: bool) -> String {
        let mut out = String::new();
        if json_out {
            out.push('[');
        }
        let mut n = 0;
        for (key, entry) in self.entries.iter() {
            let Entry::Ws(p) = entry else { continue };
            if self.routes.conn(&p.id) != Some(key) {
                continue; // not upgraded (yet), or refused
            }
            if json_out {
                if n > 0 {
                    out.push(',');
                }
                connection_json(&mut out, p);
            } else {
                let channels = if p.channels.is_empty() {
                    "-".to_owned()
                } else {
                    p.channels.join(",")
                };
                let _ = writeln!(
                    out,
                    "{} {} queued={} channels={channels}",
                    p.id,
                    p.addr,
                    p.out.queued_bytes()
                );
            }
            n += 1;
        }
        if json_out {
            out.push(']');
        } else {
            let _ = writeln!(out, "({n} connection{})", if n == 1 { "" } else { "s" });
        }
        out
    }
}

/// `{"id","peer","channels","queued_bytes"}` for one connection.
fn connection_json(out: &mut String, p: &WsPeer) {
    Obj::new(out)
        .str("id", &p.id.to_string())
        .str("peer", &p.addr.to_string())
        .strs("channels", p.channels.iter().map(|c| &**c))
        .num("queued_bytes", p.out.queued_bytes() as u64)
        .end();
}

impl Snapshot {
    /// One JSON object (no newline).
    pub(crate) fn json(&self) -> String {
        let mut channels = String::new();
        {
            let mut o = Obj::new(&mut channels);
            for (c, n) in &self.channels {
                o.num(c, *n as u64);
            }
            o.end();
        }
        let mut counters = String::new();
        {
            let mut o = Obj::new(&mut counters);
            for (k, v) in self.counters.fields() {
                o.num(k, v);
            }
            o.end();
        }
        let mut out = String::new();
        Obj::new(&mut out)
            .str("version", env!("CARGO_PKG_VERSION"))
            .str("node", &self.node)
            .num("start_time_ms", self.start_unix_ms)
            .num("uptime_seconds", self.uptime_secs)
            .num("connections", self.connections as u64)
            .num("queued_bytes", self.queued_bytes)
            .num("events_subscribers", self.events_subscribers as u64)
            .num("channels_total", self.channels_total as u64)
            .raw("channels", &channels)
            .raw("counters", &counters)
            .num("history_bytes", self.history.bytes as u64)
            .num("history_messages", self.history.messages as u64)
            .num("history_streams", self.history.streams as u64)
            .end();
        out
    }

    /// Aligned `name value` lines for people.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "wsbroadcaster {} node {}, up {}s",
            env!("CARGO_PKG_VERSION"),
            self.node,
            self.uptime_secs
        );
        let mut line = |name: &str, v: u64| {
            let _ = writeln!(out, "{name:<24} {v}");
        };
        line("connections", self.connections as u64);
        line("queued_bytes", self.queued_bytes);
        line("events_subscribers", self.events_subscribers as u64);
        if self.history.streams > 0 {
            line("history_bytes", self.history.bytes as u64);
            line("history_messages", self.history.messages as u64);
            line("history_streams", self.history.streams as u64);
        }
        line("channels", self.channels_total as u64);
        for (c, n) in &self.channels {
            line(&format!("  {c}"), *n as u64);
        }
        if self.channels.len() < self.channels_total {
            let _ = writeln!(
                out,
                "  ({} smaller channels not listed)",
                self.channels_total - self.channels.len()
            );
        }
        for (k, v) in self.counters.fields() {
            let _ = writeln!(out, "{k:<24} {v}");
        }
        out
    }

    /// The Prometheus text exposition format (version 0.0.4): every counter
    /// as `wsbroadcaster_<name>_total`, then the gauges.
    pub(crate) fn prometheus(&self) -> String {
        let mut out = String::new();
        for (name, v) in self.counters.fields() {
            let _ = write!(
                out,
                "# HELP wsbroadcaster_{name}_total {}\n# TYPE wsbroadcaster_{name}_total counter\nwsbroadcaster_{name}_total {v}\n",
                counter_help(name)
            );
        }
        for (name, help) in GAUGES {
            let _ = write!(
                out,
                "# HELP wsbroadcaster_{name} {help}\n# TYPE wsbroadcaster_{name} gauge\n"
            );
            let mut sample = |v: u64| {
                let _ = writeln!(out, "wsbroadcaster_{name} {v}");
            };
            match *name {
                "connections" => sample(self.connections as u64),
                "channels" => sample(self.channels_total as u64),
                "queued_bytes" => sample(self.queued_bytes),
                "events_subscribers" => sample(self.events_subscribers as u64),
                "history_bytes" => sample(self.history.bytes as u64),
                "history_messages" => sample(self.history.messages as u64),
                "history_streams" => sample(self.history.streams as u64),
                "start_time_seconds" => sample(self.start_unix_ms / 1000),
                "channel_connections" => {
                    // Channel names are [A-Za-z0-9_.-]: nothing to escape.
                    for (c, n) in &self.channels {
                        let _ = writeln!(out, "wsbroadcaster_{name}{{channel=\"{c}\"}} {n}");
                    }
                }
                "info" => {
                    let _ = writeln!(
                        out,
                        "wsbroadcaster_info{{version=\"{}\",node=\"{}\"}} 1",
                        env!("CARGO_PKG_VERSION"),
                        self.node
                    );
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            counters: Stats {
                messages_published: 7,
                ..Stats::default()
            },
            connections: 3,
            channels_total: 3,
            channels: vec![("news".into(), 2), ("a".into(), 1)],
            queued_bytes: 10,
            events_subscribers: 1,
            history: Default::default(),
            start_unix_ms: 1_700_000_000_123,
            uptime_secs: 5,
            node: "k3j9x2".into(),
        }
    }

    #[test]
    fn every_counter_has_help_and_documentation() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
        )
        .expect("docs/operations.md");
        for (name, _) in Stats::default().fields() {
            assert!(
                COUNTER_HELP.iter().any(|(n, _)| *n == name),
                "counter {name} has no help line: add it to COUNTER_HELP in src/server/ops/report.rs"
            );
            let metric = format!("wsbroadcaster_{name}_total");
            assert!(
                doc.contains(&format!("`{metric}`")),
                "docs/operations.md does not explain `{metric}`: add it to the metrics table"
            );
        }
        for (name, _) in GAUGES {
            let metric = format!("`wsbroadcaster_{name}");
            assert!(
                doc.contains(&format!("{metric}`")) || doc.contains(&format!("{metric}{{")),
                "docs/operations.md does not explain {metric}`"
            );
        }
        assert_eq!(
            COUNTER_HELP.len(),
            Stats::default().fields().len(),
            "no help line for a counter that does not exist"
        );
    }

    #[test]
    fn formats() {
        let s = snapshot();
        let j = s.json();
        assert!(j.starts_with(r#"{"version":""#), "{j}");
        assert!(
            j.contains(r#""connections":3,"queued_bytes":10,"events_subscribers":1,"channels_total":3,"channels":{"news":2,"a":1},"counters":{"connections_opened":0"#),
            "{j}"
        );
        assert!(j.contains(r#""messages_published":7"#), "{j}");
        let p = s.prometheus();
        assert!(p.contains("# TYPE wsbroadcaster_messages_published_total counter\nwsbroadcaster_messages_published_total 7\n"), "{p}");
        assert!(
            p.contains("wsbroadcaster_channel_connections{channel=\"news\"} 2\n"),
            "{p}"
        );
        assert!(
            p.contains("wsbroadcaster_start_time_seconds 1700000000\n"),
            "{p}"
        );
        let t = s.text();
        assert!(t.contains("\n  news                   2\n"), "{t}");
        assert!(t.contains("(1 smaller channels not listed)"), "{t}");
    }
}
