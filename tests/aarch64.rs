//! The Raspberry Pi build (aarch64), smoke-tested under qemu-user: serve,
//! one client, one UDP message delivered, clean shutdown on SIGTERM.
//!
//! The binary comes from `scripts/aarch64-build.sh` (Debian's rustc-web
//! with its arm64 standard library, gcc-aarch64-linux-gnu as the linker),
//! which scripts/test.sh runs before `cargo test`. Without that binary (a
//! plain `cargo test`), this test says SKIPPED loudly and passes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, Lines, expect_sigterm_shutdown, root, signal, unique_sock_path, wait_ready};

/// Where scripts/aarch64-build.sh leaves the binary.
fn aarch64_bin() -> PathBuf {
    root().join("target/aarch64/aarch64-unknown-linux-gnu/release/wsbroadcaster")
}

/// ELF e_machine of `bytes` (EM_AARCH64 is 183, EM_X86_64 62).
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" || bytes[5] != 1 {
        return None; // not a little-endian ELF file
    }
    Some(u16::from_le_bytes([bytes[18], bytes[19]]))
}

#[test]
fn aarch64_binary_serves_one_udp_message_under_qemu() {
    let bin = aarch64_bin();
    if !bin.exists() {
        eprintln!(
            "\n=== aarch64 smoke test SKIPPED: no {} (build it with `bash \
             scripts/aarch64-build.sh`; scripts/test.sh does) ===\n",
            bin.display()
        );
        return;
    }
    let head = std::fs::read(&bin).expect("read the aarch64 binary");
    assert_eq!(elf_machine(&head), Some(183), "an aarch64 ELF binary");

    let unix = unique_sock_path("arm64");
    let mut child = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&bin)
        .args([
            "serve",
            "--ws",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--unix",
        ])
        .arg(&unix)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run qemu-aarch64 (package qemu-user)");
    let stdout = Lines::spawn(child.stdout.take().expect("stdout"));
    let seen = wait_ready(&mut child, &stdout, Duration::from_secs(60), None);
    let mut c = Client::connect(&format!("ws://{}/", seen.ws()));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.send_to(b"hello from a Raspberry Pi build", seen.udp())
        .expect("send");
    c.expect_text("hello from a Raspberry Pi build");

    signal(child.id(), "TERM");
    expect_sigterm_shutdown(
        &mut child,
        &mut c,
        &unix,
        Duration::from_secs(20),
        "the aarch64 server",
    );
}
