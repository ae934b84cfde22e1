//! What travels over Redis, as pure functions: the channel names, the
//! node-to-node envelope, and what an external emitter's message means
//! (docs/cluster.md, docs/ingress.md).
//!
//! Channels under a prefix `P` (`--redis-prefix`, default `wsbroadcaster`):
//!
//! | channel | who publishes | payload |
//! | --- | --- | --- |
//! | `P:all` | anyone (`redis-cli PUBLISH wsbroadcaster:all hello`) | raw message, to everyone |
//! | `P:ch:NAME` | anyone | raw message, to channel NAME |
//! | `P:id:CONNID` | anyone | raw message, to one connection |
//! | `P:cluster` | nodes only | [`Envelope`]: broadcasts, channel messages, heartbeats |
//! | `P:cluster:NODE` | nodes only | [`Envelope`]: a send to a connection of NODE |
//!
//! A raw payload is valid UTF-8 → text frame, anything else → binary, as
//! for UDP. An envelope is MessagePack:
//!
//! - message `[0, node, seq, route, payload]`: `route` nil (everyone), an
//!   array of channel names (their union, each member once) or a connection
//!   id string; `payload` str (text frame) or bin (binary frame);
//! - heartbeat `[1, node, seq, nonce]`.
//!
//! `seq` counts every envelope a node publishes on `P:cluster` (1, 2, 3, …),
//! so every node sees every other node's complete sequence and a gap is a
//! lost message; a targeted send on `P:cluster:NODE` carries `seq` 0
//! (unsequenced: only one node sees it).
//!
//! A file per part: `channels` (the names and what a subscription
//! carries), `envelope` (the node-to-node envelope) and `history` (the
//! Lua scripts of `--redis-history` and their answers).

mod channels;
mod envelope;
mod history;

pub use self::channels::valid_prefix;
pub(crate) use self::channels::{Channels, Incoming};
pub(crate) use self::envelope::{
    Envelope, Target, decode_envelope, encode_heartbeat, encode_message,
};
pub(crate) use self::history::{CATCH_UP, CatchUp, SEQUENCER, decode_catch_up, decode_sequenced};
