//! The admin HTTP endpoint (`--admin`) driven by `curl`, bounded by its
//! `--max-time`.

use std::process::{Command, Stdio};

use crate::common;

/// `curl -sS ARGS URL`: (HTTP status, body, stderr).
pub(crate) fn curl(args: &[&str], url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--noproxy",
            "*",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run curl: {e}: {}", common::INSTALL_HINT));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').expect("curl's status line");
    (
        code.parse().unwrap_or(0),
        body.strip_suffix('\n').unwrap_or(body).to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `curl --data-binary BODY BASE/publish?QUERY` (no `?` for an empty
/// query): (HTTP status, body).
pub(crate) fn curl_publish(base: &str, query: &str, body: &str) -> (u16, String) {
    let url = if query.is_empty() {
        format!("{base}/publish")
    } else {
        format!("{base}/publish?{query}")
    };
    let (st, body, _) = curl(&["--data-binary", body], &url);
    (st, body)
}

/// `curl BASE/PATH` (a GET): (HTTP status, body).
pub(crate) fn curl_get(base: &str, path: &str) -> (u16, String) {
    let (st, body, _) = curl(&[], &format!("{base}{path}"));
    (st, body)
}
