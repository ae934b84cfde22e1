//! Third-party tools: fail loudly when missing, never skip. netcat-openbsd
//! runs (bounded) as a UDP and Unix socket peer.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::wait_exit;

/// What to tell whoever runs the tests when a dependency is missing.
pub const INSTALL_HINT: &str =
    "run `bash scripts/install-test-deps.sh` (as root) to install the test dependencies";

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
