//! A real redis-server for the cluster tests: started on a free loopback
//! port, stopped by PID on drop. Compiled by each test file that needs it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::INSTALL_HINT;

pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts redis-server on a free loopback port (retrying if another
    /// process takes the port first) and waits until it answers PING.
    pub fn start() -> Redis {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("pick a free port")
                .port();
            if let Some(r) = Redis::start_on(port) {
                return r;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn start_on(port: u16) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--dir", "/tmp", "--logfile", ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server: {e}: {INSTALL_HINT}"));
        let mut r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = r.child.try_wait() {
                return None; // the port was taken
            }
            if r.cli_try(&["PING"]).as_deref() == Some("PONG") {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The redis-server process (for `kill -STOP`/`-CONT` by PID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli -p PORT ARGS...`: its output, or None if it failed.
    pub fn cli_try(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run redis-cli: {e}: {INSTALL_HINT}"));
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_try(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new redis-server on the same port (empty: nothing survives).
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if let Some(r) = Redis::start_on(self.port) {
                *self = r;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }

    /// PUBLISH with arbitrary bytes (the redis crate, as any program would).
    pub fn publish(&self, channel: &str, payload: &[u8]) -> i64 {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut conn = client.get_connection().expect("connect to redis");
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut conn)
            .expect("PUBLISH")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn require_redis() {
    for tool in ["redis-server", "redis-cli"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{tool} is required for this test: {INSTALL_HINT}");
    }
}
