//! The control socket (`--control PATH`): one command per line, one reply
//! per command (docs/operations.md, "Control socket").
//!
//! | command | reply |
//! | --- | --- |
//! | `stats` | connections, channels and every counter |
//! | `connections` | id, peer, queued bytes and channels of each connection |
//! | `kick ID [CODE]` | closes that connection (default code 1008) |
//! | `publish MESSAGE` | publishes (addressed form: `@news hi`) and answers the receipt |
//! | `events` | from now on, one JSON line per connect and disconnect |
//! | `help` | the commands |
//!
//! A command prefixed with `json ` is answered with exactly one line of
//! JSON; otherwise the reply is text for people and ends with an empty line.

use std::fmt::Write;
use std::time::{Instant, SystemTime};

use log::{info, warn};

use super::Role;
use super::json::Obj;
use crate::protocol::CloseCode;
use crate::server::ingress::{addressed, kind_of};
use crate::server::peer::{PeerState, WsPeer};
use crate::server::route::{ConnId, Route};
use crate::server::stats::Receipt;
use crate::server::{Entry, Server};

/// Bytes a control line may take beyond `--max-message` (`json publish
/// @channel ` before the message).
const LINE_ENVELOPE: usize = 1024;

/// The reason sent with a kick's close frame.
const KICK_REASON: &str = "kicked by the operator";

const HELP: &str = "commands (prefix with `json ` for one line of JSON):
  stats                 connections, channels and every counter
  connections           id, peer, queued bytes and channels of each connection
  kick ID [CODE]        close connection ID (code 1000-1003, 1007-1014 or 3000-4999; default 1008)
  publish MESSAGE       publish; `publish @news hi`, `publish @id:ID hi`, `publish hi` (everyone)
  events                stream connect/disconnect events as JSON lines (no more commands)
  help                  this text
";

/// A control connection's state.
#[derive(Debug, Default)]
pub(crate) struct ControlState {
    /// Streaming events; further input is discarded.
    pub(crate) events: bool,
    /// Events dropped since the subscriber last had room (reported to it in
    /// a `dropped` line as soon as it has).
    dropped: u64,
}

/// A command's answer, before formatting.
enum Answer {
    /// Text for people (the empty line is added) and its JSON.
    Both(String, String),
    Error(String),
    /// `events`: the subscription line, then the stream.
    Subscribed,
}

