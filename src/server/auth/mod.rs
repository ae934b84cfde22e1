//! Who may connect and subscribe: the browser origins allowed
//! (`--allow-origin`) and signed channel tokens (`--channel-secret-file`).
//! Both are decided on the upgrade request, before the 101, so a refused
//! client gets an HTTP status and a body saying why (docs/operations.md).
//!
//! A channel token is what a backend hands a page so that it can join the
//! channels it was signed for, and only those, until it expires (the model
//! of Pusher's and Centrifugo's private channels):
//!
//! ```text
//! token = EXPIRY ":" CHANNELS ":" SIGNATURE
//! EXPIRY    = Unix time in seconds, decimal (the token is refused from then on)
//! CHANNELS  = channel names joined with "," (each 1-64 of A-Z a-z 0-9 _ . -)
//! SIGNATURE = lowercase hex of HMAC-SHA256(secret, EXPIRY ":" CHANNELS)
//! ```
//!
//! e.g. `1767225600:news,sport:9f2c…` (64 hex digits). A client may join
//! any of the signed channels (a subset is fine); asking for one that is not
//! signed refuses the whole upgrade. `:` and `,` never occur in a channel
//! name, so the fields cannot be confused, and the signature covers every
//! other byte of the token.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::route::valid_channel_name;
use super::stats::Stats;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted, in bytes.
pub(crate) const MIN_SECRET_BYTES: usize = 16;

/// Longest token looked at, in bytes (a token for 32 channels of 64 bytes
/// is about 2.2 KB; the request head limit bounds it anyway).
const MAX_TOKEN_BYTES: usize = 4096;

/// The admission rules (`ServerConfig::auth`). The default admits everyone:
/// any origin, channels without tokens.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Browser origins allowed (`--allow-origin`, repeatable); empty means
    /// any.
    pub allowed_origins: Vec<OriginPattern>,
    /// With a secret (`--channel-secret-file`), joining a channel needs a
    /// token signed with it.
    pub channel_secret: Option<ChannelSecret>,
}

/// One `--allow-origin` value: `*` (any), an exact origin
/// (`https://example.com`, `http://localhost:8080`, `null`), or every
/// subdomain of a host (`https://*.example.com`, which does not match
/// `https://example.com` itself). Compared ASCII case-insensitively, as
/// browsers send scheme and host in lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// Exactly this origin (lowercased).
    Exact(String),
    /// `SCHEME://*.SUFFIX[:PORT]`: the scheme and the `.SUFFIX[:PORT]` tail.
    Subdomains {
        /// `https://` (lowercased, with the separator).
        scheme: String,
        /// `.example.com` or `.example.com:8443` (lowercased).
        tail: String,
    },
}

impl FromStr for OriginPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{why} (expected `*`, `null`, SCHEME://HOST[:PORT] or SCHEME://*.HOST[:PORT], e.g. https://example.com)"
            )
        };
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        let lower = s.to_ascii_lowercase();
        if lower == "null" {
            return Ok(OriginPattern::Exact(lower));
        }
        let (scheme, host) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b));
        if !scheme_ok {
            return Err(bad("not a URL scheme"));
        }
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains('/') {
            return Err(bad(
                "an origin has no path (and no trailing slash): scheme, host and port only",
            ));
        }
        if host
            .bytes()
            .any(|b| b"?#@ \t".contains(&b) || b.is_ascii_control())
        {
            return Err(bad("an origin is scheme, host and port only"));
        }
        match host.strip_prefix('*') {
            Some(tail) => {
                if !tail.starts_with('.') || tail.len() < 2 || tail.contains('*') {
                    return Err(bad("a wildcard is only allowed as `*.` before a host name"));
                }
                Ok(OriginPattern::Subdomains {
                    scheme: format!("{scheme}://"),
                    tail: tail.to_owned(),
                })
            }
            None if host.contains('*') => {
                Err(bad("a wildcard is only allowed as `*.` before a host name"))
            }
            None => Ok(OriginPattern::Exact(lower)),
        }
    }
}

impl OriginPattern {
    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => origin.eq_ignore_ascii_case(o),
            OriginPattern::Subdomains { scheme, tail } => {
                let o = origin.to_ascii_lowercase();
                let Some(host) = o.strip_prefix(scheme.as_str()) else {
                    return false;
                };
                // `a.example.com` matches `.example.com`; the label before
                // the tail must be non-empty and hold no port or path.
                host.strip_suffix(tail.as_str()).is_some_and(|label| {
                    !label.is_empty() && !label.contains([':', '/']) && !label.ends_with('.')
                })
            }
        }
    }
}

/// The shared secret channel tokens are signed with. Its bytes never show
/// in `Debug` output or logs.
#[derive(Clone)]
pub struct ChannelSecret(Vec<u8>);

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelSecret({} bytes)", self.0.len())
    }
}

