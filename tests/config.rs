//! `serve --config`, the `WSBROADCASTER_*` variables and `check-config`,
//! against the real binary: precedence flags > environment > file >
//! defaults, seen from a real client; unknown keys and bad values named with
//! their line; the printed settings are a config file that gives the same
//! settings.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BIN, Client, Finished, Got, Lines, run_bounded, unique_sock_path, wait_ready};

/// A fresh directory for one test's files.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wsb-config-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// The binary with no inherited WSBROADCASTER_* variable or RUST_LOG.
fn bin() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WSBROADCASTER_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG").stdin(Stdio::null());
    c
}

/// `serve` started from `cmd`, up to its `ready` line.
struct Served {
    child: Child,
    ws: SocketAddr,
    unix: Option<PathBuf>,
    _stdout: Lines,
}

impl Served {
    fn start(mut cmd: Command) -> Served {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the wsbroadcaster binary");
        let stdout = Lines::spawn(child.stdout.take().expect("stdout piped"));
        let seen = wait_ready(&mut child, &stdout, Duration::from_secs(20), None);
        Served {
            child,
            ws: seen.ws(),
            unix: seen.unix,
            _stdout: stdout,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.ws)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill(); // this PID only
        }
        let _ = self.child.wait();
        if let Some(p) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write the config file");
    p
}

/// Runs `cmd` to its end (at most 20 s).
fn run(cmd: &mut Command) -> Finished {
    run_bounded(cmd, Duration::from_secs(20))
}

/// The first text message after the `--announce-id` greeting.
fn greeting(c: &mut Client) -> String {
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => t,
        other => panic!("expected the id greeting, got {other:?}"),
    }
}

#[test]
fn file_settings_reach_the_server_and_env_and_flags_override_them() {
    let dir = temp_dir("precedence");
    let sock = unique_sock_path("cfg");
    let file = write(
        &dir,
        "wsbroadcaster.toml",
        &format!(
            "# a deployment's settings\n\
             ws = \"127.0.0.1:0\"\n\
             udp = \"off\"\n\
             unix = \"{}\"\n\
             announce-id = true\n\
             client-messages = \"ignore\"\n\
             max-message = 100\n",
            sock.display()
        ),
    );
    // The file alone: announce-id on, client messages ignored.
    let mut cmd = bin();
    cmd.args(["serve", "--config"]).arg(&file);
    let s = Served::start(cmd);
    assert_eq!(
        s.unix.as_deref(),
        Some(sock.as_path()),
        "unix from the file"
    );
    let mut c = Client::connect(&s.url());
    assert!(
        greeting(&mut c).starts_with("{\"id\":\""),
        "announce-id from the file"
    );
    c.send_text("ignored");
    assert_eq!(c.next(Duration::from_millis(300)), Got::Timeout);
    drop(s);

    // The environment beats the file (echo), a flag beats both (max-message).
    let mut cmd = bin();
    cmd.args(["serve", "--max-message", "1000"])
        .env("WSBROADCASTER_CONFIG", &file)
        .env("WSBROADCASTER_CLIENT_MESSAGES", "echo")
        .env("WSBROADCASTER_MAX_MESSAGE", "50");
    let s = Served::start(cmd);
    let mut c = Client::connect(&s.url());
    greeting(&mut c);
    let long = "x".repeat(500);
    c.send_text(&long);
    assert_eq!(
        c.next_message(Duration::from_secs(10)),
        Got::Text(long),
        "echoed (env over file), 500 bytes allowed (flag over env and file)"
    );
    drop(s);

    // A boolean flag's variable turns the file's `true` off.
    let mut cmd = bin();
    cmd.args(["serve", "--config"])
        .arg(&file)
        .env("WSBROADCASTER_ANNOUNCE_ID", "false")
        .env("WSBROADCASTER_CLIENT_MESSAGES", "echo");
    let s = Served::start(cmd);
    let mut c = Client::connect(&s.url());
    c.send_text("first");
    assert_eq!(
        c.next_message(Duration::from_secs(10)),
        Got::Text("first".into()),
        "no greeting: the variable overrides the file"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_keys_and_bad_values_stop_serve_with_the_line() {
    let dir = temp_dir("bad");
    let file = write(
        &dir,
        "bad.toml",
        "ws = \"127.0.0.1:0\"\nudp = \"off\"\nmax_mesage = \"1MiB\"\nping-interval = \"soon\"\n",
    );
    let out = run(bin()
        .args(["serve", "--unix", "off", "--config"])
        .arg(&file));
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(&format!("{}:3: unknown key `max_mesage`", file.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:4: ping-interval: invalid value 'soon'",
            file.display()
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing served");

    let out = run(bin().arg("check-config").arg(&file));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains(":3: unknown key `max_mesage`"));

    let missing = dir.join("missing.toml");
    let out = run(bin().args(["serve", "--config"]).arg(&missing));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("cannot read the config file"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_prints_effective_settings_that_read_back_the_same() {
    let dir = temp_dir("check");
    let file = write(
        &dir,
        "a.toml",
        "ws = \"127.0.0.1:9100\"\nudp-allow = [\"10.0.0.0/8\", \"192.168.1.0/24\"]\nstdin = true\n\
         max-queued-bytes = \"8MiB\"\n",
    );
    let out = run(bin()
        .arg("check-config")
        .arg(&file)
        .env("WSBROADCASTER_IDLE_TIMEOUT", "2m"));
    let shown = &out.stdout;
    assert!(out.status.success(), "{}", out.stderr);
    let line = |key: &str| -> String {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} line in:\n{shown}"))
            .to_owned()
    };
    let (l, src) = line("ws")
        .split_once("  #")
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .unwrap();
    assert_eq!(
        (l.as_str(), src.as_str()),
        ("ws = \"127.0.0.1:9100\"", "file line 1")
    );
    assert!(line("udp-allow").starts_with("udp-allow = [\"10.0.0.0/8\", \"192.168.1.0/24\"]"));
    assert!(line("stdin").starts_with("stdin = true"));
    assert!(line("idle-timeout").contains("# env WSBROADCASTER_IDLE_TIMEOUT"));
    assert!(line("idle-timeout").starts_with("idle-timeout = \"2m\""));
    assert!(line("ping-interval").ends_with("# default"));
    assert!(!shown.contains("config ="), "--config is not a key");

    // Checked like `serve` does: a value `serve` would refuse is refused.
    let bad = write(&dir, "b.toml", "unix-mode = \"999\"\n");
    let out = run(bin().arg("check-config").arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("unix-mode"), "{}", out.stderr);

    // The output is itself a config file giving the same settings.
    let again = write(&dir, "again.toml", shown);
    let out2 = run(bin()
        .arg("check-config")
        .arg(&again)
        .env("WSBROADCASTER_IDLE_TIMEOUT", "2m"));
    assert!(out2.status.success(), "{}", out2.stderr);
    let values = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split("  #").next().unwrap_or("").trim_end().to_owned())
            .collect()
    };
    assert_eq!(values(shown), values(&out2.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}
