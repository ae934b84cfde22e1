//! `send`: publish messages over the UDP or Unix-socket ingress.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

pub(super) fn send(
    udp: Option<SocketAddr>,
    unix: Option<PathBuf>,
    message: Option<String>,
) -> Result<(), String> {
    let messages: Vec<String> = match message {
        Some(m) => vec![m],
        None => std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
    };
    if let Some(path) = unix {
        let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
            format!(
                "{}: {e} (is the server running with --unix?)",
                path.display()
            )
        })?;
        for m in &messages {
            s.write_all(m.as_bytes())
                .and_then(|_| s.write_all(b"\n"))
                .map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let addr = udp.unwrap_or_else(|| "127.0.0.1:8125".parse().expect("valid address"));
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("valid");
    let sock = std::net::UdpSocket::bind(local).map_err(|e| e.to_string())?;
    for m in &messages {
        sock.send_to(m.as_bytes(), addr)
            .map_err(|e| format!("{addr}: {e}"))?;
    }
    Ok(())
}
