//! A WebSocket client's byte stream: the TCP socket, with or without TLS.
//!
//! Everything above it (the peer's handshake and frames, the outbound
//! queue, the loop) sees plaintext only; this is the one place that knows
//! whether the socket carries TLS records.

use std::io::{self, Read};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::outbound::Outbound;
use super::tls::TlsSession;

/// The socket and, on a `wss://` listener, its TLS session (boxed: a plain
/// connection pays one pointer for the option).
#[derive(Debug)]
pub(crate) struct PeerStream {
    sock: TcpStream,
    tls: Option<Box<TlsSession>>,
}

impl PeerStream {
    /// A plain `ws://` connection.
    pub(crate) fn plain(sock: TcpStream) -> PeerStream {
        PeerStream { sock, tls: None }
    }

    /// A `wss://` connection.
    pub(crate) fn tls(sock: TcpStream, session: TlsSession) -> PeerStream {
        PeerStream {
            sock,
            tls: Some(Box::new(session)),
        }
    }

    /// Drops the TLS session, so a refusal can be written in plain text to
    /// a client that spoke plain HTTP to the TLS port.
    pub(crate) fn downgrade(&mut self) {
        self.tls = None;
    }

    /// Reads (plaintext) bytes: `Ok(0)` at the end of the stream.
    /// Plain TCP: a short read means the kernel's receive queue is empty
    /// (a TLS read returns what one record decrypts to, which says nothing
    /// about the socket).
    pub(crate) fn is_plain(&self) -> bool {
        self.tls.is_none()
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.sock.read(buf),
            Some(tls) => tls.read(&mut self.sock, buf),
        }
    }

    /// Bytes that are not in the outbound queue wait for the socket (TLS
    /// handshake messages, records not written yet).
    pub(crate) fn wants_write(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes the queue. `Ok(true)` when everything is out.
    pub(crate) fn write_from(&mut self, out: &mut Outbound) -> io::Result<bool> {
        match &mut self.tls {
            None => out.write_to(&mut self.sock),
            Some(tls) => tls.write_from(&mut self.sock, out),
        }
    }

    /// Ends our direction (TLS close_notify first). `Ok(false)` while that
    /// still waits for the socket.
    pub(crate) fn close_write(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => {
                let _ = self.sock.shutdown(std::net::Shutdown::Write);
                Ok(true)
            }
            Some(tls) => tls.close_write(&mut self.sock),
        }
    }

    /// Sets TCP_NODELAY.
    pub(crate) fn set_nodelay(&self) -> io::Result<()> {
        self.sock.set_nodelay(true)
    }
}

impl mio::event::Source for PeerStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}
