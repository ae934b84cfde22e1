//! # wsbroadcaster
//!
//! A from-scratch RFC 6455 WebSocket implementation and, on top of it, a
//! small and fast broadcast server: other programs push a message (over UDP,
//! a Unix socket, …) and every connected browser gets it at once.
//!
//! ## Design
//!
//! - [`protocol`] is sans-IO: the opening handshake
//!   ([`protocol::handshake`]), the frame codec ([`protocol::frame`]) and the
//!   connection state machine ([`protocol::Connection`]). It owns no socket,
//!   clock or thread; the caller feeds received bytes and writes out the
//!   bytes it is given. That is what lets proptest and cargo-fuzz drive it
//!   directly.
//! - Errors carry the close code they imply ([`protocol::ProtocolError::close_code`]).
//! - Every limit (header bytes, frame, message, fragments) is explicit in
//!   [`protocol::Limits`] and [`protocol::HandshakeLimits`].
//!
//! ## Driving a connection
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use wsbroadcaster::protocol::handshake::Progress;
//! use wsbroadcaster::protocol::handshake::server::RequestParser;
//! use wsbroadcaster::protocol::{Connection, Event, HandshakeLimits, Limits, Role};
//!
//! # fn main() -> std::io::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let (mut sock, _) = listener.accept()?;
//! let mut parser = RequestParser::new(HandshakeLimits::default());
//! let mut buf = [0u8; 4096];
//! // 1. The opening handshake: feed bytes until the head is complete.
//! let leftover = loop {
//!     let n = sock.read(&mut buf)?;
//!     match parser.feed(&buf[..n]) {
//!         Ok(Progress::Partial) => continue,
//!         Ok(Progress::Complete { value, consumed }) => {
//!             sock.write_all(&value.accept(None))?;
//!             break buf[consumed..n].to_vec();
//!         }
//!         Err(e) => {
//!             sock.write_all(&e.response())?;
//!             return Ok(());
//!         }
//!     }
//! };
//! // 2. Frames: bytes in, events and bytes out. A mio loop does the same
//! //    on readiness, writing `take_transmit()` until WouldBlock.
//! let mut conn = Connection::new(Role::Server, Limits::default());
//! let mut events = Vec::new();
//! conn.receive(&leftover, &mut events);
//! while !conn.is_closed() {
//!     let n = sock.read(&mut buf)?;
//!     if n == 0 { break; }
//!     conn.receive(&buf[..n], &mut events);
//!     for event in events.drain(..) {
//!         if let Event::Message { kind, data } = event {
//!             let _ = conn.send_message(kind, &data); // echo
//!         }
//!     }
//!     sock.write_all(&conn.take_transmit())?;
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![warn(unreachable_pub)]

pub mod bench;
pub mod cidr;
pub mod cli;
pub mod client;
pub mod client_tls;
pub mod config_file;
mod json;
pub mod protocol;
pub mod server;
pub mod units;
