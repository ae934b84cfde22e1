//! socket.io emitter packets (`--socketio-emitter`), as pure functions.
//!
//! A socket.io emitter (the `@socket.io/redis-emitter` package, the PHP,
//! Python and Go ports of `socket.io-emitter`) publishes, for
//! `emitter.to("news").emit("chat message", "Hi")`:
//!
//! ```text
//! PUBLISH socket.io#/#news#  msgpack([uid, packet, opts])
//!   uid    = "emitter"
//!   packet = {type: 2, data: ["chat message", "Hi"], nsp: "/"}
//!   opts   = {rooms: ["news"], except: [], flags: {}}
//! ```
//!
//! (`socket.io#/#` with no room suffix when there is no room or several.)
//! We deliver `data` as one JSON text message, `["chat message","Hi"]`, to
//! the union of `opts.rooms` (everyone when empty) minus `opts.except`. A
//! room is a channel, or a connection when it is a connection id (as in
//! socket.io, where each socket is in the room of its own id).

use std::fmt::Write as _;

use rmpv::ValueRef;

use crate::json::push_string;
use crate::server::route::valid_channel_name;

/// A decoded emitter packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Emit {
    /// Rooms to deliver to; empty means everyone.
    pub(crate) rooms: Vec<String>,
    /// Rooms whose members are left out.
    pub(crate) except: Vec<String>,
    /// `data` (event name and arguments) as a JSON array.
    pub(crate) json: String,
}

/// socket.io packet types that carry an event.
const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;

/// Decodes `msgpack([uid, packet, opts])` for namespace `/`. Rooms that are
/// not valid channel names (nor connection ids, which are valid names) are
/// an error: nobody here could be in them. The error says why (for the log).
pub(crate) fn decode(bytes: &[u8], max_name: usize) -> Result<Emit, String> {
    let mut rd = bytes;
    let v = rmpv::decode::read_value_ref(&mut rd).map_err(|e| format!("not MessagePack: {e}"))?;
    let ValueRef::Array(top) = v else {
        return Err("not an array [uid, packet, opts]".into());
    };
    if !(2..=3).contains(&top.len()) {
        return Err(format!(
            "an array of {} elements, not [uid, packet, opts]",
            top.len()
        ));
    }
    let packet = &top[1];
    let ty = field(packet, "type")
        .and_then(|t| t.as_u64())
        .ok_or("the packet has no integer type")?;
    if ty != EVENT && ty != BINARY_EVENT {
        return Err(format!(
            "packet type {ty} is not an event (2) (unknown version?)"
        ));
    }
    match field(packet, "nsp") {
        None | Some(ValueRef::Nil) => {}
        Some(ValueRef::String(s)) if s.as_str() == Some("/") => {}
        Some(_) => return Err("the packet is not for namespace /".into()),
    }
    let data = match field(packet, "data") {
        Some(ValueRef::Array(items)) if matches!(items.first(), Some(ValueRef::String(_))) => {
            ValueRef::Array(items)
        }
        _ => return Err("the packet's data is not [event, ...args]".into()),
    };
    let mut json = String::new();
    write_json(&mut json, data)?;
    let (rooms, except) = match top.get(2) {
        None | Some(ValueRef::Nil) => (Vec::new(), Vec::new()),
        Some(opts) => (
            rooms(field(opts, "rooms"), max_name)?,
            rooms(field(opts, "except"), max_name)?,
        ),
    };
    Ok(Emit {
        rooms,
        except,
        json,
    })
}

/// A string-keyed map's field.
fn field<'a>(map: &ValueRef<'a>, name: &str) -> Option<ValueRef<'a>> {
    let ValueRef::Map(entries) = map else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| matches!(k, ValueRef::String(s) if s.as_str() == Some(name)))
        .map(|(_, v)| v.clone())
}

