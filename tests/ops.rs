//! Operating the server: the control socket (`events`, `kick`, `publish`,
//! `stats`), the admin HTTP endpoint driven by `curl`, `/metrics` read by
//! the Prometheus reference parser (Python `prometheus_client.parser`), and
//! publish receipts; WebSocket peers are Python `websockets` and the
//! crate's own client. Every wait is bounded; every process is ended by PID.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::json::json_u64;
use common::{
    Client, PyClient, Srv, id_from_greeting, require_python_module, require_python_websockets,
    serve_refused, serve_ws_only_command, unique_sock_path,
};

/// A server with the admin endpoint on an ephemeral port, the control
/// socket on a fresh path and `extra` flags; that path.
fn admin_and_control(extra: &[&str]) -> (Srv, PathBuf) {
    let ctl_path = unique_sock_path("ctl");
    let mut args = vec![
        "--admin",
        "127.0.0.1:0",
        "--control",
        ctl_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Srv::start(&args), ctl_path)
}

/// A control-socket connection with a read timeout.
struct Control {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Control {
    fn connect(path: &Path) -> Control {
        let w = UnixStream::connect(path).expect("connect to the control socket");
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Control { w, r }
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }

    /// The next line (without its newline); panics on EOF or timeout.
    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self
            .r
            .read_line(&mut l)
            .expect("a line from the control socket");
        assert!(n > 0, "the control socket closed");
        l.trim_end_matches('\n').to_owned()
    }

    /// A `json` command's one-line answer.
    fn json(&mut self, cmd: &str) -> String {
        self.send(&format!("json {cmd}"));
        self.line()
    }

    /// A text command's answer: the lines up to the empty one.
    fn text(&mut self, cmd: &str) -> Vec<String> {
        self.send(cmd);
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return lines;
            }
            lines.push(l);
        }
    }
}

