//! Running under systemd: the readiness protocol (`Type=notify`) against a
//! real Unix datagram socket standing in for systemd's, with a path and with
//! an abstract-namespace address; `systemd-analyze verify` on
//! contrib/wsbroadcaster.service; the shipped config file is valid and puts
//! the Unix socket in the unit's RuntimeDirectory.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    BIN, Client, INSTALL_HINT, Lines, expect_sigterm_shutdown, root, serve_command, signal,
    unique_sock_path, wait_ready,
};

/// The next datagram within `timeout`, as text.
fn recv(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    sock.set_read_timeout(Some(timeout))
        .expect("set_read_timeout");
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv on the notify socket: {e}"),
    }
}

/// Starts `serve` with NOTIFY_SOCKET=`notify_name`, checks READY=1 comes
/// once every listener serves, then SIGTERM gives STOPPING=1, a 1001 close
/// and exit 0.
fn ready_then_stopping(notify: &UnixDatagram, notify_name: &str) {
    let unix = unique_sock_path("notify");
    let mut child = serve_command(&unix, &[])
        .env("NOTIFY_SOCKET", notify_name)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the wsbroadcaster binary");
    let stdout = Lines::spawn(child.stdout.take().expect("stdout piped"));

    let ready = recv(notify, Duration::from_secs(20));
    let Some(ready) = ready else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no READY=1 datagram within 20 s");
    };
    assert_eq!(ready, "READY=1");
    // READY=1 means served: every listener answers at once, no retry. (The
    // start-up lines are printed before READY=1.)
    let seen = wait_ready(&mut child, &stdout, Duration::from_secs(5), None);
    let (ws, udp) = (seen.ws(), seen.udp());
    let mut c = Client::connect(&format!("ws://{ws}/"));
    let mut u = std::os::unix::net::UnixStream::connect(&unix).expect("the Unix socket is bound");
    std::io::Write::write_all(&mut u, b"via unix\n").expect("write");
    drop(u);
    c.expect_text("via unix");
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.send_to(b"via udp", udp).expect("send");
    c.expect_text("via udp");
    assert_eq!(
        recv(notify, Duration::from_millis(200)),
        None,
        "READY=1 is sent once"
    );

    signal(child.id(), "TERM");
    assert_eq!(
        recv(notify, Duration::from_secs(10)).as_deref(),
        Some("STOPPING=1"),
        "SIGTERM is announced"
    );
    expect_sigterm_shutdown(
        &mut child,
        &mut c,
        &unix,
        Duration::from_secs(10),
        "the server",
    );
}

#[test]
fn notify_socket_path_gets_ready_then_stopping() {
    let path = unique_sock_path("sd-notify");
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    ready_then_stopping(&sock, path.to_str().expect("UTF-8 path"));
    let _ = std::fs::remove_file(&path);
}

#[cfg(target_os = "linux")]
#[test]
fn notify_socket_in_the_abstract_namespace() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("wsbroadcaster-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
    ready_then_stopping(&sock, &format!("@{name}"));
}

#[test]
fn no_notify_socket_no_datagram_and_a_bad_one_is_not_fatal() {
    // An unusable NOTIFY_SOCKET is logged; the server serves anyway.
    let unix = unique_sock_path("sd-bad");
    let mut child = serve_command(&unix, &[])
        .env("NOTIFY_SOCKET", "/nonexistent/notify")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = Lines::spawn(child.stdout.take().expect("stdout"));
    let seen = wait_ready(&mut child, &stdout, Duration::from_secs(20), None);
    let mut c = Client::connect(&format!("ws://{}/", seen.ws()));
    let mut u = std::os::unix::net::UnixStream::connect(&unix).expect("connect");
    std::io::Write::write_all(&mut u, b"still serving\n").expect("write");
    drop(u);
    c.expect_text("still serving");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&unix);
}

/// A root directory for `systemd-analyze verify --root`: the system's unit
/// files (for the targets the unit names), the unit, and the binary at the
/// unit's ExecStart path.
fn verify_root(unit_text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wsb-sdroot-{}-{}",
        std::process::id(),
        unit_text.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["usr/lib/systemd", "usr/local/bin", "etc/systemd/system"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    let st = Command::new("cp")
        .arg("-a")
        .arg("/usr/lib/systemd/system")
        .arg(dir.join("usr/lib/systemd/"))
        .status()
        .expect("run cp");
    assert!(st.success(), "copy /usr/lib/systemd/system");
    std::fs::copy(BIN, dir.join("usr/local/bin/wsbroadcaster")).expect("copy the binary");
    // Every other program an Exec*= line runs (ExecReload's kill), from this host.
    for line in unit_text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let program = value
            .trim_start_matches(['-', '@', '+', '!', ':'])
            .split_whitespace()
            .next()
            .unwrap_or("");
        if key.starts_with("Exec") && program.starts_with('/') && !program.contains("wsbroadcaster")
        {
            let to = dir.join(program.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
            std::fs::copy(program, &to).unwrap_or_else(|e| panic!("copy {program}: {e}"));
        }
    }
    std::fs::write(
        dir.join("etc/systemd/system/wsbroadcaster.service"),
        unit_text,
    )
    .expect("write the unit");
    dir
}

/// `systemd-analyze verify` output (stdout and stderr) and success.
fn verify(root_dir: &Path) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root_dir.display()))
        .arg("wsbroadcaster.service")
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e}; {INSTALL_HINT}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_analyze_verify_passes_on_the_unit() {
    let unit = std::fs::read_to_string(root().join("contrib/wsbroadcaster.service"))
        .expect("read contrib/wsbroadcaster.service");
    assert!(unit.contains("\nType=notify\n"));
    assert!(unit.contains("\nExecStart=/usr/local/bin/wsbroadcaster serve --config /etc/wsbroadcaster/wsbroadcaster.toml\n"));
    let dir = verify_root(&unit);
    let (ok, text) = verify(&dir);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify must pass silently (every warning is a failure):\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The check can fail: a misspelt directive and a bad value are reported.
    let broken = unit.replace(
        "ProtectSystem=strict",
        "ProtectSystem=strickt\nProtectSistem=yes",
    );
    let dir = verify_root(&broken);
    let (_, text) = verify(&dir);
    assert!(
        text.contains("ProtectSistem"),
        "a misspelt key is reported:\n{text}"
    );
    assert!(text.contains("strickt"), "a bad value is reported:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shipped_config_is_valid_and_uses_the_runtime_directory() {
    let unit = std::fs::read_to_string(root().join("contrib/wsbroadcaster.service")).unwrap();
    assert!(unit.contains("\nRuntimeDirectory=wsbroadcaster\n"));
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(root().join("contrib/wsbroadcaster.toml"))
        .env_remove("WSBROADCASTER_CONFIG")
        .output()
        .expect("run check-config");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("unix = \"/run/wsbroadcaster/wsbroadcaster.sock\"")),
        "{shown}"
    );
}
