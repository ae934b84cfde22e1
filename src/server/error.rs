//! Why the server could not start or had to stop.

use std::io;
use std::path::PathBuf;

/// Why the server could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding or configuring a listener failed.
    Bind {
        /// What was being bound.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// Another running instance answers on the Unix socket path.
    UnixSocketInUse(PathBuf),
    /// The Unix socket path exists and is not a socket.
    UnixPathNotSocket(PathBuf),
    /// The poll loop failed.
    Poll(io::Error),
    /// The TLS certificate or key cannot be used.
    Tls(super::tls::TlsError),
    /// Cluster mode could not start (a bad Redis URL, or its threads).
    Cluster(String),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Bind { what, source } => write!(f, "cannot bind {what}: {source}"),
            ServerError::UnixSocketInUse(p) => write!(
                f,
                "{} is in use by another running instance (use --unix PATH for a different socket, or --unix off)",
                p.display()
            ),
            ServerError::UnixPathNotSocket(p) => {
                write!(
                    f,
                    "{} exists and is not a socket; refusing to replace it",
                    p.display()
                )
            }
            ServerError::Poll(e) => write!(f, "event loop failed: {e}"),
            ServerError::Tls(e) => write!(f, "TLS: {e}"),
            ServerError::Cluster(e) => write!(f, "cluster mode (--redis): {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Maps a bind failure to [`ServerError::Bind`] naming `what`.
pub(crate) fn bind_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Bind { what, source }
}
