//! Reading the argument list: clap's definition of the command line (with
//! `serve`'s `WSBROADCASTER_*` variables) and, for `serve --config PATH`,
//! the file's settings merged under the flags.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};

use super::Cli;
use super::serve::ServeArgs;

/// The command-line definition, with `serve`'s environment variables.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", crate::config_file::with_env)
}

/// The `serve` definition the config file is checked against.
pub(super) fn serve_command() -> clap::Command {
    crate::config_file::with_env(ServeArgs::command().name("serve"))
}

/// Parses `argv`; for `serve --config PATH` (or WSBROADCASTER_CONFIG), merges
/// the file's settings under the flags and the environment. A bad file is a
/// message naming each bad key and line.
pub(super) fn parse_args(argv: Vec<std::ffi::OsString>) -> Result<Cli, ArgsError> {
    let first = command().try_get_matches_from(&argv)?;
    let path = match first.subcommand() {
        Some(("serve", m)) => m.get_one::<PathBuf>(crate::config_file::CONFIG_ID).cloned(),
        _ => None,
    };
    let Some(path) = path else {
        return Ok(Cli::from_arg_matches(&first)?);
    };
    let mut file = crate::config_file::ConfigFile::load(&path, &serve_command())
        .map_err(|e| ArgsError::Config(e.to_string()))?;
    // The subcommand is the first token clap did not take as a top-level
    // flag; `wsbroadcaster` has no top-level flag with a value.
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == "serve")
        .map_or(1, |i| i + 1);
    let (_, serve_matches) = first.subcommand().expect("serve matched");
    let merged = file.merge_into(&argv, at, serve_matches);
    let m = command().try_get_matches_from(merged).map_err(|e| {
        ArgsError::Config(format!(
            "{}: {}",
            path.display(),
            crate::config_file::clap_message(&e)
        ))
    })?;
    Ok(Cli::from_arg_matches(&m)?)
}

/// Why the command line was not accepted.
pub(super) enum ArgsError {
    /// Flags (clap prints usage and exits 2; `--help` exits 0).
    Clap(clap::Error),
    /// The config file: every bad key and line.
    Config(String),
}

impl From<clap::Error> for ArgsError {
    fn from(e: clap::Error) -> Self {
        ArgsError::Clap(e)
    }
}
