//! Counters the server keeps; every publish has one outcome record.

/// The outcome of one publish: how many connections it was queued for and
/// how many were skipped, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Connections the frame was queued for.
    pub queued: usize,
    /// Connections skipped because they are slow consumers (and are being closed now).
    pub skipped_slow: usize,
    /// Connections skipped because they are closing.
    pub skipped_closing: usize,
    /// Cluster mode: handed to the Redis publisher for the other nodes.
    pub relayed: bool,
    /// Connections behind on a `drop-oldest`/`keep-latest` channel: the
    /// message was held aside for them.
    pub held: usize,
    /// Messages those policies dropped (older held ones, or this one).
    pub dropped: usize,
}

/// Running totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// WebSocket connections upgraded.
    pub connections_opened: u64,
    /// WebSocket connections closed (after an upgrade).
    pub connections_closed: u64,
    /// HTTP requests refused (404, 400, 426, 431, 503).
    pub http_rejected: u64,
    /// Messages published (from any ingress).
    pub messages_published: u64,
    /// Frames queued for delivery (one per recipient).
    pub frames_queued: u64,
    /// Payload bytes published.
    pub bytes_published: u64,
    /// Clients closed for exceeding the queued-bytes limit.
    pub slow_consumer_closes: u64,
    /// Connections failed for protocol errors.
    pub protocol_errors: u64,
    /// UDP datagrams dropped (sender not allowed, or too large).
    pub udp_dropped: u64,
    /// Unix-socket writers closed for an over-long line.
    pub unix_line_too_long: u64,
    /// Addressed UDP/Unix/stdin messages dropped as malformed (`@` with no
    /// valid target); they are never broadcast.
    pub addressed_malformed: u64,
    /// stdin lines dropped for being longer than `--max-message`.
    pub stdin_line_too_long: u64,
    /// MessagePack-RPC requests and notifications handled.
    pub rpc_calls: u64,
    /// MessagePack-RPC calls answered with an error (or dropped, for a
    /// notification), and RPC connections closed for malformed input.
    pub rpc_errors: u64,
    /// Broadcast messages compressed (permessage-deflate): once per message
    /// and window size in shared mode, whatever the number of recipients.
    pub deflate_compressions: u64,
    /// Upgrade requests refused with 403 because their `Origin` is not in `--allow-origin`.
    pub origin_refused: u64,
    /// Upgrade requests asking for channels without a `token=` while `--channel-secret-file` is set (401).
    pub token_missing: u64,
    /// Upgrade requests with a malformed (400) or forged (403) channel token.
    pub token_invalid: u64,
    /// Upgrade requests with an expired channel token (403).
    pub token_expired: u64,
    /// Upgrade requests asking for a channel their token does not grant (403).
    pub token_wrong_channel: u64,
    /// Messages received from WebSocket clients (published, echoed or ignored per `--client-messages`).
    pub client_messages: u64,
    /// Bytes queued for WebSocket clients by publishes: frame header and payload, once per recipient.
    pub bytes_queued: u64,
    /// Connections closed by a control-socket `kick`.
    pub kicks: u64,
    /// Control-socket commands handled.
    pub control_commands: u64,
    /// Control-socket commands answered with an error, and control connections closed for an over-long line.
    pub control_errors: u64,
    /// Connect/disconnect events not queued for an `events` subscriber that was not reading (it is told how many).
    pub events_dropped: u64,
    /// Admin HTTP requests answered.
    pub admin_requests: u64,
    /// Admin HTTP requests answered with a 4xx or 5xx status.
    pub admin_errors: u64,
    /// Admin HTTP and control connections refused at `--ops-max-connections`.
    pub ops_connections_refused: u64,
    /// Cluster: messages published to Redis for the other nodes.
    pub cluster_relayed: u64,
    /// Cluster: messages that reached this node's clients only (Redis down, the
    /// publisher's queue full, or PUBLISH failed).
    pub cluster_relay_dropped: u64,
    /// Cluster: messages from other nodes delivered here.
    pub cluster_received: u64,
    /// Cluster: raw messages from external emitters (`P:all`, `P:ch:NAME`,
    /// `P:id:ID`) delivered here.
    pub cluster_external: u64,
    /// Cluster: messages on our Redis channels that could not be delivered
    /// (bad envelope, bad channel or id, over `--max-message`).
    pub cluster_malformed: u64,
    /// Cluster: messages from other nodes (or our own, coming back) missing by
    /// sequence number.
    pub cluster_lost: u64,
    /// Cluster: subscriptions that stopped bringing back our heartbeats and were
    /// re-established.
    pub cluster_stalls: u64,
    /// Cluster: Redis connections re-established after a failure.
    pub cluster_reconnects: u64,
    /// Cluster: heartbeats from another process using this node's id.
    pub cluster_id_collisions: u64,
    /// socket.io emitter packets delivered.
    pub socketio_messages: u64,
    /// socket.io emitter packets dropped (malformed, unknown version, binary
    /// arguments).
    pub socketio_malformed: u64,
    /// Messages held aside for clients behind on a `drop-oldest` or
    /// `keep-latest` channel.
    pub policy_held: u64,
    /// Messages those policies dropped.
    pub policy_dropped: u64,
    /// Opted-in clients that joined a stream's history (one per stream).
    pub recovery_joins: u64,
    /// Messages replayed to reconnecting clients.
    pub recovery_replayed: u64,
    /// Catch-ups refused with a reset (epoch changed, offset too old).
    pub recovery_resets: u64,
    /// `--redis-history`: joins this node's ring could not answer, asked
    /// of Redis (the XRANGE fallback).
    pub recovery_fallbacks: u64,
    /// Messages those replayed from Redis.
    pub recovery_fallback_replayed: u64,
    /// Joins answered `reset: unavailable` (Redis unreachable, too slow,
    /// or too many catch-ups from Redis at once).
    pub recovery_fallback_unavailable: u64,
}

