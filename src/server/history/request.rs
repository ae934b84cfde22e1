//! The recovery parameters of an upgrade request:
//! `?recover=1&channel=news&since=news:42:3f9a0c1d2b4e&since=*:7:0a1b2c3d4e5f`.
//!
//! `recover=1` opts in (envelopes); each `since=STREAM:OFFSET:EPOCH` names
//! the last message the client saw on a stream it joins (a channel of the
//! request, or `*` for messages to everyone) and opts in too. `:` and `*`
//! may be sent as `%3A` and `%2A`.

use std::fmt;

use super::{EVERYONE, Epoch, Since};

/// Why the recovery parameters were refused (answered `400`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecoveryError {
    /// `recover`/`since` given while the server keeps no history.
    Off,
    /// A `recover=` value other than `1`/`true`/`0`/`false`.
    BadRecover(String),
    /// A `since=` value that is not `STREAM:OFFSET:EPOCH`.
    BadSince(String),
    /// A `since=` for a stream the request does not join.
    NotJoined(String),
    /// Two `since=` for one stream.
    Duplicate(String),
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Off => {
                f.write_str("recovery is off on this server (it keeps no history: see --history)")
            }
            RecoveryError::BadRecover(v) => {
                write!(f, "recover={v:?}: expected recover=1")
            }
            RecoveryError::BadSince(v) => write!(
                f,
                "since={v:?}: expected since=CHANNEL:OFFSET:EPOCH (CHANNEL `*` for messages to everyone)"
            ),
            RecoveryError::NotJoined(s) => write!(
                f,
                "since names stream {s:?}, which this request does not join (add channel={s})"
            ),
            RecoveryError::Duplicate(s) => write!(f, "two since= values for stream {s:?}"),
        }
    }
}

fn short(v: &str) -> String {
    v.chars().take(80).collect()
}

/// Decodes `%3A`, `%2A` (any case) and leaves everything else as sent.
fn decode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i + 1..i + 3).unwrap_or("");
        if esc.eq_ignore_ascii_case("3a") {
            out.push(':');
            rest = &rest[i + 3..];
        } else if esc.eq_ignore_ascii_case("2a") {
            out.push('*');
            rest = &rest[i + 3..];
        } else {
            out.push('%');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `None` when the request does not opt in; otherwise its `since` list.
/// `channels` are the request's (already validated) channels.
pub(crate) fn recovery_from_query(
    query: Option<&str>,
    channels: &[Box<str>],
    history_on: bool,
) -> Result<Option<Box<[Since]>>, RecoveryError> {
    let Some(query) = query else {
        return Ok(None);
    };
    let mut opted = false;
    let mut since: Vec<Since> = Vec::new();
    for param in query.split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key {
            "recover" => match value {
                "1" | "true" => opted = true,
                "0" | "false" => {}
                v => return Err(RecoveryError::BadRecover(short(v))),
            },
            "since" => {
                let v = decode(value);
                let bad = || RecoveryError::BadSince(short(value));
                let mut parts = v.splitn(3, ':');
                let (Some(stream), Some(offset), Some(epoch)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad());
                };
                if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let offset: u64 = offset.parse().map_err(|_| bad())?;
                let epoch = Epoch::parse(epoch).ok_or_else(bad)?;
                if stream != EVERYONE && !channels.iter().any(|c| **c == *stream) {
                    return Err(RecoveryError::NotJoined(short(stream)));
                }
                if since.iter().any(|s| *s.stream == *stream) {
                    return Err(RecoveryError::Duplicate(short(stream)));
                }
                since.push(Since {
                    stream: stream.into(),
                    offset,
                    epoch,
                });
                opted = true;
            }
            _ => {}
        }
    }
    if !opted {
        return Ok(None);
    }
    if !history_on {
        return Err(RecoveryError::Off);
    }
    Ok(Some(since.into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chans(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    #[test]
    fn parses_and_refuses() {
        let c = chans(&["news", "a.b"]);
        let q = |s: &str| recovery_from_query(Some(s), &c, true);
        assert_eq!(q("channel=news"), Ok(None));
        assert_eq!(recovery_from_query(None, &c, true), Ok(None));
        assert_eq!(q("recover=1").unwrap().unwrap().len(), 0);
        assert_eq!(q("recover=0"), Ok(None));
        let s =
            q("since=news:42:0123456789ab&since=%2A%3A7%3Aabcdefabcdef&since=a.b:0:0123456789ab")
                .unwrap()
                .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((&*s[0].stream, s[0].offset), ("news", 42));
        assert_eq!(s[0].epoch.as_str(), "0123456789ab");
        assert_eq!((&*s[1].stream, s[1].offset), ("*", 7));
        assert_eq!(&*s[2].stream, "a.b");
        for bad in [
            "since=news",
            "since=news:1",
            "since=news::0123456789ab",
            "since=news:-1:0123456789ab",
            "since=news:+1:0123456789ab",
            "since=news:1:0123456789",
            "since=news:99999999999999999999:0123456789ab",
        ] {
            assert!(matches!(q(bad), Err(RecoveryError::BadSince(_))), "{bad:?}");
        }
        assert!(matches!(
            q("recover=yes"),
            Err(RecoveryError::BadRecover(_))
        ));
        assert!(matches!(
            q("since=sport:1:0123456789ab"),
            Err(RecoveryError::NotJoined(_))
        ));
        assert!(matches!(
            q("since=news:1:0123456789ab&since=news:2:0123456789ab"),
            Err(RecoveryError::Duplicate(_))
        ));
        assert_eq!(
            recovery_from_query(Some("recover=1"), &c, false),
            Err(RecoveryError::Off)
        );
        assert_eq!(recovery_from_query(Some("channel=x"), &c, false), Ok(None));
    }
}
