//! Recovery with two nodes on a real redis-server (started here on a free
//! loopback port, ended by PID). History is per node (docs/recovery.md,
//! "Across nodes"): a node's history holds what every node published (it
//! arrives through Redis), so a client that comes back to the same node
//! misses nothing; a client that comes back to another node is told
//! `reset: epoch` explicitly, never silently left with a gap.

mod common;
mod support;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Got, INSTALL_HINT};
use support::Srv;

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("pick a free port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--logfile", ""])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn redis-server: {e}: {INSTALL_HINT}"));
            let mut r = Redis { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = r.child.try_wait() {
                    break; // the port was taken: try another
                }
                let pong = Command::new("redis-cli")
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "PING"])
                    .output()
                    .unwrap_or_else(|e| panic!("run redis-cli: {e}: {INSTALL_HINT}"));
                if String::from_utf8_lossy(&pong.stdout).trim() == "PONG" {
                    return r;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        panic!("could not start redis-server on a free port");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill(); // this PID only
        let _ = self.child.wait();
    }
}

fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let i = json.find(&pat)? + pat.len();
    let rest = &json[i..];
    match rest.strip_prefix('"') {
        Some(s) => Some(&s[..s.find('"')?]),
        None => Some(&rest[..rest.find([',', '}'])?]),
    }
}

fn next_text(c: &mut Client) -> String {
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => t,
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn node(redis: &Redis) -> Srv {
    let url = redis.url();
    let n = Srv::start(&["--redis", &url, "--history", "1000"]);
    n.wait_log("cluster: publisher connected", Duration::from_secs(20));
    n.wait_log("cluster: subscribed to", Duration::from_secs(20));
    n
}

#[test]
fn per_node_history_holds_every_nodes_messages_and_another_node_says_reset() {
    let redis = Redis::start();
    let a = node(&redis);
    let b = node(&redis);

    let mut c = Client::connect(&a.url("recover=1&channel=news"));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "ch"), field(&pos, "off")),
        (Some("news"), Some("0"))
    );
    let epoch_a = field(&pos, "ep").unwrap().to_owned();
    let _ = c.inner.stream().shutdown(std::net::Shutdown::Both);

    // 100 messages published on node B while the client is away from A.
    let mut watcher = Client::connect(&a.url("channel=news"));
    let mut p = UnixStream::connect(&b.unix).expect("connect to B's Unix socket");
    for i in 1..=100 {
        writeln!(p, "@news m{i}").unwrap();
    }
    for i in 1..=100 {
        watcher.expect_text(&format!("m{i}")); // they reached node A
    }

    // Back on node A: exactly those 100, in order, then the position.
    let mut c = Client::connect(&a.url(&format!("recover=1&channel=news&since=news:0:{epoch_a}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    for i in 1..=100 {
        let e = next_text(&mut c);
        let want = format!("m{i}");
        assert_eq!(
            (field(&e, "off"), field(&e, "data")),
            (Some(i.to_string().as_str()), Some(want.as_str())),
            "{e}"
        );
    }
    let pos = next_text(&mut c);
    assert_eq!(
        (field(&pos, "off"), field(&pos, "reset")),
        (Some("100"), None),
        "{pos}"
    );

    // On node B, A's epoch means nothing: an explicit reset, then live ones.
    let mut c =
        Client::connect(&b.url(&format!("recover=1&channel=news&since=news:100:{epoch_a}")));
    assert_eq!(field(&next_text(&mut c), "ch"), Some("*"));
    let pos = next_text(&mut c);
    assert_eq!(field(&pos, "reset"), Some("epoch"), "{pos}");
    assert_ne!(field(&pos, "ep"), Some(epoch_a.as_str()));
    assert_eq!(
        field(&pos, "off"),
        Some("100"),
        "B kept the 100 too, under its own epoch"
    );
    writeln!(p, "@news m101").unwrap();
    let live = next_text(&mut c);
    assert_eq!(
        (field(&live, "off"), field(&live, "data")),
        (Some("101"), Some("m101"))
    );
}
