//! The routing index: which connections a channel or a connection id
//! names, without scanning every connection.

use std::collections::{BTreeSet, HashMap};

use crate::server::route::{ConnId, NodeId};

/// The routing index: channel → member keys, connection id → key. Only
/// upgraded connections are in it. Members are kept ordered (by slab key)
/// so a channel's delivery order is the same as an `All` publish's.
#[derive(Debug)]
pub(crate) struct Routes {
    channels: HashMap<Box<str>, BTreeSet<usize>>,
    /// This node's connections by the counter of their id (every id here
    /// has `node`'s prefix): 16 bytes a bucket instead of 24 with the whole
    /// id, and every connection has one.
    ids: HashMap<u64, usize>,
    node: NodeId,
}

impl Routes {
    /// An empty index for the connections of `node`.
    pub(crate) fn new(node: NodeId) -> Routes {
        Routes {
            channels: HashMap::new(),
            ids: HashMap::new(),
            node,
        }
    }

    /// Adds an upgraded connection under its id and to its channels.
    pub(crate) fn join(&mut self, key: usize, id: ConnId, channels: &[Box<str>]) {
        debug_assert_eq!(id.node(), self.node, "only this node's ids are routed");
        self.ids.insert(id.seq(), key);
        for c in channels {
            match self.channels.get_mut(c) {
                Some(members) => {
                    members.insert(key);
                }
                None => {
                    self.channels.insert(c.clone(), BTreeSet::from([key]));
                }
            }
        }
    }

    /// Removes a connection; a channel left empty is forgotten.
    pub(crate) fn leave(&mut self, key: usize, id: ConnId, channels: &[Box<str>]) {
        if id.node() == self.node && self.ids.get(&id.seq()) == Some(&key) {
            self.ids.remove(&id.seq());
        }
        for c in channels {
            if let Some(members) = self.channels.get_mut(c) {
                members.remove(&key);
                if members.is_empty() {
                    self.channels.remove(c);
                }
            }
        }
    }

    /// The key of the connection with this id.
    pub(crate) fn conn(&self, id: &ConnId) -> Option<usize> {
        if id.node() != self.node {
            return None;
        }
        self.ids.get(&id.seq()).copied()
    }

    /// The keys of a channel's members (none for an unknown channel).
    pub(crate) fn members(&self, channel: &str) -> impl Iterator<Item = usize> + '_ {
        self.channels.get(channel).into_iter().flatten().copied()
    }

    /// Connections in the index (upgraded and not yet removed).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Channels with at least one member.
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Every channel with its number of members.
    pub(crate) fn channel_sizes(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.channels.iter().map(|(c, m)| (&**c, m.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::route::NodeId;

    fn names(v: &[&str]) -> Box<[Box<str>]> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    fn members(r: &Routes, c: &str) -> Vec<usize> {
        r.members(c).collect()
    }

    #[test]
    fn join_and_leave_keep_the_index_exact() {
        let node = NodeId::random();
        let (a, b, c) = (
            ConnId::new(node, 1),
            ConnId::new(node, 2),
            ConnId::new(node, 3),
        );
        let mut r = Routes::new(node);
        r.join(7, a, &names(&["news", "sport"]));
        r.join(3, b, &names(&["news"]));
        r.join(5, c, &names(&[]));
        assert_eq!(members(&r, "news"), [3, 7], "ordered by key");
        assert_eq!(members(&r, "sport"), [7]);
        assert_eq!(members(&r, "nobody"), Vec::<usize>::new());
        assert_eq!(
            (r.conn(&a), r.conn(&b), r.conn(&c)),
            (Some(7), Some(3), Some(5))
        );
        assert_eq!((r.len(), r.channel_count()), (3, 2));

        r.leave(7, a, &names(&["news", "sport"]));
        assert_eq!(members(&r, "news"), [3]);
        assert_eq!(members(&r, "sport"), Vec::<usize>::new());
        assert_eq!(r.channel_count(), 1, "an empty channel is forgotten");
        assert_eq!(r.conn(&a), None);

        // Slab keys are reused: a new connection on key 7 is a new member.
        let d = ConnId::new(node, 4);
        r.join(7, d, &names(&["sport"]));
        assert_eq!(members(&r, "sport"), [7]);
        assert_eq!(r.conn(&d), Some(7));

        r.leave(3, b, &names(&["news"]));
        r.leave(5, c, &names(&[]));
        r.leave(7, d, &names(&["sport"]));
        assert_eq!((r.len(), r.channel_count()), (0, 0));
    }

    #[test]
    fn another_nodes_id_with_the_same_counter_is_not_routed() {
        let node = NodeId::parse("aaaaaa").unwrap();
        let other = NodeId::parse("bbbbbb").unwrap();
        let mut r = Routes::new(node);
        r.join(4, ConnId::new(node, 9), &names(&[]));
        assert_eq!(r.conn(&ConnId::new(node, 9)), Some(4));
        assert_eq!(r.conn(&ConnId::new(other, 9)), None);
        r.leave(4, ConnId::new(other, 9), &names(&[]));
        assert_eq!(
            r.conn(&ConnId::new(node, 9)),
            Some(4),
            "not removed by a foreign id"
        );
    }

    #[test]
    fn leave_only_removes_its_own_id() {
        let node = NodeId::random();
        let a = ConnId::new(node, 1);
        let mut r = Routes::new(node);
        r.join(1, a, &names(&["x"]));
        r.leave(2, a, &names(&["x"])); // a stale key: nothing of key 1 goes
        assert_eq!(r.conn(&a), Some(1));
        assert_eq!(members(&r, "x"), [1]);
    }
}
