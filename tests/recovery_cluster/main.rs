//! Recovery with two nodes on a real redis-server (started here on a free
//! loopback port, ended by PID). With `--local-history`, history is per
//! node (docs/recovery.md, "Across nodes"): a node's history holds what
//! every node published (it arrives through Redis), so a client that comes
//! back to the same node misses nothing; a client that comes back to
//! another node is told `reset: epoch` explicitly, never silently left with
//! a gap. By default (`--redis-history`), Redis numbers every stream's
//! messages and a client recovers on any node.

#[path = "../common/mod.rs"]
mod common;
#[path = "../redis_server/mod.rs"]
mod redis_server;

mod inbox;
mod local_history;
mod nodes;
mod numbering;
mod replay;
mod resets;
