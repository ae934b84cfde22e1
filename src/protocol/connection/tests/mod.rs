//! Tests of the connection state machine, one file per concept: one test
//! per RFC rule, a chopping runner that feeds every case whole, byte by byte
//! and at every split, and proptest properties.
//!
//! - `helpers`: frame builders (`cf`, `raw`), the chopping runner (`run`,
//!   `run_with`) and event/transmit checks, shared by every file below.
//! - `masking`: §5.1 / §5.3, who masks and with which key.
//! - `framing`: §5.2 header rules (reserved bits, opcodes, length forms).
//! - `assembly`: §5.4 fragmentation and message assembly, `receive_message`.
//! - `control`: §5.5 control-frame rules, §5.5.2–§5.5.3 ping/pong.
//! - `utf8`: §8.1 fail-fast UTF-8 for text.
//! - `close`: §5.5.1 / §7 close handshake, codes, reasons, failing (§7.1.7).
//! - `limits`: 1009 limits and the memory a connection holds.
//! - `recycle`: message buffers handed back with `Connection::recycle`.
//! - `fast_path`: the whole-frame fast path against the general path.
//! - `properties`: proptest properties.
//! - `deflate`: RFC 7692 permessage-deflate.

mod assembly;
mod close;
mod control;
mod deflate;
mod fast_path;
mod framing;
mod helpers;
mod limits;
mod masking;
mod properties;
mod recycle;
mod utf8;
