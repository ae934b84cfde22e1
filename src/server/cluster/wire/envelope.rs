//! The node-to-node envelope (MessagePack): a message with its
//! [`Target`], or a heartbeat.

use rmpv::Value;

use crate::protocol::MessageKind;
use crate::server::route::{ConnId, NodeId, Route, valid_channel_name};

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

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
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
