//! permessage-deflate with real peers: Python `websockets` clients (which
//! offer it by default) receive compressed broadcasts correctly, a client
//! without the extension gets the plain frame, and the server compresses
//! each broadcast once whatever the number of compressing recipients
//! (its own `deflate_compressions` counter, read over MessagePack-RPC).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Client;
use common::Srv;

fn sha256_hex(data: &[u8]) -> String {
    // Verified against Python's hashlib in the test below (same input).
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("python3");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

#[test]
fn compressed_broadcasts_reach_websockets_clients_and_are_compressed_once() {
    common::require_python_websockets();
    let srv = Srv::start(&["--rpc", "127.0.0.1:0"]);
    let rpc = srv.rpc.expect("rpc address").to_string();
    let clients = 5;
    let script = common::root().join("tests/py/deflate_clients.py");
    let mut py = Command::new("python3")
        .arg(&script)
        .args([&srv.url(""), &clients.to_string(), "3", &rpc])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().expect("stdout")).lines();
    let ready = out.next().expect("ready line").expect("read");
    assert!(ready.starts_with("ready "), "{ready}");
    assert!(
        ready.contains("permessage-deflate"),
        "deflate negotiated: {ready}"
    );
    assert!(ready.contains("server_no_context_takeover"), "{ready}");
    // One client without the extension gets the same messages uncompressed.
    let mut plain = Client::connect(&srv.url(""));

    let big_text = "the quick brown fox jumps over the lazy dog; ".repeat(200);
    // Not UTF-8 (0xff), so it goes out as a binary frame.
    let binary: Vec<u8> = (0..4000u32)
        .map(|i| if i % 50 == 0 { 0xff } else { (i % 7) as u8 })
        .collect();
    srv.unix_send(format!("{big_text}\n").as_bytes()); // compressed
    srv.unix_send(b"tiny\n"); // under --deflate-min-size: plain frame
    srv.udp_send(&binary); // not UTF-8: binary, compressed

    let expected = vec![
        ("text", big_text.len(), sha256_hex(big_text.as_bytes())),
        ("text", 4, sha256_hex(b"tiny")),
        ("binary", binary.len(), sha256_hex(&binary)),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    let mut stats = None;
    for line in out.by_ref() {
        assert!(Instant::now() < deadline, "python clients too slow");
        let line = line.expect("read");
        if let Some(rest) = line.strip_prefix("got ") {
            let (_, list) = rest.split_once(' ').expect("index");
            for (kind, len, hash) in &expected {
                let item = format!("[\"{kind}\", {len}, \"{hash}\"]");
                assert!(list.contains(&item), "missing {item} in {list}");
            }
            seen += 1;
        } else if let Some(s) = line.strip_prefix("stats ") {
            stats = Some(s.to_owned());
            break;
        }
    }
    assert_eq!(seen, clients);
    let stats = stats.expect("stats line");
    // Two broadcasts were big enough to compress; each compressed once for
    // all five compressing clients.
    assert!(stats.contains("\"deflate_compressions\": 2"), "{stats}");
    assert_eq!(py.wait().expect("python exit").code(), Some(0));

    // Order across two ingresses (Unix, UDP) is not defined: compare as a set.
    let mut got: Vec<common::Got> = (0..3)
        .map(|_| plain.next_message(Duration::from_secs(10)))
        .collect();
    let mut want = vec![
        common::Got::Text(big_text.clone()),
        common::Got::Text("tiny".into()),
        common::Got::Binary(binary.clone()),
    ];
    let key = |g: &common::Got| format!("{g:?}").len();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert!(
        got == want,
        "the client without deflate got the three plain messages"
    );
}

#[test]
fn deflate_off_declines_the_offer() {
    common::require_python_websockets();
    let srv = Srv::start(&["--rpc", "127.0.0.1:0", "--deflate", "off"]);
    let rpc = srv.rpc.expect("rpc address").to_string();
    let script = common::root().join("tests/py/deflate_clients.py");
    let mut py = Command::new("python3")
        .arg(&script)
        .args([&srv.url(""), "1", "1", &rpc])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().expect("stdout")).lines();
    let ready = out.next().expect("ready").expect("read");
    assert_eq!(ready.trim_end(), "ready", "no extension accepted");
    srv.unix_send(format!("{}\n", "x".repeat(500)).as_bytes());
    let mut stats = String::new();
    for line in out {
        let line = line.expect("read");
        if let Some(s) = line.strip_prefix("stats ") {
            stats = s.to_owned();
        }
    }
    assert!(stats.contains("\"deflate_compressions\": 0"), "{stats}");
    assert_eq!(py.wait().expect("exit").code(), Some(0));
}
