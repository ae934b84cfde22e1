//! The Redis side of `--redis-history` (docs/recovery.md): the Lua
//! scripts that number every stream's messages ([`SEQUENCER`]) and answer
//! a join from the kept entries ([`CATCH_UP`]), and what they answer.

use super::envelope::{Envelope, Target, decode_envelope};
use crate::protocol::MessageKind;
use crate::server::history::{Epoch, Position};

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

#[cfg(test)]
mod tests {
    use super::super::envelope::encode_message;
    use super::*;
    use crate::server::route::NodeId;

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

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
}
