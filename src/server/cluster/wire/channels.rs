//! Redis channel and key names under a prefix, and which of our
//! subscriptions a message arrived on.

use crate::server::route::NodeId;

/// Longest `--redis-prefix`.
pub(crate) const MAX_PREFIX: usize = 64;

/// Checks a `--redis-prefix`: 1 to 64 bytes of `A-Z a-z 0-9 _ . - :`, so it
/// needs no escaping in a Redis glob pattern.
pub fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PREFIX
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

/// One node's Redis channel names.
#[derive(Clone, Debug)]
pub(crate) struct Channels {
    prefix: String,
    node: NodeId,
}

impl Channels {
    pub(crate) fn new(prefix: &str, node: NodeId) -> Channels {
        Channels {
            prefix: prefix.to_owned(),
            node,
        }
    }

    /// `P:all`: external messages for everyone.
    pub(crate) fn all(&self) -> String {
        format!("{}:all", self.prefix)
    }

    /// `P:ch:*`: external messages for a channel (pattern).
    pub(crate) fn channel_pattern(&self) -> String {
        format!("{}:ch:*", self.prefix)
    }

    /// `P:id:NODE.*`: external messages for this node's connections (pattern).
    pub(crate) fn own_ids_pattern(&self) -> String {
        format!("{}:id:{}.*", self.prefix, self.node)
    }

    /// `P:cluster`: every node's sequenced envelopes.
    pub(crate) fn cluster(&self) -> String {
        format!("{}:cluster", self.prefix)
    }

    /// `P:cluster:NODE`: envelopes for one node's connections.
    pub(crate) fn cluster_node(&self, node: NodeId) -> String {
        format!("{}:cluster:{node}", self.prefix)
    }

    /// `P:stream`: sequenced messages with their stream positions
    /// (`--redis-history`), published by [`SEQUENCER`](super::SEQUENCER) only.
    pub(crate) fn stream(&self) -> String {
        format!("{}:stream", self.prefix)
    }

    /// `P:hist:STREAM`: a stream's kept messages (a Redis stream; entry
    /// `0-OFFSET`, field `d`: the node envelope).
    pub(crate) fn hist_key(&self, stream: &str) -> String {
        format!("{}:hist:{stream}", self.prefix)
    }

    /// `P:epoch:STREAM`: a stream's epoch and newest offset (a hash, fields
    /// `ep` and `off`).
    pub(crate) fn epoch_key(&self, stream: &str) -> String {
        format!("{}:epoch:{stream}", self.prefix)
    }

    /// Which of our subscriptions a message arrived on, and what it names.
    pub(crate) fn classify<'a>(&self, channel: &'a str) -> Incoming<'a> {
        let Some(rest) = channel
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
        else {
            return Incoming::Unknown;
        };
        if rest == "all" {
            return Incoming::ExternalAll;
        }
        if let Some(name) = rest.strip_prefix("ch:") {
            return Incoming::ExternalChannel(name);
        }
        if let Some(id) = rest.strip_prefix("id:") {
            return Incoming::ExternalConn(id);
        }
        if rest == "stream" {
            return Incoming::Stream;
        }
        if rest == "cluster" || rest.strip_prefix("cluster:") == Some(&self.node.to_string()) {
            return Incoming::Envelope;
        }
        Incoming::Unknown
    }
}

/// What a subscribed channel carries.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// `P:all`.
    ExternalAll,
    /// `P:ch:NAME` (the name is not checked yet).
    ExternalChannel(&'a str),
    /// `P:id:CONNID` (not parsed yet).
    ExternalConn(&'a str),
    /// `P:cluster` or our own `P:cluster:NODE`.
    Envelope,
    /// `P:stream`: a sequenced message ([`decode_sequenced`](super::decode_sequenced)).
    Stream,
    /// Anything else (not one of our names).
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    #[test]
    fn prefixes() {
        assert!(valid_prefix("wsbroadcaster"));
        assert!(valid_prefix("app:prod.v2-x_y"));
        assert!(!valid_prefix(""));
        assert!(!valid_prefix("a*"));
        assert!(!valid_prefix("a b"));
        assert!(!valid_prefix("a[b]"));
        assert!(!valid_prefix(&"a".repeat(65)));
    }

    #[test]
    fn channel_names_and_classification() {
        let me = node("abc123");
        let c = Channels::new("wsb", me);
        assert_eq!(c.all(), "wsb:all");
        assert_eq!(c.channel_pattern(), "wsb:ch:*");
        assert_eq!(c.own_ids_pattern(), "wsb:id:abc123.*");
        assert_eq!(c.cluster(), "wsb:cluster");
        assert_eq!(c.cluster_node(node("zzz999")), "wsb:cluster:zzz999");
        assert_eq!(c.classify("wsb:all"), Incoming::ExternalAll);
        assert_eq!(c.classify("wsb:ch:news"), Incoming::ExternalChannel("news"));
        assert_eq!(c.classify("wsb:ch:"), Incoming::ExternalChannel(""));
        assert_eq!(
            c.classify("wsb:id:abc123.1f"),
            Incoming::ExternalConn("abc123.1f")
        );
        assert_eq!(c.classify("wsb:cluster"), Incoming::Envelope);
        assert_eq!(c.classify("wsb:cluster:abc123"), Incoming::Envelope);
        assert_eq!(c.classify("wsb:cluster:zzz999"), Incoming::Unknown);
        assert_eq!(c.classify("wsbx:all"), Incoming::Unknown);
        assert_eq!(c.classify("other"), Incoming::Unknown);
    }
}
