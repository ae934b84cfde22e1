//! The crate's own blocking WebSocket client with a read timeout on every
//! read, and what it reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wsbroadcaster::client::{BlockingClient, ClientError};
use wsbroadcaster::protocol::{CloseCode, Event, Limits, MessageKind};

/// The crate's blocking client with a read timeout on every read.
pub struct Client {
    pub inner: BlockingClient,
}

/// What a [`Client`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    Pong,
    /// The server's close frame (code, reason).
    Closed(Option<u16>, String),
    /// The TCP connection ended (cleanly after a close handshake, or not).
    End,
    /// Nothing within the timeout.
    Timeout,
    /// A socket error other than a timeout (e.g. a reset).
    Error(String),
}

impl Client {
    pub fn connect(url: &str) -> Client {
        let inner = BlockingClient::connect(url, Limits::default())
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Client { inner }
    }

    /// Connects to a `wss://` URL with this TLS configuration.
    pub fn connect_tls(url: &str, tls: Arc<rustls::ClientConfig>) -> Client {
        Client::try_connect_tls(url, tls).unwrap_or_else(|e| panic!("connect {url}: {e}"))
    }

    pub fn try_connect_tls(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Client, ClientError> {
        BlockingClient::connect_tls(url, Limits::default(), false, Some(tls))
            .map(|inner| Client { inner })
    }

    pub fn try_connect(url: &str) -> Result<Client, ClientError> {
        BlockingClient::connect(url, Limits::default()).map(|inner| Client { inner })
    }

    /// The next event within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Got {
        self.inner
            .stream()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set_read_timeout");
        match self.inner.next_event() {
            Ok(Some(Event::Message { kind, data })) => match kind {
                MessageKind::Text => Got::Text(String::from_utf8(data).expect("validated text")),
                MessageKind::Binary => Got::Binary(data),
            },
            Ok(Some(Event::Ping(_))) => Got::Ping,
            Ok(Some(Event::Pong(_))) => Got::Pong,
            Ok(Some(Event::Closed { code, reason })) => Got::Closed(code.map(|c| c.0), reason),
            Ok(Some(Event::Failed(e))) => Got::Error(format!("protocol error: {e}")),
            Ok(None) => Got::End,
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Got::Timeout
            }
            Err(e) => Got::Error(e.to_string()),
        }
    }

    /// The next data message within `timeout` (pings and pongs skipped);
    /// panics on anything else.
    pub fn next_message(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Got::Ping | Got::Pong => continue,
                g @ (Got::Text(_) | Got::Binary(_)) => return g,
                other => panic!("expected a message within {timeout:?}, got {other:?}"),
            }
        }
    }

    /// Expects the next data message to be the text `want`.
    pub fn expect_text(&mut self, want: &str) {
        let got = self.next_message(Duration::from_secs(10));
        assert_eq!(got, Got::Text(want.to_owned()));
    }

    pub fn send_text(&mut self, text: &str) {
        self.inner
            .send(MessageKind::Text, text.as_bytes())
            .expect("send");
    }

    pub fn close(&mut self) {
        let _ = self.inner.close(CloseCode::NORMAL, "");
    }
}
