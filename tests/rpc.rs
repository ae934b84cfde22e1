//! MessagePack-RPC ingress end to end: the Python `msgpack` package over a
//! raw TCP socket as the caller (the wire format of Ruby's msgpack-rpc gem)
//! and Python `websockets` subscribers, driven by tests/py/rpc_scenario.py.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Srv;
use common::{Lines, require_python_module, require_python_websockets, wait_exit};

#[test]
fn rpc_methods_notifications_pipelining_and_errors() {
    require_python_websockets();
    require_python_module("msgpack", "msgpack");
    let max_message = 4096;
    let s = Srv::start(&[
        "--rpc",
        "127.0.0.1:0",
        "--announce-id",
        "--max-message",
        "4KiB",
    ]);
    let rpc = s.rpc.expect("a `listening rpc` line");
    let script = common::root().join("tests/py/rpc_scenario.py");
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(&script)
        .arg(format!("ws://{}/", s.ws))
        .arg(rpc.to_string())
        .arg(max_message.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let out = Lines::spawn(child.stdout.take().unwrap());
    let err = Lines::spawn(child.stderr.take().unwrap());
    let status = wait_exit(&mut child, Duration::from_secs(120));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut lines = Vec::new();
    while let Some(l) = out.next(Duration::from_millis(200)) {
        lines.push(l);
    }
    let mut errs = Vec::new();
    while let Some(l) = err.next(Duration::from_millis(200)) {
        errs.push(l);
    }
    assert!(
        status.is_some_and(|s| s.success()) && lines.last().map(String::as_str) == Some("ok"),
        "rpc_scenario.py failed ({status:?}).\nsteps:\n{}\nstderr:\n{}\nserver log:\n{}",
        lines.join("\n"),
        errs.join("\n"),
        s.log()
    );
    // Malformed input was logged, and the server never panicked.
    let log = s.log();
    assert!(log.contains("closing that RPC connection"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn rpc_is_off_by_default() {
    let s = Srv::start(&[]);
    assert_eq!(s.rpc, None, "no `listening rpc` line without --rpc");
}