impl ChannelSecret {
    /// A secret from its bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn new(bytes: Vec<u8>) -> Result<ChannelSecret, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the channel secret is {} bytes; at least {MIN_SECRET_BYTES} are required (32 random bytes are recommended: head -c 32 /dev/urandom | base64 > FILE)",
                bytes.len()
            ));
        }
        Ok(ChannelSecret(bytes))
    }

    /// Reads the secret from a file: its bytes as they are, less one
    /// trailing newline (`\n` or `\r\n`), so `echo`, editors and
    /// `base64 > FILE` all produce the secret the backend reads with the
    /// same rule. Returns the secret and a warning when the file is readable
    /// by other users.
    pub fn from_file(path: &Path) -> Result<(ChannelSecret, Option<String>), String> {
        use std::os::unix::fs::PermissionsExt;
        let shown = path.display();
        let mut bytes = std::fs::read(path)
            .map_err(|e| format!("--channel-secret-file {shown}: cannot read it: {e}"))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        let secret =
            ChannelSecret::new(bytes).map_err(|e| format!("--channel-secret-file {shown}: {e}"))?;
        let warning = std::fs::metadata(path)
            .ok()
            .filter(|m| m.permissions().mode() & 0o007 != 0)
            .map(|_| {
                format!("{shown} is readable by every user: anyone who reads it can sign channel tokens (chmod 600 or 640)")
            });
        Ok((secret, warning))
    }

    fn mac(&self, signed: &[u8]) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(signed);
        mac
    }

    /// A token for `channels` valid until `expiry` (Unix seconds): what the
    /// documented backend examples produce (used by tests and by
    /// `wsbroadcaster token`).
    pub fn sign(&self, expiry: u64, channels: &[&str]) -> String {
        let signed = format!("{expiry}:{}", channels.join(","));
        let tag = self.mac(signed.as_bytes()).finalize().into_bytes();
        let mut out = signed;
        out.push(':');
        for b in tag {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// Why an upgrade request was refused before the 101.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The `Origin` header is not in `--allow-origin` (403).
    Origin(String),
    /// Channels were asked for without a `token=` parameter (401).
    TokenMissing,
    /// The token is not of the documented form, or is given twice (400).
    TokenMalformed(&'static str),
    /// The signature does not match: forged, or signed with another secret
    /// (403).
    TokenForged,
    /// The token's expiry has passed (403).
    TokenExpired {
        /// The token's expiry (Unix seconds).
        expiry: u64,
        /// The server's clock.
        now: u64,
    },
    /// A channel asked for is not among the signed ones (403).
    ChannelNotGranted(String),
}

impl Refusal {
    /// The HTTP status the refusal is answered with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Refusal::TokenMissing => 401,
            Refusal::TokenMalformed(_) => 400,
            Refusal::Origin(_)
            | Refusal::TokenForged
            | Refusal::TokenExpired { .. }
            | Refusal::ChannelNotGranted(_) => 403,
        }
    }

    /// Adds the refusal to its counter.
    pub(crate) fn count(&self, stats: &mut Stats) {
        let counter = match self {
            Refusal::Origin(_) => &mut stats.origin_refused,
            Refusal::TokenMissing => &mut stats.token_missing,
            Refusal::TokenMalformed(_) | Refusal::TokenForged => &mut stats.token_invalid,
            Refusal::TokenExpired { .. } => &mut stats.token_expired,
            Refusal::ChannelNotGranted(_) => &mut stats.token_wrong_channel,
        };
        *counter += 1;
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Origin(o) => write!(f, "origin {o:?} is not allowed (--allow-origin)"),
            Refusal::TokenMissing => f.write_str(
                "joining a channel needs a token: add token=EXPIRY:CHANNELS:SIGNATURE, signed by your backend",
            ),
            Refusal::TokenMalformed(why) => write!(f, "malformed channel token: {why}"),
            Refusal::TokenForged => f.write_str(
                "the channel token's signature does not match (forged, altered, or signed with another secret)",
            ),
            Refusal::TokenExpired { expiry, now } => write!(
                f,
                "the channel token expired {}s ago (expiry {expiry}, server time {now})",
                now - expiry
            ),
            Refusal::ChannelNotGranted(c) => {
                write!(f, "the channel token does not grant channel {c:?}")
            }
        }
    }
}

