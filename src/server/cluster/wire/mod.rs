//! What travels over Redis, as pure functions: the channel names, the
//! node-to-node envelope, and what an external emitter's message means
//! (docs/cluster.md, docs/ingress.md).
//!
//! Channels under a prefix `P` (`--redis-prefix`, default `wsbroadcaster`):
//!
//! | channel | who publishes | payload |
//! | --- | --- | --- |
//! | `P:all` | anyone (`redis-cli PUBLISH wsbroadcaster:all hello`) | raw message, to everyone |
//! | `P:ch:NAME` | anyone | raw message, to channel NAME |
//! | `P:id:CONNID` | anyone | raw message, to one connection |
//! | `P:cluster` | nodes only | [`Envelope`]: broadcasts, channel messages, heartbeats |
//! | `P:cluster:NODE` | nodes only | [`Envelope`]: a send to a connection of NODE |
//!
//! A raw payload is valid UTF-8 → text frame, anything else → binary, as
//! for UDP. An envelope is MessagePack:
//!
//! - message `[0, node, seq, route, payload]`: `route` nil (everyone), an
//!   array of channel names (their union, each member once) or a connection
//!   id string; `payload` str (text frame) or bin (binary frame);
//! - heartbeat `[1, node, seq, nonce]`.
//!
//! `seq` counts every envelope a node publishes on `P:cluster` (1, 2, 3, …),
//! so every node sees every other node's complete sequence and a gap is a
//! lost message; a targeted send on `P:cluster:NODE` carries `seq` 0
//! (unsequenced: only one node sees it).

use rmpv::Value;

use crate::protocol::MessageKind;
use crate::server::history::{Epoch, Position};
use crate::server::route::{ConnId, NodeId, Route, valid_channel_name};

/// Longest `--redis-prefix`.
pub(crate) const MAX_PREFIX: usize = 64;

/// Checks a `--redis-prefix`: 1 to 64 bytes of `A-Z a-z 0-9 _ . - :`, so it
/// needs no escaping in a Redis glob pattern.
pub fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PREFIX
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

/// One node's Redis channel names.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    prefix: String,
    node: NodeId,
}

impl Channels {
    pub(crate) fn new(prefix: &str, node: NodeId) -> Channels {
        Channels {
            prefix: prefix.to_owned(),
            node,
        }
    }

    /// `P:all`: external messages for everyone.
    pub(crate) fn all(&self) -> String {
        format!("{}:all", self.prefix)
    }

    /// `P:ch:*`: external messages for a channel (pattern).
    pub(crate) fn channel_pattern(&self) -> String {
        format!("{}:ch:*", self.prefix)
    }

    /// `P:id:NODE.*`: external messages for this node's connections (pattern).
    pub(crate) fn own_ids_pattern(&self) -> String {
        format!("{}:id:{}.*", self.prefix, self.node)
    }

    /// `P:cluster`: every node's sequenced envelopes.
    pub(crate) fn cluster(&self) -> String {
        format!("{}:cluster", self.prefix)
    }

    /// `P:cluster:NODE`: envelopes for one node's connections.
    pub(crate) fn cluster_node(&self, node: NodeId) -> String {
        format!("{}:cluster:{node}", self.prefix)
    }

    /// `P:stream`: sequenced messages with their stream positions
    /// (`--redis-history`), published by [`SEQUENCER`] only.
    pub(crate) fn stream(&self) -> String {
        format!("{}:stream", self.prefix)
    }

    /// `P:hist:STREAM`: a stream's kept messages (a Redis stream; entry
    /// `0-OFFSET`, field `d`: the node envelope).
    pub(crate) fn hist_key(&self, stream: &str) -> String {
        format!("{}:hist:{stream}", self.prefix)
    }

    /// `P:epoch:STREAM`: a stream's epoch and newest offset (a hash, fields
    /// `ep` and `off`).
    pub(crate) fn epoch_key(&self, stream: &str) -> String {
        format!("{}:epoch:{stream}", self.prefix)
    }

    /// Which of our subscriptions a message arrived on, and what it names.
    pub(crate) fn classify<'a>(&self, channel: &'a str) -> Incoming<'a> {
        let Some(rest) = channel
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
        else {
            return Incoming::Unknown;
        };
        if rest == "all" {
            return Incoming::ExternalAll;
        }
        if let Some(name) = rest.strip_prefix("ch:") {
            return Incoming::ExternalChannel(name);
        }
        if let Some(id) = rest.strip_prefix("id:") {
            return Incoming::ExternalConn(id);
        }
        if rest == "stream" {
            return Incoming::Stream;
        }
        if rest == "cluster" || rest.strip_prefix("cluster:") == Some(&self.node.to_string()) {
            return Incoming::Envelope;
        }
        Incoming::Unknown
    }
}

