//! Socket plumbing shared by the loop's connections and listeners.

use std::io;
use std::net::SocketAddr;

use log::debug;
use mio::net::TcpListener;
use mio::{Interest, Token};

/// Keeps WRITABLE interest registered exactly while a connection has bytes
/// the kernel would not take (`drained` false), so an idle connection costs
/// no wake-ups and no syscalls.
pub(crate) fn set_write_interest(
    registry: &mio::Registry,
    source: &mut impl mio::event::Source,
    key: usize,
    writable_interest: &mut bool,
    drained: bool,
) {
    if drained != *writable_interest {
        return;
    }
    let interest = if drained {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    if let Err(e) = registry.reregister(source, Token(key), interest) {
        debug!("reregister failed for {key}: {e}");
    }
    *writable_interest = !drained;
}

/// A non-blocking TCP listener with an explicit accept backlog. mio and
/// std use 128, which a burst of connecting clients (a deploy reconnecting
/// every browser at once) overflows: the dropped SYNs are retried only after
/// a second. The kernel caps the value at `net.core.somaxconn`.
pub(crate) fn listen_tcp(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}
