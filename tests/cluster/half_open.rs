//! A half-open link to Redis, made with a proxy that can freeze its
//! connections: noticed by the heartbeat and replaced.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::nodes::{probe_until_delivered, wait_stall_noticed, watched_pair};
use crate::redis_server::{Redis, require_redis};

/// A TCP proxy to Redis whose open connections can be frozen: nothing is
/// forwarded any more and nothing is closed, as on a half-open link (a
/// peer that vanished without a FIN). Connections made after a freeze work.
struct Proxy {
    port: u16,
    epoch: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let epoch = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (e, st) = (Arc::clone(&epoch), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        let my = e.load(Ordering::Relaxed);
                        for (from, into) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let (e, st) = (Arc::clone(&e), Arc::clone(&st));
                            std::thread::spawn(move || pump(from, into, my, &e, &st));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Proxy { port, epoch, stop }
    }

    /// Every connection open now stops forwarding, silently and for good.
    fn freeze(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pump(mut from: TcpStream, mut into: TcpStream, my: u64, epoch: &AtomicU64, stop: &AtomicBool) {
    use std::io::Read;
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if epoch.load(Ordering::Relaxed) != my {
            // Frozen: read nothing, write nothing, close nothing.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = into.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if epoch.load(Ordering::Relaxed) == my && into.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A half-open link to Redis (no error, no FIN, just silence) is noticed by
/// the heartbeat within seconds, counted, logged and replaced by a new
/// connection; delivery across nodes resumes.
#[test]
fn a_half_open_link_is_noticed_and_replaced() {
    require_redis();
    let redis = Redis::start();
    let proxy = Proxy::start(redis.port);
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let (a, b, mut cl, _) = watched_pair(&url, &[]);

    let frozen = Instant::now();
    proxy.freeze();
    for n in [&a, &b] {
        wait_stall_noticed(n);
        // The publisher's PUBLISH got no answer: its connection is replaced too.
        n.wait_log("publisher lost the Redis link", Duration::from_secs(10));
        n.wait_log("publisher reconnected to Redis", Duration::from_secs(20));
    }
    let noticed = frozen.elapsed();
    assert!(noticed < Duration::from_secs(8), "{noticed:?}");
    probe_until_delivered(&a, &mut cl, Duration::from_secs(20), |_| false);
}
