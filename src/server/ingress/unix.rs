//! Unix stream ingress: every newline-terminated line is one message
//! (docs/ingress.md).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use log::{debug, error, info, warn};
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Token};

use crate::server::{Entry, Server, ServerError};

/// A connected writer and its unfinished line.
#[derive(Debug)]
pub(crate) struct UnixWriter {
    pub(crate) stream: UnixStream,
    line: Vec<u8>,
}

/// Binds the socket. A stale file (nobody listening) is replaced; a live one
/// is an error, and so is a path that is not a socket.
pub(crate) fn bind(path: &Path, mode: u32) -> Result<UnixListener, ServerError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServerError::UnixPathNotSocket(path.to_owned()));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(ServerError::UnixSocketInUse(path.to_owned())),
            Err(_) => {
                info!("removing stale socket file {}", path.display());
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let what = || format!("Unix socket {}", path.display());
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Bind {
        what: what(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServerError::Bind {
            what: what(),
            source,
        }
    })?;
    Ok(listener)
}

/// Removes the socket file at shutdown.
pub(crate) fn remove_socket_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            warn!("cannot remove {}: {e}", path.display());
        }
    }
}

impl Server {
    pub(crate) fn accept_unix(&mut self) {
        loop {
            let Some((listener, _)) = self.unix.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let entry = self.entries.vacant_entry();
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE,
                    ) {
                        warn!("cannot register a Unix writer: {e}");
                        continue;
                    }
                    debug!("Unix writer connected ({})", entry.key());
                    entry.insert(Entry::Unix(UnixWriter {
                        stream,
                        line: Vec::new(),
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!("Unix accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Splits the `n` bytes in the scratch buffer into lines and publishes
    /// each; returns false when the writer was closed.
    pub(crate) fn on_unix_data(&mut self, key: usize, n: usize) -> bool {
        let scratch = std::mem::take(&mut self.scratch);
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut too_long = false;
        if let Some(Entry::Unix(w)) = self.entries.get_mut(key) {
            let mut rest = &scratch[..n];
            while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
                let mut line = std::mem::take(&mut w.line);
                line.extend_from_slice(&rest[..pos]);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(line);
                rest = &rest[pos + 1..];
            }
            w.line.extend_from_slice(rest);
            too_long = w.line.len() > self.cfg.limits.max_message
                || lines.iter().any(|l| l.len() > self.cfg.limits.max_message);
        }
        self.scratch = scratch;
        let now = Instant::now();
        let max = self.cfg.limits.max_message;
        for line in lines.iter().take_while(|l| l.len() <= max) {
            self.publish_addressed(line, "Unix socket", now);
        }
        if too_long {
            self.stats.unix_line_too_long += 1;
            error!(
                "Unix writer {key}: line longer than --max-message ({max} bytes); closing that writer"
            );
            self.remove(key);
            return false;
        }
        true
    }

    /// The writer closed: a final line without a newline is still a message.
    pub(crate) fn on_unix_eof(&mut self, key: usize) {
        let line = match self.entries.get_mut(key) {
            Some(Entry::Unix(w)) => std::mem::take(&mut w.line),
            _ => return,
        };
        if !line.is_empty() {
            let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
            self.publish_addressed(&line, "Unix socket", Instant::now());
        }
    }
}