impl AuthConfig {
    /// Decides an upgrade request: its `Origin` header, the channels it
    /// asked for, its query (for `token=`), and the time in Unix seconds.
    pub(crate) fn admit(
        &self,
        origin: Option<&str>,
        channels: &[Box<str>],
        query: Option<&str>,
        now_unix: u64,
    ) -> Result<(), Refusal> {
        // Non-browser clients send no Origin (and could send any): the check
        // keeps other sites' pages out; it is not authentication.
        if let Some(o) = origin {
            if !self.allowed_origins.is_empty()
                && !self.allowed_origins.iter().any(|p| p.matches(o))
            {
                return Err(Refusal::Origin(o.chars().take(100).collect()));
            }
        }
        match &self.channel_secret {
            Some(secret) if !channels.is_empty() => {
                let token = token_param(query)?.ok_or(Refusal::TokenMissing)?;
                verify(secret, &token, channels, now_unix)
            }
            _ => Ok(()),
        }
    }
}

/// The one `token=` parameter of a query, percent-decoded.
fn token_param(query: Option<&str>) -> Result<Option<String>, Refusal> {
    let mut found = None;
    for param in query.unwrap_or("").split('&') {
        let Some(value) = param.strip_prefix("token=") else {
            continue;
        };
        if found.is_some() {
            return Err(Refusal::TokenMalformed("token= is given more than once"));
        }
        if value.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::TokenMalformed("longer than 4096 bytes"));
        }
        found = Some(percent_decode(value).ok_or(Refusal::TokenMalformed("bad percent-encoding"))?);
    }
    Ok(found)
}

/// Decodes `%XX` escapes (and `+` stays `+`); the result must be ASCII.
pub(crate) fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if !out.is_ascii() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Checks a token against the channels asked for. The signature is checked
/// first, in constant time ([`Mac::verify_slice`]), so nothing about an
/// unsigned token's content is acted on.
fn verify(
    secret: &ChannelSecret,
    token: &str,
    asked: &[Box<str>],
    now_unix: u64,
) -> Result<(), Refusal> {
    let (signed, sig_hex) = token.rsplit_once(':').ok_or(Refusal::TokenMalformed(
        "expected EXPIRY:CHANNELS:SIGNATURE",
    ))?;
    let (expiry, granted) = signed.split_once(':').ok_or(Refusal::TokenMalformed(
        "expected EXPIRY:CHANNELS:SIGNATURE",
    ))?;
    let sig = decode_hex_32(sig_hex).ok_or(Refusal::TokenMalformed(
        "the signature is not 64 hex digits",
    ))?;
    if expiry.is_empty() || expiry.len() > 20 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::TokenMalformed(
            "the expiry is not Unix seconds in decimal",
        ));
    }
    secret
        .mac(signed.as_bytes())
        .verify_slice(&sig)
        .map_err(|_| Refusal::TokenForged)?;
    let expiry: u64 = expiry
        .parse()
        .map_err(|_| Refusal::TokenMalformed("the expiry is not Unix seconds in decimal"))?;
    if expiry <= now_unix {
        return Err(Refusal::TokenExpired {
            expiry,
            now: now_unix,
        });
    }
    let granted: Vec<&str> = granted.split(',').collect();
    if granted
        .iter()
        .any(|c| !valid_channel_name(c.as_bytes(), 255))
    {
        return Err(Refusal::TokenMalformed(
            "a signed channel name is not valid",
        ));
    }
    match asked.iter().find(|c| !granted.contains(&&***c)) {
        Some(c) => Err(Refusal::ChannelNotGranted(c.to_string())),
        None => Ok(()),
    }
}

