//! The publishers outside the WebSocket connections: UDP datagrams and Unix
//! socket lines. (The `ws` publisher is one more client in the loop; see
//! `clients`.)

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

/// A connected UDP or Unix-socket publisher.
#[derive(Debug)]
pub(crate) enum Publisher {
    /// A connected, blocking UDP socket: one `send` per message (a local
    /// datagram send does not wait for the receiver).
    Udp { sock: UdpSocket, addr: SocketAddr },
    /// A non-blocking Unix stream; what the kernel does not take yet waits
    /// in `out` and goes on the next writable event.
    Unix {
        stream: UnixStream,
        path: PathBuf,
        out: Vec<u8>,
        /// Bytes of `out` already written.
        pos: usize,
    },
}

impl Publisher {
    pub(crate) fn udp(addr: SocketAddr) -> Result<Publisher, String> {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local)
            .and_then(|s| s.connect(addr).map(|_| s))
            .map_err(|e| format!("publisher: cannot open a UDP socket to {addr}: {e}"))?;
        Ok(Publisher::Udp { sock, addr })
    }

    /// Connects to the Unix socket and registers it for WRITABLE (edge
    /// triggered: an event only after the kernel refused bytes).
    pub(crate) fn unix(
        path: &Path,
        registry: &Registry,
        token: Token,
    ) -> Result<Publisher, String> {
        let std = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
            format!(
                "publisher: cannot connect to the Unix socket {}: {e} (is the server running \
                 with --unix {}?)",
                path.display(),
                path.display()
            )
        })?;
        std.set_nonblocking(true)
            .map_err(|e| format!("publisher: {e}"))?;
        let mut stream = UnixStream::from_std(std);
        registry
            .register(&mut stream, token, Interest::WRITABLE)
            .map_err(|e| format!("publisher: cannot register the Unix socket: {e}"))?;
        Ok(Publisher::Unix {
            stream,
            path: path.to_owned(),
            out: Vec::new(),
            pos: 0,
        })
    }

    /// Sends one message (the UDP datagram, or the Unix line).
    pub(crate) fn send(&mut self, payload: &[u8]) -> Result<(), String> {
        match self {
            Publisher::Udp { sock, addr } => match sock.send(payload) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(format!(
                    "publisher: {addr} refused the datagrams (ICMP port unreachable): is the \
                     server's UDP ingress on, at this address?"
                )),
                Err(e) => Err(format!("publisher: UDP send to {addr} failed: {e}")),
            },
            Publisher::Unix { out, .. } => {
                out.extend_from_slice(payload);
                out.push(b'\n');
                self.flush()
            }
        }
    }

    /// Writes what is waiting (Unix), until done or the socket is full.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        let Publisher::Unix {
            stream,
            path,
            out,
            pos,
        } = self
        else {
            return Ok(());
        };
        while *pos < out.len() {
            match stream.write(&out[*pos..]) {
                Ok(0) => return Err(format!("publisher: {} accepts no bytes", path.display())),
                Ok(n) => *pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Keep the buffer from growing with bytes already sent.
                    if *pos > 64 * 1024 && *pos * 2 > out.len() {
                        out.drain(..*pos);
                        *pos = 0;
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(format!(
                        "publisher: writing to {} failed: {e} (did the server close it?)",
                        path.display()
                    ));
                }
            }
        }
        out.clear();
        *pos = 0;
        Ok(())
    }
}
