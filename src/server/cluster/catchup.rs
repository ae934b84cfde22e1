//! The catch-up thread (`--redis-history`): answers, from Redis, the joins
//! a node's own ring cannot ([`wire::CATCH_UP`]), on its own connection, so
//! the event loop never waits for Redis. Requests come through a bounded
//! queue (at most [`MAX_IN_FLIGHT`] at once, counted by the loop); every
//! request gets exactly one reply, by its deadline (`--redis-history-timeout`):
//! a request still queued at its deadline, or asked while the link is down
//! (between reconnection attempts), is answered `unavailable` at once.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use log::{debug, info};
use mio::Waker;

use super::ClusterConfig;
use super::link::{Backoff, Outage, Shared};
use super::wire::{self, CatchUp, Channels, Envelope};
use crate::protocol::MessageKind;
use crate::protocol::frame::encode_server_frame;
use crate::server::history::pending::Answer;
use crate::server::history::{Epoch, Position, Reset, envelope};
use crate::server::route::{ConnId, NodeId};

/// Catch-ups from Redis in progress at once, at most (per node); more joins
/// that need one are answered `unavailable`.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

/// One join to answer from Redis.
#[derive(Debug)]
pub(crate) struct Request {
    /// The client: its slab key and id (the key may be reused).
    pub(crate) key: usize,
    pub(crate) id: ConnId,
    pub(crate) stream: Box<str>,
    /// The client's `since=` (offset, epoch), if any.
    pub(crate) since: Option<(u64, Epoch)>,
    /// Most bytes of entries to fetch (what is left of the client's
    /// catch-up budget).
    pub(crate) max_bytes: usize,
    /// Answered `unavailable` if Redis has not answered by then.
    pub(crate) deadline: Instant,
}

/// Redis's answer for one join.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) key: usize,
    pub(crate) id: ConnId,
    pub(crate) stream: Box<str>,
    pub(crate) answer: Answer,
}

/// The thread: one reply per request. Stops when the loop is gone.
pub(crate) fn run(
    client: redis::Client,
    cfg: ClusterConfig,
    node: NodeId,
    rx: Receiver<Request>,
    tx: SyncSender<Reply>,
    waker: Arc<Waker>,
    shared: Arc<Shared>,
) {
    let names = Channels::new(&cfg.prefix, node);
    let max_age_ms = cfg.history_max_age.as_millis().to_string();
    let mut conn: Option<(redis::Connection, String)> = None;
    let mut backoff = Backoff::new(cfg.reconnect_max);
    let mut outage = Outage::new("catch-up");
    let mut retry_at = Instant::now();
    while let Ok(req) = rx.recv() {
        // Two attempts when the link broke under us (Redis restarted, an
        // idle connection closed, the script flushed): the script is safe
        // to run twice.
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let now = Instant::now();
            if conn.is_none() && now >= retry_at && now < req.deadline {
                match connect(&client, req.deadline - now) {
                    Ok(c) => {
                        if !outage.recovered(&shared.counters) {
                            info!("cluster: catch-up connected to {}", cfg.display_url());
                        }
                        backoff.reset();
                        conn = Some(c);
                    }
                    Err(e) => {
                        outage.failed(&e);
                        retry_at = Instant::now() + backoff.fail();
                    }
                }
            }
            let Some((c, sha)) = conn.as_mut().filter(|_| Instant::now() < req.deadline) else {
                break Answer::Refused(Reset::Unavailable);
            };
            match ask(c, sha, &names, &req, &max_age_ms) {
                Ok(a) => break a,
                Err(e) => {
                    // A late reply would put the connection out of step: a
                    // new one for the next attempt.
                    conn = None;
                    let broken = e.is_connection_dropped()
                        || (e.is_io_error() && !e.is_timeout())
                        || e.code() == Some("NOSCRIPT");
                    if broken && attempts < 2 {
                        debug!("cluster: catch-up of {:?}: {e}; retrying", req.stream);
                        continue;
                    }
                    debug!("cluster: catch-up of {:?} failed: {e}", req.stream);
                    outage.failed(&e);
                    retry_at = Instant::now() + backoff.fail();
                    break Answer::Refused(Reset::Unavailable);
                }
            }
        };
        let reply = Reply {
            key: req.key,
            id: req.id,
            stream: req.stream,
            answer,
        };
        if tx.send(reply).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

fn connect(
    client: &redis::Client,
    within: Duration,
) -> redis::RedisResult<(redis::Connection, String)> {
    let mut c = client.get_connection_with_timeout(within)?;
    c.set_read_timeout(Some(within))?;
    c.set_write_timeout(Some(within))?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(wire::CATCH_UP)
        .query(&mut c)?;
    Ok((c, sha))
}

/// Runs [`wire::CATCH_UP`] for `req` and turns its entries into envelope
/// frames. An error is a link failure, no answer by the deadline, or a
/// Redis error (`NOSCRIPT` after a restart or `SCRIPT FLUSH`).
fn ask(
    c: &mut redis::Connection,
    sha: &str,
    names: &Channels,
    req: &Request,
    max_age_ms: &str,
) -> redis::RedisResult<Answer> {
    let left = req
        .deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    c.set_read_timeout(Some(left))?;
    c.set_write_timeout(Some(left))?;
    let (offset, epoch) = match req.since {
        Some((o, e)) => (o.to_string(), e.as_str().to_owned()),
        None => (String::new(), String::new()),
    };
    let v: redis::Value = redis::cmd("EVALSHA")
        .arg(sha)
        .arg(2)
        .arg(names.hist_key(&req.stream))
        .arg(names.epoch_key(&req.stream))
        .arg(Epoch::random().as_str())
        .arg(offset)
        .arg(epoch)
        .arg(req.max_bytes)
        .arg(max_age_ms)
        .query(c)?;
    let got = match wire::decode_catch_up(v, req.since.map(|(o, _)| o)) {
        Ok(g) => g,
        Err(why) => {
            log::warn!("cluster: a catch-up answer from Redis is malformed: {why}");
            return Ok(Answer::Refused(Reset::Unavailable));
        }
    };
    Ok(match got {
        CatchUp::Position { at, reset } => Answer::Position { at, reset },
        CatchUp::Entries {
            epoch,
            newest,
            entries,
        } => {
            let since = newest - entries.len() as u64;
            let mut frames = Vec::with_capacity(entries.len());
            for (i, d) in entries.iter().enumerate() {
                let at = Position {
                    epoch,
                    offset: since + 1 + i as u64,
                };
                // What the sequencer stored: a node envelope (any length: it
                // was checked when it entered a node).
                match wire::decode_envelope(d, usize::MAX) {
                    Ok(Envelope::Message { kind, payload, .. }) => {
                        let json = envelope::message(&req.stream, at, kind, &payload);
                        frames.push(encode_server_frame(
                            MessageKind::Text.opcode(),
                            json.as_bytes(),
                        ));
                    }
                    _ => {
                        // Never skipped silently: the client reloads.
                        log::warn!(
                            "cluster: entry {} of stream {:?} in Redis is not a message envelope",
                            at.offset,
                            req.stream
                        );
                        return Ok(Answer::Position {
                            at: Position {
                                epoch,
                                offset: newest,
                            },
                            reset: Some(Reset::TooOld),
                        });
                    }
                }
            }
            Answer::Replay {
                epoch,
                since,
                frames,
            }
        }
    })
}