/// What a subscribed channel carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// `P:all`.
    ExternalAll,
    /// `P:ch:NAME` (the name is not checked yet).
    ExternalChannel(&'a str),
    /// `P:id:CONNID` (not parsed yet).
    ExternalConn(&'a str),
    /// `P:cluster` or our own `P:cluster:NODE`.
    Envelope,
    /// `P:stream`: a sequenced message ([`decode_sequenced`]).
    Stream,
    /// Anything else (not one of our names).
    Unknown,
}

/// Where a message relayed between nodes goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Everyone.
    All,
    /// The union of these channels' members, each connection once.
    Channels(Vec<String>),
    /// One connection.
    Conn(ConnId),
}

impl Target {
    /// The target of a [`Route`].
    pub(crate) fn of(route: &Route) -> Target {
        match route {
            Route::All => Target::All,
            Route::Channel(c) => Target::Channels(vec![c.clone()]),
            Route::Conn(id) => Target::Conn(*id),
        }
    }
}

/// A decoded node-to-node envelope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// A message to deliver.
    Message {
        node: NodeId,
        seq: u64,
        target: Target,
        kind: MessageKind,
        payload: Vec<u8>,
    },
    /// A heartbeat: proves the link from `node` works; `nonce` tells two
    /// processes that picked the same node id apart.
    Heartbeat { node: NodeId, seq: u64, nonce: u64 },
}

const TYPE_MESSAGE: u8 = 0;
const TYPE_HEARTBEAT: u8 = 1;

/// Encodes a message envelope.
pub(crate) fn encode_message(
    node: NodeId,
    seq: u64,
    target: &Target,
    kind: MessageKind,
    payload: &[u8],
) -> Vec<u8> {
    let route = match target {
        Target::All => Value::Nil,
        Target::Channels(list) => {
            Value::Array(list.iter().map(|c| Value::from(c.as_str())).collect())
        }
        Target::Conn(id) => Value::from(id.to_string()),
    };
    let mut out = Vec::with_capacity(payload.len() + 32);
    // Written by hand around the payload so it is copied once.
    let head = [
        Value::from(TYPE_MESSAGE),
        Value::from(node.to_string()),
        Value::from(seq),
        route,
    ];
    let _ = rmp::encode::write_array_len(&mut out, 5);
    for v in &head {
        let _ = rmpv::encode::write_value(&mut out, v);
    }
    // A payload over 4 GiB cannot happen: --max-message bounds it.
    let len = payload.len() as u32;
    let _ = match kind {
        MessageKind::Text => rmp::encode::write_str_len(&mut out, len).map(|_| ()),
        MessageKind::Binary => rmp::encode::write_bin_len(&mut out, len).map(|_| ()),
    };
    out.extend_from_slice(payload);
    out
}

/// The one sequencer of every stream (`--redis-history`), run by the
/// publisher thread with `EVALSHA`, atomically: for each stream `i` of the
/// message (`*`, or each of its channels), `KEYS[2i-1]` is `P:hist:STREAM`
/// and `KEYS[2i]` is `P:epoch:STREAM`. A stream without an epoch key (new,
/// or Redis lost it) gets `ARGV[3+i]` (a fresh random epoch) and starts at
/// offset 1 (its old entries, if any, are deleted). The message is appended
/// as entry `0-OFFSET` (`XADD … MAXLEN ~ ARGV[2]`; fields `d`, the node
/// envelope, and `t`, Redis's clock in milliseconds), and published on
/// `ARGV[1]` (`P:stream`) as `EP:OFF[,EP:OFF…]|ENVELOPE`, so every node sees
/// every stream's messages in the order of their offsets.
pub(crate) const SEQUENCER: &str = r#"
local head = {}
local now = redis.call('TIME')
local ms = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000))
for i = 1, #KEYS / 2 do
  local hist, meta = KEYS[2 * i - 1], KEYS[2 * i]
  local ep = redis.call('HGET', meta, 'ep')
  if not ep then
    ep = ARGV[3 + i]
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'ep', ep, 'off', 0)
  end
  local off = string.format('%d', redis.call('HINCRBY', meta, 'off', 1))
  redis.call('XADD', hist, 'MAXLEN', '~', ARGV[2], '0-' .. off, 'd', ARGV[3], 't', ms)
  head[i] = ep .. ':' .. off