fn rooms(v: Option<ValueRef<'_>>, max_name: usize) -> Result<Vec<String>, String> {
    let items = match v {
        None | Some(ValueRef::Nil) => return Ok(Vec::new()),
        Some(ValueRef::Array(items)) => items,
        Some(_) => return Err("rooms/except is not an array".into()),
    };
    let mut out = Vec::with_capacity(items.len());
    for r in &items {
        let name = match r {
            ValueRef::String(s) => s.as_str(),
            _ => None,
        }
        .filter(|n| valid_channel_name(n.as_bytes(), max_name))
        .ok_or(
            "a room is not a channel name (1-64 bytes of A-Z a-z 0-9 _ . -) or a connection id",
        )?;
        if !out.iter().any(|o: &String| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Writes a MessagePack value as JSON, as `JSON.stringify` would have
/// written the JavaScript value the emitter encoded. Binary arguments have
/// no JSON form (socket.io sends them as attachments): an error.
fn write_json(out: &mut String, v: ValueRef<'_>) -> Result<(), String> {
    match v {
        ValueRef::Nil => out.push_str("null"),
        ValueRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::F32(f) => write_float(out, f64::from(f)),
        ValueRef::F64(f) => write_float(out, f),
        ValueRef::String(s) => push_string(out, s.as_str().ok_or("a string is not UTF-8")?),
        ValueRef::Binary(_) => {
            return Err("binary arguments are not supported (no JSON form)".into());
        }
        ValueRef::Array(items) => {
            out.push('[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item)?;
            }
            out.push(']');
        }
        ValueRef::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                let ValueRef::String(k) = k else {
                    return Err("a map key is not a string".into());
                };
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k.as_str().ok_or("a map key is not UTF-8")?);
                out.push(':');
                write_json(out, v)?;
            }
            out.push('}');
        }
        ValueRef::Ext(-1, data) => {
            let iso = timestamp_iso(data).ok_or("a malformed timestamp")?;
            push_string(out, &iso);
        }
        ValueRef::Ext(t, _) => return Err(format!("extension type {t} is not supported")),
    }
    Ok(())
}

/// JSON has no NaN or infinity; `JSON.stringify` writes `null`.
fn write_float(out: &mut String, f: f64) {
    if f.is_finite() {
        let _ = write!(out, "{f}");
    } else {
        out.push_str("null");
    }
}

