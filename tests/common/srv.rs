//! A `serve` child for the routing, RPC, stdin, ops and cluster tests: it
//! also reports its MessagePack-RPC, admin and control addresses and may
//! have its stdin piped. Killed by PID on drop; every wait is bounded.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::time::Duration;

use super::{
    Lines, Log, collect_stderr, log_text, serve_command, unique_sock_path, wait_log, wait_ready,
};

/// A running `wsbroadcaster serve`.
pub struct Srv {
    pub child: Child,
    pub ws: SocketAddr,
    pub udp: SocketAddr,
    pub unix: PathBuf,
    pub rpc: Option<SocketAddr>,
    /// The admin HTTP endpoint (`--admin`), when on.
    pub admin: Option<SocketAddr>,
    /// The control socket (`--control`), when on.
    pub control: Option<PathBuf>,
    /// The server's stdin, when started with [`Srv::start_with_stdin`].
    pub stdin: Option<ChildStdin>,
    stderr: Log,
    _stdout: Lines,
}

impl Srv {
    /// Starts `serve` with ephemeral ports, a fresh socket path and `extra`.
    pub fn start(extra: &[&str]) -> Srv {
        Srv::spawn(extra, false)
    }

    /// Like [`Srv::start`], with the server's stdin a pipe.
    pub fn start_with_stdin(extra: &[&str]) -> Srv {
        Srv::spawn(extra, true)
    }

    fn spawn(extra: &[&str], pipe_stdin: bool) -> Srv {
        let unix = unique_sock_path("route");
        let mut cmd = serve_command(&unix, extra);
        if pipe_stdin {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn the wsbroadcaster binary");
        let stdin = child.stdin.take();
        let stderr = collect_stderr(child.stderr.take().expect("stderr piped"));
        let stdout = Lines::spawn(child.stdout.take().expect("stdout piped"));
        let seen = wait_ready(&mut child, &stdout, Duration::from_secs(20), Some(&stderr));
        Srv {
            child,
            ws: seen.ws(),
            udp: seen.udp(),
            unix,
            rpc: seen.rpc,
            admin: seen.admin,
            control: seen.control,
            stdin,
            stderr,
            _stdout: stdout,
        }
    }

    /// `ws://ADDR/?QUERY` (or `ws://ADDR/` for an empty query).
    pub fn url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/", self.ws)
        } else {
            format!("ws://{}/?{query}", self.ws)
        }
    }

    pub fn log(&self) -> String {
        log_text(&self.stderr)
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_log(&self.stderr, needle, timeout);
    }

    /// Writes to the server's stdin.
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let s = self.stdin.as_mut().expect("started with a stdin pipe");
        s.write_all(bytes).expect("write to the server's stdin");
        s.flush().expect("flush");
    }

    /// One datagram to the UDP ingress.
    pub fn udp_send(&self, payload: &[u8]) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        sock.send_to(payload, self.udp).expect("send a datagram");
    }

    /// Writes `bytes` on a fresh Unix socket connection and closes it.
    pub fn unix_send(&self, bytes: &[u8]) {
        let mut s =
            std::os::unix::net::UnixStream::connect(&self.unix).expect("connect the Unix socket");
        s.write_all(bytes).expect("write to the Unix socket");
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to this PID only
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.unix);
        if let Some(c) = &self.control {
            let _ = std::fs::remove_file(c);
        }
    }
}

/// The connection id in an `--announce-id` greeting as the Python client
/// prints it (`text "{\"id\":\"k3j9x2.1f\"}"`); panics on anything else.
pub fn id_from_greeting(line: &str) -> String {
    let id = line
        .strip_prefix(r#"text "{\"id\":\""#)
        .and_then(|r| r.strip_suffix(r#"\"}""#))
        .unwrap_or_else(|| panic!("not an id greeting: {line}"));
    id.parse::<wsbroadcaster::server::ConnId>()
        .unwrap_or_else(|e| panic!("{id:?}: {e}"));
    id.to_owned()
}
