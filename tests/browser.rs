//! A real browser: headless Chromium, driven by playwright-core
//! (tests/browser/ws_page.mjs), connects to the real binary, shows what is
//! published over UDP in its page, and its own message is broadcast; over
//! `ws://` and over `wss://` with a certificate made for the run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::certs::TestCa;
use common::{Client, INSTALL_HINT, Lines, Server, root, wait_exit};

fn require_browser_deps() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium (Debian's chromium) is required for this test: {INSTALL_HINT}"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node (Node.js >= 20) is required for this test: {INSTALL_HINT}"
    );
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing from tests/browser/node_modules: {INSTALL_HINT}"
    );
}

#[test]
fn chromium_page_receives_broadcasts_and_sends() {
    require_browser_deps();
    let server = Server::start(&[]);
    let listener = server.client();
    page_receives_broadcasts_and_sends(&server, listener, None);
}

/// The same page over `wss://`: Chromium trusts the test certificate for
/// this run (its key's SPKI hash), and without that trust it cannot connect.
#[test]
fn chromium_page_over_wss() {
    require_browser_deps();
    let ca = TestCa::new("browser");
    let leaf = ca.leaf("server", "wsbroadcaster browser test");
    let server = Server::start_tls(&leaf, &[]);
    let listener = Client::connect_tls(&server.url(), ca.client_config());
    page_receives_broadcasts_and_sends(&server, listener, Some(&leaf.spki_sha256_b64));

    // Without the trust flag the certificate is refused.
    let out = Command::new("node")
        .arg(root().join("tests/browser/ws_page.mjs"))
        .arg(server.url())
        .arg("1")
        .current_dir(root().join("tests/browser"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn node: {e}: {INSTALL_HINT}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "an untrusted certificate was accepted: {stdout}"
    );
    assert!(
        stdout.contains("error the page could not connect"),
        "{stdout}"
    );
}

fn page_receives_broadcasts_and_sends(
    server: &Server,
    mut listener: Client,
    trust_spki: Option<&str>,
) {
    let env: &[(&str, &str)] = match trust_spki {
        Some(spki) => &[("WS_TRUST_SPKI", spki)],
        None => &[],
    };
    let mut node = NodeScript::start(
        "ws_page.mjs",
        &[&server.url(), "4", "hello from the browser"],
        env,
    );
    assert_eq!(node.next("the page's onopen"), "open");
    // Chromium offers permessage-deflate on every connection; the server
    // accepts it without context takeover (one compression per broadcast).
    let ext = node.next("the negotiated extensions");
    assert!(
        ext.starts_with("extensions \"permessage-deflate")
            && ext.contains("server_no_context_takeover"),
        "{ext}"
    );
    // The page is connected: publish.
    server.udp_send(b"hello browser\n");
    assert_eq!(node.next("the first message"), "message \"hello browser\"");
    // The page sends a message of its own: under `broadcast` it reaches
    // every client (a Rust client here, and the page itself).
    assert_eq!(node.next("the page's send"), "sent");
    listener.expect_text("hello browser");
    listener.expect_text("hello from the browser");
    assert_eq!(
        node.next("the page's own broadcast"),
        "message \"hello from the browser\""
    );
    server.udp_send(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(node.next("a binary message"), "message \"binary:deadbeef\"");
    // Big enough to go out compressed: the page must inflate it.
    let big = "compressible broadcast ".repeat(130);
    server.udp_send(big.as_bytes());
    assert_eq!(
        node.next("a compressed message"),
        format!("message \"{big}\"")
    );
    assert_eq!(
        listener.next_message(Duration::from_secs(10)),
        common::Got::Binary(vec![0xde, 0xad, 0xbe, 0xef])
    );
    listener.expect_text(&big);
    assert_eq!(node.next("the close"), "closed 1000");
    let st = wait_exit(&mut node.child, Duration::from_secs(30)).expect("node exits");
    assert!(st.success(), "browser script exit status: {st}");
    server.wait_log("code=1000 by=client", Duration::from_secs(10));
}

/// Stops node by PID if a test fails half-way: SIGTERM first, which
/// playwright handles by closing the browser, then SIGKILL.
struct NodeScript {
    child: std::process::Child,
    out: Lines,
    err: Lines,
}

impl NodeScript {
    /// `node tests/browser/SCRIPT ARGS...` with `env` added to its environment.
    fn start(script: &str, args: &[&str], env: &[(&str, &str)]) -> NodeScript {
        let mut child = Command::new("node")
            .arg(root().join("tests/browser").join(script))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(root().join("tests/browser"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node: {e}: {INSTALL_HINT}"));
        let out = Lines::spawn(child.stdout.take().unwrap());
        let err = Lines::spawn(child.stderr.take().unwrap());
        NodeScript { child, out, err }
    }

    fn next(&self, what: &str) -> String {
        match self.out.next(Duration::from_secs(60)) {
            Some(l) if !l.starts_with("error") => l,
            other => {
                let mut stderr = String::new();
                while let Some(l) = self.err.next(Duration::from_millis(200)) {
                    stderr.push_str(&l);
                    stderr.push('\n');
                }
                panic!("browser script: waiting for {what}, got {other:?}; stderr:\n{stderr}")
            }
        }
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            common::signal(self.child.id(), "TERM");
            if wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

fn json_strings(list: &str) -> Vec<String> {
    let inner = list
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a JSON array: {list}"));
    if inner.is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|s| s.trim_matches('"').to_owned())
        .collect()
}

/// The recovering client of docs/recovery.md, in Chromium: it loses its
/// connection while 100 messages are published and gets all of them, in
/// order, once, after it reconnects with `since=`.
#[test]
fn chromium_recovering_client_misses_nothing() {
    require_browser_deps();
    let server = Server::start(&["--history", "1000"]);
    let node = NodeScript::start("recover_page.mjs", &[&server.url(), "news"], &[]);
    assert_eq!(node.next("open"), "open");
    let mut p = std::os::unix::net::UnixStream::connect(&server.unix).unwrap();
    let mut publish = |from: usize, to: usize| {
        use std::io::Write;
        let lines: String = (from..=to).map(|i| format!("@news m{i}\n")).collect();
        p.write_all(lines.as_bytes()).unwrap();
    };
    let want = |n: usize| (1..=n).map(|i| format!("m{i}")).collect::<Vec<_>>();
    publish(1, 3);
    let got = node.next("3 messages");
    assert_eq!(json_strings(got.strip_prefix("got ").unwrap()), want(3));
    assert_eq!(node.next("the drop"), "dropped");
    // Published while the page is away (it reconnects after 1 s).
    publish(4, 103);
    let got = node.next("103 messages");
    assert_eq!(json_strings(got.strip_prefix("got ").unwrap()), want(103));
    publish(104, 104);
    let got = node.next("a live message");
    assert_eq!(json_strings(got.strip_prefix("got ").unwrap()), want(104));
    let urls = node.next("the urls");
    assert!(
        urls.contains("since=news:3:") && urls.contains("since=*:0:"),
        "the page came back with its positions: {urls}"
    );
    assert_eq!(node.next("losses"), "losses []");
    server.wait_log("since=news:3:", Duration::from_secs(5));
}

/// The client algorithm in docs/recovery.md is the file the browser test runs.
#[test]
fn recovery_doc_shows_the_tested_client() {
    let js = std::fs::read_to_string(root().join("tests/browser/recovery_client.js")).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/recovery.md")).unwrap();
    assert!(
        doc.contains(js.trim_end()),
        "docs/recovery.md must show tests/browser/recovery_client.js verbatim"
    );
}
