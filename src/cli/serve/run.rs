//! Running `serve`: logging, binding, the start-up lines, the loop.

use std::io::Write;
use std::process::ExitCode;

use super::ServeArgs;
use crate::server::Server;

pub(in crate::cli) fn serve(args: ServeArgs) -> ExitCode {
    init_logging(args.log_level.as_deref());
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Machine-readable start-up lines on stdout, so scripts and tests can
    // find the ports (port 0 picks a free one).
    let b = server.bound().clone();
    let mut out = std::io::stdout().lock();
    let scheme = if b.tls { "wss" } else { "ws" };
    let _ = writeln!(out, "listening {scheme} {}", b.ws);
    if let Some(u) = b.udp {
        let _ = writeln!(out, "listening udp {u}");
    }
    if let Some(p) = &b.unix {
        let _ = writeln!(out, "listening unix {}", p.display());
    }
    if let Some(r) = b.rpc {
        let _ = writeln!(out, "listening rpc {r}");
    }
    if let Some(a) = b.admin {
        let _ = writeln!(out, "listening admin {a}");
    }
    if let Some(p) = &b.control {
        let _ = writeln!(out, "listening control {}", p.display());
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    log::info!(
        "wsbroadcaster {} serving {scheme}://{} (connection ids {}.N)",
        env!("CARGO_PKG_VERSION"),
        b.ws,
        b.node
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: Option<&str>) {
    let mut b = env_logger::Builder::new();
    match level {
        Some(l) => {
            b.parse_filters(l);
        }
        None => match std::env::var("RUST_LOG") {
            Ok(v) => {
                b.parse_filters(&v);
            }
            Err(_) => {
                b.filter_level(log::LevelFilter::Info);
            }
        },
    }
    b.target(env_logger::Target::Stderr).init();
}
