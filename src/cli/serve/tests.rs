//! `serve`'s flags against the config file, the environment and the
//! conversion into a `ServerConfig`.

use std::path::Path;

use clap::{ArgAction, FromArgMatches};

use super::ServeArgs;
use crate::cli::parse::{parse_args, serve_command};
use crate::cli::{Cli, Command};
use crate::config_file::{ConfigFile, Source, env_name, key_of, source_of};

/// A value the flag accepts, when one can be told from its definition.
fn sample(arg: &clap::Arg) -> Option<String> {
    match arg.get_action() {
        ArgAction::SetTrue => Some("true".into()),
        ArgAction::SetFalse => Some("false".into()),
        ArgAction::Count => Some("1".into()),
        _ => {
            let v = arg
                .get_default_values()
                .first()
                .map(|d| d.to_string_lossy().into_owned())
                .or_else(|| {
                    arg.get_possible_values()
                        .first()
                        .map(|p| p.get_name().to_owned())
                })?;
            Some(format!("{v:?}"))
        }
    }
}

/// Every `serve` flag, today's and any added later, is a config key
/// (its long name), has its WSBROADCASTER_* variable, and a file value
/// reaches the parsed settings with the file as its source.
#[test]
fn every_serve_flag_is_a_config_key_and_an_environment_variable() {
    let cmd = serve_command();
    let mut checked = 0;
    for arg in cmd.get_arguments() {
        let Some(key) = key_of(arg) else { continue };
        let id = arg.get_id().as_str();
        assert_eq!(
            arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            Some(env_name(key)),
            "--{key} has its environment variable"
        );
        if id == crate::config_file::CONFIG_ID {
            continue;
        }
        let path = Path::new("every.toml");
        let Some(value) = sample(arg) else {
            // No default and no listed values (a path, a URL): any
            // value may be refused, but never as an unknown key.
            match ConfigFile::parse(path, &format!("{key} = \"x\"\n"), &cmd) {
                Ok(_) => {}
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.starts_with(&format!("every.toml:1: {key}: ")),
                        "--{key}: {e}"
                    );
                }
            }
            checked += 1;
            continue;
        };
        let text = format!("# every flag is a key\n{key} = {value}\n");
        let mut file = ConfigFile::parse(path, &text, &cmd)
            .unwrap_or_else(|e| panic!("--{key} as `{key} = {value}`: {e}"));
        let argv = [std::ffi::OsString::from("serve")];
        let env_only = cmd.clone().try_get_matches_from(argv.clone()).unwrap();
        let merged = file.merge_into(&argv, 0, &env_only);
        let m = cmd
            .clone()
            .try_get_matches_from(merged)
            .unwrap_or_else(|e| panic!("--{key}: {e}"));
        if matches!(arg.get_action(), ArgAction::SetFalse) {
            // `false` is the flag given: still from the file.
            assert!(!m.get_flag(id));
        }
        if env_only.value_source(id) != Some(clap::parser::ValueSource::EnvVariable) {
            assert_eq!(
                source_of(&cmd, &m, Some(&file), id),
                Some(Source::File(2)),
                "--{key} set from the file"
            );
        }
        let args = ServeArgs::from_arg_matches(&m).unwrap_or_else(|e| panic!("--{key}: {e}"));
        args.config()
            .unwrap_or_else(|e| panic!("--{key} = {value}: {e}"));
        checked += 1;
    }
    assert!(checked >= 23, "only {checked} flags seen");
}

/// The top-level parser merges a file under the flags.
#[test]
fn serve_config_merges_under_flags() {
    let dir = std::env::temp_dir().join(format!("wsb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("s.toml");
    std::fs::write(&f, "max-fragments = 7\nlisten-backlog = 5\n").unwrap();
    let argv: Vec<std::ffi::OsString> = [
        "wsbroadcaster",
        "serve",
        "--listen-backlog",
        "9",
        "--config",
    ]
    .iter()
    .map(Into::into)
    .chain(std::iter::once(f.clone().into_os_string()))
    .collect();
    let Ok(Cli {
        command: Command::Serve(args),
    }) = parse_args(argv)
    else {
        panic!("serve with a config file parses");
    };
    assert_eq!((args.max_fragments, args.listen_backlog), (7, 9));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Shared history is the default with --redis and --history;
/// --local-history opts out.
#[test]
fn redis_and_history_share_history_unless_local() {
    let shared = |extra: &[&str]| {
        let argv = [
            "wsbroadcaster",
            "serve",
            "--redis",
            "redis://127.0.0.1:6379",
        ]
        .iter()
        .chain(extra)
        .map(Into::into)
        .collect();
        match parse_args(argv) {
            Ok(Cli {
                command: Command::Serve(args),
            }) => args.cluster().map(|c| c.map(|c| c.shared_history)),
            Ok(_) => Err("not serve".into()),
            Err(_) => Err("refused".into()),
        }
    };
    assert_eq!(shared(&["--history", "50"]), Ok(Some(50)));
    assert_eq!(
        shared(&["--history", "50", "--redis-history"]),
        Ok(Some(50))
    );
    assert_eq!(shared(&["--history", "50", "--local-history"]), Ok(Some(0)));
    assert_eq!(shared(&[]), Ok(Some(0)), "no history, nothing to share");
    assert!(shared(&["--history", "5", "--local-history", "--redis-history"]).is_err());
}