impl Stats {
    /// Every counter with its name (the field's name), for the RPC `stats()`
    /// method and other reports.
    pub fn fields(&self) -> [(&'static str, u64); 48] {
        // Destructured so that a new counter cannot be forgotten here.
        let Stats {
            connections_opened,
            connections_closed,
            http_rejected,
            messages_published,
            frames_queued,
            bytes_published,
            slow_consumer_closes,
            protocol_errors,
            udp_dropped,
            unix_line_too_long,
            addressed_malformed,
            stdin_line_too_long,
            rpc_calls,
            rpc_errors,
            deflate_compressions,
            origin_refused,
            token_missing,
            token_invalid,
            token_expired,
            token_wrong_channel,
            client_messages,
            bytes_queued,
            kicks,
            control_commands,
            control_errors,
            events_dropped,
            admin_requests,
            admin_errors,
            ops_connections_refused,
            cluster_relayed,
            cluster_relay_dropped,
            cluster_received,
            cluster_external,
            cluster_malformed,
            cluster_lost,
            cluster_stalls,
            cluster_reconnects,
            cluster_id_collisions,
            socketio_messages,
            socketio_malformed,
            policy_held,
            policy_dropped,
            recovery_joins,
            recovery_replayed,
            recovery_resets,
            recovery_fallbacks,
            recovery_fallback_replayed,
            recovery_fallback_unavailable,
        } = *self;
        [
            ("connections_opened", connections_opened),
            ("connections_closed", connections_closed),
            ("http_rejected", http_rejected),
            ("messages_published", messages_published),
            ("frames_queued", frames_queued),
            ("bytes_published", bytes_published),
            ("slow_consumer_closes", slow_consumer_closes),
            ("protocol_errors", protocol_errors),
            ("udp_dropped", udp_dropped),
            ("unix_line_too_long", unix_line_too_long),
            ("addressed_malformed", addressed_malformed),
            ("stdin_line_too_long", stdin_line_too_long),
            ("rpc_calls", rpc_calls),
            ("rpc_errors", rpc_errors),
            ("deflate_compressions", deflate_compressions),
            ("origin_refused", origin_refused),
            ("token_missing", token_missing),
            ("token_invalid", token_invalid),
            ("token_expired", token_expired),
            ("token_wrong_channel", token_wrong_channel),
            ("client_messages", client_messages),
            ("bytes_queued", bytes_queued),
            ("kicks", kicks),
            ("control_commands", control_commands),
            ("control_errors", control_errors),
            ("events_dropped", events_dropped),
            ("admin_requests", admin_requests),
            ("admin_errors", admin_errors),
            ("ops_connections_refused", ops_connections_refused),
            ("cluster_relayed", cluster_relayed),
            ("cluster_relay_dropped", cluster_relay_dropped),
            ("cluster_received", cluster_received),
            ("cluster_external", cluster_external),
            ("cluster_malformed", cluster_malformed),
            ("cluster_lost", cluster_lost),
            ("cluster_stalls", cluster_stalls),
            ("cluster_reconnects", cluster_reconnects),
            ("cluster_id_collisions", cluster_id_collisions),
            ("socketio_messages", socketio_messages),
            ("socketio_malformed", socketio_malformed),
            ("policy_held", policy_held),
            ("policy_dropped", policy_dropped),
            ("recovery_joins", recovery_joins),
            ("recovery_replayed", recovery_replayed),
            ("recovery_resets", recovery_resets),
            ("recovery_fallbacks", recovery_fallbacks),
            ("recovery_fallback_replayed", recovery_fallback_replayed),
            (
                "recovery_fallback_unavailable",
                recovery_fallback_unavailable,
            ),
        ]
    }

    /// Adds a publish's outcome.
    pub(crate) fn record(&mut self, r: &Receipt, payload_len: usize) {
        self.messages_published += 1;
        self.frames_queued += r.queued as u64;
        self.bytes_published += payload_len as u64;
        self.slow_consumer_closes += r.skipped_slow as u64;
        self.policy_held += r.held as u64;
        self.policy_dropped += r.dropped as u64;
    }
}
