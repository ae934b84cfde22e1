//! Reading a config file: checking every key and value against the flags of
//! `serve`, and merging the settings into the argument list under the flags
//! and the environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use toml::de::DeTable;

use super::value::{check_tokens, tokens_for};
use super::{CONFIG_ID, ConfigError, ConfigErrors, key_of};

/// Largest config file read (a settings file is a few hundred bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// One setting from the file, as command-line tokens.
#[derive(Debug, Clone)]
struct Setting {
    id: String,
    key: String,
    line: usize,
    /// `--key=value` tokens (none for a boolean flag set to its default).
    tokens: Vec<OsString>,
    /// A flag or the environment set it too (and won).
    overridden: bool,
}

/// A checked config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    settings: Vec<Setting>,
}

impl ConfigFile {
    /// Reads and checks `path` against the flags of `cmd` (the `serve`
    /// command).
    pub fn load(path: &Path, cmd: &Command) -> Result<ConfigFile, ConfigErrors> {
        let one = |message: String| {
            ConfigErrors(vec![ConfigError {
                path: path.to_owned(),
                line: None,
                message,
            }])
        };
        let size = std::fs::metadata(path)
            .map_err(|e| one(format!("cannot read the config file: {e}")))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(one(format!(
                "{size} bytes is too large for a config file (at most {MAX_FILE_BYTES})"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| one(format!("cannot read the config file: {e}")))?;
        ConfigFile::parse(path, &text, cmd)
    }

    /// Checks `text` (the contents of `path`) against the flags of `cmd`.
    pub fn parse(path: &Path, text: &str, cmd: &Command) -> Result<ConfigFile, ConfigErrors> {
        let err = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
            path: path.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let table = DeTable::parse(text).map_err(|e| {
            ConfigErrors(vec![err(
                e.span(),
                format!("not valid TOML: {}", e.message().trim_end()),
            )])
        })?;
        let mut settings = Vec::new();
        let mut errors = Vec::new();
        for (key, value) in table.get_ref().iter() {
            let line = line_of(text, key.span().start);
            let name = key.get_ref().as_ref();
            let Some(arg) = cmd
                .get_arguments()
                .find(|a| key_of(a) == Some(name) && a.get_id() != CONFIG_ID)
            else {
                errors.push(err(Some(key.span()), unknown_key(name, cmd)));
                continue;
            };
            match tokens_for(arg, name, value.get_ref()) {
                Ok(tokens) => match check_tokens(arg, &tokens) {
                    Ok(()) => settings.push(Setting {
                        id: arg.get_id().to_string(),
                        key: name.to_owned(),
                        line,
                        tokens,
                        overridden: false,
                    }),
                    Err(m) => errors.push(err(Some(key.span()), format!("{name}: {m}"))),
                },
                Err(m) => errors.push(err(Some(key.span()), format!("{name}: {m}"))),
            }
        }
        if errors.is_empty() {
            settings.sort_by_key(|s| s.line);
            Ok(ConfigFile {
                path: path.to_owned(),
                settings,
            })
        } else {
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line that set the argument `id`, if the file set it and no flag
    /// or variable overrode it.
    pub fn line_of(&self, id: &str) -> Option<usize> {
        self.settings
            .iter()
            .find(|s| s.id == id && !s.overridden)
            .map(|s| s.line)
    }

    /// `argv` with the file's settings inserted right after the token at
    /// `at` (the subcommand's name), except those `matches` (a parse of
    /// `argv` alone) got from a flag or the environment: they win, and are
    /// remembered as overridden.
    pub fn merge_into(
        &mut self,
        argv: &[OsString],
        at: usize,
        matches: &ArgMatches,
    ) -> Vec<OsString> {
        let mut out = argv[..=at].to_vec();
        for s in &mut self.settings {
            s.overridden = matches!(
                matches.value_source(&s.id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if !s.overridden {
                out.extend(s.tokens.iter().cloned());
            }
        }
        out.extend(argv[at + 1..].iter().cloned());
        out
    }

    /// The keys the file sets, in file order (for messages).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.settings.iter().map(|s| s.key.as_str())
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn unknown_key(name: &str, cmd: &Command) -> String {
    let known = |k: &str| {
        cmd.get_arguments()
            .any(|a| key_of(a) == Some(k) && a.get_id() != CONFIG_ID)
    };
    let dashed = name.replace('_', "-");
    if name == CONFIG_ID {
        format!("unknown key `{name}`: a config file cannot name another config file")
    } else if dashed != name && known(&dashed) {
        format!("unknown key `{name}`: did you mean `{dashed}`? (keys are the flag names)")
    } else {
        format!(
            "unknown key `{name}` (keys are the long flag names of `wsbroadcaster {} --help`, \
             without the dashes, all at the top level)",
            cmd.get_name()
        )
    }
}
