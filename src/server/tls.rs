//! TLS on the WebSocket listener (`--tls-cert`, `--tls-key`): `wss://`.
//!
//! rustls is sans-IO, like our protocol core, so it runs inside the mio loop
//! with no runtime and no extra thread: a readable socket is read into the
//! connection's [`rustls::ServerConnection`] (`read_tls`), the records are
//! decrypted (`process_new_packets`) and the plaintext goes to the peer's
//! WebSocket parser exactly as a plain socket's bytes would; queued frames
//! are encrypted (`writer()`) and written (`write_tls`) when the loop
//! flushes. [`TlsSession`] is that driver; `stream::PeerStream` hides the
//! difference from the rest of the server.
//!
//! A broadcast is still encoded once: every recipient's queue holds the same
//! plain frame bytes; each TLS connection encrypts them with its own keys
//! (unavoidable) straight from the shared buffer into its record buffer,
//! without an intermediate copy.
//!
//! The certificate and key are read at start ([`Acceptor::new`]: a missing
//! or bad file is an error naming the file and the problem) and again on
//! SIGHUP ([`Acceptor::reload`]): new handshakes use the new certificate,
//! open connections keep theirs, and a failed reload keeps the old one.
//!
//! Crypto provider: *ring* (builds with a C compiler only; aws-lc-rs, rustls'
//! default, also needs cmake or more build time and makes a larger binary;
//! figures in docs/tls.md).

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, ServerConnection};

use super::outbound::Outbound;

/// Largest certificate or key file read (a chain is a few KiB; this keeps a
/// wrong path such as /dev/zero from filling memory).
const MAX_PEM_FILE: u64 = 1 << 20;

/// The first byte of a TLS handshake record (RFC 8446 §5.1: ContentType
/// handshake = 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The certificate chain and private key files (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (`--tls-cert`).
    pub cert: PathBuf,
    /// Private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`--tls-key`).
    pub key: PathBuf,
}

/// Why a certificate or key could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is larger than any certificate chain or key.
    TooLarge(PathBuf),
    /// The file holds no PEM certificate.
    NoCertificate(PathBuf),
    /// The file holds no PEM private key.
    NoKey(PathBuf),
    /// The PEM text is malformed.
    BadPem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
    },
    /// The private key does not belong to the certificate.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the pair (an unsupported key type, a malformed
    /// certificate).
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::TooLarge(p) => write!(
                f,
                "{}: larger than {} bytes; is this really a PEM certificate or key?",
                p.display(),
                MAX_PEM_FILE
            ),
            TlsError::NoCertificate(p) => write!(
                f,
                "{}: no certificate found (expected PEM `-----BEGIN CERTIFICATE-----` blocks, leaf first)",
                p.display()
            ),
            TlsError::NoKey(p) => write!(
                f,
                "{}: no private key found (expected PEM `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)",
                p.display()
            ),
            TlsError::BadPem { path, detail } => {
                write!(f, "{}: malformed PEM: {detail}", path.display())
            }
            TlsError::KeyMismatch { cert, key } => write!(
                f,
                "the private key in {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::Rejected { cert, key, source } => write!(
                f,
                "certificate {} with key {} cannot be used: {source}",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_err = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::TooLarge(path.to_owned()));
    }
    Ok(bytes)
}

fn bad_pem(path: &Path, e: pem::Error) -> TlsError {
    TlsError::BadPem {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// Reads the files and builds the rustls configuration (TLS 1.3 and 1.2,
/// ring's cipher suites, no client certificates, `http/1.1` ALPN).
pub(crate) fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read_pem_file(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(&files.cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key_pem = read_pem_file(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey(files.key.clone()),
        e => bad_pem(&files.key, e),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rejected = |source| TlsError::Rejected {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                }
            }
            e => rejected(e),
        })?;
    // A browser's wss:// handshake offers http/1.1 (RFC 6455 runs over it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The current TLS configuration of the WebSocket listener.
#[derive(Debug)]
pub(crate) struct Acceptor {
    files: TlsFiles,
    config: Arc<ServerConfig>,
}

impl Acceptor {
    /// Loads the certificate and key; an error names the file and problem.
    pub(crate) fn new(files: TlsFiles) -> Result<Acceptor, TlsError> {
        let config = load(&files)?;
        Ok(Acceptor { files, config })
    }

    /// The files in use.
    pub(crate) fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again. On success new handshakes use the new
    /// certificate (open connections keep the configuration they started
    /// with, so none is dropped); on failure nothing changes.
    pub(crate) fn reload(&mut self) -> Result<(), TlsError> {
        let mut config = load(&self.files)?;
        // Keep the session cache, so resumption survives a reload.
        if let Some(c) = Arc::get_mut(&mut config) {
            c.session_storage = Arc::clone(&self.config.session_storage);
        }
        self.config = config;
        Ok(())
    }

    /// A session for a connection just accepted.
    pub(crate) fn session(&self) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: ServerConnection::new(Arc::clone(&self.config))?,
            sniffed: false,
            close_sent: false,
        })
    }
}