fn decode_hex_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The time now in Unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ChannelSecret {
        ChannelSecret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    fn chans(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    fn with_secret() -> AuthConfig {
        AuthConfig {
            allowed_origins: Vec::new(),
            channel_secret: Some(secret()),
        }
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256 test vector computed independently with Python's hmac:
        // hmac.new(b"0123456789abcdef0123456789abcdef", b"2000000000:news,sport", "sha256").hexdigest()
        assert_eq!(
            secret().sign(2_000_000_000, &["news", "sport"]),
            "2000000000:news,sport:bf4e8d3b2f4e64948cfb3477955a64b77fa6fe6a91e8afd7255606fa8e40e8df"
        );
    }

    #[test]
    fn tokens() {
        let a = with_secret();
        let now = 1_000;
        let t = secret().sign(2_000, &["news", "sport"]);
        let q = format!("channel=news&token={t}");
        assert_eq!(a.admit(None, &chans(&["news"]), Some(&q), now), Ok(()));
        assert_eq!(
            a.admit(None, &chans(&["sport", "news"]), Some(&q), now),
            Ok(())
        );
        assert_eq!(
            a.admit(None, &chans(&["news", "private"]), Some(&q), now),
            Err(Refusal::ChannelNotGranted("private".into()))
        );
        // Expired: at and after the expiry second.
        assert!(matches!(
            a.admit(None, &chans(&["news"]), Some(&q), 2_000),
            Err(Refusal::TokenExpired {
                expiry: 2000,
                now: 2000
            })
        ));
        // No channels: no token needed; channels: a token needed.
        assert_eq!(a.admit(None, &[], None, now), Ok(()));
        assert_eq!(
            a.admit(None, &chans(&["news"]), Some("channel=news"), now),
            Err(Refusal::TokenMissing)
        );
        // Percent-encoded separators decode to the same token.
        let enc = t.replace(':', "%3A").replace(',', "%2c");
        let q = format!("token={enc}");
        assert_eq!(a.admit(None, &chans(&["news"]), Some(&q), now), Ok(()));
    }

    #[test]
    fn forged_and_malformed_tokens() {
        let a = with_secret();
        let now = 1_000;
        let t = secret().sign(2_000, &["news"]);
        let ask = chans(&["news"]);
        let check = |tok: &str| a.admit(None, &ask, Some(&format!("token={tok}")), now);
        // Another secret.
        let other = ChannelSecret::new(b"another secret, 16+ bytes".to_vec()).unwrap();
        assert_eq!(
            check(&other.sign(2_000, &["news"])),
            Err(Refusal::TokenForged)
        );
        // A later expiry or an extra channel with the old signature.
        let sig = t.rsplit_once(':').unwrap().1;
        assert_eq!(
            check(&format!("9999:news:{sig}")),
            Err(Refusal::TokenForged)
        );
        assert_eq!(
            check(&format!("2000:news,private:{sig}")),
            Err(Refusal::TokenForged)
        );
        // One flipped signature digit.
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            check(std::str::from_utf8(&flipped).unwrap()),
            Err(Refusal::TokenForged)
        );
        for bad in [
            "",
            "nonsense",
            "2000:news",
            "2000:news:abc",
            &format!("x2000:news:{sig}"),
            &format!("-5:news:{sig}"),
            &format!("2000:news:{sig}0"),
            "2000:news:%zz",
        ] {
            assert!(
                matches!(check(bad), Err(Refusal::TokenMalformed(_))),
                "{bad:?}: {:?}",
                check(bad)
            );
        }
        let twice = format!("token={t}&token={t}");
        assert!(matches!(
            a.admit(None, &ask, Some(&twice), now),
            Err(Refusal::TokenMalformed(_))
        ));
        // Statuses.
        assert_eq!(Refusal::TokenMissing.status(), 401);
        assert_eq!(Refusal::TokenMalformed("x").status(), 400);
        assert_eq!(Refusal::TokenForged.status(), 403);
    }

    #[test]
    fn origins() {
        let pats = |v: &[&str]| AuthConfig {
            allowed_origins: v.iter().map(|s| s.parse().unwrap()).collect(),
            channel_secret: None,
        };
        let a = pats(&[
            "https://example.com",
            "http://localhost:8080",
            "https://*.example.org",
        ]);
        for ok in [
            "https://example.com",
            "HTTPS://Example.COM",
            "http://localhost:8080",
            "https://a.example.org",
            "https://a.b.example.org",
        ] {
            assert_eq!(a.admit(Some(ok), &[], None, 0), Ok(()), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://example.com",
            "https://example.com:8443",
            "https://example.com.evil",
            "http://localhost",
            "https://example.org",
            "https://.example.org",
            "https://evil.com/.example.org",
            "https://x.example.org:444",
            "null",
        ] {
            assert_eq!(
                a.admit(Some(bad), &[], None, 0),
                Err(Refusal::Origin(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            a.admit(None, &[], None, 0),
            Ok(()),
            "no Origin: not a browser"
        );
        assert_eq!(pats(&["*"]).admit(Some("https://x"), &[], None, 0), Ok(()));
        assert_eq!(pats(&[]).admit(Some("https://x"), &[], None, 0), Ok(()));
        assert_eq!(pats(&["null"]).admit(Some("null"), &[], None, 0), Ok(()));
        for bad in [
            "example.com",
            "https://",
            "https://example.com/",
            "https://example.com/path",
            "https://*example.com",
            "https://a.*.example.com",
            "1http://x",
            "https://x y",
        ] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets() {
        assert!(ChannelSecret::new(b"short".to_vec()).is_err());
        assert_eq!(
            format!("{:?}", secret()),
            "ChannelSecret(32 bytes)",
            "never shown"
        );
        let dir = std::env::temp_dir().join(format!("wsb-secret-{}", std::process::id()));
        std::fs::write(&dir, b"0123456789abcdef0123456789abcdef\r\n").unwrap();
        let (s, _) = ChannelSecret::from_file(&dir).unwrap();
        assert_eq!(s.0, secret().0, "one trailing newline is not part of it");
        let _ = std::fs::remove_file(&dir);
    }
}
