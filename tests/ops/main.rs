//! Operating the server: the control socket (`events`, `kick`, `publish`,
//! `stats`), the admin HTTP endpoint driven by `curl`, `/metrics` read by
//! the Prometheus reference parser (Python `prometheus_client.parser`), and
//! publish receipts; WebSocket peers are Python `websockets` and the
//! crate's own client. Every wait is bounded; every process is ended by PID.
//!
//! One test binary; its modules by concept: `control` (the control-socket
//! client), `curl` (the admin endpoint through curl), `events` (the events
//! stream), `publish` (publishing and receipts), `metrics` (/metrics) and
//! `limits` (the admin and control limits).

#[path = "../common/mod.rs"]
mod common;

mod control;
mod curl;
mod events;
mod limits;
mod metrics;
mod publish;

use std::path::PathBuf;

use common::{Srv, unique_sock_path};

/// A server with the admin endpoint on an ephemeral port, the control
/// socket on a fresh path and `extra` flags; that path.
pub(crate) fn admin_and_control(extra: &[&str]) -> (Srv, PathBuf) {
    let ctl_path = unique_sock_path("ctl");
    let mut args = vec![
        "--admin",
        "127.0.0.1:0",
        "--control",
        ctl_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Srv::start(&args), ctl_path)
}

#[test]
fn admin_and_control_are_off_by_default() {
    let s = Srv::start(&[]);
    assert_eq!((s.admin, s.control.clone()), (None, None));
}
