//! The JSON envelope opted-in clients get (docs/recovery.md). Every
//! envelope is one text message; channel names and epochs need no escaping
//! (`[A-Za-z0-9_.-]`, `*`, hex), the payload is a JSON string.
//!
//! ```text
//! {"ch":"news","ep":"3f9a0c1d2b4e","off":42,"data":"hello"}   a text message
//! {"ch":"news","ep":"3f9a0c1d2b4e","off":43,"b64":"3q2+7w=="}  a binary message
//! {"ch":"news","ep":"3f9a0c1d2b4e","off":43}                   position (after joining)
//! {"ch":"news","ep":"3f9a0c1d2b4e","off":43,"reset":"too_old"} catch-up refused
//! {"ch":"news","ep":"3f9a0c1d2b4e","off":47,"gap":44}          44..=47 dropped for you
//! {"direct":true,"data":"hi"}                                  sent to this connection id
//! ```
//!
//! In every stream envelope `off` is where the client now stands on `ch`:
//! remembering the last `ch`/`ep`/`off` seen is all a client has to do.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::json::push_string;

use super::{Epoch, Position, Reset};
use crate::protocol::MessageKind;

/// Appends `"key":` and the payload: a JSON string for text (`data`),
/// base64 for binary (`b64`).
fn push_payload(out: &mut String, kind: MessageKind, payload: &[u8]) {
    match kind {
        MessageKind::Text => {
            out.push_str("\"data\":");
            // Text messages are valid UTF-8 (validated on receipt, or chosen
            // as text by the ingress because they are); be safe anyway.
            match std::str::from_utf8(payload) {
                Ok(s) => push_string(out, s),
                Err(_) => push_string(out, &String::from_utf8_lossy(payload)),
            }
        }
        MessageKind::Binary => {
            out.push_str("\"b64\":\"");
            base64::engine::general_purpose::STANDARD.encode_string(payload, out);
            out.push('"');
        }
    }
}

fn head(out: &mut String, stream: &str, epoch: &Epoch, offset: u64) {
    out.push_str("{\"ch\":\"");
    out.push_str(stream);
    out.push_str("\",\"ep\":\"");
    out.push_str(epoch.as_str());
    let _ = write!(out, "\",\"off\":{offset}");
}

/// A published message.
pub(crate) fn message(stream: &str, at: Position, kind: MessageKind, payload: &[u8]) -> String {
    let mut out = String::with_capacity(payload.len() + stream.len() + 64);
    head(&mut out, stream, &at.epoch, at.offset);
    out.push(',');
    push_payload(&mut out, kind, payload);
    out.push('}');
    out
}

/// Where the client stands after joining, with the reason when its
/// catch-up was refused.
pub(crate) fn position(stream: &str, at: Position, reset: Option<Reset>) -> String {
    let mut out = String::with_capacity(stream.len() + 64);
    head(&mut out, stream, &at.epoch, at.offset);
    if let Some(r) = reset {
        out.push_str(",\"reset\":\"");
        out.push_str(r.as_str());
        out.push('"');
    }
    out.push('}');
    out
}

/// Messages `first..=last` of `stream` were dropped for this client by the
/// channel's slow-consumer policy.
pub(crate) fn gap(stream: &str, epoch: &Epoch, first: u64, last: u64) -> String {
    let mut out = String::with_capacity(stream.len() + 64);
    head(&mut out, stream, epoch, last);
    let _ = write!(out, ",\"gap\":{first}}}");
    out
}

/// A message sent to one connection id (not part of any stream's history).
pub(crate) fn direct(kind: MessageKind, payload: &[u8]) -> String {
    let mut out = String::with_capacity(payload.len() + 32);
    out.push_str("{\"direct\":true,");
    push_payload(&mut out, kind, payload);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Epoch {
        Epoch::parse("0123456789ab").unwrap()
    }

    #[test]
    fn every_envelope() {
        let at = Position {
            epoch: ep(),
            offset: 42,
        };
        assert_eq!(
            message("news", at, MessageKind::Text, b"hi \"you\""),
            r#"{"ch":"news","ep":"0123456789ab","off":42,"data":"hi \"you\""}"#
        );
        assert_eq!(
            message("*", at, MessageKind::Binary, &[0xde, 0xad, 0xbe, 0xef]),
            r#"{"ch":"*","ep":"0123456789ab","off":42,"b64":"3q2+7w=="}"#
        );
        assert_eq!(
            position("news", at, None),
            r#"{"ch":"news","ep":"0123456789ab","off":42}"#
        );
        assert_eq!(
            position("news", at, Some(Reset::TooOld)),
            r#"{"ch":"news","ep":"0123456789ab","off":42,"reset":"too_old"}"#
        );
        assert_eq!(
            gap("news", &ep(), 40, 44),
            r#"{"ch":"news","ep":"0123456789ab","off":44,"gap":40}"#
        );
        assert_eq!(
            direct(MessageKind::Text, b"x"),
            r#"{"direct":true,"data":"x"}"#
        );
    }

    #[test]
    fn epochs_round_trip() {
        let e = Epoch::random();
        assert_eq!(Epoch::parse(e.as_str()), Some(e));
        for bad in [
            "",
            "0123456789a",
            "0123456789abc",
            "0123456789aB",
            "g123456789ab",
        ] {
            assert_eq!(Epoch::parse(bad), None, "{bad:?}");
        }
    }
}
