//! `--allow-origin`: which browser origins may connect.

use std::str::FromStr;

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
    pub(super) fn matches(&self, origin: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{AuthConfig, Refusal};

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
}
