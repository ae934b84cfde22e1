//! `serve --config PATH` (TOML) and the `WSBROADCASTER_*` environment
//! variables, derived from the clap definition of `serve`: a flag added to
//! `serve` is a config key and an environment variable with no code here.
//!
//! - **Keys** are the long flag names without the dashes: `--max-message 2MiB`
//!   is `max-message = "2MiB"`. A boolean flag takes `true`/`false`, a
//!   repeatable flag (`--udp-allow`) an array (or one value), a counted flag
//!   an integer; any other flag a string, integer or float, read exactly as
//!   the flag's argument would be (so `"2MiB"`, `2097152`, `"off"` all work
//!   where the flag accepts them). Every key is top level; a key that is no
//!   flag is an error naming the key and its line.
//! - **Environment**: `--max-message` is `WSBROADCASTER_MAX_MESSAGE` (clap's
//!   `env` support); a repeatable flag's variable takes a comma-separated list.
//! - **Precedence**: flags > environment > file > defaults. A file value is
//!   checked when the file is read (the error names the line), then handed to
//!   clap as if it were a flag, unless the same setting came from a flag or
//!   the environment; so every rule a flag obeys (conflicts, requirements)
//!   applies to the file too.
//!
//! The file is read with the `toml` crate's spanned document parser, so every
//! error carries a line number.
//!
//! This file holds the names (a flag's key and variable); `file` reads and
//! checks a file and merges it into the argument list, `value` turns one
//! TOML value into the flag's tokens, `effective` shows the settings in
//! effect and where each came from, `error` the errors.

mod effective;
mod error;
mod file;
mod value;

#[cfg(test)]
mod tests;

use clap::{Arg, ArgAction, Command};

pub use effective::{Source, render_effective, source_of};
pub use error::{ConfigError, ConfigErrors, clap_message};
pub use file::{ConfigFile, MAX_FILE_BYTES};

/// Prefix of every environment variable (`WSBROADCASTER_MAX_MESSAGE`).
pub const ENV_PREFIX: &str = "WSBROADCASTER_";

/// The id of the `--config` flag itself, which the file cannot set.
pub const CONFIG_ID: &str = "config";

/// The environment variable of a long flag: `max-message` →
/// `WSBROADCASTER_MAX_MESSAGE`.
pub fn env_name(long: &str) -> String {
    let mut s = String::with_capacity(ENV_PREFIX.len() + long.len());
    s.push_str(ENV_PREFIX);
    s.extend(long.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    s
}

/// The config key of an argument (its long name), or `None` for what is not
/// a setting (help, version, positionals).
pub fn key_of(arg: &Arg) -> Option<&str> {
    match arg.get_action() {
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version => None,
        _ => arg.get_long(),
    }
}

/// Gives every flag of `cmd` its `WSBROADCASTER_*` environment variable (a
/// repeatable flag's takes a comma-separated list). Call it at parse time:
/// clap reads the variable when it is attached.
pub fn with_env(cmd: Command) -> Command {
    cmd.mut_args(|a| {
        let Some(name) = key_of(&a).map(env_name) else {
            return a;
        };
        let list = matches!(a.get_action(), ArgAction::Append) && a.get_value_delimiter().is_none();
        let a = a.env(name);
        if list { a.value_delimiter(',') } else { a }
    })
}
