//! Where a message goes: everyone, one channel, or one connection id. The
//! same [`Route`] comes out of every ingress (WebSocket clients, UDP, the
//! Unix socket, stdin, MessagePack-RPC) and goes into one publish.
//!
//! Channel names and connection ids are validated here, once, so every
//! ingress accepts exactly the same names (docs/ingress.md).

use std::fmt;
use std::str::FromStr;

/// Where a publish goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Every open connection, whatever its channels.
    All,
    /// Every connection that joined this channel.
    Channel(String),
    /// The one connection with this id (nobody, if it is gone).
    Conn(ConnId),
}

/// A process's part of every connection id: six random characters of
/// `[a-z0-9]` chosen at start, so ids from different processes (nodes of a
/// future cluster) are unlikely to collide (36⁶ ≈ 2.2 billion prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId([u8; NODE_LEN]);

const NODE_LEN: usize = 6;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

impl NodeId {
    /// A fresh random node prefix.
    pub fn random() -> NodeId {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let mut b = [0u8; NODE_LEN];
        for c in &mut b {
            *c = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        }
        NodeId(b)
    }

    /// Parses six characters of `[a-z0-9]`.
    pub fn parse(s: &str) -> Option<NodeId> {
        let b: [u8; NODE_LEN] = s.as_bytes().try_into().ok()?;
        b.iter().all(|c| ALPHABET.contains(c)).then_some(NodeId(b))
    }

    fn as_str(&self) -> &str {
        // Only ALPHABET bytes are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??????")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection id: the process's [`NodeId`] and a per-process counter, shown
/// as `NODE.COUNTER` with the counter in base 36 (`k3j9x2.1f` is the 51st
/// connection of node `k3j9x2`). Unique within the process; the node prefix
/// makes collisions between processes unlikely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    node: NodeId,
    seq: u64,
}

impl ConnId {
    /// The id of connection number `seq` of `node`.
    pub fn new(node: NodeId, seq: u64) -> ConnId {
        ConnId { node, seq }
    }

    /// The node (process) the connection belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The connection's number within its node.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 13]; // u64::MAX in base 36 has 13 digits
        let mut i = digits.len();
        let mut n = self.seq;
        loop {
            i -= 1;
            digits[i] = ALPHABET[(n % 36) as usize];
            n /= 36;
            if n == 0 {
                break;
            }
        }
        f.write_str(self.node.as_str())?;
        f.write_str(".")?;
        f.write_str(std::str::from_utf8(&digits[i..]).unwrap_or("?"))
    }
}

/// A string that is not a connection id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadConnId;

impl fmt::Display for BadConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a connection id (six characters of [a-z0-9], a dot, a base-36 counter, e.g. k3j9x2.1f)")
    }
}

impl std::error::Error for BadConnId {}

impl FromStr for ConnId {
    type Err = BadConnId;

    /// Parses exactly what [`ConnId`]'s `Display` writes (lowercase only, no
    /// leading zeros in the counter) so one connection has one spelling.
    fn from_str(s: &str) -> Result<ConnId, BadConnId> {
        let (node, seq) = s.split_once('.').ok_or(BadConnId)?;
        let node: [u8; NODE_LEN] = node.as_bytes().try_into().map_err(|_| BadConnId)?;
        if !node.iter().all(|b| ALPHABET.contains(b)) {
            return Err(BadConnId);
        }
        let digits = seq.as_bytes();
        if digits.is_empty() || digits.len() > 13 || (digits.len() > 1 && digits[0] == b'0') {
            return Err(BadConnId);
        }
        let mut n: u64 = 0;
        for &d in digits {
            let v = ALPHABET.iter().position(|&a| a == d).ok_or(BadConnId)? as u64;
            n = n
                .checked_mul(36)
                .and_then(|n| n.checked_add(v))
                .ok_or(BadConnId)?;
        }
        Ok(ConnId {
            node: NodeId(node),
            seq: n,
        })
    }
}

