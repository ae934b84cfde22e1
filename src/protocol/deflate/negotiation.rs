//! permessage-deflate negotiation (RFC 7692 §5, §7.1).

use crate::protocol::handshake::split_list;

/// The extension's registered name.
pub const EXTENSION: &str = "permessage-deflate";

/// Parameters in force once negotiated. "Server" and "client" are the RFC's
/// roles, whichever end this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// LZ77 window the server compresses with (8–15).
    pub server_max_window_bits: u8,
    /// LZ77 window the client compresses with (8–15).
    pub client_max_window_bits: u8,
}

/// How a server answers offers (`--deflate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerDeflate {
    /// Decline every offer.
    Off,
    /// Accept with `server_no_context_takeover` and
    /// `client_no_context_takeover` (RFC 7692 §7.1.1: a server may add both
    /// even when not offered): every message is compressed on its own, so a
    /// broadcast is compressed once for all recipients, and no connection
    /// keeps a compression context between messages.
    Shared,
    /// Accept the offer as made (context takeover where the client allows
    /// it): better ratios for chatty clients, but a compressor per
    /// connection and per-recipient compression of broadcasts.
    PerConnection,
}

/// One parsed `permessage-deflate` offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Offer {
    /// `server_no_context_takeover` present.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` present.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` present (`Some(None)`), with a value (`Some(Some(N))`).
    pub client_max_window_bits: Option<Option<u8>>,
}

/// A parameter list that breaks RFC 7692 §7.1 (unknown or repeated
/// parameter, bad value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadParams(pub String);

/// Splits `name; p1; p2=v` into the name and its parameters, with quoted
/// values unquoted (RFC 7692 §7.1: values may be tokens or quoted strings).
fn split_element(element: &str) -> (&str, Vec<(&str, Option<&str>)>) {
    let mut parts = element.split(';').map(|p| p.trim_matches([' ', '\t']));
    let name = parts.next().unwrap_or("");
    let params = parts
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => {
                let v = v.trim_matches([' ', '\t']);
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                (k.trim_matches([' ', '\t']), Some(v))
            }
            None => (p, None),
        })
        .collect();
    (name, params)
}

/// A window-bits value: 1*DIGIT in 8..=15, no leading zero (RFC 7692 §7.1.2.1).
fn window_bits(v: &str) -> Result<u8, BadParams> {
    let ok = !v.is_empty()
        && v.len() <= 2
        && !v.starts_with('0')
        && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u8>() {
        Ok(n) if ok && (8..=15).contains(&n) => Ok(n),
        _ => Err(BadParams(format!("window bits {v:?} not in 8..15"))),
    }
}

/// Parses one element of `Sec-WebSocket-Extensions`: `Ok(None)` when it is
/// another extension, `Err` when it is `permessage-deflate` with parameters
/// RFC 7692 forbids.
pub fn parse_offer(element: &str) -> Result<Option<Offer>, BadParams> {
    let (name, params) = split_element(element);
    if !name.eq_ignore_ascii_case(EXTENSION) {
        return Ok(None);
    }
    let mut offer = Offer::default();
    let mut seen = Vec::new();
    for (key, value) in params {
        let key_lc = key.to_ascii_lowercase();
        if seen.contains(&key_lc) {
            return Err(BadParams(format!("parameter {key} repeated")));
        }
        seen.push(key_lc.clone());
        match (key_lc.as_str(), value) {
            ("server_no_context_takeover", None) => offer.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => offer.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => {
                offer.server_max_window_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", None) => offer.client_max_window_bits = Some(None),
            ("client_max_window_bits", Some(v)) => {
                offer.client_max_window_bits = Some(Some(window_bits(v)?))
            }
            _ => return Err(BadParams(format!("unexpected parameter {key}"))),
        }
    }
    Ok(Some(offer))
}

/// The server side: picks the first acceptable offer among the client's
/// `Sec-WebSocket-Extensions` elements (RFC 7692 §5: in the client's order of
/// preference). A malformed or unsupported offer is declined, not fatal:
/// the next one is tried, and with none left the connection simply goes
/// uncompressed. Returns the parameters and the response header value.
pub fn negotiate(offers: &[String], mode: ServerDeflate) -> Option<(DeflateParams, String)> {
    if mode == ServerDeflate::Off {
        return None;
    }
    for element in offers {
        let Ok(Some(offer)) = parse_offer(element) else {
            continue;
        };
        // zlib-style compressors cannot use a 256-byte window (they widen it
        // to 512), which would break the client's limit: decline such offers
        // (§7.1.2.1 lets a server decline).
        if offer.server_max_window_bits == Some(8) {
            continue;
        }
        let shared = mode == ServerDeflate::Shared;
        let params = DeflateParams {
            server_no_context_takeover: shared || offer.server_no_context_takeover,
            client_no_context_takeover: shared || offer.client_no_context_takeover,
            server_max_window_bits: offer.server_max_window_bits.unwrap_or(15),
            client_max_window_bits: match offer.client_max_window_bits {
                Some(Some(n)) => n,
                _ => 15,
            },
        };
        let mut response = String::from(EXTENSION);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if let Some(n) = offer.server_max_window_bits {
            response.push_str(&format!("; server_max_window_bits={n}"));
        }
        if let Some(Some(n)) = offer.client_max_window_bits {
            response.push_str(&format!("; client_max_window_bits={n}"));
        }
        return Some((params, response));
    }
    None
}

/// The client's offer: permessage-deflate, letting the server limit our
/// window (`client_max_window_bits`).
pub fn client_offer() -> &'static str {
    "permessage-deflate; client_max_window_bits"
}

