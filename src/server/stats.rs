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
}

impl Stats {
    /// Adds a publish's outcome.
    pub(crate) fn record(&mut self, r: &Receipt, payload_len: usize) {
        self.messages_published += 1;
        self.frames_queued += r.queued as u64;
        self.bytes_published += payload_len as u64;
        self.slow_consumer_closes += r.skipped_slow as u64;
    }
}