/// `curl -sS ARGS URL`: (HTTP status, body, stderr).
fn curl(args: &[&str], url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--noproxy",
            "*",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run curl: {e}: {}", common::INSTALL_HINT));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').expect("curl's status line");
    (
        code.parse().unwrap_or(0),
        body.strip_suffix('\n').unwrap_or(body).to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `curl --data-binary BODY BASE/publish?QUERY` (no `?` for an empty
/// query): (HTTP status, body).
fn curl_publish(base: &str, query: &str, body: &str) -> (u16, String) {
    let url = if query.is_empty() {
        format!("{base}/publish")
    } else {
        format!("{base}/publish?{query}")
    };
    let (st, body, _) = curl(&["--data-binary", body], &url);
    (st, body)
}

/// `curl BASE/PATH` (a GET): (HTTP status, body).
fn curl_get(base: &str, path: &str) -> (u16, String) {
    let (st, body, _) = curl(&[], &format!("{base}{path}"));
    (st, body)
}

/// A publish receipt as the server writes it (JSON, no relay).
fn receipt(queued: u32, skipped_slow: u32, skipped_closing: u32) -> String {
    format!(
        r#"{{"queued":{queued},"skipped_slow":{skipped_slow},"skipped_closing":{skipped_closing},"relayed":false}}"#
    )
}

/// One raw HTTP request on a fresh connection to `addr` (a write error is
/// ignored: the server may answer and close before it has read it all);
/// the reply, waiting up to 5 s for the close.
fn http_request(addr: SocketAddr, req: &[u8]) -> common::HttpReply {
    let mut h = common::raw_tcp(addr);
    let _ = h.write_all(req);
    common::read_http_reply(&mut h, Duration::from_secs(5))
}

/// A crate client that learned its id from the `--announce-id` greeting.
fn client_with_id(url: &str) -> (Client, String) {
    let mut c = Client::connect(url);
    let got = c.next_message(Duration::from_secs(10));
    let common::Got::Text(greeting) = got else {
        panic!("expected the id greeting, got {got:?}");
    };
    let id = greeting
        .strip_prefix("{\"id\":\"")
        .and_then(|r| r.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("not a greeting: {greeting}"))
        .to_owned();
    (c, id)
}

/// An upgraded raw TCP connection that never reads again (its socket
/// buffers fill up), with a small receive buffer. Returns it and its
/// connection id (from `json connections`, by its local address).
fn raw_upgraded(ws: SocketAddr, ctl: &mut Control) -> (TcpStream, String) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&ws.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = common::upgrade_request(
        ws,
        &[
            common::UPGRADE,
            common::CONNECTION,
            common::KEY,
            common::VERSION13,
        ],
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "the upgrade response");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let me = s.local_addr().unwrap().to_string();
    let conns = ctl.json("connections");
    let at = conns
        .find(&format!("\"peer\":\"{me}\""))
        .unwrap_or_else(|| panic!("{me} not in {conns}"));
    let id_at = conns[..at].rfind("\"id\":\"").unwrap() + 6;
    let id = conns[id_at..].split('"').next().unwrap().to_owned();
    (s, id)
}

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

#[test]
fn curl_publishes_through_the_admin_endpoint_and_gets_receipts() {
    let (s, ctl_path) = admin_and_control(&[
        "--announce-id",
        "--max-queued-bytes",
        "256KiB",
        "--ping-interval",
        "0",
    ]);
    let admin = s.admin.expect("a `listening admin` line");
    let base = format!("http://{admin}");
    let mut ctl = Control::connect(&ctl_path);
    let (mut a, _) = client_with_id(&s.url("channel=news"));
    let (mut b, _) = client_with_id(&s.url("channel=news&channel=sport"));
    let (mut c, c_id) = client_with_id(&s.url("channel=sport"));
    let (mut d, _) = client_with_id(&s.url(""));

    assert_eq!(
        curl_publish(&base, "channel=news", "hello news"),
        (200, receipt(2, 0, 0))
    );
    a.expect_text("hello news");
    b.expect_text("hello news");
    assert_eq!(curl_publish(&base, "", "to all"), (200, receipt(4, 0, 0)));
    for cl in [&mut a, &mut b, &mut c, &mut d] {
        cl.expect_text("to all");
    }
    assert_eq!(
        curl_publish(&base, &format!("id={c_id}"), "just you"),
        (200, receipt(1, 0, 0))
    );
    c.expect_text("just you");
    assert_eq!(
        curl_publish(&base, "channel=empty", "nobody"),
        (200, receipt(0, 0, 0))
    );

    // A large body sent after `Expect: 100-continue` (what curl asks for
    // large uploads): the server answers 100 at once.
    let big = "x".repeat(64 * 1024);
    let (st, body, verbose) = curl(
        &["-v", "-H", "Expect: 100-continue", "--data-binary", &big],
        &format!("{base}/publish?channel=sport"),
    );
    assert_eq!((st, body), (200, receipt(2, 0, 0)));
    assert!(verbose.contains("HTTP/1.1 100 Continue"), "{verbose}");
    b.expect_text(&big);
    c.expect_text(&big);

    // Refusals.
    let (st, body) = curl_publish(&base, "channel=bad%20name", "x");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("is not a channel name"), "{body}");
    let (st, body) = curl_publish(&base, "chanel=news", "x");
    assert!(
        st == 400 && body.contains("unknown parameter \"chanel\""),
        "{body}"
    );
    let (st, _) = curl_get(&base, "/publish");
    assert_eq!(st, 405);
    let (st, _) = curl_get(&base, "/nope");
    assert_eq!(st, 404);

    // Receipts count slow and closing connections. A client that never
    // reads, flooded through the control socket, becomes a slow consumer.
    let (_slow, slow_id) = raw_upgraded(s.ws, &mut ctl);
    let chunk = "y".repeat(32 * 1024);
    let mut sent = 0;
    let answer = loop {
        let r = ctl.json(&format!("publish @id:{slow_id} {chunk}"));
        if r != receipt(1, 0, 0) {
            break r;
        }
        sent += 1;
        assert!(sent < 4000, "never slow after {sent} publishes");
    };
    assert_eq!(answer, receipt(0, 1, 0));
    // It is being closed now (waiting for its close frame): skipped as closing.
    assert_eq!(
        curl_publish(&base, &format!("id={slow_id}"), "z"),
        (200, receipt(0, 0, 1))
    );
    // A kicked connection that has not answered the close yet: closing too.
    let (_kicked, kicked_id) = raw_upgraded(s.ws, &mut ctl);
    assert!(
        ctl.json(&format!("kick {kicked_id} 4000"))
            .starts_with(r#"{"kicked""#)
    );
    assert_eq!(
        curl_publish(&base, &format!("id={kicked_id}"), "z"),
        (200, receipt(0, 0, 1))
    );
    // The control socket's publish answers receipts too, in both forms.
    assert_eq!(
        ctl.text("publish @news from the control socket"),
        ["published to channel news: queued 2, skipped_slow 0, skipped_closing 0"]
    );
    a.expect_text("from the control socket");
    assert!(
        ctl.json("publish @bad! x")
            .starts_with(r#"{"error":"not published: "#)
    );

    // /stats and /connections are JSON.
    let (st, stats) = curl_get(&base, "/stats");
    assert_eq!(st, 200);
    assert!(
        stats.contains(r#""channels":{"news":2,"sport":2}"#),
        "{stats}"
    );
    assert!(json_u64(&stats, "slow_consumer_closes") >= 1, "{stats}");
    let (st, conns) = curl_get(&base, "/connections");
    assert_eq!(st, 200);
    assert!(
        conns.starts_with("[{\"id\":") && conns.contains(&format!("\"id\":\"{c_id}\"")),
        "{conns}"
    );
}

/// The /metrics page as the Prometheus reference parser reads it: sample
/// name (with labels) → value.
fn scrape(admin: SocketAddr) -> HashMap<String, f64> {
    let out = Command::new("python3")
        .arg(common::root().join("tests/py/metrics.py"))
        .arg(format!("http://{admin}/metrics"))
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Prometheus parser failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[test]
fn prometheus_parser_reads_metrics_and_the_counters_move() {
    require_python_websockets();
    require_python_module("prometheus_client.parser", "prometheus_client");
    let s = Srv::start(&[
        "--admin",
        "127.0.0.1:0",
        "--allow-origin",
        "https://ok.example",
    ]);
    let admin = s.admin.unwrap();
    let mut a = Client::connect(&s.url("channel=news"));
    let mut b = Client::connect(&s.url("channel=news"));
    let before = scrape(admin);
    let get =
        |m: &HashMap<String, f64>, k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in {m:?}"));
    assert_eq!(get(&before, "wsbroadcaster_connections"), 2.0);
    assert_eq!(get(&before, "wsbroadcaster_channels"), 1.0);
    assert_eq!(
        get(
            &before,
            "wsbroadcaster_channel_connections{channel=\"news\"}"
        ),
        2.0
    );
    let counters = before.keys().filter(|k| k.ends_with("_total")).count();
    assert!(counters >= 29, "{before:?}");
    assert_eq!(
        get(&before, "families"),
        (counters + 10) as f64, // 10 gauges (3 of them the history's)
        "every counter and gauge is a family"
    );

    // Traffic: 5 messages to the channel, one refused browser origin.
    let mut payload_bytes = 0;
    for i in 0..5 {
        let m = format!("message {i}");
        payload_bytes += m.len();
        s.unix_send(format!("@news {m}\n").as_bytes());
        a.expect_text(&m);
        b.expect_text(&m);
    }
    let out = Command::new("python3")
        .arg(common::root().join("tests/py/ws_try.py"))
        .arg(s.url(""))
        .arg("https://evil.example")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("refused 403"));
    let after = scrape(admin);
    let delta = |k: &str| get(&after, k) - get(&before, k);
    assert_eq!(delta("wsbroadcaster_messages_published_total"), 5.0);
    assert_eq!(delta("wsbroadcaster_frames_queued_total"), 10.0);
    assert_eq!(
        delta("wsbroadcaster_bytes_published_total"),
        payload_bytes as f64
    );
    // Each frame: a 2-byte header and the payload, for two recipients.
    assert_eq!(
        delta("wsbroadcaster_bytes_queued_total"),
        2.0 * (payload_bytes + 5 * 2) as f64
    );
    assert_eq!(delta("wsbroadcaster_origin_refused_total"), 1.0);
    assert_eq!(delta("wsbroadcaster_http_rejected_total"), 1.0);
    assert_eq!(
        delta("wsbroadcaster_admin_requests_total"),
        1.0,
        "the first scrape"
    );
    assert_eq!(get(&after, "wsbroadcaster_connections"), 2.0);
    b.close();
    let _ = b.next(Duration::from_secs(5));
    common::wait_until(Duration::from_secs(10), "the close to be counted", || {
        get(&scrape(admin), "wsbroadcaster_connections") == 1.0
    });
    let last = scrape(admin);
    assert_eq!(
        get(&last, "wsbroadcaster_channel_connections{channel=\"news\"}"),
        1.0
    );
    assert_eq!(get(&last, "wsbroadcaster_connections_closed_total"), 1.0);
}

#[test]
fn admin_and_control_limits() {
    let (s, ctl_path) = admin_and_control(&[
        "--ops-max-connections",
        "2",
        "--admin-timeout",
        "1s",
        "--max-message",
        "1KiB",
    ]);
    let admin = s.admin.unwrap();
    // Control: a third connection is closed at once.
    let mut c1 = Control::connect(&ctl_path);
    let mut c2 = Control::connect(&ctl_path);
    let mut c3 = UnixStream::connect(&ctl_path).unwrap();
    c3.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(c3.read(&mut buf), Ok(0) | Err(_)),
        "closed at the limit"
    );
    assert_eq!(json_u64(&c1.json("stats"), "ops_connections_refused"), 1);
    // An over-long line (over --max-message + 1 KiB) closes that connection.
    c2.w.write_all(&vec![b'a'; 3000]).unwrap();
    assert_eq!(c2.line(), "error: a line over 2048 bytes; closing");
    assert_eq!(c2.line(), "");
    let mut rest = Vec::new();
    let _ = c2.r.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(json_u64(&c1.json("stats"), "control_errors"), 1);

    // Admin: a request that does not finish within --admin-timeout is cut.
    let mut slow = common::raw_tcp(admin);
    slow.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    let n = slow.read(&mut buf);
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(t.elapsed() < Duration::from_secs(8));
    // Head too large; body too large; bad requests. (One at a time: each
    // connection counts against --ops-max-connections until closed.)
    let ask = |req: &[u8]| http_request(admin, req);
    let big = format!("GET /stats HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(ask(big.as_bytes()).status, 431);
    let r = ask(b"POST /publish HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    assert_eq!(r.status, 413);
    assert!(r.closed);
    let r = ask(b"POST /publish HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.status, 411);
    assert_eq!(ask(b"\x16\x03\x01garbage\r\n\r\n").status, 400);
    // A request that arrives a byte at a time is read whole (the head's end
    // is found across reads).
    let mut h = common::raw_tcp(admin);
    h.set_nodelay(true).unwrap();
    for b in b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" {
        h.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        common::read_http_reply(&mut h, Duration::from_secs(5)).status,
        200
    );
    drop(h);
    let stats = c1.json("stats");
    assert_eq!(json_u64(&stats, "admin_errors"), 4, "{stats}");
    // The WebSocket port still publishes nothing from HTTP.
    let mut h = common::raw_tcp(s.ws);
    h.write_all(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    assert_eq!(
        common::read_http_reply(&mut h, Duration::from_secs(5)).status,
        404
    );
    assert_eq!(json_u64(&c1.json("stats"), "messages_published"), 0);
}

#[test]
fn admin_and_control_are_off_by_default() {
    let s = Srv::start(&[]);
    assert_eq!((s.admin, s.control.clone()), (None, None));
}
