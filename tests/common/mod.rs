//! Shared helpers for the integration tests: the real `wsbroadcaster` binary
//! as a child process (killed by PID on drop), real peers (Python
//! `websockets`, netcat-openbsd, the crate's blocking client, raw sockets),
//! and bounded waits. Nothing here loops without a count or a deadline.
//!
//! Every test file compiles this module on its own and uses a part of it.
//! One concept per file; every helper is re-exported here, so tests name
//! them `common::NAME`.
#![allow(dead_code)]

pub mod certs;
pub mod client;
pub mod http;
pub mod json;
pub mod paths;
pub mod process;
pub mod py_client;
pub mod rpc;
pub mod server;
pub mod spawn;
pub mod srv;
pub mod tools;
pub mod wait;

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use paths::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use py_client::*;
#[allow(unused_imports)]
pub use server::*;
#[allow(unused_imports)]
pub use spawn::*;
#[allow(unused_imports)]
pub use srv::{Srv, id_from_greeting};
#[allow(unused_imports)]
pub use tools::*;
#[allow(unused_imports)]
pub use wait::*;
