//! The sans-IO protocol core: RFC 6455 handshake, frames and connection
//! state machine. Nothing here touches sockets, clocks or threads; the
//! caller moves bytes and passes time in.

#![deny(unsafe_code)]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod limits;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{CloseState, Connection, Event, MessageKind, Role};
pub use error::{ProtocolError, SendError};
pub use limits::{HandshakeLimits, Limits};