impl Server {
    /// Handles every complete line in a control connection's input.
    pub(crate) fn control_input(&mut self, key: usize, now: Instant) {
        let limit = self.cfg.limits.max_message + LINE_ENVELOPE;
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return;
        };
        let input = std::mem::take(&mut c.input);
        let mut rest = &input[..];
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..pos];
            rest = &rest[pos + 1..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > limit {
                self.control_over_limit(key, limit);
                return;
            }
            if !self.control_line(key, line, now) {
                return; // gone, or streaming events: the rest is discarded
            }
        }
        if rest.len() > limit {
            self.control_over_limit(key, limit);
            return;
        }
        if let Some(Entry::Ops(c)) = self.entries.get_mut(key) {
            c.input = if rest.is_empty() {
                Vec::new()
            } else {
                rest.to_vec()
            };
        }
    }

    fn control_over_limit(&mut self, key: usize, limit: usize) {
        self.stats.control_errors += 1;
        warn!(
            "control connection {key}: a line over {limit} bytes (--max-message + 1 KiB); closing it"
        );
        if let Some(Entry::Ops(c)) = self.entries.get_mut(key) {
            c.queue(format!("error: a line over {limit} bytes; closing\n\n").into_bytes());
            c.finished = true;
            c.input = Vec::new();
        }
    }

    /// Runs one command line and queues its reply; false when no further
    /// line is to be handled.
    fn control_line(&mut self, key: usize, line: &[u8], now: Instant) -> bool {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return true;
        }
        self.stats.control_commands += 1;
        let (json_out, line) = match line.strip_prefix(b"json ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (cmd, args) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let no_args = |name: &str| -> Result<(), String> {
            if args.is_empty() {
                Ok(())
            } else {
                Err(format!("{name} takes no arguments"))
            }
        };
        let answer = match cmd {
            b"stats" => match no_args("stats") {
                Ok(()) => {
                    let s = self.snapshot();
                    Answer::Both(s.text(), s.json())
                }
                Err(e) => Answer::Error(e),
            },
            b"connections" => match no_args("connections") {
                Ok(()) => Answer::Both(
                    self.connections_report(false),
                    self.connections_report(true),
                ),
                Err(e) => Answer::Error(e),
            },
            b"kick" => self.kick(args, now),
            b"publish" => self.control_publish(args, now),
            b"events" => match no_args("events") {
                Ok(()) => Answer::Subscribed,
                Err(e) => Answer::Error(e),
            },
            b"help" => Answer::Both(HELP.to_owned(), {
                let mut j = String::new();
                Obj::new(&mut j).str("help", HELP).end();
                j
            }),
            other => Answer::Error(format!(
                "unknown command {:?} (try `help`)",
                String::from_utf8_lossy(&other[..other.len().min(40)])
            )),
        };
        let subscriber_limit = self.cfg.ops.max_queued_bytes;
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return false;
        };
        let Role::Control(state) = &mut c.role else {
            return false;
        };
        match answer {
            Answer::Both(text, json) => {
                c.queue(if json_out { json + "\n" } else { text + "\n" }.into_bytes());
            }
            Answer::Error(e) => {
                self.stats.control_errors += 1;
                let reply = if json_out {
                    let mut j = String::new();
                    Obj::new(&mut j).str("error", &e).end();
                    j + "\n"
                } else {
                    format!("error: {e}\n\n")
                };
                c.queue(reply.into_bytes());
            }
            Answer::Subscribed => {
                state.events = true;
                c.input = Vec::new();
                let mut j = String::new();
                Obj::new(&mut j).str("event", "subscribed").end();
                c.queue((j + "\n").into_bytes());
                self.ops.subscribers.push(key);
                info!("control connection {key} subscribed to events");
                return false;
            }
        }
        // A reader that does not read its replies is not kept forever.
        if c.out.queued_bytes() > subscriber_limit {
            self.stats.control_errors += 1;
            warn!(
                "control connection {key}: {} bytes of replies unread (over --ops-max-queued); closing it",
                c.out.queued_bytes()
            );
            c.finished = true;
            c.input = Vec::new();
            return false;
        }
        true
    }

    /// `kick ID [CODE]`.
    fn kick(&mut self, args: &[u8], now: Instant) -> Answer {
        let args = String::from_utf8_lossy(args);
        let mut words = args.split(' ').filter(|w| !w.is_empty());
        let Some(id) = words.next() else {
            return Answer::Error("usage: kick ID [CODE]".into());
        };
        let id: ConnId = match id.parse() {
            Ok(id) => id,
            Err(e) => return Answer::Error(format!("{id:?}: {e}")),
        };
        let code = match words.next().map(str::parse::<u16>) {
            None => CloseCode::POLICY_VIOLATION,
            Some(Ok(c)) if CloseCode(c).is_valid_on_wire() => CloseCode(c),
            Some(_) => {
                return Answer::Error(
                    "the close code must be 1000-1003, 1007-1014 or 3000-4999".into(),
                );
            }
        };
        if words.next().is_some() {
            return Answer::Error("usage: kick ID [CODE]".into());
        }
        let Some(key) = self.routes.conn(&id) else {
            return Answer::Error(format!("no connection {id}"));
        };
        let deadline = match self.entries.get_mut(key) {
            Some(Entry::Ws(peer)) => match &peer.state {
                PeerState::Open(conn) if conn.can_send() => {
                    info!(
                        "id={id} peer={} kicked by the operator (close {code})",
                        peer.addr
                    );
                    peer.out.discard_unstarted();
                    peer.close(code, KICK_REASON, &self.cfg, now)
                }
                _ => return Answer::Error(format!("connection {id} is already closing")),
            },
            _ => return Answer::Error(format!("no connection {id}")),
        };
        self.stats.kicks += 1;
        self.apply_deadline(key, deadline);
        self.mark_dirty(key);
        let mut j = String::new();
        Obj::new(&mut j)
            .str("kicked", &id.to_string())
            .num("code", u64::from(code.0))
            .end();
        Answer::Both(format!("kicked {id} (close {code})\n"), j)
    }

    /// `publish MESSAGE` in the addressed form.
    fn control_publish(&mut self, msg: &[u8], now: Instant) -> Answer {
        if msg.len() > self.cfg.limits.max_message + 128 {
            return Answer::Error("the message is longer than --max-message".into());
        }
        match addressed::parse(msg, self.cfg.channels.max_name_bytes) {
            Ok((route, payload)) => {
                if payload.len() > self.cfg.limits.max_message {
                    return Answer::Error("the message is longer than --max-message".into());
                }
                let r = self.publish(&route, kind_of(payload), payload, now);
                Answer::Both(receipt_text(&route, &r), receipt_json(&r))
            }
            Err(e) => Answer::Error(format!("not published: {e}")),
        }
    }

    /// Queues an event line for every subscriber with room; one without
    /// room loses it (counted, and told with a `dropped` line once it has
    /// read everything queued), so a subscriber that stops reading holds
    /// at most `--ops-max-queued` bytes.
    pub(crate) fn send_event(&mut self, line: String) {
        let limit = self.cfg.ops.max_queued_bytes;
        for i in 0..self.ops.subscribers.len() {
            let key = self.ops.subscribers[i];
            let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
                continue;
            };
            let Role::Control(state) = &mut c.role else {
                continue;
            };
            // Once dropping, keep dropping until the subscriber has read
            // everything queued ([`Server::control_drained`] then tells it
            // how many it lost): one notice per gap, not a notice between
            // every two events that happen to fit.
            if state.dropped > 0 || c.out.queued_bytes() + line.len() > limit {
                state.dropped += 1;
                self.stats.events_dropped += 1;
                continue;
            }
            c.out.push(super::Chunk::Owned(line.clone().into_bytes()));
            self.mark_dirty(key);
        }
    }

    /// A control connection's queue was written out: a subscriber that lost
    /// events learns how many. True when a notice was queued (the caller
    /// writes it; this runs during the end-of-turn flush).
    pub(crate) fn control_drained(&mut self, key: usize) -> bool {
        let Some(Entry::Ops(c)) = self.entries.get_mut(key) else {
            return false;
        };
        match &mut c.role {
            Role::Control(state) if state.dropped > 0 => {
                let notice = dropped_line(state.dropped);
                state.dropped = 0;
                c.out.push(super::Chunk::Owned(notice.into_bytes()));
                true
            }
            _ => false,
        }
    }
}