/// The client side: checks the server's `Sec-WebSocket-Extensions` answer to
/// [`client_offer`] (RFC 7692 §7.1: anything not offered, repeated or
/// malformed fails the connection). `Ok(None)`: the server declined.
pub fn accept_response(values: &[String]) -> Result<Option<DeflateParams>, BadParams> {
    let mut params = None;
    for element in values.iter().flat_map(|v| split_list(v)) {
        // An answer has the offer's parameter grammar (RFC 7692 §7.1).
        let Some(answer) = parse_offer(element)? else {
            return Err(BadParams(format!("extension {element} was not offered")));
        };
        if params.is_some() {
            return Err(BadParams("permessage-deflate accepted twice".into()));
        }
        // §7.1.2.2: in an answer, client_max_window_bits carries a value.
        let client_max_window_bits = match answer.client_max_window_bits {
            Some(None) => {
                return Err(BadParams("client_max_window_bits without a value".into()));
            }
            Some(Some(n)) => n,
            None => 15,
        };
        params = Some(DeflateParams {
            server_no_context_takeover: answer.server_no_context_takeover,
            client_no_context_takeover: answer.client_no_context_takeover,
            server_max_window_bits: answer.server_max_window_bits.unwrap_or(15),
            client_max_window_bits,
        });
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// RFC 7692 §7.1: every parameter, with and without values.
    #[test]
    fn rfc7692_7_1_parses_offers() {
        assert_eq!(parse_offer("x-webkit-deflate-frame"), Ok(None));
        assert_eq!(
            parse_offer("permessage-deflate"),
            Ok(Some(Offer::default()))
        );
        let o = parse_offer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
        )
        .unwrap()
        .unwrap();
        assert!(o.server_no_context_takeover && o.client_no_context_takeover);
        assert_eq!(o.server_max_window_bits, Some(10));
        assert_eq!(o.client_max_window_bits, Some(None));
        let o = parse_offer("permessage-deflate; client_max_window_bits=\"12\"")
            .unwrap()
            .unwrap();
        assert_eq!(o.client_max_window_bits, Some(Some(12)));
    }

    /// RFC 7692 §7.1: repeated, unknown or out-of-range parameters make the
    /// offer invalid.
    #[test]
    fn rfc7692_7_1_rejects_bad_offers() {
        for bad in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert!(parse_offer(bad).is_err(), "{bad}");
        }
    }

    /// RFC 7692 §5: the first acceptable offer wins; bad ones are declined,
    /// not fatal.
    #[test]
    fn rfc7692_5_first_acceptable_offer_wins() {
        let (p, resp) = negotiate(
            &offers(&[
                "permessage-deflate; foo",
                "permessage-deflate; server_max_window_bits=9",
                "permessage-deflate",
            ]),
            ServerDeflate::Shared,
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, 9);
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
        );
        assert_eq!(
            negotiate(
                &offers(&["permessage-deflate; bogus"]),
                ServerDeflate::Shared
            ),
            None
        );
        assert_eq!(
            negotiate(&offers(&["permessage-deflate"]), ServerDeflate::Off),
            None
        );
        // 8 cannot be honoured by the compressor: declined, next offer taken.
        let (p, _) = negotiate(
            &offers(&[
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate",
            ]),
            ServerDeflate::Shared,
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, 15);
    }

    #[test]
    fn per_connection_mode_accepts_as_offered() {
        let (p, resp) = negotiate(
            &offers(&["permessage-deflate; client_max_window_bits=10"]),
            ServerDeflate::PerConnection,
        )
        .unwrap();
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
        assert_eq!(p.client_max_window_bits, 10);
        assert_eq!(resp, "permessage-deflate; client_max_window_bits=10");
    }

    /// RFC 7692 §7.1: the client checks the server's answer.
    #[test]
    fn rfc7692_7_1_client_checks_the_answer() {
        assert_eq!(accept_response(&[]), Ok(None));
        let p = accept_response(&offers(&[
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
        ]))
        .unwrap()
        .unwrap();
        assert!(p.server_no_context_takeover);
        assert_eq!(p.client_max_window_bits, 9);
        for bad in [
            "x-foo",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=99",
            "permessage-deflate; mystery",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ] {
            assert!(accept_response(&offers(&[bad])).is_err(), "{bad}");
        }
    }
}
