//! Why an upgrade request was refused: the HTTP status, the counter, and the
//! message the client reads.

use std::fmt;

use crate::server::stats::Stats;

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
