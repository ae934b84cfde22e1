//! A real third-party client (Python `websockets`, tests/py/ws_client.py)
//! receives what real publishers send: netcat-openbsd over UDP and over the
//! Unix socket, another WebSocket client, raw datagrams. And the
//! `--client-messages` policies: broadcast (default), echo, ignore.

mod common;

use common::{
    PyClient, Server, nc_udp, nc_unix, py_text, require_nc_openbsd, require_python_websockets,
};

#[test]
fn python_client_receives_udp_unix_and_client_broadcasts() {
    require_python_websockets();
    require_nc_openbsd();
    let server = Server::start(&[]);
    let mut a = PyClient::connect(&server.url());
    let mut b = PyClient::connect(&server.url());

    // UDP with netcat: `printf 'hello from udp\n' | nc -u -w1 127.0.0.1 PORT`.
    // The datagram's trailing newline is stripped.
    nc_udp(server.udp, b"hello from udp\n");
    assert_eq!(a.recv(10.0), py_text("hello from udp"));
    assert_eq!(b.recv(10.0), py_text("hello from udp"));

    // Unix socket with netcat: every line is one message, in order; a last
    // line without a newline still counts once the writer closes.
    nc_unix(&server.unix, b"line one\nline two\r\nno newline at the end");
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv(10.0), py_text("line one"));
        assert_eq!(c.recv(10.0), py_text("line two"));
        assert_eq!(c.recv(10.0), py_text("no newline at the end"));
    }

    // A message from a client goes to every client, the sender included.
    b.send("hello from b");
    assert_eq!(a.recv(10.0), py_text("hello from b"));
    assert_eq!(b.recv(10.0), py_text("hello from b"));

    // Nothing else was delivered on the way.
    assert_eq!(a.recv(0.3), "timeout");
    assert_eq!(b.recv(0.3), "timeout");
}

#[test]
fn udp_framing_newline_stripped_and_non_utf8_is_binary() {
    require_python_websockets();
    let server = Server::start(&[]);
    let mut a = PyClient::connect(&server.url());

    server.udp_send(b"lf\n");
    assert_eq!(a.recv(10.0), py_text("lf"), "one trailing \\n is stripped");
    server.udp_send(b"crlf\r\n");
    assert_eq!(
        a.recv(10.0),
        py_text("crlf"),
        "a trailing \\r\\n is stripped"
    );
    server.udp_send(b"as is");
    assert_eq!(a.recv(10.0), py_text("as is"));
    server.udp_send("héllo wörld ✓".as_bytes());
    assert_eq!(a.recv(10.0), "text \"h\\u00e9llo w\\u00f6rld \\u2713\"");

    // Not UTF-8: delivered as a binary message, bytes intact.
    server.udp_send(&[0xff, 0xfe, 0x00, 0x80, 0x41]);
    assert_eq!(a.recv(10.0), "binary fffe008041");

    // Binary over the Unix socket too.
    server.unix_send(b"\xc3\x28 invalid utf-8\n");
    assert_eq!(
        a.recv(10.0),
        format!("binary c328{}", hex(b" invalid utf-8"))
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn echo_mode_answers_only_the_sender() {
    require_python_websockets();
    let server = Server::start(&["--client-messages", "echo"]);
    let mut a = PyClient::connect(&server.url());
    let mut b = PyClient::connect(&server.url());

    a.send("echo me");
    assert_eq!(a.recv(10.0), py_text("echo me"));
    // The server has handled a's message (a got the echo). Had it gone to b
    // too, it would be queued ahead of this marker.
    server.udp_send(b"marker after echo");
    assert_eq!(b.recv(10.0), py_text("marker after echo"));
    assert_eq!(a.recv(10.0), py_text("marker after echo"));
    assert_eq!(b.recv(0.3), "timeout");
}

#[test]
fn ignore_mode_drops_client_messages() {
    require_python_websockets();
    let server = Server::start(&["--client-messages", "ignore"]);
    let mut a = PyClient::connect(&server.url());
    let mut b = PyClient::connect(&server.url());

    a.send("dropped");
    // Ping after the message: the pong proves the server handled it.
    a.sync();
    server.udp_send(b"marker after ignore");
    assert_eq!(a.recv(10.0), py_text("marker after ignore"));
    assert_eq!(b.recv(10.0), py_text("marker after ignore"));
    assert_eq!(a.recv(0.3), "timeout");
    assert_eq!(b.recv(0.3), "timeout");
}
