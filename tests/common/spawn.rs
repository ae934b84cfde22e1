//! Starting `wsbroadcaster serve` (and other commands) as child processes:
//! the usual command lines, the bounded wait for the `ready` line with the
//! addresses printed before it, and bounded runs of commands that must
//! exit (a server that refuses to start, `check-config`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BIN, Lines, wait_exit};

/// A child's stderr, collected line by line on a thread.
pub type Log = Arc<Mutex<String>>;

/// Collects a child's stderr into a shared string (for log assertions and
/// for failure messages).
pub fn collect_stderr<R: Read + Send + 'static>(pipe: R) -> Log {
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

/// The text of a collected log.
pub fn log_text(log: &Log) -> String {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `serve` with RUST_LOG removed, stdin closed, stdout and stderr piped.
fn serve_base() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The `serve` command line for the given Unix socket path and extra flags,
/// with ephemeral loopback ports.
pub fn serve_command(unix: &Path, extra: &[&str]) -> Command {
    let mut cmd = serve_base();
    cmd.args(["--ws", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--unix"])
        .arg(unix)
        .args(extra);
    cmd
}

/// `serve --ws 127.0.0.1:0 --udp off --unix off EXTRA...`: a WebSocket
/// listener on an ephemeral port and no other ingress (more flags, paths
/// among them, can be added to the returned command).
pub fn serve_ws_only_command(extra: &[&str]) -> Command {
    let mut cmd = serve_base();
    cmd.args(["--ws", "127.0.0.1:0", "--udp", "off", "--unix", "off"])
        .args(extra);
    cmd
}

/// Waits until `log` contains `needle`; panics with the log after `timeout`.
pub fn wait_log(log: &Log, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !log_text(log).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the server log did not mention {needle:?} within {timeout:?}; log:\n{}",
            log_text(log)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a `serve` child printed before its `ready` line.
#[derive(Debug, Default)]
pub struct Listening {
    pub ws: Option<SocketAddr>,
    /// The WebSocket listener speaks TLS (`listening wss ...`).
    pub tls: bool,
    pub udp: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
    pub rpc: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub control: Option<PathBuf>,
}

impl Listening {
    /// The WebSocket address; panics without a `listening ws`/`wss` line.
    pub fn ws(&self) -> SocketAddr {
        self.ws.expect("a `listening ws` line")
    }

    /// The UDP address; panics without a `listening udp` line.
    pub fn udp(&self) -> SocketAddr {
        self.udp.expect("a `listening udp` line")
    }
}

/// Reads `child`'s start-up lines from `stdout` up to its `ready` line, at
/// most `timeout` in all. On EOF or timeout the child is killed (by PID)
/// and the test panics, with the child's stderr when it was collected.
pub fn wait_ready(
    child: &mut Child,
    stdout: &Lines,
    timeout: Duration,
    stderr: Option<&Log>,
) -> Listening {
    let mut seen = Listening::default();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = stdout.next(left) else {
            let _ = child.kill();
            let st = child.wait();
            let err = match stderr {
                Some(log) => {
                    std::thread::sleep(Duration::from_millis(50));
                    format!("; stderr:\n{}", log_text(log))
                }
                None => String::new(),
            };
            panic!("server did not print `ready` within {timeout:?} (exit: {st:?}){err}");
        };
        if let Some(a) = line.strip_prefix("listening ws ") {
            seen.ws = Some(a.parse().expect("ws address"));
        } else if let Some(a) = line.strip_prefix("listening wss ") {
            seen.ws = Some(a.parse().expect("wss address"));
            seen.tls = true;
        } else if let Some(a) = line.strip_prefix("listening udp ") {
            seen.udp = Some(a.parse().expect("udp address"));
        } else if let Some(p) = line.strip_prefix("listening unix ") {
            seen.unix = Some(PathBuf::from(p));
        } else if let Some(a) = line.strip_prefix("listening rpc ") {
            seen.rpc = Some(a.parse().expect("rpc address"));
        } else if let Some(a) = line.strip_prefix("listening admin ") {
            seen.admin = Some(a.parse().expect("admin address"));
        } else if let Some(p) = line.strip_prefix("listening control ") {
            seen.control = Some(PathBuf::from(p));
        } else if line == "ready" {
            return seen;
        }
    }
}

/// A command that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with its stdout and stderr piped (read on threads, so a full
/// pipe cannot stall it) and waits at most `timeout` for it to exit; kills
/// it (by PID) and panics when it does not.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = pipe.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout piped")));
    let err = read(Box::new(child.stderr.take().expect("stderr piped")));
    let status = wait_exit(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not exit within {timeout:?}");
    });
    Finished {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs a `serve` command that must refuse to start: it exits within 10 s
/// and never prints `ready`.
pub fn serve_refused(cmd: &mut Command) -> Finished {
    let done = run_bounded(cmd, Duration::from_secs(10));
    assert!(
        !done.stdout.contains("ready"),
        "started anyway: {}",
        done.stdout
    );
    done
}
