//! Fan-out under load against the real binary: 1,000 concurrent clients get
//! every broadcast in order, and a client that stops reading is cut off
//! (1008) without costing the server memory or the other clients a message.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Got, Server, wait_until};

/// Raises the soft open-file limit so that 1,000 clients (here) and their
/// 1,000 server ends (in the child, which inherits the limit) fit.
fn raise_fd_limit(need: u64) {
    let got = rlimit::increase_nofile_limit(4096).expect("raise RLIMIT_NOFILE");
    assert!(
        got >= need,
        "this test needs {need} open files per process but the hard limit allows {got}; \
         raise it (ulimit -Hn) for the test run"
    );
}

#[test]
fn thousand_clients_each_get_every_broadcast_in_order() {
    const CLIENTS: usize = 1000;
    const MESSAGES: usize = 100;
    const THREADS: usize = 4;
    raise_fd_limit(CLIENTS as u64 + 200);
    let server = Server::start(&[]);
    let url = server.url();
    let t0 = Instant::now();

    // Connect everyone (in a few threads); every client has finished its
    // handshake when connect returns, so it is registered for broadcasts.
    let groups: Vec<Vec<Client>> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let url = url.as_str();
                s.spawn(move || {
                    (0..CLIENTS / THREADS)
                        .map(|_| Client::connect(url))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let connected = t0.elapsed();

    // 100 broadcasts over the Unix socket (a reliable stream: any loss is
    // the server's): the first half in one write, the rest one by one, so
    // that they arrive while the server is in the middle of writing a
    // previous one to the 1,000 clients (it looks at its sockets every 256
    // connections written, and a message found then joins the queues of
    // those not written yet).
    let mut publisher = UnixStream::connect(&server.unix).expect("connect the Unix socket");
    let lines: Vec<String> = (0..MESSAGES)
        .map(|i| format!("broadcast {i:03}\n"))
        .collect();
    publisher
        .write_all(lines[..MESSAGES / 2].concat().as_bytes())
        .expect("publish");
    for line in &lines[MESSAGES / 2..] {
        publisher.write_all(line.as_bytes()).expect("publish");
        thread::sleep(Duration::from_micros(300));
    }

    // Every client, read in parallel by the reader threads: exactly the 100
    // messages, in order.
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(g, mut clients)| {
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (n, c) in clients.iter_mut().enumerate() {
                        for i in 0..MESSAGES {
                            let want = Got::Text(format!("broadcast {i:03}"));
                            let got = c.next(Duration::from_secs(20));
                            if got != want {
                                failures.push(format!(
                                    "client {}: message {i}: want {want:?}, got {got:?}",
                                    g * (CLIENTS / THREADS) + n
                                ));
                                break;
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients missed messages; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let log = server.log();
    assert!(
        !log.contains("slow consumer"),
        "no client was slow here; log:\n{log}"
    );
    eprintln!(
        "{CLIENTS} clients connected in {connected:?}; {MESSAGES} broadcasts delivered to all in {:?} total",
        t0.elapsed()
    );
}

/// One message of the slow-consumer test: its sequence number, padded to 1 KiB.
fn numbered(i: usize) -> String {
    let mut s = format!("{i:06} ");
    s.extend(std::iter::repeat_n('x', 1024 - s.len()));
    s
}

#[test]
fn slow_consumer_is_closed_and_others_get_everything() {
    const FAST: usize = 3;
    const BATCH: usize = 64; // 64 KiB in flight at most: well under the limit
    const MAX_MESSAGES: usize = 40_000; // 40 MiB: more than any kernel buffers
    const RSS_LIMIT_KIB: u64 = 64 * 1024;
    let server = Server::start(&["--max-queued-bytes", "256KiB"]);

    // The slow client: handshake done, then it does not read.
    let mut slow = server.client();

    // Fast clients read on their own threads, checking order as they go.
    let progress: Arc<Vec<AtomicUsize>> =
        Arc::new((0..FAST).map(|_| AtomicUsize::new(0)).collect());
    let failed = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..FAST)
        .map(|k| {
            let mut c = server.client();
            let progress = Arc::clone(&progress);
            let failed = Arc::clone(&failed);
            thread::spawn(move || -> Result<usize, String> {
                let mut n = 0;
                loop {
                    let got = c.next(Duration::from_secs(30));
                    let r = match &got {
                        Got::Text(t) if t == "end" => return Ok(n),
                        Got::Text(t) if *t == numbered(n) => Ok(()),
                        Got::Text(t) => Err(format!(
                            "fast client {k}: message {n} out of order: {:?}",
                            &t[..t.len().min(16)]
                        )),
                        other => Err(format!("fast client {k}: after {n} messages: {other:?}")),
                    };
                    if let Err(e) = r {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    n += 1;
                    progress[k].store(n, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Publish in batches, each once the fast clients have the previous one,
    // until the server reports the slow consumer; then a few more batches.
    let mut publisher = UnixStream::connect(&server.unix).expect("connect the Unix socket");
    let mut sent = 0;
    let mut extra_batches = None;
    let mut max_rss = 0;
    let t0 = Instant::now();
    while sent < MAX_MESSAGES && extra_batches != Some(0) {
        let batch: String = (sent..sent + BATCH).map(|i| numbered(i) + "\n").collect();
        publisher.write_all(batch.as_bytes()).expect("publish");
        sent += BATCH;
        wait_until(
            Duration::from_secs(30),
            "the fast clients to keep up",
            || {
                failed.load(Ordering::Relaxed)
                    || progress.iter().all(|p| p.load(Ordering::Relaxed) >= sent)
            },
        );
        if failed.load(Ordering::Relaxed) {
            break;
        }
        if sent % (BATCH * 16) == 0 {
            max_rss = max_rss.max(server.rss_kib());
        }
        extra_batches = match extra_batches {
            None if server.log().contains("slow consumer") => Some(4),
            Some(n) => Some(n - 1),
            None => None,
        };
    }
    publisher
        .write_all(b"end\n")
        .expect("publish the end marker");
    max_rss = max_rss.max(server.rss_kib());
    let publish_time = t0.elapsed();

    for (k, r) in readers.into_iter().enumerate() {
        let got = r.join().expect("reader thread");
        assert_eq!(
            got,
            Ok(sent),
            "fast client {k} must get all {sent} messages in order"
        );
    }
    server.wait_log("slow consumer", Duration::from_secs(10));
    assert!(
        sent < MAX_MESSAGES,
        "the slow consumer was never detected after {sent} messages"
    );
    assert!(
        max_rss < RSS_LIMIT_KIB,
        "server RSS reached {max_rss} KiB (limit {RSS_LIMIT_KIB} KiB)"
    );

    // The slow client drains now: a gap-free prefix of the messages, then
    // the server's close (1008) or the end of the TCP connection.
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let end = loop {
        assert!(
            Instant::now() < deadline,
            "the slow client was never closed"
        );
        match slow.next(Duration::from_secs(15)) {
            Got::Text(t) => {
                assert_eq!(t, numbered(n), "the slow client's messages stay in order");
                n += 1;
            }
            Got::Ping | Got::Pong => {}
            Got::Timeout => panic!("the slow client's connection is still open after {n} messages"),
            other => break other,
        }
    };
    match &end {
        Got::Closed(code, _) => assert_eq!(*code, Some(1008), "close code for a slow consumer"),
        Got::End | Got::Error(_) => {} // closed TCP (after the close timeout)
        other => panic!("unexpected {other:?}"),
    }
    assert!(n < sent, "the slow client cannot have received everything");
    eprintln!(
        "published {sent} x 1 KiB in {publish_time:?}; slow client got {n} then {end:?}; max server RSS {max_rss} KiB"
    );
}

/// A publisher that writes a burst at once (a cron job piping a file into
/// the Unix socket) must not get readers that keep up cut off as slow
/// consumers: the queued-bytes limit is for clients that do not read, and
/// these read all the time. 5,000 x 1 KiB against a 256 KiB limit: the
/// kernel's socket buffers of a reading client take far more than the limit.
#[test]
fn unix_burst_reaches_every_reading_client_in_order() {
    const READERS: usize = 3;
    const MESSAGES: usize = 5000;
    let server = Server::start(&["--max-queued-bytes", "256KiB"]);
    let readers: Vec<_> = (0..READERS)
        .map(|k| {
            let mut c = server.client();
            thread::spawn(move || -> Result<usize, String> {
                for n in 0..=MESSAGES {
                    let want = if n == MESSAGES {
                        "end".to_owned()
                    } else {
                        numbered(n)
                    };
                    match c.next(Duration::from_secs(30)) {
                        Got::Text(t) if t == want => {}
                        Got::Text(t) => {
                            return Err(format!(
                                "reader {k}: message {n} out of order: {:?}",
                                &t[..t.len().min(16)]
                            ));
                        }
                        other => return Err(format!("reader {k}: after {n} messages: {other:?}")),
                    }
                }
                Ok(MESSAGES)
            })
        })
        .collect();
    let burst: String = (0..MESSAGES)
        .map(|i| numbered(i) + "\n")
        .collect::<String>()
        + "end\n";
    let mut publisher = UnixStream::connect(&server.unix).expect("connect the Unix socket");
    publisher
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    publisher
        .write_all(burst.as_bytes())
        .expect("publish the burst");
    let results: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("reader thread"))
        .collect();
    let slow_lines: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("slow consumer"))
        .map(str::to_owned)
        .collect();
    for (k, r) in results.iter().enumerate() {
        assert_eq!(
            *r,
            Ok(MESSAGES),
            "reader {k} must get the whole burst in order; server log: {slow_lines:?}"
        );
    }
}
