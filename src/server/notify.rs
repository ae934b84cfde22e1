//! Readiness notification to systemd (`Type=notify`), without libsystemd:
//! the protocol of sd_notify(3) is one Unix datagram of `KEY=VALUE` lines
//! sent to the socket named by `$NOTIFY_SOCKET`.
//!
//! The server sends `READY=1` when every listener is bound and the loop is
//! about to serve, and `STOPPING=1` when SIGTERM/SIGINT starts the shutdown.
//! `$NOTIFY_SOCKET` is a filesystem path (`/run/systemd/notify`) or, when it
//! starts with `@`, a name in Linux's abstract socket namespace. Without the
//! variable (not run by systemd) nothing is sent.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// A way to tell the service manager about the server's state.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for messages.
    name: String,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`: `Ok(None)` when it is unset or empty.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        match std::env::var_os(NOTIFY_SOCKET) {
            Some(v) if !v.is_empty() => {
                let v = v.into_string().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "$NOTIFY_SOCKET is not UTF-8")
                })?;
                Notifier::new(&v).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// For the socket `name`: an absolute path, or `@abstract-name`.
    pub fn new(name: &str) -> io::Result<Notifier> {
        let addr = parse_addr(name)?;
        Ok(Notifier {
            sock: UnixDatagram::unbound()?,
            addr,
            name: name.to_owned(),
        })
    }

    /// Sends one state message (`READY=1`, `STOPPING=1`, `STATUS=...`;
    /// several lines separated by `\n`).
    pub fn send(&self, state: &str) -> io::Result<()> {
        let n = self.sock.send_to_addr(state.as_bytes(), &self.addr)?;
        if n != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short datagram to {}", self.name),
            ));
        }
        Ok(())
    }

    /// `$NOTIFY_SOCKET` as given.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn parse_addr(name: &str) -> io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        return abstract_addr(abstract_name.as_bytes());
    }
    if name.starts_with('/') {
        return SocketAddr::from_pathname(name);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("$NOTIFY_SOCKET {name:?}: expected an absolute path or @name"),
    ))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket addresses (@name) exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn path_socket_gets_each_state_as_one_datagram() {
        let path = std::env::temp_dir().join(format!("wsb-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str().unwrap()).unwrap();
        n.send("READY=1").unwrap();
        n.send("STOPPING=1\nSTATUS=bye").unwrap();
        assert_eq!(recv(&listener), "READY=1");
        assert_eq!(recv(&listener), "STOPPING=1\nSTATUS=bye");
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket_names_start_with_at() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("wsb-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(&format!("@{name}")).unwrap();
        n.send("READY=1").unwrap();
        assert_eq!(recv(&listener), "READY=1");
        assert_eq!(n.name(), format!("@{name}"));
    }

    #[test]
    fn other_addresses_are_refused_and_a_missing_socket_is_an_error() {
        assert!(Notifier::new("relative/path").is_err());
        assert!(Notifier::new("vsock:2:1234").is_err());
        let n = Notifier::new("/nonexistent/wsb-notify.sock").unwrap();
        assert!(n.send("READY=1").is_err());
    }
}