/// The MessagePack timestamp extension (a JavaScript `Date`) as
/// `Date.prototype.toJSON` writes it: `2026-11-22T10:57:13.000Z`.
fn timestamp_iso(d: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match d.len() {
        4 => (i64::from(u32::from_be_bytes(d.try_into().ok()?)), 0),
        8 => {
            let v = u64::from_be_bytes(d.try_into().ok()?);
            ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(d[4..].try_into().ok()?),
            u32::from_be_bytes(d[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    if nanos >= 1_000_000_000 || !(-62_135_596_800..=253_402_300_799).contains(&secs) {
        return None; // outside years 1..=9999
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1_000_000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmpv::Value;

    fn s(x: &str) -> Value {
        Value::from(x)
    }

    fn m(fields: Vec<(&str, Value)>) -> Value {
        Value::Map(fields.into_iter().map(|(k, v)| (s(k), v)).collect())
    }

    fn enc(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, v).unwrap();
        b
    }

    fn packet(data: Value, rooms: Vec<&str>, except: Vec<&str>) -> Vec<u8> {
        enc(&Value::Array(vec![
            s("emitter"),
            m(vec![("type", 2.into()), ("data", data), ("nsp", s("/"))]),
            m(vec![
                ("rooms", Value::Array(rooms.into_iter().map(s).collect())),
                ("flags", m(vec![])),
                ("except", Value::Array(except.into_iter().map(s).collect())),
            ]),
        ]))
    }

    #[test]
    fn the_seed_example() {
        let b = packet(
            Value::Array(vec![s("chat message"), s("Hi guys from Emitter")]),
            vec![],
            vec![],
        );
        assert_eq!(
            decode(&b, 64).unwrap(),
            Emit {
                rooms: vec![],
                except: vec![],
                json: r#"["chat message","Hi guys from Emitter"]"#.into()
            }
        );
    }

    #[test]
    fn rooms_except_and_json_values() {
        let data = Value::Array(vec![
            s("ev"),
            m(vec![
                ("n", (-3).into()),
                ("f", 1.5.into()),
                ("big", u64::MAX.into()),
                ("ok", true.into()),
                ("none", Value::Nil),
                ("q", s("a\"b\\c\n\u{1}é")),
            ]),
            Value::Array(vec![Value::F64(f64::NAN), Value::F32(2.0)]),
        ]);
        let b = packet(data, vec!["news", "abc123.1f", "news"], vec!["muted"]);
        let e = decode(&b, 64).unwrap();
        assert_eq!(e.rooms, ["news", "abc123.1f"]);
        assert_eq!(e.except, ["muted"]);
        assert_eq!(
            e.json,
            r#"["ev",{"n":-3,"f":1.5,"big":18446744073709551615,"ok":true,"none":null,"q":"a\"b\\c\n\u0001é"},[null,2]]"#
        );
    }

    #[test]
    fn dates_as_json_strings() {
        let ts32 = Value::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec());
        let ts64 = {
            let v = (123_000_000u64 << 34) | 1_700_000_000;
            Value::Ext(-1, v.to_be_bytes().to_vec())
        };
        let mut ts96 = 0u32.to_be_bytes().to_vec();
        ts96.extend_from_slice(&(-1i64).to_be_bytes());
        let b = packet(
            Value::Array(vec![s("t"), ts32, ts64, Value::Ext(-1, ts96)]),
            vec![],
            vec![],
        );
        assert_eq!(
            decode(&b, 64).unwrap().json,
            r#"["t","2023-11-14T22:13:20.000Z","2023-11-14T22:13:20.123Z","1969-12-31T23:59:59.000Z"]"#
        );
    }

    #[test]
    fn malformed_and_unsupported() {
        let ok_packet = m(vec![
            ("type", 2.into()),
            ("data", Value::Array(vec![s("e")])),
            ("nsp", s("/")),
        ]);
        let cases: Vec<Vec<u8>> = vec![
            b"\xc1".to_vec(),
            enc(&s("x")),
            enc(&Value::Array(vec![s("emitter")])),
            enc(&Value::Array(vec![
                s("emitter"),
                m(vec![
                    ("type", 3.into()),
                    ("data", Value::Array(vec![s("e")])),
                ]),
            ])),
            enc(&Value::Array(vec![
                s("emitter"),
                m(vec![
                    ("type", 2.into()),
                    ("data", Value::Array(vec![s("e")])),
                    ("nsp", s("/admin")),
                ]),
            ])),
            enc(&Value::Array(vec![
                s("emitter"),
                m(vec![("type", 2.into()), ("data", Value::Array(vec![]))]),
            ])),
            enc(&Value::Array(vec![
                s("emitter"),
                m(vec![("type", 2.into()), ("data", s("e"))]),
            ])),
            packet(
                Value::Array(vec![s("e"), Value::Binary(vec![1])]),
                vec![],
                vec![],
            ),
            packet(
                Value::Array(vec![s("e"), Value::Ext(5, vec![1])]),
                vec![],
                vec![],
            ),
            packet(Value::Array(vec![s("e")]), vec!["bad room"], vec![]),
            enc(&Value::Array(vec![
                s("emitter"),
                ok_packet.clone(),
                m(vec![("rooms", s("news"))]),
            ])),
            enc(&Value::Array(vec![
                s("emitter"),
                m(vec![
                    ("type", 2.into()),
                    (
                        "data",
                        Value::Array(vec![s("e"), Value::Map(vec![(1.into(), 2.into())])]),
                    ),
                ]),
            ])),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(decode(c, 64).is_err(), "case {i}: {:?}", decode(c, 64));
        }
        // Two elements (no opts), as old emitters sent: everyone.
        let b = enc(&Value::Array(vec![s("emitter"), ok_packet]));
        assert_eq!(decode(&b, 64).unwrap().json, r#"["e"]"#);
    }
}
