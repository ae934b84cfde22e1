//! The control socket's `events` stream: connects and disconnects with
//! their close codes, kicks, shutdown, and a subscriber that stops reading.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::json::json_u64;
use crate::common::{
    Client, PyClient, Srv, id_from_greeting, require_python_websockets, serve_refused,
    serve_ws_only_command, unique_sock_path,
};
use crate::control::Control;

#[test]
fn events_stream_connects_and_disconnects_with_close_codes() {
    require_python_websockets();
    let path = unique_sock_path("ctl");
    let s = Srv::start(&["--control", path.to_str().unwrap(), "--announce-id"]);
    assert_eq!(s.control.as_deref(), Some(path.as_path()));
    let mode = std::fs::metadata(&path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let mut sub = Control::connect(&path);
    sub.send("events");
    assert_eq!(sub.line(), r#"{"event":"subscribed"}"#);

    // A client joins two channels, then closes normally.
    let mut py = PyClient::connect(&s.url("channel=news&channel=sport"));
    let id = id_from_greeting(&py.recv(10.0));
    let ev = sub.line();
    let want = format!(r#"{{"event":"connect","id":"{id}","peer":"127.0.0.1:"#);
    assert!(ev.starts_with(&want), "{ev}");
    assert!(
        ev.contains(r#","channels":["news","sport"],"time_ms":"#),
        "{ev}"
    );
    assert_eq!(py.cmd("close", 10.0), "bye");
    let ev = sub.line();
    assert!(
        ev.starts_with(&format!(r#"{{"event":"disconnect","id":"{id}","#)),
        "{ev}"
    );
    assert!(
        ev.contains(r#""channels":["news","sport"],"code":1000,"reason":"","by":"client","#),
        "{ev}"
    );

    // A client kicked with a code of our choosing: the client sees it, and
    // so does the events stream.
    let mut py = PyClient::connect(&s.url(""));
    let id = id_from_greeting(&py.recv(10.0));
    assert!(
        sub.line()
            .contains(&format!(r#""event":"connect","id":"{id}""#))
    );
    let mut ctl = Control::connect(&path);
    assert_eq!(
        ctl.json(&format!("kick {id} 4001")),
        format!(r#"{{"kicked":"{id}","code":4001}}"#)
    );
    assert_eq!(
        py.wait_close(10.0),
        r#"closed 4001 "kicked by the operator""#
    );
    let ev = sub.line();
    assert!(
        ev.contains(&format!(
            r#""event":"disconnect","id":"{id}","peer":"127.0.0.1:"#
        )) && ev.contains(
            r#""channels":[],"code":4001,"reason":"kicked by the operator","by":"server""#
        ),
        "{ev}"
    );
    // Human-readable answers, errors included.
    assert_eq!(
        ctl.text(&format!("kick {id}")),
        [format!("error: no connection {id}")]
    );
    assert_eq!(
        ctl.text("kick nope"),
        [
            "error: \"nope\": not a connection id (six characters of [a-z0-9], a dot, a base-36 counter, e.g. k3j9x2.1f)"
        ]
    );
    assert!(
        ctl.json("kick")
            .starts_with(r#"{"error":"usage: kick ID [CODE]"#)
    );
    let mut py = PyClient::connect(&s.url(""));
    let id = id_from_greeting(&py.recv(10.0));
    assert!(
        ctl.json(&format!("kick {id} 1005"))
            .contains("the close code must be")
    );
    assert_eq!(
        ctl.text(&format!("kick {id}")),
        [format!("kicked {id} (close 1008)")]
    );
    assert_eq!(
        py.wait_close(10.0),
        r#"closed 1008 "kicked by the operator""#
    );
    let stats = ctl.text("stats");
    assert!(
        stats
            .iter()
            .any(|l| l.starts_with("kicks ") && l.ends_with(" 2")),
        "{stats:?}"
    );
    assert!(ctl.text("help")[0].starts_with("commands"));
    assert!(ctl.text("bogus")[0].starts_with("error: unknown command \"bogus\""));
    // A second server cannot take the same control socket; on SIGTERM the
    // file is removed.
    let out = serve_refused(serve_ws_only_command(&["--control"]).arg(&path));
    assert_eq!(out.status.code(), Some(1));
    let err = &out.stderr;
    assert!(
        err.contains("another running instance answers on it (use --control PATH"),
        "{err}"
    );
    // Shutdown: the subscriber sees every client closed with 1001, then the
    // end of the stream.
    let mut py = PyClient::connect(&s.url("channel=last"));
    let id = id_from_greeting(&py.recv(10.0));
    // (The events of the kicked client above come first.)
    let want = format!(r#""event":"connect","id":"{id}""#);
    while !sub.line().contains(&want) {}
    let mut s = s;
    common::signal(s.child.id(), "TERM");
    let ev = sub.line();
    assert!(
        ev.contains(&format!(r#""event":"disconnect","id":"{id}""#))
            && ev.contains(r#""code":1001,"reason":"server shutting down","by":"server""#),
        "{ev}"
    );
    let mut rest = String::new();
    let _ = sub.r.read_to_string(&mut rest);
    assert_eq!(rest, "", "the stream ends after the last disconnect");
    assert!(
        common::wait_exit(&mut s.child, Duration::from_secs(10)).is_some_and(|st| st.success())
    );
    assert!(
        !path.exists(),
        "the control socket file is removed at shutdown"
    );
    drop(py);
}

#[test]
fn an_events_subscriber_that_stops_reading_loses_events_counted_and_is_told() {
    let path = unique_sock_path("ctl");
    let s = Srv::start(&[
        "--control",
        path.to_str().unwrap(),
        "--ops-max-queued",
        "4KiB",
        "--ping-interval",
        "0",
    ]);
    let mut sub = Control::connect(&path);
    sub.send("events");
    assert_eq!(sub.line(), r#"{"event":"subscribed"}"#);
    // The subscriber reads nothing more. Clients come and go until the
    // server starts dropping events for it (the kernel's socket buffer
    // takes the first few hundred KB).
    let mut ctl = Control::connect(&path);
    let mut cycles = 0;
    loop {
        for _ in 0..50 {
            let mut c = Client::connect(&s.url(""));
            c.close();
            let _ = c.next(Duration::from_secs(5)); // the server's close
        }
        cycles += 50;
        let stats = ctl.json("stats");
        if json_u64(&stats, "events_dropped") > 0 {
            break;
        }
        assert!(
            cycles < 8000,
            "no event dropped after {cycles} connections: {stats}"
        );
    }
    // The server still serves everyone else.
    let mut c = Client::connect(&s.url(""));
    s.udp_send(b"still here");
    c.expect_text("still here");
    c.close();
    let _ = c.next(Duration::from_secs(5));
    drop(c);
    common::wait_until(Duration::from_secs(10), "every client to be gone", || {
        json_u64(&ctl.json("stats"), "connections") == 0
    });
    let dropped = json_u64(&ctl.json("stats"), "events_dropped");
    // Now it reads: every queued event, then how many it lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = 0u64;
    let notice = loop {
        assert!(
            Instant::now() < deadline,
            "no dropped notice after {events} events"
        );
        let l = sub.line();
        if l.starts_with(r#"{"event":"dropped""#) {
            break l;
        }
        events += 1;
    };
    assert_eq!(
        notice,
        format!(r#"{{"event":"dropped","count":{dropped}}}"#)
    );
    assert!(events > 0);
    // Connect + disconnect per cycle, plus the still-serving client's two:
    // each one delivered or counted.
    assert_eq!(events + dropped, 2 * cycles as u64 + 2);
    // After the notice, events flow again.
    let _c = Client::connect(&s.url(""));
    let mut next = sub.line();
    while !next.contains(r#""event":"connect""#) {
        next = sub.line();
    }
}
