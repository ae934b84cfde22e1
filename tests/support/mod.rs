//! Helpers for the routing, RPC and stdin tests: a `serve` child that also
//! reports its MessagePack-RPC address and may have its stdin piped. Killed
//! by PID on drop; every wait is bounded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Lines, serve_command, unique_sock_path};

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
    stderr: Arc<Mutex<String>>,
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
        let stderr = collect(child.stderr.take().expect("stderr piped"));
        let stdout = Lines::spawn(child.stdout.take().expect("stdout piped"));
        let (mut ws, mut udp, mut rpc) = (None, None, None);
        let (mut admin, mut control) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = stdout.next(left) else {
                let _ = child.kill();
                let st = child.wait();
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "server did not print `ready` (exit: {st:?}); stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            };
            if let Some(a) = line.strip_prefix("listening ws ") {
                ws = Some(a.parse().expect("ws address"));
            } else if let Some(a) = line.strip_prefix("listening udp ") {
                udp = Some(a.parse().expect("udp address"));
            } else if let Some(a) = line.strip_prefix("listening rpc ") {
                rpc = Some(a.parse().expect("rpc address"));
            } else if let Some(a) = line.strip_prefix("listening admin ") {
                admin = Some(a.parse().expect("admin address"));
            } else if let Some(p) = line.strip_prefix("listening control ") {
                control = Some(PathBuf::from(p));
            } else if line == "ready" {
                break;
            }
        }
        Srv {
            child,
            ws: ws.expect("a `listening ws` line"),
            udp: udp.expect("a `listening udp` line"),
            unix,
            rpc,
            admin,
            control,
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
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the server log did not mention {needle:?} within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
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

fn collect<R: Read + Send + 'static>(pipe: R) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
    log
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