end
redis.call('PUBLISH', ARGV[1], table.concat(head, ',') .. '|' .. ARGV[3])
return #head
"#;

/// A join this node could not answer from its own ring, answered by Redis
/// (docs/recovery.md, "Across nodes"), run by the catch-up thread with
/// `EVALSHA`: `KEYS[1]` is `P:hist:STREAM`, `KEYS[2]` `P:epoch:STREAM`;
/// `ARGV[1]` a fresh epoch, `ARGV[2]` the client's offset (empty: no
/// `since=`), `ARGV[3]` its epoch, `ARGV[4]` the most bytes of entries to
/// return, `ARGV[5]` `--history-max-age` in milliseconds (0: none).
///
/// A stream without an epoch gets `ARGV[1]` now, as [`SEQUENCER`] would
/// give it (so a client that joins a stream before its first message gets
/// the epoch every node will use). The reply is `{STATUS, EPOCH, NEWEST,
/// ENTRY…}`: `position` (no `since`), `epoch` (another epoch), `ahead`
/// (beyond the newest offset), `too_old` (an entry after the offset was
/// trimmed, is older than the time bound, or the entries exceed `ARGV[4]`),
/// or `ok` with the `d` field of every entry after the offset, oldest
/// first (they are `0-(since+1)` … `0-NEWEST`, checked).
pub(crate) const CATCH_UP: &str = r#"
local hist, meta = KEYS[1], KEYS[2]
local ep = redis.call('HGET', meta, 'ep')
if not ep then
  ep = ARGV[1]
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'ep', ep, 'off', 0)
end
local newest = tonumber(redis.call('HGET', meta, 'off'))
if ARGV[2] == '' then return {'position', ep, newest} end
if ep ~= ARGV[3] then return {'epoch', ep, newest} end
local since = tonumber(ARGV[2])
if since > newest then return {'ahead', ep, newest} end
local out = {'ok', ep, newest}
local budget, bytes = tonumber(ARGV[4]), 0
local oldest = 0
if tonumber(ARGV[5]) > 0 then
  local now = redis.call('TIME')
  oldest = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[5])
end
local want = since + 1
while want <= newest do
  local page = redis.call('XRANGE', hist, '0-' .. string.format('%d', want), '+', 'COUNT', 512)
  if #page == 0 then return {'too_old', ep, newest} end
  for _, e in ipairs(page) do
    if e[1] ~= '0-' .. string.format('%d', want) then return {'too_old', ep, newest} end
    local f, d, t = e[2], nil, nil
    for j = 1, #f, 2 do
      if f[j] == 'd' then d = f[j + 1] elseif f[j] == 't' then t = tonumber(f[j + 1]) end
    end
    if not d or (oldest > 0 and (not t or t < oldest)) then return {'too_old', ep, newest} end
    bytes = bytes + #d
    if bytes > budget then return {'too_old', ep, newest} end
    out[#out + 1] = d
    if want == newest then return out end
    want = want + 1
  end
end
return out
"#;

/// What [`CATCH_UP`] answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// The stream's position (`reset` set when the `since=` is refused).
    Position {
        at: Position,
        reset: Option<crate::server::history::Reset>,
    },
    /// The node envelopes of every message after the offset, oldest first;
    /// the last one is `newest`.
    Entries {
        epoch: Epoch,
        newest: u64,
        entries: Vec<Vec<u8>>,
    },
}

/// Decodes what [`CATCH_UP`] returns.
pub(crate) fn decode_catch_up(v: redis::Value, since: Option<u64>) -> Result<CatchUp, String> {
    use crate::server::history::Reset;
    let redis::Value::Array(items) = v else {
        return Err("not an array".into());
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut it = items.into_iter();
    let (Some(status), Some(ep), Some(newest)) = (it.next(), it.next(), it.next()) else {
        return Err("fewer than three items".into());
    };
    let status = text(&status).ok_or("the status is not a string")?;
    let epoch = text(&ep)
        .as_deref()
        .and_then(Epoch::parse)
        .ok_or("not an epoch")?;
    let newest = match newest {
        redis::Value::Int(n) => u64::try_from(n).map_err(|_| "a negative offset")?,
        _ => return Err("the newest offset is not an integer".into()),
    };
    let at = Position {
        epoch,
        offset: newest,
    };
    let reset = match status.as_str() {
        "position" => None,
        "epoch" => Some(Reset::Epoch),
        "ahead" => Some(Reset::Ahead),
        "too_old" => Some(Reset::TooOld),
        "ok" => {
            let since = since.ok_or("entries for a join without since")?;
            let mut entries = Vec::new();
            for e in it {
                match e {
                    redis::Value::BulkString(b) => entries.push(b),
                    _ => return Err("an entry is not a string".into()),
                }
            }
            if since + entries.len() as u64 != newest {
                return Err("not every entry up to the newest".into());
            }
            return Ok(CatchUp::Entries {
                epoch,
                newest,
                entries,
            });
        }
        _ => return Err(format!("unknown status {status:?}")),
    };
    Ok(CatchUp::Position { at, reset })
}

/// A message the sequencer published on `P:stream`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sequenced {
    /// One position per stream of `target`: `*` for everyone, else each
    /// channel in order.
    pub(crate) at: Vec<Position>,
    pub(crate) target: Target,
    pub(crate) kind: MessageKind,
    pub(crate) payload: Vec<u8>,
}