/// The error a TLS connection's read returns when the client spoke plain
/// HTTP (`ws://` or `http://` to the `wss://` port): the caller answers it
/// in plain text.
#[derive(Debug)]
pub(crate) struct PlainHttpOnTls;

impl fmt::Display for PlainHttpOnTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("plain HTTP sent to the TLS port")
    }
}

impl std::error::Error for PlainHttpOnTls {}

/// True when `e` is [`PlainHttpOnTls`].
pub(crate) fn is_plain_http(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<PlainHttpOnTls>())
}

/// One TLS connection's state, driven by the loop over its socket.
#[derive(Debug)]
pub(crate) struct TlsSession {
    conn: ServerConnection,
    /// The first byte from the client has been looked at.
    sniffed: bool,
    /// Our close_notify alert is queued.
    close_sent: bool,
}

/// Records the first byte read through it.
struct Sniff<'a, R> {
    inner: &'a mut R,
    first: Option<u8>,
}

impl<R: Read> Read for Sniff<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 && self.first.is_none() {
            self.first = Some(buf[0]);
        }
        Ok(n)
    }
}

impl TlsSession {
    /// Reads plaintext into `buf`: `Ok(0)` at the end of the stream (the
    /// client's close_notify, or TCP closed), `WouldBlock` when the socket
    /// has nothing more. Handshake records are consumed on the way; their
    /// replies wait in the session ([`TlsSession::wants_write`]).
    pub(crate) fn read<S: Read + Write>(
        &mut self,
        sock: &mut S,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP closed without close_notify: the end all the same (a
                // truncation cannot hurt a WebSocket: its frames and close
                // handshake are self-delimiting).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let n = if self.sniffed {
                self.conn.read_tls(sock)?
            } else {
                let mut sniff = Sniff {
                    inner: sock,
                    first: None,
                };
                let n = self.conn.read_tls(&mut sniff)?;
                if let Some(first) = sniff.first {
                    self.sniffed = true;
                    // A request line starts with an upper-case method; a TLS
                    // client starts with a handshake record.
                    if first != TLS_HANDSHAKE_RECORD && first.is_ascii_uppercase() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, PlainHttpOnTls));
                    }
                }
                n
            };
            if let Err(e) = self.conn.process_new_packets() {
                // rustls queued the alert that explains the failure: send it
                // if the socket takes it now, then give up.
                let _ = self.conn.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if n == 0 {
                // The next reader() call reports the end (Ok(0) or UnexpectedEof).
                continue;
            }
        }
    }

    /// Encrypted bytes are waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Encrypts and writes queued frames. `Ok(true)` when the queue and the
    /// session's record buffer are both empty.
    pub(crate) fn write_from<S: Write>(
        &mut self,
        sock: &mut S,
        out: &mut Outbound,
    ) -> io::Result<bool> {
        let mut sink = Sink {
            conn: &mut self.conn,
            sock,
        };
        let queue_drained = out.write_to(&mut sink)?;
        let records_drained = sink.drain()?;
        Ok(queue_drained && records_drained)
    }

    /// Sends close_notify, then shuts the TCP write side. `Ok(true)` once
    /// done; `Ok(false)` while the alert waits for the socket.
    pub(crate) fn close_write(&mut self, sock: &mut mio::net::TcpStream) -> io::Result<bool> {
        if !self.close_sent {
            self.conn.send_close_notify();
            self.close_sent = true;
        }
        let mut sink = Sink {
            conn: &mut self.conn,
            sock: &mut *sock,
        };
        if !sink.drain()? {
            return Ok(false);
        }
        let _ = sock.shutdown(std::net::Shutdown::Write);
        Ok(true)
    }
}

/// The queue's writer for a TLS connection: plaintext in, records out.
struct Sink<'a, S> {
    conn: &'a mut ServerConnection,
    sock: &'a mut S,
}

impl<S: Write> Sink<'_, S> {
    /// Writes the session's records until none is left (`Ok(true)`) or the
    /// socket would block (`Ok(false)`).
    fn drain(&mut self) -> io::Result<bool> {
        write_records(self.conn, self.sock)
    }
}

/// Writes a TLS session's pending records to a non-blocking socket until
/// none is left (`Ok(true)`) or the socket would block (`Ok(false)`). Shared
/// by the server's connections and the `bench` tool's `wss://` clients.
pub(crate) fn write_records<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    sock: &mut impl Write,
) -> io::Result<bool> {
    while conn.wants_write() {
        match conn.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<S: Write> Write for Sink<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Takes as much plaintext as the session's record buffer allows
    /// (rustls' 64 KiB limit), encrypting it from the caller's slices, and
    /// pushes records to the socket. `WouldBlock` when the buffer is full
    /// and the socket takes nothing: the rest stays in our queue.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.drain()?;
        let n = self.conn.writer().write_vectored(bufs)?;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.drain()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
