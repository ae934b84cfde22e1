//! Channel tokens (the format is in the `auth` module's docs): the secret
//! they are signed with, signing, and the check of a `token=` parameter
//! against the channels asked for.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Refusal;
use crate::server::route::valid_channel_name;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted, in bytes.
pub(crate) const MIN_SECRET_BYTES: usize = 16;

/// Longest token looked at, in bytes (a token for 32 channels of 64 bytes
/// is about 2.2 KB; the request head limit bounds it anyway).
const MAX_TOKEN_BYTES: usize = 4096;

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

/// The one `token=` parameter of a query, percent-decoded.
pub(super) fn token_param(query: Option<&str>) -> Result<Option<String>, Refusal> {
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
pub(super) fn verify(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::AuthConfig;

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
