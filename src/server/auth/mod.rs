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
//!
//! `origin` holds the `--allow-origin` patterns, `token` the channel secret
//! and the token check, `refusal` what a refused client is told; this file
//! the rules together ([`AuthConfig`]) and the decision.

mod origin;
mod refusal;
mod token;

pub use origin::OriginPattern;
pub(crate) use refusal::Refusal;
pub use token::ChannelSecret;
pub(crate) use token::percent_decode;
use token::{token_param, verify};

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

/// The time now in Unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
