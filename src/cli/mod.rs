//! The command line: `serve`, `client`, `send`, `autobahn-client`. Thin:
//! parsing and wiring only; the logic lives in the library.
//!
//! One file per subcommand (`serve/` for its flags, their conversion into a
//! [`ServerConfig`](crate::server::ServerConfig) and the run itself;
//! `check_config`, `client`, `send`, `autobahn_client`), and `parse` for
//! reading the argument list with a `serve --config` file merged in.

mod autobahn_client;
mod check_config;
mod client;
mod parse;
mod send;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use autobahn_client::autobahn_client;
use check_config::check_config;
use client::client;
use parse::{ArgsError, parse_args};
use send::send;
use serve::{ServeArgs, serve};

/// A small, fast WebSocket broadcast server: push a message over UDP or a
/// Unix socket and every connected WebSocket client gets it.
#[derive(Parser, Debug)]
#[command(name = "wsbroadcaster", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the broadcast server.
    Serve(ServeArgs),
    /// Check a `serve --config` file and print the settings `serve` would
    /// run with (file, then WSBROADCASTER_* variables, over the defaults).
    CheckConfig {
        /// The TOML file.
        path: PathBuf,
    },
    /// Connect to a server: stdin lines become text messages, received
    /// messages are printed one per line.
    Client {
        /// ws://host:port/path or wss://host:port/path
        url: String,
        /// Trusted certificates for wss:// (PEM; default: $SSL_CERT_FILE,
        /// else /etc/ssl/certs/ca-certificates.crt).
        #[arg(long = "tls-ca", value_name = "PATH")]
        tls_ca: Option<PathBuf>,
    },
    /// Publish a message over UDP or the Unix socket (from the argument, or
    /// one message per stdin line).
    Send {
        /// UDP ingress address (the default, 127.0.0.1:8125).
        #[arg(long, conflicts_with = "unix")]
        udp: Option<SocketAddr>,
        /// Unix socket path.
        #[arg(long)]
        unix: Option<PathBuf>,
        /// The message; without it, every stdin line is one message.
        message: Option<String>,
    },
    /// Run the Autobahn testsuite's client cases against a fuzzingserver
    /// (reads AUTOBAHN_URL and AUTOBAHN_AGENT from the environment).
    AutobahnClient {
        /// The fuzzingserver (default: $AUTOBAHN_URL or ws://127.0.0.1:9001).
        #[arg(long)]
        url: Option<String>,
        /// Agent name in the report (default: $AUTOBAHN_AGENT or wsbroadcaster).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Load-test a server: open N WebSocket connections, then publish at a
    /// fixed rate over UDP, the Unix socket or WebSocket and report delivered
    /// messages/s, loss and latency percentiles (`--mode fanout`), or hold
    /// them and report connect time and the server's memory per connection
    /// (`--mode idle --server-pid PID`).
    Bench(crate::bench::BenchArgs),
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match parse_args(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(ArgsError::Clap(e)) => e.exit(),
        Err(ArgsError::Config(e)) => {
            eprintln!("wsbroadcaster: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::CheckConfig { path } => check_config(&path),
        Command::Client { url, tls_ca } => report(client(&url, tls_ca.as_deref())),
        Command::Send { udp, unix, message } => report(send(udp, unix, message)),
        Command::AutobahnClient { url, agent } => report(autobahn_client(url, agent)),
        Command::Bench(args) => report(crate::bench::run(&args)),
    }
}

fn report(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbroadcaster: {e}");
            ExitCode::FAILURE
        }
    }
}
