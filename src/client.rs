//! A small blocking WebSocket client on the protocol core, used by the
//! `client` and `autobahn-client` commands and by tests.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::protocol::handshake::Progress;
use crate::protocol::handshake::client::{ClientHandshake, ClientRequest, ResponseError};
use crate::protocol::{
    CloseCode, Connection, Event, HandshakeLimits, Limits, MessageKind, Role, SendError,
};

/// A parsed `ws://` or `wss://` `host:port/path?query` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: TLS.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80, or 443 for `wss://`).
    pub port: u16,
    /// Path and query, at least `/`.
    pub target: String,
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        let (tls, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("{url:?}: expected a ws:// or wss:// URL")),
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed ["))?;
            (h.to_owned(), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(WsUrl {
            tls,
            host,
            port,
            target,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a client connection failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL could not be used.
    Url(String),
    /// A socket error.
    Io(io::Error),
    /// The server's handshake reply was refused.
    Handshake(ResponseError),
    /// The connection closed during the handshake.
    ClosedDuringHandshake,
    /// Sending was refused by the protocol state.
    Send(SendError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Url(e) => write!(f, "{e}"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Handshake(e) => write!(f, "handshake refused: {e}"),
            ClientError::ClosedDuringHandshake => {
                write!(f, "connection closed during the handshake")
            }
            ClientError::Send(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// The client's socket, with or without TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn sock(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => match t.read(buf) {
                // The server closed TCP without close_notify: the end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// A connected client.
#[derive(Debug)]
pub struct BlockingClient {
    stream: Stream,
    conn: Connection,
    events: VecDeque<Event>,
    scratch: Vec<u8>,
    /// Received bytes not yet given to the connection.
    pending: Vec<u8>,
    /// How much of `pending` the connection has consumed.
    pending_pos: usize,
}

impl BlockingClient {
    /// Connects and performs the opening handshake.
    pub fn connect(url: &str, limits: Limits) -> Result<BlockingClient, ClientError> {
        Self::connect_with(url, limits, false)
    }

    /// Connects, offering permessage-deflate when `deflate` is set. A
    /// `wss://` URL trusts the system's certificates
    /// ([`crate::client_tls::ca_file`]).
    pub fn connect_with(
        url: &str,
        limits: Limits,
        deflate: bool,
    ) -> Result<BlockingClient, ClientError> {
        let tls = if url.starts_with("wss://") {
            Some(crate::client_tls::client_config(None).map_err(ClientError::Url)?)
        } else {
            None
        };
        Self::connect_tls(url, limits, deflate, tls)
    }

    /// Connects with this TLS configuration for a `wss://` URL.
    pub fn connect_tls(
        url: &str,
        limits: Limits,
        deflate: bool,
        tls: Option<Arc<ClientConfig>>,
    ) -> Result<BlockingClient, ClientError> {
        let url = WsUrl::parse(url).map_err(ClientError::Url)?;
        let sock = TcpStream::connect((url.host.as_str(), url.port))?;
        let _ = sock.set_nodelay(true);
        let mut stream = match (url.tls, tls) {
            (false, _) => Stream::Plain(sock),
            (true, None) => {
                return Err(ClientError::Url(format!(
                    "{}: a wss:// URL needs a TLS configuration",
                    url.host
                )));
            }
            (true, Some(config)) => {
                let name = crate::client_tls::server_name(&url.host).map_err(ClientError::Url)?;
                let conn = ClientConnection::new(config, name)
                    .map_err(|e| ClientError::Io(io::Error::other(e)))?;
                Stream::Tls(Box::new(StreamOwned::new(conn, sock)))
            }
        };
        let request = ClientRequest {
            host: url.host_header(),
            target: url.target.clone(),
            deflate,
            ..ClientRequest::default()
        };
        let (mut hs, bytes) = ClientHandshake::new(&request, HandshakeLimits::default());
        stream.write_all(&bytes)?;
        stream.flush()?;
        let mut scratch = vec![0u8; 64 * 1024];
        let leftover = loop {
            let n = stream.read(&mut scratch)?;
            if n == 0 {
                return Err(ClientError::ClosedDuringHandshake);
            }
            match hs.feed(&scratch[..n]).map_err(ClientError::Handshake)? {
                Progress::Partial => continue,
                Progress::Complete { consumed, value } => {
                    break (scratch[consumed..n].to_vec(), value.deflate);
                }
            }
        };
        let (leftover, negotiated) = leftover;
        let mut conn = Connection::new(Role::Client, limits);
        if let Some(params) = negotiated {
            conn.set_deflate(params);
        }
        let client = BlockingClient {
            stream,
            conn,
            events: VecDeque::new(),
            scratch,
            pending: leftover,
            pending_pos: 0,
        };
        Ok(client)
    }

    /// The underlying socket (for timeouts, or a clone to shut it down).
    pub fn stream(&self) -> &TcpStream {
        self.stream.sock()
    }

    /// The server's certificate chain (leaf first), on a `wss://` connection.
    pub fn peer_certificates(&self) -> Option<Vec<Vec<u8>>> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(t) => t
                .conn
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.to_vec()).collect()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.conn.has_transmit() {
            let tx = self.conn.take_transmit();
            self.stream.write_all(&tx)?;
            self.stream.flush()?;
        }
        Ok(())
    }

    /// Sends a message.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), ClientError> {
        self.conn
            .send_message(kind, data)
            .map_err(ClientError::Send)?;
        Ok(self.flush()?)
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), ClientError> {
        self.conn.close(code, reason).map_err(ClientError::Send)?;
        Ok(self.flush()?)
    }

    /// The next event, reading as needed; `None` once the connection is
    /// over (close handshake done, connection failed, or TCP closed).
    pub fn next_event(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            // Process buffered input one message at a time, so a reply the
            // caller sends goes out before frames that came after it.
            if self.pending_pos < self.pending.len() {
                let mut events = Vec::new();
                let n = self
                    .conn
                    .receive_message(&self.pending[self.pending_pos..], &mut events);
                self.pending_pos += n;
                if self.pending_pos == self.pending.len() {
                    self.pending.clear();
                    self.pending_pos = 0;
                }
                self.events.extend(events);
                self.flush()?;
                continue;
            }
            if self.conn.is_closed() {
                let _ = self.stream.sock().shutdown(std::net::Shutdown::Write);
                return Ok(None);
            }
            let n = match self.stream.read(&mut self.scratch) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&self.scratch[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:8124/?channel=a").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8124, "/?channel=a")
        );
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
        let u = WsUrl::parse("ws://[::1]:9001/runCase?case=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9001));
        assert_eq!(u.host_header(), "[::1]:9001");
        let u = WsUrl::parse("ws://h:1?x=1").unwrap();
        assert_eq!(u.target, "/?x=1");
        let u = WsUrl::parse("wss://example.com/x").unwrap();
        assert_eq!((u.tls, u.port, u.target.as_str()), (true, 443, "/x"));
        assert!(!WsUrl::parse("ws://h/").unwrap().tls);
        assert!(WsUrl::parse("http://x").is_err());
        assert!(WsUrl::parse("ws://:80/").is_err());
        assert!(WsUrl::parse("ws://h:notaport/").is_err());
    }
}
