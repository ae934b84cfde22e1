//! What a run measured ([`Results`], [`ServerFigures`]) and how the loop's
//! counters become them at the end.

use super::*;

/// The server's figures, when `--server-pid` is given.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerFigures {
    pub(crate) pid: u32,
    /// RSS (KiB) before the bench connected.
    pub(crate) rss_before: u64,
    /// RSS (KiB) with every connection open.
    pub(crate) rss_connected: u64,
    /// RSS (KiB) at the end of the hold, or of the drain.
    pub(crate) rss_after: u64,
    /// CPU seconds (user + system) during the hold, or publish and drain.
    pub(crate) cpu_run: Option<f64>,
}

/// Everything the report shows.
#[derive(Debug)]
pub(crate) struct Results {
    pub(crate) connections: usize,
    pub(crate) connect_secs: f64,
    /// Each connection's TCP connect plus handshake time.
    pub(crate) connect_times: Histogram,
    /// Wall time of the hold, or of publishing plus draining.
    pub(crate) run_secs: f64,
    pub(crate) planned: u64,
    pub(crate) published: u64,
    pub(crate) publish_secs: f64,
    pub(crate) drain_secs: f64,
    pub(crate) delivered: u64,
    pub(crate) out_of_order: u64,
    pub(crate) foreign: u64,
    pub(crate) publisher_echoes: u64,
    /// Deliveries per second, from the first publish to the last delivery.
    pub(crate) delivered_per_sec: f64,
    pub(crate) latency: Histogram,
    /// How late each publish was against its schedule.
    pub(crate) lateness: Histogram,
    /// Publishes more than [`LATE`] behind schedule.
    pub(crate) late: u64,
    /// Why publishing stopped before the planned count, if it did.
    pub(crate) publisher_error: Option<String>,
    /// Connections closed before the bench closed them, by cause.
    pub(crate) closed: BTreeMap<String, u64>,
    /// This process's user and system CPU seconds, whole run.
    pub(crate) cpu: Option<(f64, f64)>,
    /// This process's CPU seconds during the hold, or publish and drain.
    pub(crate) cpu_run: Option<f64>,
    pub(crate) server: Option<ServerFigures>,
}

impl Results {
    /// Connections closed before the bench closed them.
    pub(crate) fn closed_total(&self) -> u64 {
        self.closed.values().sum()
    }
}

impl Bench<'_> {
    /// The figures of the finished run.
    pub(super) fn results(mut self) -> Results {
        self.latency.merge(&self.d.interval);
        self.d.interval.clear();
        let publish_secs = self
            .publish_end
            .map_or(0.0, |e| e.duration_since(self.publish_start).as_secs_f64());
        let drain_secs = match (self.publish_end, self.run_end) {
            (Some(p), Some(r)) => r.saturating_duration_since(p).as_secs_f64(),
            _ => 0.0,
        };
        let publish_start_ns = self.publish_start.duration_since(self.t0).as_nanos() as u64;
        let span = self.d.last_ns.saturating_sub(publish_start_ns) as f64 / 1e9;
        let delivered_per_sec = if span > 0.0 {
            self.d.delivered as f64 / span
        } else {
            0.0
        };
        Results {
            connections: self.args.connections,
            connect_secs: self.connect_secs,
            connect_times: self.connect_times,
            run_secs: self
                .run_end
                .map_or(0.0, |e| e.duration_since(self.run_start).as_secs_f64()),
            planned: self.total,
            published: self.published,
            publish_secs,
            drain_secs,
            delivered: self.d.delivered,
            out_of_order: self.d.out_of_order,
            foreign: self.d.foreign,
            publisher_echoes: self.d.publisher_echoes,
            delivered_per_sec,
            latency: self.latency,
            lateness: self.lateness,
            late: self.late,
            publisher_error: self.publisher_error,
            closed: self.closed,
            cpu: sys::cpu_secs(None),
            cpu_run: self.cpu_run,
            server: self.server,
        }
    }
}
