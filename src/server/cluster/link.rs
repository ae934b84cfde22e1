//! What the two Redis threads (`publisher.rs`, `subscriber.rs`) share with
//! each other and the loop: a publisher and a subscriber, each with its own
//! connection (a subscribed Redis connection can do nothing else). Neither
//! ever blocks the event loop: the loop hands the publisher messages with a
//! non-blocking `try_send` (a full queue drops and counts), and the
//! subscriber hands the loop deliveries through a bounded channel and a
//! `mio::Waker`.
//!
//! Failure handling, the same in both threads: the first failure is logged
//! (warn), later attempts only at debug; reconnection backs off from 100 ms
//! to `reconnect_max` with jitter; success after a failure is logged (info)
//! and counted (`cluster_reconnects`). The subscriber also watches its link:
//! the publisher sends a heartbeat on `P:cluster` every `heartbeat`; when
//! nothing of our own comes back for `stall_timeout`, the subscription is
//! considered stalled (Redis dropped or paused it, or the TCP link is
//! half-open): counted (`cluster_stalls`), logged, and re-established.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::wire::Target;
use crate::protocol::MessageKind;
use crate::server::history::Position;

/// Time allowed to connect, and for a command's reply.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// First reconnection delay (doubled per failure up to `reconnect_max`).
const BACKOFF_START: Duration = Duration::from_millis(100);

/// Counters the threads keep; the loop copies them into its `Stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) relayed: AtomicU64,
    pub(crate) relay_dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) external: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) id_collisions: AtomicU64,
    pub(crate) socketio_messages: AtomicU64,
    pub(crate) socketio_malformed: AtomicU64,
}

pub(super) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// What the loop asks the publisher thread to do. (Another Redis write,
/// such as appending to a stream for history, is one more variant.)
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Publish a message for the other nodes.
    Message {
        target: Target,
        kind: MessageKind,
        payload: Vec<u8>,
    },
    /// `--redis-history`: have a message to everyone or to channels
    /// numbered by the sequencer (`wire::SEQUENCER`), which appends it to
    /// each stream in Redis and publishes it on `P:stream` for every node,
    /// this one included.
    Stream {
        target: Target,
        kind: MessageKind,
        payload: Vec<u8>,
    },
}

impl Outgoing {
    pub(crate) fn payload_len(&self) -> usize {
        match self {
            Outgoing::Message { payload, .. } | Outgoing::Stream { payload, .. } => payload.len(),
        }
    }
}

/// Where a message from Redis goes on this node.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// A node's or an external emitter's message.
    Target(Target),
    /// A socket.io emitter's: the union of `rooms` (everyone when empty)
    /// minus `except`; a room is a channel or a connection id.
    Rooms {
        rooms: Vec<String>,
        except: Vec<String>,
    },
    /// A sequenced message (`--redis-history`): `at` has its position in
    /// each of its streams (`*`, or each channel of `target`).
    Stream { target: Target, at: Vec<Position> },
    /// `--redis-history`: the subscription was (re-)established, so
    /// sequenced messages may have been missed: the kept ones are no longer
    /// known to be complete.
    FeedInterrupted,
}

/// A message for the loop to deliver to local clients.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) dest: Dest,
    pub(crate) kind: MessageKind,
    pub(crate) payload: Vec<u8>,
}

/// What both threads and the loop share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    /// Payload bytes handed to the loop and not yet taken: the subscriber
    /// waits while this is over its budget (back-pressure towards Redis).
    pub(crate) inflight: AtomicUsize,
    /// Payload bytes the loop has queued for the publisher and it has not
    /// taken yet (bounded by `relay_bytes`).
    pub(crate) relay_queued: AtomicUsize,
    /// Set when the loop is gone: the threads stop.
    pub(crate) closed: AtomicBool,
}

/// Exponential backoff with jitter.
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(max: Duration) -> Backoff {
        Backoff {
            next: BACKOFF_START,
            max: max.max(BACKOFF_START),
        }
    }

    /// The delay before the next attempt (and doubles the one after).
    pub(super) fn fail(&mut self) -> Duration {
        use rand::Rng;
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
    }

    pub(super) fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// Logs a link's failures once per outage and its recovery.
pub(super) struct Outage {
    what: &'static str,
    since: Option<(Instant, u32)>,
}

impl Outage {
    pub(super) fn new(what: &'static str) -> Outage {
        Outage { what, since: None }
    }

    pub(super) fn failed(&mut self, err: &dyn std::fmt::Display) {
        match &mut self.since {
            None => {
                warn!(
                    "cluster: {} lost the Redis link: {err}; local clients and ingress are still served; reconnecting with backoff",
                    self.what
                );
                self.since = Some((Instant::now(), 1));
            }
            Some((_, attempts)) => {
                *attempts += 1;
                debug!("cluster: {} reconnect failed: {err}", self.what);
            }
        }
    }

    /// True when this success ends an outage.
    pub(super) fn recovered(&mut self, counters: &Counters) -> bool {
        let Some((since, attempts)) = self.since.take() else {
            return false;
        };
        add(&counters.reconnects, 1);
        info!(
            "cluster: {} reconnected to Redis after {:.1} s ({attempts} failed attempt(s))",
            self.what,
            since.elapsed().as_secs_f64()
        );
        true
    }
}

pub(super) fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
    let conn = client.get_connection_with_timeout(COMMAND_TIMEOUT)?;
    conn.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    conn.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let mut base = BACKOFF_START;
        for _ in 0..10 {
            let d = b.fail();
            assert!(
                d >= base.mul_f64(0.75) && d <= base.mul_f64(1.25),
                "{d:?} around {base:?}"
            );
            base = (base * 2).min(Duration::from_secs(1));
        }
        assert_eq!(base, Duration::from_secs(1), "capped");
        b.reset();
        assert!(b.fail() <= BACKOFF_START.mul_f64(1.25));
        // A cap below the start is raised to the start.
        let mut tiny = Backoff::new(Duration::from_millis(1));
        assert!(tiny.fail() >= BACKOFF_START.mul_f64(0.75));
    }

    #[test]
    fn an_outage_is_logged_once_and_counted_when_it_ends() {
        let counters = Counters::default();
        let mut o = Outage::new("test");
        assert!(!o.recovered(&counters), "no outage: nothing to count");
        o.failed(&"refused");
        o.failed(&"refused again");
        assert!(matches!(o.since, Some((_, 2))));
        assert!(o.recovered(&counters));
        assert_eq!(counters.reconnects.load(Ordering::Relaxed), 1);
        assert!(!o.recovered(&counters));
    }
}
