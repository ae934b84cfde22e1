//! A Python `websockets` client driven over stdin/stdout
//! (tests/py/ws_client.py), killed by PID on drop.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use super::{INSTALL_HINT, Lines, Log, collect_stderr, log_text, root};

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
