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

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// Prefix of every environment variable (`WSBROADCASTER_MAX_MESSAGE`).
pub const ENV_PREFIX: &str = "WSBROADCASTER_";

/// The id of the `--config` flag itself, which the file cannot set.
pub const CONFIG_ID: &str = "config";

/// Largest config file read (a settings file is a few hundred bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

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

/// A config file error: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when the error has one.
    pub line: Option<usize>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Every error found in one file (all of them, not just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

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

/// One TOML scalar as the text a flag's argument would carry.
fn scalar_text(v: &DeValue<'_>) -> Result<String, String> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) if i.radix() == 10 => Ok(i.as_str().to_owned()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|_| format!("{i} is out of range")),
        DeValue::Float(f) => Ok(f.as_str().to_owned()),
        DeValue::Boolean(b) => Ok(b.to_string()),
        DeValue::Datetime(d) => Ok(d.to_string()),
        DeValue::Array(_) => Err("expected one value, not an array".into()),
        DeValue::Table(_) => Err("expected a value, not a table".into()),
    }
}

/// The command-line tokens that set `arg` to `value`.
fn tokens_for(arg: &Arg, key: &str, value: &DeValue<'_>) -> Result<Vec<OsString>, String> {
    let flag = OsString::from(format!("--{key}"));
    let with_value = |text: String| OsString::from(format!("--{key}={text}"));
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let Some(b) = value.as_bool() else {
                return Err(format!(
                    "expected true or false, not {} {}",
                    article(value.type_str()),
                    value.type_str()
                ));
            };
            let flag_means = matches!(arg.get_action(), ArgAction::SetTrue);
            Ok(if b == flag_means {
                vec![flag]
            } else {
                Vec::new()
            })
        }
        ArgAction::Count => {
            let n = value
                .as_integer()
                .filter(|i| i.radix() == 10)
                .and_then(|i| i.as_str().parse::<u8>().ok())
                .ok_or_else(|| "expected a count from 0 to 255".to_string())?;
            Ok(vec![flag; usize::from(n)])
        }
        ArgAction::Set => {
            if value.is_bool() && !takes_bool(arg) {
                return Err("expected a string or a number, not a boolean".into());
            }
            Ok(vec![with_value(scalar_text(value)?)])
        }
        ArgAction::Append => match value {
            DeValue::Array(items) => items
                .iter()
                .map(|v| scalar_text(v.get_ref()).map(with_value))
                .collect(),
            v => Ok(vec![with_value(scalar_text(v)?)]),
        },
        other => Err(format!("cannot be set in a config file (a {other:?} flag)")),
    }
}

fn article(t: &str) -> &'static str {
    if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// True when a value flag's accepted values are booleans.
fn takes_bool(arg: &Arg) -> bool {
    let pv = arg.get_possible_values();
    !pv.is_empty() && pv.iter().all(|p| matches!(p.get_name(), "true" | "false"))
}

/// Runs `tokens` through `arg`'s own value parser, alone (no other flag, no
/// environment, no relation to other flags), for an error with a line.
fn check_tokens(arg: &Arg, tokens: &[OsString]) -> Result<(), String> {
    let mut lone = Arg::new(arg.get_id().clone())
        .long(
            arg.get_long()
                .expect("settings have a long name")
                .to_owned(),
        )
        .action(arg.get_action().clone());
    if arg.get_action().takes_values() {
        lone = lone.value_parser(arg.get_value_parser().clone());
        if let Some(n) = arg.get_num_args() {
            lone = lone.num_args(n);
        }
    }
    let cmd = Command::new("config")
        .no_binary_name(true)
        .disable_help_flag(true)
        .arg(lone);
    cmd.try_get_matches_from(tokens)
        .map(drop)
        .map_err(|e| clap_message(&e))
}

