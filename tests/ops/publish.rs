//! Publishing through the admin endpoint (curl) and the control socket, and
//! the receipts both answer: queued, skipped as slow, skipped as closing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::admin_and_control;
use crate::common;
use crate::common::Client;
use crate::common::json::json_u64;
use crate::control::Control;
use crate::curl::{curl, curl_get, curl_publish};

/// A publish receipt as the server writes it (JSON, no relay).
fn receipt(queued: u32, skipped_slow: u32, skipped_closing: u32) -> String {
    format!(
        r#"{{"queued":{queued},"skipped_slow":{skipped_slow},"skipped_closing":{skipped_closing},"relayed":false}}"#
    )
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
