//! `serve --stdin`: the server's stdin is a pipe; each line is a message,
//! with the Unix socket's framing and the addressed form.

mod common;

use std::time::Duration;

use common::Srv;
use common::{PyClient, py_text, require_python_websockets};

#[test]
fn stdin_lines_are_published_with_the_addressed_form() {
    require_python_websockets();
    let mut s = Srv::start_with_stdin(&["--stdin", "--max-message", "64"]);
    let mut a = PyClient::connect(&s.url("channel=a"));
    let mut n = PyClient::connect(&s.url(""));
    a.sync();
    n.sync();

    s.write_stdin(b"plain line\n");
    assert_eq!(a.recv(10.0), py_text("plain line"));
    assert_eq!(n.recv(10.0), py_text("plain line"));

    // A line may arrive in pieces; CRLF is stripped like on the Unix socket.
    s.write_stdin(b"@a only");
    std::thread::sleep(Duration::from_millis(100));
    s.write_stdin(b" for a\r\n@@at\n@ malformed\n");
    // Too long for --max-message 64: dropped with an error, the next line is fine.
    let long = format!("{}\n", "x".repeat(100));
    s.write_stdin(long.as_bytes());
    s.write_stdin(b"@* after the long line\n");
    assert_eq!(a.recv(10.0), py_text("only for a"));
    assert_eq!(a.recv(10.0), py_text("@at"));
    assert_eq!(a.recv(10.0), py_text("after the long line"));
    assert_eq!(n.recv(10.0), py_text("@at"));
    assert_eq!(n.recv(10.0), py_text("after the long line"));
    s.wait_log("stdin: dropped a line of", Duration::from_secs(10));
    s.wait_log(
        "dropped a malformed addressed message",
        Duration::from_secs(10),
    );

    // Many lines in one write keep their order.
    let many: String = (0..200).map(|i| format!("m{i}\n")).collect();
    s.write_stdin(many.as_bytes());
    for i in 0..200 {
        assert_eq!(n.recv(10.0), py_text(&format!("m{i}")));
    }

    // A final line without a newline is delivered at end of input; then the
    // server logs the end and keeps serving.
    s.write_stdin(b"no newline at the end");
    drop(s.stdin.take()); // EOF
    assert_eq!(n.recv(10.0), py_text("no newline at the end"));
    s.wait_log("stdin: end of input", Duration::from_secs(10));
    assert!(s.alive(), "the server keeps running after stdin's EOF");
    s.udp_send(b"udp after eof");
    assert_eq!(n.recv(10.0), py_text("udp after eof"));
    for _ in 0..200 {
        assert!(a.recv(10.0).starts_with("text \"m"));
    }
    assert_eq!(a.recv(10.0), py_text("no newline at the end"));
    assert_eq!(a.recv(10.0), py_text("udp after eof"));
}

#[test]
fn stdin_closed_at_start_keeps_serving() {
    require_python_websockets();
    // stdin is /dev/null: EOF at once.
    let s = common::Srv::start(&["--stdin"]);
    s.wait_log("stdin: end of input", Duration::from_secs(10));
    let mut c = PyClient::connect(&s.url(""));
    c.sync();
    s.udp_send(b"still serving");
    assert_eq!(c.recv(10.0), py_text("still serving"));
}
