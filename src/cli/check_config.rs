//! `check-config PATH`.

use std::process::ExitCode;

use clap::FromArgMatches;

use super::parse::serve_command;
use super::serve::ServeArgs;

/// `check-config PATH`: the file is checked exactly as `serve --config`
/// reads it; prints the effective settings (a valid config file itself).
pub(super) fn check_config(path: &std::path::Path) -> ExitCode {
    use crate::config_file::{ConfigFile, render_effective};
    let cmd = serve_command();
    let mut file = match ConfigFile::load(path, &cmd) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let argv = [std::ffi::OsString::from("serve")];
    let checked = cmd
        .clone()
        .try_get_matches_from(argv.clone())
        .and_then(|env_only| {
            cmd.clone()
                .try_get_matches_from(file.merge_into(&argv, 0, &env_only))
        })
        .map_err(|e| crate::config_file::clap_message(&e))
        .and_then(|m| {
            let args = ServeArgs::from_arg_matches(&m).map_err(|e| e.to_string())?;
            let cfg = args.config()?;
            // The certificate and key are read as `serve` would read them.
            if let Some(files) = &cfg.tls {
                crate::server::check_tls(files).map_err(|e| format!("TLS: {e}"))?;
            }
            Ok(m)
        });
    match checked {
        Ok(m) => {
            print!("{}", render_effective(&cmd, &m, Some(&file)));
            eprintln!("{}: OK", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
