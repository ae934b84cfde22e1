//! MessagePack-RPC messages and methods, as pure functions: what a decoded
//! value means, and the response bytes for a result or an error.
//!
//! The wire format (the MessagePack-RPC spec, as Ruby's `msgpack-rpc` gem
//! and the seed speak it):
//!
//! - request `[0, msgid, method, params]` → response `[1, msgid, error, result]`
//! - notification `[2, method, params]` → no response
//!
//! `msgid` is an integer, `method` a string, `params` an array.

use rmpv::{Integer, Value, ValueRef};

use crate::protocol::MessageKind;
use crate::server::route::{ConnId, valid_channel_name};

/// A message payload from a `data` parameter: MessagePack bin goes out as a
/// binary frame, str as a text frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Data<'a> {
    pub(crate) kind: MessageKind,
    pub(crate) bytes: &'a [u8],
}

/// A method call with checked parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Method<'a> {
    /// `push_data(data)`: to everyone (the seed's method).
    PushData(Data<'a>),
    /// `publish(channel, data)`: to one channel's members.
    Publish(String, Data<'a>),
    /// `send(conn_id, data)`: to one connection.
    Send(ConnId, Data<'a>),
    /// `connections()`: every open connection.
    Connections,
    /// `stats()`: the server's counters.
    Stats,
}

/// One decoded message.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming<'a> {
    /// A request: answer with `msgid`, the method's result or the error.
    Request {
        msgid: Integer,
        method: Result<Method<'a>, String>,
    },
    /// A notification: no answer; an error is only logged.
    Notification { method: Result<Method<'a>, String> },
}

/// A value that is not a request or a notification. With a `msgid` it is
/// answered with an error; without one the connection is closed.
#[derive(Debug, PartialEq)]
pub(crate) struct Invalid {
    pub(crate) msgid: Option<Integer>,
    pub(crate) reason: String,
}

/// What a decoded value means.
pub(crate) fn classify<'a>(value: ValueRef<'a>, max_name: usize) -> Result<Incoming<'a>, Invalid> {
    let invalid = |msgid: Option<Integer>, reason: &str| Invalid {
        msgid,
        reason: reason.to_owned(),
    };
    let ValueRef::Array(items) = value else {
        return Err(invalid(
            None,
            "expected an array ([0, msgid, method, params] or [2, method, params])",
        ));
    };
    let ty = match items.first() {
        Some(ValueRef::Integer(i)) => i.as_u64(),
        _ => None,
    };
    let msgid = match items.get(1) {
        Some(ValueRef::Integer(i)) if ty != Some(2) => Some(*i),
        _ => None,
    };
    match (ty, items.len()) {
        (Some(0), 4) => {
            let Some(msgid) = msgid else {
                return Err(invalid(None, "the request's msgid is not an integer"));
            };
            let mut it = items.into_iter().skip(2);
            let (name, params) = (it.next(), it.next());
            Ok(Incoming::Request {
                msgid,
                method: method(name, params, max_name),
            })
        }
        (Some(2), 3) => {
            let mut it = items.into_iter().skip(1);
            let (name, params) = (it.next(), it.next());
            Ok(Incoming::Notification {
                method: method(name, params, max_name),
            })
        }
        (Some(0), n) => Err(invalid(
            msgid,
            &format!("a request has 4 elements [0, msgid, method, params], not {n}"),
        )),
        (Some(2), n) => Err(invalid(
            None,
            &format!("a notification has 3 elements [2, method, params], not {n}"),
        )),
        _ => Err(invalid(
            msgid,
            "expected a request [0, msgid, method, params] or a notification [2, method, params]",
        )),
    }
}