/// Hands out connection ids: one node prefix, a counter from 1.
#[derive(Debug)]
pub(crate) struct IdGen {
    node: NodeId,
    next: u64,
}

impl IdGen {
    pub(crate) fn new(node: NodeId) -> IdGen {
        IdGen { node, next: 1 }
    }

    pub(crate) fn next_id(&mut self) -> ConnId {
        let id = ConnId::new(self.node, self.next);
        self.next += 1;
        id
    }
}

/// Limits on the channels a client may join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelLimits {
    /// Longest channel name, in bytes. Default 64.
    pub max_name_bytes: usize,
    /// Most channels one connection may join. Default 32.
    pub max_per_connection: usize,
}

impl Default for ChannelLimits {
    fn default() -> Self {
        ChannelLimits {
            max_name_bytes: 64,
            max_per_connection: 32,
        }
    }
}

/// True for a byte allowed in a channel name: `[A-Za-z0-9_.-]`.
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A valid channel name: 1 to `max` bytes of `[A-Za-z0-9_.-]`.
pub(crate) fn valid_channel_name(name: &[u8], max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.iter().all(|&b| is_name_byte(b))
}

/// Why an upgrade request's channels were refused (answered `400`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChannelError {
    /// A `channel=` value that is not a valid name (shown as sent,
    /// shortened), and the longest name allowed.
    BadName(String, usize),
    /// More distinct channels than allowed.
    TooMany(usize),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::BadName(n, max) => write!(
                f,
                "invalid channel name {n:?}: a channel name is 1 to {max} bytes of A-Z a-z 0-9 _ . -"
            ),
            ChannelError::TooMany(max) => write!(
                f,
                "too many channels: at most {max} per connection (--max-channels-per-connection)"
            ),
        }
    }
}

/// The channels named by an upgrade request's query: every `channel=NAME`
/// parameter, in order, duplicates dropped; other parameters are ignored.
///
/// Names may be percent-encoded, but only bytes of the name charset may be
/// escaped (`%2D` for `-`): anything that decodes outside it is refused, so
/// decoding cannot smuggle in a separator, a space or a non-ASCII byte.
/// An empty list (no `channel=` parameter) allocates nothing.
pub(crate) fn channels_from_query(
    query: Option<&str>,
    limits: &ChannelLimits,
) -> Result<Box<[Box<str>]>, ChannelError> {
    let Some(query) = query else {
        return Ok(Box::default());
    };
    let mut out: Vec<Box<str>> = Vec::new();
    for param in query.split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key != "channel" {
            continue;
        }
        let bad = || ChannelError::BadName(value.chars().take(80).collect(), limits.max_name_bytes);
        let name = percent_decode_name(value).ok_or_else(bad)?;
        if !valid_channel_name(name.as_bytes(), limits.max_name_bytes) {
            return Err(bad());
        }
        if !out.iter().any(|c| **c == *name) {
            if out.len() == limits.max_per_connection {
                return Err(ChannelError::TooMany(limits.max_per_connection));
            }
            out.push(name.into_boxed_str());
        }
    }
    Ok(out.into_boxed_slice())
}

