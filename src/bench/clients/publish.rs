//! The publish phase: sending each message when it is due, through the
//! UDP/Unix publisher or the `ws` publisher client, and the end of the run.

use super::*;

impl Bench<'_> {
    /// Sends every message that is due.
    pub(super) fn publish_due(&mut self, now: Instant) -> Result<(), String> {
        while self.published < self.total {
            let due = self.due(self.published);
            if due > now {
                return Ok(());
            }
            let sent = Instant::now();
            let late = sent.saturating_duration_since(due);
            self.lateness.record(late.as_nanos() as u64);
            if late > LATE {
                self.late += 1;
            }
            let sent_ns = sent.duration_since(self.t0).as_nanos() as u64;
            payload::encode(
                &mut self.payload,
                self.d.run_id,
                self.published,
                sent_ns,
                self.args.size as usize,
            );
            if let Err(e) = self.send_payload() {
                if self.published == 0 {
                    return Err(e);
                }
                // Mid-run (the server went away?): stop publishing, still
                // drain and report what was delivered.
                self.publisher_error = Some(e);
                break;
            }
            self.published += 1;
        }
        self.stop_publishing();
        Ok(())
    }

    /// Publishing is over (done, or the publisher failed): drain.
    pub(super) fn stop_publishing(&mut self) {
        let end = Instant::now();
        self.publish_end = Some(end);
        self.phase = Phase::Drain {
            until: end + self.args.drain,
        };
    }

    pub(super) fn send_payload(&mut self) -> Result<(), String> {
        if let Some(p) = self.publisher.as_mut() {
            return p.send(&self.payload);
        }
        let key = self.ws_publisher.ok_or("no publisher")?;
        let Some(c) = self.clients.get_mut(key) else {
            return Err("the ws publisher's connection is gone".into());
        };
        let State::Open(conn) = &mut c.state else {
            return Err("the ws publisher is not connected".into());
        };
        conn.send_message(MessageKind::Text, &self.payload)
            .map_err(|e| format!("the ws publisher cannot send: {e}"))?;
        c.take_transmit();
        c.flush(self.poll.registry(), key)
            .map_err(|e| format!("the ws publisher's connection failed: {e}"))
    }

    /// The hold, or the publish and drain, is over: take the measurements.
    pub(super) fn end_run(&mut self, now: Instant) {
        self.run_end = Some(now);
        self.cpu_run = cpu_total(None).zip(self.cpu_run_start).map(|(b, a)| b - a);
        if let Some(s) = self.server.as_mut() {
            s.rss_after = sys::rss_kib(s.pid).unwrap_or(0);
            s.cpu_run = cpu_total(Some(s.pid))
                .zip(self.server_cpu_start)
                .map(|(b, a)| b - a);
        }
    }
}
