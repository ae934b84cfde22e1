//! The addressed form shared by the UDP, Unix-socket and stdin ingresses
//! (docs/ingress.md, "Addressing"). The raw default stays: a message that
//! does not start with `@` goes to everyone, unchanged.
//!
//! | message | route | payload |
//! | --- | --- | --- |
//! | `hello` (no leading `@`) | everyone | `hello` |
//! | `@news hello` | channel `news` | `hello` |
//! | `@id:k3j9x2.1f hi` | connection `k3j9x2.1f` | `hi` |
//! | `@* hello` | everyone | `hello` |
//! | `@@rest` | everyone | `@rest` (the escape for a raw leading `@`) |
//! | `@news ` | channel `news` | empty |
//!
//! The target is everything between the `@` and the first space; the payload
//! is everything after that one space. Every input has exactly one meaning;
//! anything else starting with `@` is malformed and is dropped, never
//! broadcast.

use std::fmt;

use crate::server::route::{ConnId, Route, valid_channel_name};

/// Why an addressed message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// `@target` with no space after the target.
    MissingSpace,
    /// `@` directly followed by a space.
    EmptyTarget,
    /// The target is not a valid channel name.
    BadChannel,
    /// `@id:` followed by something that is not a connection id.
    BadConnId,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressError::MissingSpace => {
                "no space after the @target (write `@target payload`, or `@@...` for a raw message starting with @)"
            }
            AddressError::EmptyTarget => "an empty @target (`@ ` is not an address)",
            AddressError::BadChannel => {
                "the @target is not a valid channel name (1-64 bytes of A-Z a-z 0-9 _ . -), `*` or `id:CONNID`"
            }
            AddressError::BadConnId => "the @id: target is not a connection id (e.g. @id:k3j9x2.1f)",
        })
    }
}

impl std::error::Error for AddressError {}

/// Splits a message into its route and payload. `max_name` is the longest
/// channel name accepted (`ServerConfig::channels.max_name_bytes`).
pub fn parse(msg: &[u8], max_name: usize) -> Result<(Route, &[u8]), AddressError> {
    let Some(rest) = msg.strip_prefix(b"@") else {
        return Ok((Route::All, msg));
    };
    if rest.first() == Some(&b'@') {
        return Ok((Route::All, rest));
    }
    let space = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(AddressError::MissingSpace)?;
    let (target, payload) = (&rest[..space], &rest[space + 1..]);
    if target.is_empty() {
        return Err(AddressError::EmptyTarget);
    }
    if target == b"*" {
        return Ok((Route::All, payload));
    }
    if let Some(id) = target.strip_prefix(b"id:") {
        let id: ConnId = std::str::from_utf8(id)
            .map_err(|_| AddressError::BadConnId)?
            .parse()
            .map_err(|_| AddressError::BadConnId)?;
        return Ok((Route::Conn(id), payload));
    }
    if !valid_channel_name(target, max_name) {
        return Err(AddressError::BadChannel);
    }
    // Valid names are ASCII.
    let name = String::from_utf8_lossy(target).into_owned();
    Ok((Route::Channel(name), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(msg: &str) -> (Route, String) {
        let (r, p) = parse(msg.as_bytes(), 64).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        (r, String::from_utf8(p.to_vec()).unwrap())
    }

    fn err(msg: &[u8]) -> AddressError {
        parse(msg, 64).expect_err(&String::from_utf8_lossy(msg))
    }

    fn ch(name: &str) -> Route {
        Route::Channel(name.into())
    }

    #[test]
    fn raw_messages_go_to_everyone_unchanged() {
        assert_eq!(ok("hello"), (Route::All, "hello".into()));
        assert_eq!(ok(""), (Route::All, "".into()));
        assert_eq!(ok(" @news x"), (Route::All, " @news x".into()));
        assert_eq!(
            ok("mail me@example.com"),
            (Route::All, "mail me@example.com".into())
        );
        let bin = [0xff, b'@', 0x00];
        assert_eq!(parse(&bin, 64), Ok((Route::All, &bin[..])));
    }

    #[test]
    fn channels() {
        assert_eq!(ok("@news hello"), (ch("news"), "hello".into()));
        assert_eq!(ok("@news hello world"), (ch("news"), "hello world".into()));
        assert_eq!(ok("@news  two spaces"), (ch("news"), " two spaces".into()));
        assert_eq!(ok("@news "), (ch("news"), "".into()));
        assert_eq!(ok("@a.b_c-D9 x"), (ch("a.b_c-D9"), "x".into()));
        assert_eq!(
            ok("@id x"),
            (ch("id"), "x".into()),
            "`id` alone is a channel"
        );
        let long = format!("@{} x", "a".repeat(64));
        assert_eq!(ok(&long).0, ch(&"a".repeat(64)));
        let payload = b"@bin \xff\x00";
        assert_eq!(parse(payload, 64), Ok((ch("bin"), &b"\xff\x00"[..])));
    }

    #[test]
    fn explicit_everyone_and_escape() {
        assert_eq!(ok("@* hello"), (Route::All, "hello".into()));
        assert_eq!(ok("@* "), (Route::All, "".into()));
        assert_eq!(ok("@@x"), (Route::All, "@x".into()));
        assert_eq!(ok("@@"), (Route::All, "@".into()));
        assert_eq!(ok("@@news hello"), (Route::All, "@news hello".into()));
        assert_eq!(ok("@@@"), (Route::All, "@@".into()));
    }

    #[test]
    fn connection_ids() {
        let (r, p) = ok("@id:k3j9x2.1f hi");
        assert_eq!(r, Route::Conn("k3j9x2.1f".parse().unwrap()));
        assert_eq!(p, "hi");
        assert_eq!(err(b"@id:k3j9x2 hi"), AddressError::BadConnId);
        assert_eq!(err(b"@id: hi"), AddressError::BadConnId);
        assert_eq!(err(b"@id:K3J9X2.1F hi"), AddressError::BadConnId);
        assert_eq!(err(b"@id:k3j9x2.1f\xff hi"), AddressError::BadConnId);
    }

    #[test]
    fn malformed() {
        assert_eq!(err(b"@"), AddressError::MissingSpace);
        assert_eq!(err(b"@news"), AddressError::MissingSpace);
        assert_eq!(err(b"@news\thello"), AddressError::MissingSpace);
        assert_eq!(err(b"@id:k3j9x2.1f"), AddressError::MissingSpace);
        assert_eq!(err(b"@ hello"), AddressError::EmptyTarget);
        assert_eq!(err(b"@ "), AddressError::EmptyTarget);
        assert_eq!(err(b"@bad! x"), AddressError::BadChannel);
        assert_eq!(err(b"@a/b x"), AddressError::BadChannel);
        assert_eq!(err(b"@** x"), AddressError::BadChannel);
        assert_eq!(err(b"@a\tb x"), AddressError::BadChannel);
        assert_eq!(err("@é x".as_bytes()), AddressError::BadChannel);
        assert_eq!(err(b"@\xff x"), AddressError::BadChannel);
        let long = format!("@{} x", "a".repeat(65));
        assert_eq!(err(long.as_bytes()), AddressError::BadChannel);
        assert_eq!(parse(b"@abcd x", 3), Err(AddressError::BadChannel));
    }
}