/// Decodes `%XX` escapes whose byte is a name byte; `None` for any other
/// escape (or a malformed one).
fn percent_decode_name(v: &str) -> Option<String> {
    if !v.contains('%') {
        return Some(v.to_owned());
    }
    let b = v.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = v.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if !is_name_byte(byte) || !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(byte as char);
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId(s.as_bytes().try_into().unwrap())
    }

    #[test]
    fn conn_id_display_and_parse_round_trip() {
        let n = node("k3j9x2");
        assert_eq!(ConnId::new(n, 51).to_string(), "k3j9x2.1f");
        assert_eq!(ConnId::new(n, 0).to_string(), "k3j9x2.0");
        assert_eq!(ConnId::new(n, u64::MAX).to_string(), "k3j9x2.3w5e11264sgsf");
        for seq in [0, 1, 35, 36, 51, 1 << 40, u64::MAX] {
            let id = ConnId::new(n, seq);
            assert_eq!(id.to_string().parse::<ConnId>(), Ok(id));
        }
        for bad in [
            "",
            "k3j9x2",
            "k3j9x2.",
            ".1f",
            "k3j9x.1f",
            "k3j9x22.1f",
            "K3J9X2.1f",
            "k3j9x2.1F",
            "k3j9x2.01",
            "k3j9x2.1f.2",
            "k3j9x2.-1",
            "k3j9x2.3w5e11264sgsg", // u64::MAX + 1
            "k3j9x2.zzzzzzzzzzzzzz",
        ] {
            assert_eq!(bad.parse::<ConnId>(), Err(BadConnId), "{bad:?}");
        }
    }

    #[test]
    fn random_nodes_use_the_alphabet() {
        let a = NodeId::random();
        assert_eq!(a.to_string().len(), 6);
        assert!(a.0.iter().all(|b| ALPHABET.contains(b)));
        let mut g = IdGen::new(a);
        let (x, y) = (g.next_id(), g.next_id());
        assert_ne!(x, y);
        assert_eq!(x.to_string(), format!("{a}.1"));
    }

    #[test]
    fn channel_names() {
        let max = 64;
        assert!(valid_channel_name(b"news", max));
        assert!(valid_channel_name(b"A-z_0.9", max));
        assert!(valid_channel_name(&[b'a'; 64], max));
        assert!(!valid_channel_name(&[b'a'; 65], max));
        assert!(!valid_channel_name(b"", max));
        for bad in ["a b", "a/b", "a:b", "*", "@x", "a+b", "é", "a%20"] {
            assert!(!valid_channel_name(bad.as_bytes(), max), "{bad:?}");
        }
    }

    fn chans(q: &str) -> Result<Vec<String>, ChannelError> {
        channels_from_query(Some(q), &ChannelLimits::default())
            .map(|b| b.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn query_channels() {
        assert_eq!(
            channels_from_query(None, &ChannelLimits::default())
                .unwrap()
                .len(),
            0
        );
        assert_eq!(chans("").unwrap(), Vec::<String>::new());
        assert_eq!(chans("token=x&x=y").unwrap(), Vec::<String>::new());
        assert_eq!(
            chans("channel=news&channel=sport").unwrap(),
            ["news", "sport"]
        );
        assert_eq!(
            chans("channel=b&channel=a&channel=b").unwrap(),
            ["b", "a"],
            "duplicates dropped, order kept"
        );
        assert_eq!(chans("a=1&channel=x-y&z").unwrap(), ["x-y"]);
        assert_eq!(chans("channel=a%2Db%5f%2E").unwrap(), ["a-b_."]);
        assert_eq!(chans("channel=%61").unwrap(), ["a"]);
        for bad in [
            "channel=",
            "channel",
            "channel=a%20b",
            "channel=a+b",
            "channel=a%2Fb",
            "channel=%",
            "channel=%4",
            "channel=%zz",
            "channel=%+1",
            "channel=%C3%A9",
            "channel=a/b",
            "channel=news&channel=bad!",
        ] {
            assert!(
                matches!(chans(bad), Err(ChannelError::BadName(..))),
                "{bad:?}"
            );
        }
        let long = format!("channel={}", "a".repeat(65));
        assert!(matches!(chans(&long), Err(ChannelError::BadName(..))));
    }

    #[test]
    fn channel_count_limit() {
        let limits = ChannelLimits {
            max_name_bytes: 64,
            max_per_connection: 2,
        };
        let q = "channel=a&channel=b&channel=a";
        assert_eq!(channels_from_query(Some(q), &limits).unwrap().len(), 2);
        let q = "channel=a&channel=b&channel=c";
        assert_eq!(
            channels_from_query(Some(q), &limits),
            Err(ChannelError::TooMany(2))
        );
    }
}
