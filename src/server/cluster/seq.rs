//! Per-node sequence numbers: every envelope a node publishes on
//! `P:cluster` carries the next number of that node's sequence, so a
//! receiver that sees 7 after 5 knows it missed one message (lost by Redis,
//! dropped while the link was down, or never published), whatever the cause.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::server::route::NodeId;

/// What one sequence number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// The first number seen from this node: nothing to compare.
    First,
    /// The next one.
    InOrder,
    /// `n` numbers were skipped: `n` messages from that node are lost here.
    Gap(u64),
    /// Not after the last one seen (a duplicate, or two processes with one
    /// node id).
    Behind,
}

/// The last sequence number seen from each node. Bounded: nodes not heard
/// from for a while are forgotten, and past `max_nodes` the stalest goes.
#[derive(Debug)]
pub(crate) struct SeqTracker {
    nodes: HashMap<NodeId, (u64, Instant)>,
    max_nodes: usize,
}

impl SeqTracker {
    pub(crate) fn new(max_nodes: usize) -> SeqTracker {
        SeqTracker {
            nodes: HashMap::new(),
            max_nodes: max_nodes.max(1),
        }
    }

    /// Records `seq` from `node`.
    pub(crate) fn observe(&mut self, node: NodeId, seq: u64, now: Instant) -> SeqCheck {
        if let Some((last, at)) = self.nodes.get_mut(&node) {
            let check = if seq == last.wrapping_add(1) {
                SeqCheck::InOrder
            } else if seq > *last {
                SeqCheck::Gap(seq - *last - 1)
            } else {
                SeqCheck::Behind
            };
            *last = seq;
            *at = now;
            return check;
        }
        if self.nodes.len() >= self.max_nodes {
            if let Some(stalest) = self.nodes.iter().min_by_key(|(_, (_, at))| *at) {
                let stalest = *stalest.0;
                self.nodes.remove(&stalest);
            }
        }
        self.nodes.insert(node, (seq, now));
        SeqCheck::First
    }

    /// Forgets nodes not heard from for `idle` (gone, or restarted with a
    /// new id).
    pub(crate) fn forget_idle(&mut self, now: Instant, idle: Duration) {
        self.nodes
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < idle);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_order() {
        let a = NodeId::parse("aaaaaa").unwrap();
        let b = NodeId::parse("bbbbbb").unwrap();
        let t = Instant::now();
        let mut s = SeqTracker::new(10);
        assert_eq!(s.observe(a, 5, t), SeqCheck::First);
        assert_eq!(s.observe(a, 6, t), SeqCheck::InOrder);
        assert_eq!(s.observe(b, 1, t), SeqCheck::First);
        assert_eq!(s.observe(a, 9, t), SeqCheck::Gap(2));
        assert_eq!(s.observe(a, 10, t), SeqCheck::InOrder);
        assert_eq!(s.observe(a, 10, t), SeqCheck::Behind);
        assert_eq!(s.observe(a, 11, t), SeqCheck::InOrder);
        assert_eq!(s.observe(b, 2, t), SeqCheck::InOrder);
    }

    #[test]
    fn bounded_and_forgetful() {
        let t = Instant::now();
        let mut s = SeqTracker::new(2);
        let n = |x: &str| NodeId::parse(x).unwrap();
        s.observe(n("aaaaaa"), 1, t);
        s.observe(n("bbbbbb"), 1, t + Duration::from_secs(1));
        s.observe(n("cccccc"), 1, t + Duration::from_secs(2));
        assert_eq!(s.len(), 2);
        // The stalest (a) went; b is still known.
        assert_eq!(
            s.observe(n("bbbbbb"), 2, t + Duration::from_secs(3)),
            SeqCheck::InOrder
        );
        s.forget_idle(t + Duration::from_secs(10), Duration::from_secs(5));
        assert_eq!(s.len(), 0);
    }
}