/// Decodes what [`SEQUENCER`] publishes.
pub(crate) fn decode_sequenced(bytes: &[u8], max_name: usize) -> Result<Sequenced, String> {
    let bar = bytes
        .iter()
        .position(|&b| b == b'|')
        .ok_or("no position header")?;
    let head = std::str::from_utf8(&bytes[..bar]).map_err(|_| "the header is not UTF-8")?;
    let mut at = Vec::new();
    for p in head.split(',') {
        let (ep, off) = p.split_once(':').ok_or("a position is not EPOCH:OFFSET")?;
        at.push(Position {
            epoch: Epoch::parse(ep).ok_or("not an epoch")?,
            offset: off.parse().map_err(|_| "not an offset")?,
        });
    }
    match decode_envelope(&bytes[bar + 1..], max_name)? {
        Envelope::Message {
            target,
            kind,
            payload,
            ..
        } => {
            let streams = match &target {
                Target::All => 1,
                Target::Channels(c) => c.len(),
                Target::Conn(_) => return Err("a connection is not a stream".into()),
            };
            if streams != at.len() {
                return Err("not one position per stream".into());
            }
            Ok(Sequenced {
                at,
                target,
                kind,
                payload,
            })
        }
        Envelope::Heartbeat { .. } => Err("a heartbeat is not sequenced".into()),
    }
}

/// Encodes a heartbeat envelope.
pub(crate) fn encode_heartbeat(node: NodeId, seq: u64, nonce: u64) -> Vec<u8> {
    let v = Value::Array(vec![
        Value::from(TYPE_HEARTBEAT),
        Value::from(node.to_string()),
        Value::from(seq),
        Value::from(nonce),
    ]);
    let mut out = Vec::with_capacity(32);
    let _ = rmpv::encode::write_value(&mut out, &v);
    out
}

