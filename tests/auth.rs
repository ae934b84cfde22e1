//! Who may subscribe: `--allow-origin` and channel tokens
//! (`--channel-secret-file`), with the Python `websockets` library as the
//! browser-like client and tokens made by the backend example of
//! docs/operations.md, run for real.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Lines, Srv, require_python_websockets, serve_refused, serve_ws_only_command, wait_exit,
};

/// Runs tests/py/ws_try.py: `open` (then the first message, with `recv`)
/// or `refused STATUS "body"`.
fn ws_try(url: &str, origin: Option<&str>) -> String {
    let script = common::root().join("tests/py/ws_try.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(url)
        .arg(origin.unwrap_or("-"))
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "ws_try.py failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A fresh temporary directory for secrets and the extracted example.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "wsb-auth-{}-{tag}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_secret(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The Python block that follows `<!-- tested: NAME -->` in
/// docs/operations.md, written to `dir/NAME`.
fn documented_example(dir: &Path, name: &str) -> PathBuf {
    let doc = std::fs::read_to_string(common::root().join("docs/operations.md")).unwrap();
    let marker = format!("<!-- tested: {name} -->\n```python\n");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/operations.md has no {marker:?}"))
        + marker.len();
    let len = doc[start..].find("\n```\n").expect("the block's end");
    let path = dir.join(name);
    std::fs::write(&path, &doc[start..start + len + 1]).unwrap();
    path
}

/// Runs the documented example: a token for `channels`, valid `ttl` seconds.
fn make_token(example: &Path, secret: &Path, ttl: i64, channels: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(example)
        .arg(secret)
        .arg(ttl.to_string())
        .args(channels)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the documented token example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn wrong_origin_gets_403_before_the_upgrade() {
    require_python_websockets();
    let s = Srv::start(&[
        "--allow-origin",
        "https://app.example",
        "--allow-origin",
        "https://*.example.org",
    ]);
    let url = s.url("");
    let got = ws_try(&url, Some("https://evil.example"));
    assert_eq!(
        got,
        r#"refused 403 "Forbidden: origin \"https://evil.example\" is not allowed (--allow-origin)\n""#
    );
    assert_eq!(ws_try(&url, Some("https://app.example")), "open");
    assert_eq!(ws_try(&url, Some("https://live.example.org")), "open");
    assert!(ws_try(&url, Some("https://example.org")).starts_with("refused 403 "));
    // No Origin header: not a browser, admitted.
    assert_eq!(ws_try(&url, None), "open");
    s.wait_log(
        "origin \"https://evil.example\" is not allowed",
        Duration::from_secs(5),
    );
}

#[test]
fn origin_flag_rejects_nonsense_at_start() {
    let out = Command::new(common::BIN)
        .args(["serve", "--allow-origin", "https://example.com/path"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("an origin has no path"), "{err}");
}

/// Tokens from the documented Python example against a server holding the
/// same secret: good ones admitted (and delivered to), expired, forged,
/// altered and wrong-channel ones refused with their status.
#[test]
fn channel_tokens_made_by_the_documented_backend_example() {
    require_python_websockets();
    let dir = temp_dir("tokens");
    let secret = dir.join("channel-secret");
    write_secret(&secret, b"c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IQ==\n");
    let other = dir.join("other-secret");
    write_secret(&other, b"another secret of 32 bytes......\n");
    let example = documented_example(&dir, "channel_token.py");
    let s = Srv::start(&[
        "--channel-secret-file",
        secret.to_str().unwrap(),
        "--announce-id",
    ]);
    let good = make_token(&example, &secret, 60, &["news", "sport"]);
    let (signed, sig) = good.rsplit_once(':').unwrap();
    assert_eq!(sig.len(), 64, "{good}");
    let url = |q: &str| s.url(q);

    // Admitted: the signed channels, a subset, percent-encoded or not.
    assert_eq!(
        ws_try(
            &url(&format!("channel=news&channel=sport&token={good}")),
            None
        ),
        "open"
    );
    assert_eq!(
        ws_try(&url(&format!("channel=sport&token={good}")), None),
        "open"
    );
    let encoded = good.replace(':', "%3A").replace(',', "%2C");
    assert_eq!(
        ws_try(&url(&format!("channel=news&token={encoded}")), None),
        "open"
    );
    // The example's channel_query() builds the whole query string.
    let out = Command::new("python3")
        .current_dir(&dir)
        .args([
            "-c",
            "import sys, channel_token as t; print(t.channel_query(t.read_secret(sys.argv[1]), ['sport', 'news'], 60))",
        ])
        .arg(&secret)
        .output()
        .expect("run python3");
    let query = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        query.starts_with("channel=sport&channel=news&token="),
        "{query}"
    );
    assert_eq!(ws_try(&url(&query), None), "open");
    // No channel: no token needed.
    assert_eq!(ws_try(&url(""), None), "open");

    let refused = |q: &str| ws_try(&url(q), None);
    // No token.
    let r = refused("channel=news");
    assert!(
        r.starts_with("refused 401 \"Unauthorized: joining a channel needs a token"),
        "{r}"
    );
    // Expired (made by the same example with a negative lifetime).
    let expired = make_token(&example, &secret, -5, &["news"]);
    let r = refused(&format!("channel=news&token={expired}"));
    assert!(
        r.starts_with("refused 403 \"Forbidden: the channel token expired"),
        "{r}"
    );
    // Forged: signed with another secret.
    let forged = make_token(&example, &other, 60, &["news"]);
    let r = refused(&format!("channel=news&token={forged}"));
    assert!(
        r.starts_with("refused 403 \"Forbidden: the channel token's signature does not match"),
        "{r}"
    );
    // Altered: a channel added, or the expiry pushed back, under the old signature.
    let (expiry, _) = signed.split_once(':').unwrap();
    let r = refused(&format!(
        "channel=admin&token={expiry}:news,sport,admin:{sig}"
    ));
    assert!(r.contains("signature does not match"), "{r}");
    let later: u64 = expiry.parse::<u64>().unwrap() + 86_400;
    let r = refused(&format!("channel=news&token={later}:news,sport:{sig}"));
    assert!(r.contains("signature does not match"), "{r}");
    // Wrong channel: a good token, but not for this channel.
    let r = refused(&format!("channel=news&channel=admin&token={good}"));
    assert_eq!(
        r,
        r#"refused 403 "Forbidden: the channel token does not grant channel \"admin\"\n""#
    );
    // Malformed.
    let r = refused("channel=news&token=hello");
    assert!(
        r.starts_with("refused 400 \"Bad Request: malformed channel token"),
        "{r}"
    );

    // A good token's client receives its channel's messages.
    let mut sub = Command::new("python3")
        .arg(common::root().join("tests/py/ws_client.py"))
        .arg(url(&format!("channel=news&token={good}")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Lines::spawn(sub.stdout.take().unwrap());
    assert_eq!(lines.next(Duration::from_secs(20)).as_deref(), Some("open"));
    {
        use std::io::Write;
        let mut stdin = sub.stdin.take().unwrap();
        writeln!(stdin, "recv 10").unwrap(); // the id greeting
        let greeting = lines.next(Duration::from_secs(20)).unwrap();
        assert!(greeting.starts_with(r#"text "{\"id\""#), "{greeting}");
        s.unix_send(b"@news for news readers\n");
        writeln!(stdin, "recv 10").unwrap();
        assert_eq!(
            lines.next(Duration::from_secs(20)).as_deref(),
            Some(r#"text "for news readers""#)
        );
        writeln!(stdin, "close").unwrap();
    }
    let _ = wait_exit(&mut sub, Duration::from_secs(10));
    let _ = sub.kill();
    let _ = sub.wait();

    let log = s.log();
    assert!(
        log.contains("does not grant channel \"admin\" (403)"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secret_file_problems_stop_the_server_at_start() {
    let dir = temp_dir("bad-secret");
    let short = dir.join("short");
    write_secret(&short, b"too short\n");
    let out = serve_refused(serve_ws_only_command(&["--channel-secret-file"]).arg(&short));
    assert_eq!(out.status.code(), Some(2));
    let err = &out.stderr;
    assert!(err.contains("at least 16 are required"), "{err}");
    let out =
        serve_refused(serve_ws_only_command(&["--channel-secret-file"]).arg(dir.join("missing")));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("cannot read it"));
    let _ = std::fs::remove_dir_all(&dir);
}
