//! The settings in effect and where each came from (flag, variable, file
//! line, default), shown by `check-config` as a config file.

use std::ffi::OsStr;
use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

use super::{CONFIG_ID, ConfigFile, key_of};

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flag on the command line.
    Flag,
    /// A `WSBROADCASTER_*` variable.
    Env(String),
    /// The config file, at this line.
    File(usize),
    /// The built-in default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(n) => write!(f, "env {n}"),
            Source::File(l) => write!(f, "file line {l}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Where `id`'s value in `matches` came from; `None` when it is unset. `file`
/// is the config file merged into the parsed argv, if any.
pub fn source_of(
    cmd: &Command,
    matches: &ArgMatches,
    file: Option<&ConfigFile>,
    id: &str,
) -> Option<Source> {
    Some(match matches.value_source(id)? {
        ValueSource::CommandLine => match file.and_then(|f| f.line_of(id)) {
            Some(l) => Source::File(l),
            None => Source::Flag,
        },
        ValueSource::EnvVariable => {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id);
            let name = arg.and_then(|a| a.get_env()).unwrap_or_default();
            Source::Env(name.to_string_lossy().into_owned())
        }
        _ => Source::Default,
    })
}

/// The effective settings as a TOML document that is itself a valid config
/// file: one `key = value` line per setting, its source in a comment, unset
/// settings commented out.
pub fn render_effective(cmd: &Command, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = String::new();
    let mut rows: Vec<(String, String)> = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(key) = key_of(arg) else { continue };
        let id = arg.get_id().as_str();
        if id == CONFIG_ID {
            continue;
        }
        let src = source_of(cmd, matches, file, id);
        let line = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                let on = matches.get_flag(id);
                format!("{key} = {on}")
            }
            ArgAction::Count => format!("{key} = {}", matches.get_count(id)),
            action => {
                let raw: Vec<&OsStr> = matches
                    .get_raw(id)
                    .map(Iterator::collect)
                    .unwrap_or_default();
                if raw.is_empty() {
                    rows.push((format!("# {key} ="), "unset".into()));
                    continue;
                }
                let quoted: Vec<String> = raw
                    .iter()
                    .map(|v| toml_string(OsStr::new(&*hide_url_password(&v.to_string_lossy()))))
                    .collect();
                if matches!(action, ArgAction::Append) {
                    format!("{key} = [{}]", quoted.join(", "))
                } else {
                    format!("{key} = {}", quoted.join(" "))
                }
            }
        };
        let src = src.map_or_else(|| "default".to_owned(), |s| s.to_string());
        rows.push((line, src));
    }
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, src) in rows {
        let _ = writeln!(out, "{line:<width$}  # {src}");
    }
    out
}

/// `scheme://user:PASSWORD@host…` with the password shown as `***`
/// (`--redis redis://:PASSWORD@host:6379`): the effective settings are for
/// reading over a shoulder or pasting in a ticket.
pub(super) fn hide_url_password(v: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = v.find("://").map(|i| i + 3) else {
        return v.into();
    };
    let rest = &v[scheme_end..];
    let Some(at) = rest.find('@') else {
        return v.into();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &v[..scheme_end], &rest[..colon], &rest[at..]).into(),
        None => v.into(),
    }
}

/// A TOML basic string.
pub(super) fn toml_string(v: &OsStr) -> String {
    let s = v.to_string_lossy();
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
