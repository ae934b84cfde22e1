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
    let server = Server::start(&[
        "--tls-cert",
        leaf.cert.to_str().unwrap(),
        "--tls-key",
        leaf.key.to_str().unwrap(),
    ]);
    assert!(server.url().starts_with("wss://"));
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
    let mut cmd = Command::new("node");
    if let Some(spki) = trust_spki {
        cmd.env("WS_TRUST_SPKI", spki);
    }
    let mut node = cmd
        .arg(root().join("tests/browser/ws_page.mjs"))
        .arg(server.url())
        .arg("4")
        .arg("hello from the browser")
        .current_dir(root().join("tests/browser"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node: {e}: {INSTALL_HINT}"));
    // Stop node by PID if the test fails half-way: SIGTERM first, which
    // playwright handles by closing the browser, then SIGKILL.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                common::signal(self.0.id(), "TERM");
                if wait_exit(&mut self.0, Duration::from_secs(10)).is_none() {
                    let _ = self.0.kill();
                }
            }
            let _ = self.0.wait();
        }
    }
    let out = Lines::spawn(node.stdout.take().unwrap());
    let err = Lines::spawn(node.stderr.take().unwrap());
    let mut node = Kill(node);
    let next = |what: &str| -> String {
        match out.next(Duration::from_secs(60)) {
            Some(l) if !l.starts_with("error") => l,
            other => {
                let mut stderr = String::new();
                while let Some(l) = err.next(Duration::from_millis(200)) {
                    stderr.push_str(&l);
                    stderr.push('\n');
                }
                panic!("browser script: waiting for {what}, got {other:?}; stderr:\n{stderr}")
            }
        }
    };

    assert_eq!(next("the page's onopen"), "open");
    // Chromium offers permessage-deflate on every connection; the server
    // accepts it without context takeover (one compression per broadcast).
    let ext = next("the negotiated extensions");
    assert!(
        ext.starts_with("extensions \"permessage-deflate")
            && ext.contains("server_no_context_takeover"),
        "{ext}"
    );
    // The page is connected: publish.
    server.udp_send(b"hello browser\n");
    assert_eq!(next("the first message"), "message \"hello browser\"");
    // The page sends a message of its own: under `broadcast` it reaches
    // every client (a Rust client here, and the page itself).
    assert_eq!(next("the page's send"), "sent");
    listener.expect_text("hello browser");
    listener.expect_text("hello from the browser");
    assert_eq!(
        next("the page's own broadcast"),
        "message \"hello from the browser\""
    );
    server.udp_send(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(next("a binary message"), "message \"binary:deadbeef\"");
    // Big enough to go out compressed: the page must inflate it.
    let big = "compressible broadcast ".repeat(130);
    server.udp_send(big.as_bytes());
    assert_eq!(next("a compressed message"), format!("message \"{big}\""));
    assert_eq!(
        listener.next_message(Duration::from_secs(10)),
        common::Got::Binary(vec![0xde, 0xad, 0xbe, 0xef])
    );
    listener.expect_text(&big);
    assert_eq!(next("the close"), "closed 1000");
    let st = wait_exit(&mut node.0, Duration::from_secs(30)).expect("node exits");
    assert!(st.success(), "browser script exit status: {st}");
    server.wait_log("code=1000 by=client", Duration::from_secs(10));
}