/// The method and its parameters.
fn method<'a>(
    name: Option<ValueRef<'a>>,
    params: Option<ValueRef<'a>>,
    max_name: usize,
) -> Result<Method<'a>, String> {
    let name = match name {
        Some(ValueRef::String(s)) => s.into_str(),
        Some(ValueRef::Binary(b)) => std::str::from_utf8(b).ok(),
        _ => None,
    }
    .ok_or("the method name is not a string")?;
    let Some(ValueRef::Array(params)) = params else {
        return Err(format!("{name}: params must be an array"));
    };
    let arity = |want: usize, names: &str| {
        if params.len() == want {
            Ok(())
        } else {
            Err(format!(
                "{name}({names}) takes {want} parameter(s), got {}",
                params.len()
            ))
        }
    };
    match name {
        "push_data" => {
            arity(1, "data")?;
            Ok(Method::PushData(data(name, &params[0])?))
        }
        "publish" => {
            arity(2, "channel, data")?;
            let channel = match &params[0] {
                ValueRef::String(s) => s.as_str().filter(|c| valid_channel_name(c.as_bytes(), max_name)),
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "publish: the channel must be a string of 1 to {max_name} bytes of A-Z a-z 0-9 _ . -"
                )
            })?;
            Ok(Method::Publish(channel.to_owned(), data(name, &params[1])?))
        }
        "send" => {
            arity(2, "conn_id, data")?;
            let id = match &params[0] {
                ValueRef::String(s) => s.as_str().and_then(|s| s.parse::<ConnId>().ok()),
                _ => None,
            }
            .ok_or("send: conn_id must be a connection id string (e.g. \"k3j9x2.1f\")")?;
            Ok(Method::Send(id, data(name, &params[1])?))
        }
        "connections" => arity(0, "").map(|()| Method::Connections),
        "stats" => arity(0, "").map(|()| Method::Stats),
        other => Err(format!(
            "unknown method {other:?} (methods: push_data, publish, send, connections, stats)"
        )),
    }
}

fn data<'a>(method: &str, v: &ValueRef<'a>) -> Result<Data<'a>, String> {
    match v {
        ValueRef::Binary(b) => Ok(Data {
            kind: MessageKind::Binary,
            bytes: b,
        }),
        ValueRef::String(s) => match s.into_str() {
            Some(t) => Ok(Data {
                kind: MessageKind::Text,
                bytes: t.as_bytes(),
            }),
            None => Err(format!(
                "{method}: data is a str that is not valid UTF-8 (send bytes as bin for a binary frame)"
            )),
        },
        _ => Err(format!(
            "{method}: data must be a str (text frame) or bin (binary frame)"
        )),
    }
}

/// Appends the response `[1, msgid, error, result]`.
pub(crate) fn write_response(out: &mut Vec<u8>, msgid: Integer, result: Result<Value, String>) {
    let (error, result) = match result {
        Ok(v) => (Value::Nil, v),
        Err(e) => (Value::from(e), Value::Nil),
    };
    let msg = Value::Array(vec![Value::from(1u8), Value::Integer(msgid), error, result]);
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(out, &msg);
}

