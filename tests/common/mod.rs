//! Shared helpers for the integration tests: the real `wsbroadcaster` binary
//! as a child process (killed by PID on drop), real peers (Python
//! `websockets`, netcat-openbsd, the crate's blocking client, raw sockets),
//! and bounded waits. Nothing here loops without a count or a deadline.
//!
//! Every test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

pub mod certs;
pub mod json;
pub mod rpc;
pub mod spawn;
pub mod srv;

// Not every test file uses every helper.
#[allow(unused_imports)]
pub use spawn::*;
#[allow(unused_imports)]
pub use srv::{Srv, id_from_greeting};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use wsbroadcaster::client::{BlockingClient, ClientError};
use wsbroadcaster::protocol::{CloseCode, Event, Limits, MessageKind};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wsbroadcaster");

/// What to tell whoever runs the tests when a dependency is missing.
pub const INSTALL_HINT: &str =
    "run `bash scripts/install-test-deps.sh` (as root) to install the test dependencies";

/// The crate's root (tests/py, tests/browser live under it).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, unique Unix socket path under /tmp (short: sun_path is 108 bytes).
pub fn unique_sock_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = PathBuf::from(format!(
        "/tmp/wsbt-{}-{n}-{nanos:x}-{tag}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines of a child's pipe, read on a thread, handed over with timeouts.
pub struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    pub fn spawn<R: Read + Send + 'static>(pipe: R) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, `None` on timeout or EOF.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }
}

/// Sends a signal to a process by PID with the `kill` utility (procps/util-linux).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -s {sig} {pid} failed: {st}");
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

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

/// Asserts that a client with a fresh connection receives a UDP publish: the
/// server is still serving.
pub fn assert_still_serving(server: &Server, marker: &str) {
    let mut c = server.client();
    server.udp_send(marker.as_bytes());
    c.expect_text(marker);
    c.close();
}

// ---------------------------------------------------------------------------
// Third-party tools: fail loudly when missing, never skip.

fn tool_output(cmd: &str, args: &[&str]) -> Option<std::process::Output> {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// python3 that can `import MODULE`, from the Python package `package`.
pub fn require_python_module(module: &str, package: &str) {
    let out = tool_output("python3", &["-c", &format!("import {module}")]);
    assert!(
        out.as_ref().is_some_and(|o| o.status.success()),
        "python3 with the `{package}` package is required for this test: {INSTALL_HINT} ({:?})",
        out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
    );
}

/// python3 with the `websockets` package.
pub fn require_python_websockets() {
    require_python_module("websockets.sync.client", "websockets");
}

/// netcat-openbsd as `nc` (-U, -u, -N).
pub fn require_nc_openbsd() {
    let out = tool_output("nc", &["-h"]);
    let text = out
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    assert!(
        text.contains("OpenBSD netcat"),
        "netcat-openbsd (`nc` with -U/-u/-N) is required for this test: {INSTALL_HINT}"
    );
}

/// Runs `nc` with `args`, feeds it `input` on stdin, and waits (bounded) for
/// it to exit successfully.
pub fn nc(args: &[&str], input: &[u8]) {
    let mut child = Command::new("nc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn nc: {e}: {INSTALL_HINT}"));
    {
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin.write_all(input).expect("write to nc");
    } // EOF on nc's stdin
    let st = wait_exit(&mut child, Duration::from_secs(10));
    let Some(st) = st else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("nc {args:?} did not exit within 10 s");
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(st.success(), "nc {args:?} failed: {st}: {err}");
}

/// `printf INPUT | nc -u -w1 127.0.0.1 PORT`: one datagram.
pub fn nc_udp(addr: SocketAddr, input: &[u8]) {
    nc(
        &[
            "-u",
            "-w1",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ],
        input,
    );
}

/// `printf INPUT | nc -N -U PATH`: shuts the socket down after stdin's EOF
/// and exits when the server closes its side.
pub fn nc_unix(path: &Path, input: &[u8]) {
    nc(&["-N", "-U", path.to_str().expect("utf-8 path")], input);
}

/// A Python `websockets` client driven over stdin/stdout (tests/py/ws_client.py).
pub struct PyClient {
    child: Child,
    stdin: ChildStdin,
    out: Lines,
    stderr: Log,
}

impl PyClient {
    /// Connects and waits (bounded) for the script's `open` line.
    pub fn connect(url: &str) -> PyClient {
        PyClient::connect_trusting(url, None)
    }

    /// Connects to a `wss://` URL trusting the CA certificate in `ca`
    /// (PEM) only.
    pub fn connect_trusting(url: &str, ca: Option<&Path>) -> PyClient {
        let script = root().join("tests/py/ws_client.py");
        let mut cmd = Command::new("python3");
        if let Some(ca) = ca {
            cmd.env("WS_CA_FILE", ca);
        }
        let mut child = cmd
            .arg("-u")
            .arg(&script)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn python3: {e}: {INSTALL_HINT}"));
        let stdin = child.stdin.take().expect("stdin piped");
        let out = Lines::spawn(child.stdout.take().expect("stdout piped"));
        let stderr = collect_stderr(child.stderr.take().expect("stderr piped"));
        let mut c = PyClient {
            child,
            stdin,
            out,
            stderr,
        };
        let first = c.line(Duration::from_secs(20));
        assert_eq!(first, "open", "python client did not connect to {url}");
        c
    }

    fn line(&mut self, timeout: Duration) -> String {
        match self.out.next(timeout) {
            Some(l) => l,
            None => {
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "python client gave no answer within {timeout:?} (exit: {:?}); stderr:\n{}",
                    self.child.try_wait(),
                    log_text(&self.stderr)
                )
            }
        }
    }

    /// Sends one command; its one-line answer. `secs` bounds the wait.
    pub fn cmd(&mut self, cmd: &str, secs: f64) -> String {
        writeln!(self.stdin, "{cmd}").expect("write to the python client");
        self.stdin.flush().expect("flush");
        self.line(Duration::from_secs_f64(secs + 15.0))
    }

    /// The next message (`text "json"` / `binary HEX`), `timeout`, or `closed ...`.
    pub fn recv(&mut self, secs: f64) -> String {
        self.cmd(&format!("recv {secs}"), secs)
    }

    pub fn send(&mut self, text: &str) {
        assert_eq!(self.cmd(&format!("send {text}"), 5.0), "sent");
    }

    /// Pings and waits for the pong: the server has handled everything sent before.
    pub fn sync(&mut self) {
        assert_eq!(self.cmd("ping 10", 10.0), "pong");
    }

    pub fn wait_close(&mut self, secs: f64) -> String {
        self.cmd(&format!("wait_close {secs}"), secs)
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The `text "..."` line the Python client prints for a text message.
pub fn py_text(s: &str) -> String {
    format!("text \"{s}\"")
}

/// A raw TCP connection to the WebSocket port with generous timeouts.
pub fn raw_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    s
}

/// A valid upgrade request with the given extra/replacement header lines.
pub fn upgrade_request(addr: SocketAddr, headers: &[&str]) -> String {
    let mut r = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Standard headers of an upgrade request, for composing variants.
pub const UPGRADE: &str = "Upgrade: websocket";
pub const CONNECTION: &str = "Connection: Upgrade";
pub const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
pub const VERSION13: &str = "Sec-WebSocket-Version: 13";

/// An HTTP response read off a raw socket.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub head: String,
    /// The server closed the connection after the reply (EOF or reset seen
    /// within the read timeout).
    pub closed: bool,
}

impl HttpReply {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads an HTTP response head, then reads on until the server closes the
/// connection (or `close_within` passes). Panics when no complete head comes.
pub fn read_http_reply(s: &mut TcpStream, close_within: Duration) -> HttpReply {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(
            Instant::now() < deadline,
            "no complete HTTP response head within 10 s; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a complete HTTP response; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "reading the HTTP response: {e}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let (_body, closed) = read_to_end_within(s, close_within);
    HttpReply {
        status,
        head,
        closed,
    }
}

/// Reads until EOF (or a reset), at most `within`: what came, and whether
/// the peer closed the connection.
pub fn read_to_end_within(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(within)).expect("timeout");
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(_) => return (got, true), // reset
        }
    }
    (got, false)
}