/// Decodes an envelope; the error says what is wrong (for the log).
pub(crate) fn decode_envelope(bytes: &[u8], max_name: usize) -> Result<Envelope, String> {
    let mut rd = bytes;
    let v = rmpv::decode::read_value_ref(&mut rd).map_err(|e| format!("not MessagePack: {e}"))?;
    if !rd.is_empty() {
        return Err("trailing bytes after the envelope".into());
    }
    let rmpv::ValueRef::Array(items) = v else {
        return Err("not an array".into());
    };
    let uint = |i: usize| items.get(i).and_then(|v| v.as_u64());
    let node = match items.get(1) {
        Some(rmpv::ValueRef::String(s)) => s.as_str().and_then(NodeId::parse),
        _ => None,
    }
    .ok_or("the node is not a node id")?;
    let seq = uint(2).ok_or("the sequence number is not an unsigned integer")?;
    match (uint(0), items.len()) {
        (Some(t), 5) if t == u64::from(TYPE_MESSAGE) => {
            let target = match &items[3] {
                rmpv::ValueRef::Nil => Target::All,
                rmpv::ValueRef::String(s) => Target::Conn(
                    s.as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or("the route is not a connection id")?,
                ),
                rmpv::ValueRef::Array(list) if !list.is_empty() => {
                    let mut names = Vec::with_capacity(list.len());
                    for c in list {
                        match c {
                            rmpv::ValueRef::String(s)
                                if s.as_str().is_some_and(|n| {
                                    valid_channel_name(n.as_bytes(), max_name)
                                }) =>
                            {
                                names.push(s.as_str().unwrap_or_default().to_owned())
                            }
                            _ => return Err("a route channel is not a valid channel name".into()),
                        }
                    }
                    Target::Channels(names)
                }
                _ => return Err("the route is not nil, a channel list or a connection id".into()),
            };
            let (kind, payload) = match &items[4] {
                rmpv::ValueRef::String(s) => (
                    MessageKind::Text,
                    s.as_str().ok_or("a text payload is not UTF-8")?.as_bytes(),
                ),
                rmpv::ValueRef::Binary(b) => (MessageKind::Binary, *b),
                _ => return Err("the payload is not str or bin".into()),
            };
            Ok(Envelope::Message {
                node,
                seq,
                target,
                kind,
                payload: payload.to_vec(),
            })
        }
        (Some(t), 4) if t == u64::from(TYPE_HEARTBEAT) => Ok(Envelope::Heartbeat {
            node,
            seq,
            nonce: uint(3).ok_or("the heartbeat nonce is not an unsigned integer")?,
        }),
        _ => Err("unknown envelope type or length".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequenced_messages() {
        let env = encode_message(
            node("aaaaaa"),
            0,
            &Target::Channels(vec!["a".into(), "b".into()]),
            MessageKind::Text,
            b"hi|there",
        );
        let mut bytes = b"0123456789ab:7,ba9876543210:1|".to_vec();
        bytes.extend_from_slice(&env);
        let s = decode_sequenced(&bytes, 64).unwrap();
        assert_eq!(s.at[0].offset, 7);
        assert_eq!(s.at[1].epoch.as_str(), "ba9876543210");
        assert_eq!(
            (s.kind, &s.payload[..]),
            (MessageKind::Text, &b"hi|there"[..])
        );
        let mut one = b"0123456789ab:7|".to_vec();
        one.extend_from_slice(&env);
        assert!(
            decode_sequenced(&one, 64).is_err(),
            "two streams, one position"
        );
        assert!(decode_sequenced(b"0123456789ab:x|", 64).is_err());
        assert!(decode_sequenced(&env, 64).is_err(), "no header");
    }

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn catch_up_answers() {
        use crate::server::history::Reset;
        use redis::Value as V;
        let b = |s: &str| V::BulkString(s.as_bytes().to_vec());
        let ep = Epoch::parse("0123456789ab").unwrap();
        let reply = |status: &str, newest: i64, entries: &[&str]| {
            let mut v = vec![b(status), b("0123456789ab"), V::Int(newest)];
            v.extend(entries.iter().map(|e| b(e)));
            V::Array(v)
        };
        assert_eq!(
            decode_catch_up(reply("position", 7, &[]), None),
            Ok(CatchUp::Position {
                at: Position {
                    epoch: ep,
                    offset: 7
                },
                reset: None
            })
        );
        for (status, reset) in [
            ("epoch", Reset::Epoch),
            ("ahead", Reset::Ahead),
            ("too_old", Reset::TooOld),
        ] {
            assert!(matches!(
                decode_catch_up(reply(status, 7, &[]), Some(3)),
                Ok(CatchUp::Position { reset: Some(r), .. }) if r == reset
            ));
        }
        assert_eq!(
            decode_catch_up(reply("ok", 7, &["a", "b"]), Some(5)),
            Ok(CatchUp::Entries {
                epoch: ep,
                newest: 7,
                entries: vec![b"a".to_vec(), b"b".to_vec()]
            })
        );
        // Not every entry up to the newest, no since, junk.
        assert!(decode_catch_up(reply("ok", 7, &["a"]), Some(5)).is_err());
        assert!(decode_catch_up(reply("ok", 7, &[]), None).is_err());
        assert!(decode_catch_up(reply("what", 7, &[]), None).is_err());
        assert!(decode_catch_up(reply("ok", -1, &[]), Some(0)).is_err());
        assert!(decode_catch_up(V::Int(1), None).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(valid_prefix("wsbroadcaster"));
        assert!(valid_prefix("app:prod.v2-x_y"));
        assert!(!valid_prefix(""));
        assert!(!valid_prefix("a*"));
        assert!(!valid_prefix("a b"));
        assert!(!valid_prefix("a[b]"));
        assert!(!valid_prefix(&"a".repeat(65)));
    }

    #[test]
    fn channel_names_and_classification() {
        let me = node("abc123");
        let c = Channels::new("wsb", me);
        assert_eq!(c.all(), "wsb:all");
        assert_eq!(c.channel_pattern(), "wsb:ch:*");
        assert_eq!(c.own_ids_pattern(), "wsb:id:abc123.*");
        assert_eq!(c.cluster(), "wsb:cluster");
        assert_eq!(c.cluster_node(node("zzz999")), "wsb:cluster:zzz999");
        assert_eq!(c.classify("wsb:all"), Incoming::ExternalAll);
        assert_eq!(c.classify("wsb:ch:news"), Incoming::ExternalChannel("news"));
        assert_eq!(c.classify("wsb:ch:"), Incoming::ExternalChannel(""));
        assert_eq!(
            c.classify("wsb:id:abc123.1f"),
            Incoming::ExternalConn("abc123.1f")
        );
        assert_eq!(c.classify("wsb:cluster"), Incoming::Envelope);
        assert_eq!(c.classify("wsb:cluster:abc123"), Incoming::Envelope);
        assert_eq!(c.classify("wsb:cluster:zzz999"), Incoming::Unknown);
        assert_eq!(c.classify("wsbx:all"), Incoming::Unknown);
        assert_eq!(c.classify("other"), Incoming::Unknown);
    }

    #[test]
    fn envelopes_round_trip() {
        let n = node("k3j9x2");
        let id: ConnId = "zzz999.2s".parse().unwrap();
        let targets = [
            Target::All,
            Target::Channels(vec!["news".into(), "sport".into()]),
            Target::Conn(id),
        ];
        for target in targets {
            for (kind, payload) in [
                (MessageKind::Text, "héllo".as_bytes()),
                (MessageKind::Binary, &b"\xff\x00"[..]),
                (MessageKind::Text, &b""[..]),
            ] {
                let bytes = encode_message(n, 42, &target, kind, payload);
                let got = decode_envelope(&bytes, 64).unwrap();
                assert_eq!(
                    got,
                    Envelope::Message {
                        node: n,
                        seq: 42,
                        target: target.clone(),
                        kind,
                        payload: payload.to_vec()
                    }
                );
            }
        }
        let big = vec![7u8; 70_000];
        let bytes = encode_message(n, 1, &Target::All, MessageKind::Binary, &big);
        assert!(matches!(
            decode_envelope(&bytes, 64),
            Ok(Envelope::Message { payload, .. }) if payload == big
        ));
        let hb = encode_heartbeat(n, 7, u64::MAX);
        assert_eq!(
            decode_envelope(&hb, 64),
            Ok(Envelope::Heartbeat {
                node: n,
                seq: 7,
                nonce: u64::MAX
            })
        );
    }

    #[test]
    fn bad_envelopes_are_errors() {
        let enc = |v: Value| {
            let mut b = Vec::new();
            rmpv::encode::write_value(&mut b, &v).unwrap();
            b
        };
        let s = |x: &str| Value::from(x);
        let cases = [
            enc(s("hello")),
            enc(Value::Array(vec![])),
            enc(Value::Array(vec![
                0.into(),
                s("BAD"),
                1.into(),
                Value::Nil,
                s("x"),
            ])),
            enc(Value::Array(vec![
                0.into(),
                s("abc123"),
                (-1).into(),
                Value::Nil,
                s("x"),
            ])),
            enc(Value::Array(vec![
                0.into(),
                s("abc123"),
                1.into(),
                Value::Array(vec![s("bad name")]),
                s("x"),
            ])),
            enc(Value::Array(vec![
                0.into(),
                s("abc123"),
                1.into(),
                Value::Array(vec![]),
                s("x"),
            ])),
            enc(Value::Array(vec![
                0.into(),
                s("abc123"),
                1.into(),
                s("notanid"),
                s("x"),
            ])),
            enc(Value::Array(vec![
                0.into(),
                s("abc123"),
                1.into(),
                Value::Nil,
                1.into(),
            ])),
            enc(Value::Array(vec![
                9.into(),
                s("abc123"),
                1.into(),
                1.into(),
            ])),
            enc(Value::Array(vec![1.into(), s("abc123"), 1.into()])),
            b"\xc1".to_vec(),
            [enc(Value::Nil), enc(Value::Nil)].concat(),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(decode_envelope(c, 64).is_err(), "case {i}");
        }
        // A str payload that is not UTF-8 (hand-encoded).
        let mut b = Vec::new();
        rmp::encode::write_array_len(&mut b, 5).unwrap();
        for v in [0.into(), s("abc123"), 1.into(), Value::Nil] {
            rmpv::encode::write_value(&mut b, &v).unwrap();
        }
        b.extend_from_slice(&[0xa1, 0xff]);
        assert!(decode_envelope(&b, 64).is_err());
    }
}