/// The first line of a clap error, without its `error: ` prefix.
pub fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

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
fn hide_url_password(v: &str) -> std::borrow::Cow<'_, str> {
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
fn toml_string(v: &OsStr) -> String {
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

#[cfg(test)]
mod tests {

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(
            hide_url_password("redis://:s3cret@10.0.0.1:6379/2"),
            "redis://:***@10.0.0.1:6379/2"
        );
        assert_eq!(
            hide_url_password("redis://app:s3cret@h:1"),
            "redis://app:***@h:1"
        );
        for plain in ["redis://127.0.0.1:6379", "a@b", "x://user@h", "/tmp/x.sock"] {
            assert_eq!(hide_url_password(plain), plain);
        }
    }

    use super::*;

    /// A stand-in for `serve` with one flag of each kind.
    fn cmd() -> Command {
        Command::new("serve")
            .arg(Arg::new("config").long("config"))
            .arg(
                Arg::new("ws")
                    .long("ws")
                    .default_value("0.0.0.0:8124")
                    .value_parser(clap::value_parser!(std::net::SocketAddr)),
            )
            .arg(
                Arg::new("max_message")
                    .long("max-message")
                    .default_value("1MiB")
                    .value_parser(crate::units::parse_size),
            )
            .arg(
                Arg::new("udp_allow")
                    .long("udp-allow")
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("stdin").long("stdin").action(ArgAction::SetTrue))
            .arg(Arg::new("verbose").long("verbose").action(ArgAction::Count))
            .arg(
                Arg::new("deflate")
                    .long("deflate")
                    .value_parser(["off", "shared"])
                    .default_value("shared"),
            )
    }

    fn parse(text: &str) -> Result<ConfigFile, ConfigErrors> {
        ConfigFile::parse(Path::new("t.toml"), text, &cmd())
    }

    fn run(text: &str, flags: &[&str]) -> (ArgMatches, ConfigFile) {
        let mut f = parse(text).unwrap();
        let argv: Vec<OsString> = std::iter::once("serve")
            .chain(flags.iter().copied())
            .map(OsString::from)
            .collect();
        let first = cmd().try_get_matches_from(&argv).unwrap();
        let merged = f.merge_into(&argv, 0, &first);
        (cmd().try_get_matches_from(merged).unwrap(), f)
    }

    #[test]
    fn names() {
        assert_eq!(env_name("max-message"), "WSBROADCASTER_MAX_MESSAGE");
        assert_eq!(env_name("ws"), "WSBROADCASTER_WS");
        let c = with_env(cmd());
        let a = c
            .get_arguments()
            .find(|a| a.get_id() == "udp_allow")
            .unwrap();
        assert_eq!(a.get_env(), Some(OsStr::new("WSBROADCASTER_UDP_ALLOW")));
        assert_eq!(a.get_value_delimiter(), Some(','));
        let a = c.get_arguments().find(|a| a.get_id() == "ws").unwrap();
        assert_eq!(a.get_value_delimiter(), None);
    }

    #[test]
    fn every_kind_of_value_reaches_the_matches() {
        let (m, f) = run(
            "# comment\nws = \"127.0.0.1:9\"\nmax-message = 2048\nudp-allow = [\"10.0.0.0/8\", \
             \"192.168.0.0/16\"]\nstdin = true\nverbose = 2\ndeflate = \"off\"\n",
            &[],
        );
        assert_eq!(
            m.get_one::<std::net::SocketAddr>("ws").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert_eq!(m.get_one::<u64>("max_message"), Some(&2048));
        let allow: Vec<&String> = m.get_many("udp_allow").unwrap().collect();
        assert_eq!(allow, ["10.0.0.0/8", "192.168.0.0/16"]);
        assert!(m.get_flag("stdin"));
        assert_eq!(m.get_count("verbose"), 2);
        assert_eq!(m.get_one::<String>("deflate").unwrap(), "off");
        assert_eq!(f.line_of("ws"), Some(2));
        assert_eq!(f.line_of("deflate"), Some(7));
        let c = cmd();
        assert_eq!(source_of(&c, &m, Some(&f), "ws"), Some(Source::File(2)));
        assert_eq!(source_of(&c, &m, Some(&f), "config"), None);
    }

    #[test]
    fn flags_override_the_file_and_replace_repeatable_lists() {
        let (m, f) = run(
            "max-message = \"2MiB\"\nudp-allow = [\"10.0.0.0/8\"]\nstdin = true\n",
            &["--max-message", "4KiB", "--udp-allow", "127.0.0.1/32"],
        );
        assert_eq!(m.get_one::<u64>("max_message"), Some(&4096));
        let allow: Vec<&String> = m.get_many("udp_allow").unwrap().collect();
        assert_eq!(allow, ["127.0.0.1/32"], "a flag replaces the file's list");
        assert!(m.get_flag("stdin"));
        let c = cmd();
        assert_eq!(
            source_of(&c, &m, Some(&f), "max_message"),
            Some(Source::Flag)
        );
        assert_eq!(source_of(&c, &m, Some(&f), "ws"), Some(Source::Default));
    }

    #[test]
    fn booleans_false_and_single_values_for_lists() {
        let (m, _) = run("stdin = false\nudp-allow = \"10.0.0.0/8\"\n", &[]);
        assert!(!m.get_flag("stdin"));
        let allow: Vec<&String> = m.get_many("udp_allow").unwrap().collect();
        assert_eq!(allow, ["10.0.0.0/8"]);
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_line() {
        let e = errors("ws = \"127.0.0.1:1\"\n\nmax_message = 5\nbogus = 1\n[server]\nx = 1\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:3: unknown key `max_message`: did you mean `max-message`?"),
            "{e:?}"
        );
        assert!(e[1].starts_with("t.toml:4: unknown key `bogus`"), "{e:?}");
        assert!(e[2].starts_with("t.toml:5: unknown key `server`"), "{e:?}");
        let e = errors("config = \"other.toml\"\n");
        assert!(e[0].contains("cannot name another config file"), "{e:?}");
    }

    #[test]
    fn bad_values_name_the_key_the_line_and_why() {
        let e = errors(
            "ws = \"nowhere\"\nmax-message = \"12 parsecs\"\nstdin = \"yes\"\n\
                        deflate = \"gzip\"\nws2 = 1\nudp-allow = [[1]]\nverbose = -1\n",
        );
        assert_eq!(e.len(), 7, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:1: ws: invalid value 'nowhere' for '--ws"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("t.toml:2: max-message: invalid value '12 parsecs'"),
            "{e:?}"
        );
        assert!(e[1].contains("unknown size unit"), "{e:?}");
        assert_eq!(
            e[2],
            "t.toml:3: stdin: expected true or false, not a string"
        );
        assert!(
            e[3].starts_with("t.toml:4: deflate: invalid value 'gzip'"),
            "{e:?}"
        );
        assert!(e[4].starts_with("t.toml:5: unknown key `ws2`"), "{e:?}");
        assert_eq!(
            e[5],
            "t.toml:6: udp-allow: expected one value, not an array"
        );
        assert_eq!(e[6], "t.toml:7: verbose: expected a count from 0 to 255");
        let e = errors("ws = true\n");
        assert_eq!(
            e[0],
            "t.toml:1: ws: expected a string or a number, not a boolean"
        );
    }

    #[test]
    fn toml_syntax_errors_have_a_line() {
        let e = errors("ws = \"127.0.0.1:1\"\nmax-message = \n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.toml:2: not valid TOML"), "{e:?}");
        let e = errors("ws = \"a\"\nws = \"b\"\n");
        assert!(e[0].starts_with("t.toml:2: not valid TOML"), "{e:?}");
    }

    #[test]
    fn the_rendered_settings_are_a_config_file_that_gives_the_same_settings() {
        let (m, f) = run(
            "ws = \"127.0.0.1:9\"\nudp-allow = [\"10.0.0.0/8\"]\nstdin = true\nverbose = 1\n",
            &[],
        );
        let shown = render_effective(&cmd(), &m, Some(&f));
        assert!(shown.contains("ws = \"127.0.0.1:9\""), "{shown}");
        assert!(shown.contains("# file line 1"), "{shown}");
        assert!(shown.contains("max-message = \"1MiB\""), "{shown}");
        assert!(shown.contains("udp-allow = [\"10.0.0.0/8\"]"), "{shown}");
        let (m2, f2) = run(&shown, &[]);
        let again = render_effective(&cmd(), &m2, Some(&f2));
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.split("  #").next().unwrap().trim_end().to_owned())
                .collect()
        };
        assert_eq!(strip(&shown), strip(&again));
        assert!(!shown.contains("config"), "{shown}");
        assert_eq!(toml_string(OsStr::new("a\"b\\c\n")), "\"a\\\"b\\\\c\\n\"");
    }
}
