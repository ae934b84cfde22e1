//! One TOML value as the command-line tokens of its flag, checked by the
//! flag's own value parser.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};
use toml::de::DeValue;

use super::clap_message;

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
pub(super) fn tokens_for(
    arg: &Arg,
    key: &str,
    value: &DeValue<'_>,
) -> Result<Vec<OsString>, String> {
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
pub(super) fn check_tokens(arg: &Arg, tokens: &[OsString]) -> Result<(), String> {
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
