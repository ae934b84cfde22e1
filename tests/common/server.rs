//! A `serve` child with its WebSocket, UDP and Unix socket addresses (TLS
//! optional), for the lifecycle, TLS, ingress and recovery tests. Killed by
//! PID on drop; every wait is bounded.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

use super::{
    Client, Got, Lines, Log, certs, collect_stderr, log_text, serve_command, signal,
    unique_sock_path, wait_exit, wait_log, wait_ready,
};

/// A running server. Dropping it kills the process (by PID) and removes its
/// socket file.
pub struct Server {
    pub child: Child,
    pub ws: SocketAddr,
    /// The WebSocket listener speaks TLS (`listening wss ...`).
    pub tls: bool,
    pub udp: SocketAddr,
    pub unix: PathBuf,
    stderr: Log,
    _stdout: Lines,
    /// Remove the socket file on drop (not after a deliberate SIGKILL).
    remove_socket_on_drop: bool,
}

impl Server {
    /// Starts `serve` with ephemeral ports, a fresh socket path and `extra`
    /// flags, and waits (bounded) for its `ready` line.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_at(&unique_sock_path("srv"), extra)
    }

    /// Like [`Server::start`] on a given socket path.
    pub fn start_at(unix: &Path, extra: &[&str]) -> Server {
        let mut child = serve_command(unix, extra)
            .spawn()
            .expect("spawn the wsbroadcaster binary");
        let stderr = collect_stderr(child.stderr.take().expect("stderr piped"));
        let stdout = Lines::spawn(child.stdout.take().expect("stdout piped"));
        let seen = wait_ready(&mut child, &stdout, Duration::from_secs(20), Some(&stderr));
        let unix_bound = seen.unix.clone().expect("a `listening unix` line");
        assert_eq!(
            unix_bound, unix,
            "the server reports the socket path it was given"
        );
        Server {
            child,
            ws: seen.ws(),
            tls: seen.tls,
            udp: seen.udp(),
            unix: unix_bound,
            stderr,
            _stdout: stdout,
            remove_socket_on_drop: true,
        }
    }

    /// Starts `serve` with TLS on the CA-signed `leaf` and `extra` flags;
    /// checks that it reports `listening wss`.
    pub fn start_tls(leaf: &certs::Leaf, extra: &[&str]) -> Server {
        Server::start_tls_files(&leaf.cert, &leaf.key, extra)
    }

    /// Like [`Server::start_tls`] with these PEM certificate and key files.
    pub fn start_tls_files(cert: &Path, key: &Path, extra: &[&str]) -> Server {
        let utf8 = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
        let (cert, key) = (utf8(cert), utf8(key));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
        args.extend_from_slice(extra);
        let server = Server::start(&args);
        assert!(server.tls, "the server reports `listening wss`");
        assert!(server.url().starts_with("wss://"), "{}", server.url());
        server
    }

    /// SIGKILLs the server and waits for it, leaving its socket file behind
    /// as a crash would.
    pub fn crash(mut self) {
        signal(self.pid(), "KILL");
        let st = self.wait_exit(Duration::from_secs(10));
        assert!(st.is_some(), "the server did not die of SIGKILL");
        self.remove_socket_on_drop = false;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/", self.ws)
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        log_text(&self.stderr)
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_log(&self.stderr, needle, timeout);
    }

    /// The server's resident set size in KiB (/proc/PID/status VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// One UDP datagram to the server's UDP ingress.
    pub fn udp_send(&self, payload: &[u8]) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let n = sock.send_to(payload, self.udp).expect("send a datagram");
        assert_eq!(n, payload.len());
    }

    /// Writes `bytes` on a fresh Unix socket connection and closes it.
    pub fn unix_send(&self, bytes: &[u8]) {
        let mut s = UnixStream::connect(&self.unix).expect("connect to the Unix socket");
        s.write_all(bytes).expect("write to the Unix socket");
    }

    /// A connected blocking client (crate's own) with a read timeout.
    pub fn client(&self) -> Client {
        Client::connect(&self.url())
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        signal(self.pid(), "TERM");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // SIGKILL to this PID only
        }
        let _ = self.child.wait();
        if self.remove_socket_on_drop {
            let _ = std::fs::remove_file(&self.unix);
        }
    }
}

/// After a SIGTERM to `child` (a `serve` with its Unix socket at `unix`):
/// client `c` gets the 1001 close, the process exits with status 0 within
/// `timeout` (it is killed, by PID, when it does not), and the socket file
/// is gone. `who` names the server in failure messages.
pub fn expect_sigterm_shutdown(
    child: &mut Child,
    c: &mut Client,
    unix: &Path,
    timeout: Duration,
    who: &str,
) {
    match c.next(timeout) {
        Got::Closed(Some(1001), _) => {}
        other => panic!("expected a 1001 close from {who}, got {other:?}"),
    }
    let st = wait_exit(child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{who} did not exit after SIGTERM");
    });
    assert_eq!(
        st.code(),
        Some(0),
        "exit status of {who} after SIGTERM: {st}"
    );
    assert!(!unix.exists(), "socket file removed");
}

/// Asserts that a client with a fresh connection receives a UDP publish: the
/// server is still serving.
pub fn assert_still_serving(server: &Server, marker: &str) {
    let mut c = server.client();
    server.udp_send(marker.as_bytes());
    c.expect_text(marker);
    c.close();
}