/// A string-keyed MessagePack map.
pub(crate) fn map(fields: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Map(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, v).unwrap();
        b
    }

    fn classify_value(v: Value) -> Result<String, (Option<u64>, String)> {
        let bytes = decode(&v);
        let r = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        match classify(r, 64) {
            Ok(Incoming::Request { msgid, method }) => {
                Ok(format!("req {} {:?}", msgid.as_u64().unwrap(), method))
            }
            Ok(Incoming::Notification { method }) => Ok(format!("note {method:?}")),
            Err(e) => Err((e.msgid.and_then(|i| i.as_u64()), e.reason)),
        }
    }

    fn arr(v: Vec<Value>) -> Value {
        Value::Array(v)
    }

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    #[test]
    fn requests_and_notifications() {
        let r = classify_value(arr(vec![
            0.into(),
            7.into(),
            s("push_data"),
            arr(vec![s("hi")]),
        ]));
        assert_eq!(
            r.unwrap(),
            "req 7 Ok(PushData(Data { kind: Text, bytes: [104, 105] }))"
        );
        let r = classify_value(arr(vec![
            0.into(),
            8.into(),
            s("publish"),
            arr(vec![s("news"), Value::from(&b"\xff"[..])]),
        ]));
        assert_eq!(
            r.unwrap(),
            "req 8 Ok(Publish(\"news\", Data { kind: Binary, bytes: [255] }))"
        );
        let r = classify_value(arr(vec![2.into(), s("stats"), arr(vec![])]));
        assert_eq!(r.unwrap(), "note Ok(Stats)");
        let r = classify_value(arr(vec![0.into(), 1.into(), s("connections"), arr(vec![])]));
        assert_eq!(r.unwrap(), "req 1 Ok(Connections)");
        let r = classify_value(arr(vec![
            0.into(),
            2.into(),
            s("send"),
            arr(vec![s("k3j9x2.1f"), s("x")]),
        ]));
        assert!(r.unwrap().starts_with("req 2 Ok(Send("));
    }

    #[test]
    fn method_errors_are_answered() {
        let cases = [
            (s("nope"), arr(vec![]), "unknown method"),
            (s("push_data"), arr(vec![]), "takes 1 parameter"),
            (s("push_data"), arr(vec![1.into()]), "data must be a str"),
            (s("push_data"), s("x"), "params must be an array"),
            (
                s("publish"),
                arr(vec![s("bad name"), s("x")]),
                "the channel must be",
            ),
            (
                s("publish"),
                arr(vec![1.into(), s("x")]),
                "the channel must be",
            ),
            (s("send"), arr(vec![s("nope"), s("x")]), "conn_id must be"),
            (s("stats"), arr(vec![1.into()]), "takes 0 parameter"),
            (Value::Nil, arr(vec![]), "method name is not a string"),
        ];
        for (name, params, want) in cases {
            let r = classify_value(arr(vec![0.into(), 5.into(), name, params])).unwrap();
            assert!(r.starts_with("req 5 Err(") && r.contains(want), "{r}");
        }
        // A str that is not UTF-8: hand-encoded (fixstr of 1 byte, 0xff).
        let bytes = [
            0x94, 0x00, 0x09, 0xa9, b'p', b'u', b's', b'h', b'_', b'd', b'a', b't', b'a', 0x91,
            0xa1, 0xff,
        ];
        let r = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        match classify(r, 64) {
            Ok(Incoming::Request { method: Err(e), .. }) => {
                assert!(e.contains("not valid UTF-8"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_messages() {
        assert_eq!(classify_value(s("hello")).unwrap_err().0, None);
        assert_eq!(classify_value(arr(vec![])).unwrap_err().0, None);
        assert_eq!(
            classify_value(arr(vec![0.into(), 3.into(), s("stats")]))
                .unwrap_err()
                .0,
            Some(3),
            "a short request with a msgid is answered"
        );
        assert_eq!(
            classify_value(arr(vec![1.into(), 4.into(), Value::Nil, Value::Nil]))
                .unwrap_err()
                .0,
            Some(4),
            "a response sent to us is answered with an error"
        );
        assert_eq!(
            classify_value(arr(vec![0.into(), s("id"), s("stats"), arr(vec![])]))
                .unwrap_err()
                .0,
            None,
            "no integer msgid: nothing to answer"
        );
        assert_eq!(
            classify_value(arr(vec![2.into(), s("stats")]))
                .unwrap_err()
                .0,
            None
        );
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            Integer::from(9u8),
            Ok(map([("queued", Value::from(2u8))])),
        );
        write_response(&mut out, Integer::from(10u8), Err("bad".into()));
        let mut rd = &out[..];
        let a = rmpv::decode::read_value(&mut rd).unwrap();
        let b = rmpv::decode::read_value(&mut rd).unwrap();
        assert_eq!(
            a,
            arr(vec![
                1.into(),
                9.into(),
                Value::Nil,
                map([("queued", 2.into())])
            ])
        );
        assert_eq!(b, arr(vec![1.into(), 10.into(), s("bad"), Value::Nil]));
    }
}
