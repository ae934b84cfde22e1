//! The publisher thread: its own Redis connection, fed by the loop through a
//! bounded queue; pipelined PUBLISHes, a heartbeat every `--cluster-heartbeat`,
//! reconnection with backoff. Nothing is ever retried (at most once).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use log::info;

use super::ClusterConfig;
use super::link::{Backoff, Outage, Outgoing, Shared, add, connect};
use super::wire::{self, Channels, Target};
use crate::server::history::{EVERYONE, Epoch};
use crate::server::route::NodeId;

/// Messages published per pipeline round trip, at most.
const BATCH: usize = 256;

/// The publisher thread: sends what the loop relays, and a heartbeat every
/// `cfg.heartbeat`. Stops when the loop's end of the queue is dropped.
pub(crate) fn run(
    client: redis::Client,
    cfg: ClusterConfig,
    node: NodeId,
    nonce: u64,
    rx: Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let names = Channels::new(&cfg.prefix, node);
    let cluster = names.cluster();
    let mut conn: Option<redis::Connection> = None;
    let stream_channel = names.stream();
    let maxlen = cfg.shared_history.to_string();
    // The sequencer's SHA1, loaded on every (re)connection: EVALSHA then
    // sends 40 bytes instead of the script.
    let mut sequencer: Option<String> = None;
    let mut backoff = Backoff::new(cfg.reconnect_max);
    let mut outage = Outage::new("publisher");
    let mut retry_at = Instant::now();
    let mut heartbeat_at = Instant::now();
    let mut seq: u64 = 0;
    let counters = &shared.counters;
    let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
    loop {
        let now = Instant::now();
        if conn.is_none() && now >= retry_at {
            let connected = connect(&client).and_then(|mut c| {
                if cfg.shared_history > 0 {
                    let sha: String = redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(wire::SEQUENCER)
                        .query(&mut c)?;
                    sequencer = Some(sha);
                }
                Ok(c)
            });
            match connected {
                Ok(c) => {
                    if !outage.recovered(counters) {
                        info!("cluster: publisher connected to {}", cfg.display_url());
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
        let wake_at = if conn.is_some() {
            heartbeat_at
        } else {
            retry_at
        };
        let wait = wake_at.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(m) => batch.push(m),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let taken: usize = batch.iter().map(Outgoing::payload_len).sum();
        shared.relay_queued.fetch_sub(taken, Ordering::AcqRel);
        let Some(c) = conn.as_mut() else {
            // No link: what the loop relayed now reaches local clients only.
            add(&counters.relay_dropped, batch.len() as u64);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        let mut messages = 0u64;
        for m in batch.drain(..) {
            let (target, kind, payload) = match m {
                Outgoing::Message {
                    target,
                    kind,
                    payload,
                } => (target, kind, payload),
                Outgoing::Stream {
                    target,
                    kind,
                    payload,
                } => {
                    let Some(sha) = &sequencer else {
                        continue; // not sent without --redis-history
                    };
                    let streams: Vec<&str> = match &target {
                        Target::All => vec![EVERYONE],
                        Target::Channels(c) => c.iter().map(String::as_str).collect(),
                        Target::Conn(_) => continue, // never sequenced
                    };
                    let cmd = pipe.cmd("EVALSHA").arg(sha).arg(2 * streams.len());
                    for st in &streams {
                        cmd.arg(names.hist_key(st)).arg(names.epoch_key(st));
                    }
                    let bytes = wire::encode_message(node, 0, &target, kind, &payload);
                    cmd.arg(&stream_channel).arg(&maxlen).arg(bytes);
                    for _ in &streams {
                        cmd.arg(Epoch::random().as_str());
                    }
                    cmd.ignore();
                    messages += 1;
                    continue;
                }
            };
            let (channel, s) = match &target {
                Target::Conn(id) => (names.cluster_node(id.node()), 0),
                _ => {
                    seq += 1;
                    (cluster.clone(), seq)
                }
            };
            let bytes = wire::encode_message(node, s, &target, kind, &payload);
            pipe.cmd("PUBLISH").arg(channel).arg(bytes).ignore();
            messages += 1;
        }
        if Instant::now() >= heartbeat_at {
            seq += 1;
            pipe.cmd("PUBLISH")
                .arg(&cluster)
                .arg(wire::encode_heartbeat(node, seq, nonce))
                .ignore();
            heartbeat_at = Instant::now() + cfg.heartbeat;
        }
        match pipe.exec(c) {
            Ok(()) => add(&counters.relayed, messages),
            Err(e) => {
                // Maybe published, maybe not: never retried (at most once).
                add(&counters.relay_dropped, messages);
                outage.failed(&e);
                conn = None;
                retry_at = Instant::now() + backoff.fail();
            }
        }
    }
}
