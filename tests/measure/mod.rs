//! Helpers for the deployment measurements (tests/budget.rs,
//! tests/small_host.rs): a `serve` child started through a shell command
//! (so it can be put in a cgroup before `exec`), its RSS, and
//! `wsbroadcaster bench` runs parsed from their `--json` line.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{BIN, Lines, signal, wait_exit, wait_ready};

/// A running `serve`, killed by PID on drop.
pub struct Serve {
    pub child: Child,
    pub ws: SocketAddr,
    pub udp: SocketAddr,
    pub unix: PathBuf,
    _stdout: Lines,
}

impl Serve {
    /// `serve` with its default listeners (WebSocket, UDP, Unix socket) on
    /// ephemeral loopback ports and a fresh socket path. `prelude` is shell
    /// code run before `exec` (e.g. joining a cgroup), `extra` more flags.
    pub fn start(unix: &Path, prelude: &str, extra: &[&str]) -> Serve {
        let mut script = String::from(prelude);
        script.push_str(" exec \"$0\" serve --ws 127.0.0.1:0 --udp 127.0.0.1:0 --unix \"$1\"");
        for (i, _) in extra.iter().enumerate() {
            script.push_str(&format!(" \"${}\"", i + 2));
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .arg(BIN)
            .arg(unix)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh -c exec wsbroadcaster serve");
        let stdout = Lines::spawn(child.stdout.take().expect("stdout"));
        let seen = wait_ready(&mut child, &stdout, Duration::from_secs(20), None);
        Serve {
            child,
            ws: seen.ws(),
            udp: seen.udp(),
            unix: unix.to_owned(),
            _stdout: stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit code (None: did not exit within 15 s).
    pub fn stop(&mut self) -> Option<i32> {
        signal(self.pid(), "TERM");
        wait_exit(&mut self.child, Duration::from_secs(15)).and_then(|s| s.code())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // this PID only
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.unix);
    }
}

/// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A finished `wsbroadcaster bench --json` run.
pub struct BenchRun {
    /// The last line: one flat JSON object.
    pub json: String,
    /// Everything it printed (stdout, then stderr), for failure messages.
    pub output: String,
}

impl BenchRun {
    /// Runs `wsbroadcaster bench ARGS --json --quiet`, at most `timeout`.
    pub fn run(args: &[&str], timeout: Duration) -> BenchRun {
        let mut child = Command::new(BIN)
            .arg("bench")
            .args(args)
            .args(["--json", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsbroadcaster bench");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let read = |mut p: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = p.read_to_string(&mut s);
                s
            })
        };
        let (o, e) = (read(Box::new(out)), read(Box::new(err)));
        let st = wait_exit(&mut child, timeout);
        if st.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (o, e) = (o.join().unwrap_or_default(), e.join().unwrap_or_default());
        let output = format!("{o}{e}");
        let st = st.unwrap_or_else(|| panic!("bench did not finish within {timeout:?}:\n{output}"));
        assert!(st.success(), "bench failed ({st}):\n{output}");
        let json = o
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line:\n{output}"))
            .to_owned();
        BenchRun { json, output }
    }

    /// A numeric field of the JSON line.
    pub fn num(&self, key: &str) -> f64 {
        let pat = format!("\"{key}\":");
        let at = self
            .json
            .find(&pat)
            .unwrap_or_else(|| panic!("no {key} in {}", self.json))
            + pat.len();
        let rest = &self.json[at..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {}", self.json))
    }
}

/// Raises this process's open-file soft limit to at least `need` (children
/// inherit it); panics with what to do when the hard limit is lower.
pub fn ensure_open_files(need: u64) {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    if soft >= need {
        return;
    }
    assert!(
        hard >= need,
        "{need} open files are needed but the hard limit is {hard}: raise it (ulimit -Hn, \
         LimitNOFILE=) to run this measurement"
    );
    rlimit::setrlimit(rlimit::Resource::NOFILE, need, hard).expect("setrlimit NOFILE");
}

/// 1,234,567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