fn dropped_line(count: u64) -> String {
    let mut j = String::new();
    Obj::new(&mut j)
        .str("event", "dropped")
        .num("count", count)
        .end();
    j + "\n"
}

/// A receipt for people.
fn receipt_text(route: &Route, r: &Receipt) -> String {
    let to = match route {
        Route::All => "everyone".to_owned(),
        Route::Channel(c) => format!("channel {c}"),
        Route::Conn(id) => format!("connection {id}"),
    };
    let relayed = if r.relayed {
        "; relayed to the other nodes"
    } else {
        ""
    };
    format!(
        "published to {to}: queued {}, skipped_slow {}, skipped_closing {}{relayed}\n",
        r.queued, r.skipped_slow, r.skipped_closing
    )
}

/// `{"queued":N,"skipped_slow":N,"skipped_closing":N,"relayed":B}`, as the
/// RPC ingress answers.
pub(crate) fn receipt_json(r: &Receipt) -> String {
    let mut j = String::new();
    Obj::new(&mut j)
        .num("queued", r.queued as u64)
        .num("skipped_slow", r.skipped_slow as u64)
        .num("skipped_closing", r.skipped_closing as u64)
        .raw("relayed", if r.relayed { "true" } else { "false" })
        .end();
    j
}

/// One `events` line: `connect` or `disconnect` (with the close code,
/// reason and who closed) for a WebSocket connection.
pub(crate) fn event_line(event: &str, peer: &WsPeer, close: Option<(u16, &str, &str)>) -> String {
    let mut j = String::new();
    {
        let mut o = Obj::new(&mut j);
        o.str("event", event)
            .str("id", &peer.id.to_string())
            .str("peer", &peer.addr.to_string())
            .strs("channels", peer.channels.iter().map(|c| &**c));
        if let Some((code, reason, by)) = close {
            o.num("code", u64::from(code))
                .str("reason", reason)
                .str("by", by);
        }
        o.num("time_ms", super::unix_ms(SystemTime::now())).end();
    }
    let _ = writeln!(j);
    j
}
