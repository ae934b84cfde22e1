//! The config-file format: names, reading, merging, errors, the effective
//! settings.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::effective::{hide_url_password, toml_string};

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
