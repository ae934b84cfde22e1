//! No allocation per delivered message in the steady state.
//!
//! A counting global allocator counts the allocations made on the server's
//! own thread (the server runs in-process here). After a warm-up, publishing
//! M messages over UDP to N subscribers must cost a small constant number of
//! allocations per publish (the one shared frame buffer), not one per
//! recipient: the encoded frame is shared, queued by reference, and written
//! with a vectored write.
//!
//! "Steady state" is paced publishing: each message is read back by every
//! subscriber before the next is sent, so every loop turn queues one frame
//! per connection (measured: 2 allocations per publish, the frame and its
//! `Rc`, and none per recipient). A burst of k messages reaching the server
//! in one loop turn also grows each recipient's overflow queue (about
//! log2(k) allocations per connection per turn, freed once drained so idle
//! connections stay small); that trade-off is in docs/benchmarks.md.
//!
//! Client messages (under the default `--client-messages broadcast`) cost
//! the same 2 per message: the received message's buffer is handed back to
//! the sender's connection after the publish (`Connection::recycle`)
//! instead of being freed and allocated again for its next message.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use wsbroadcaster::client::BlockingClient;
use wsbroadcaster::protocol::{Event, Limits, MessageKind};
use wsbroadcaster::server::{Server, ServerConfig};

/// Allocations (alloc, alloc_zeroed, realloc) made by threads that opted in.
static COUNTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // `const` initialiser and no destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

struct CountingAlloc;

fn note() {
    if COUNTING.with(Cell::get) {
        COUNTED.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counting touches only an atomic and a
// const-initialised thread-local Cell, neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: ptr/layout come from this allocator (i.e. from System).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr/layout come from this allocator (i.e. from System).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const SUBSCRIBERS: usize = 50;
/// Messages published before the subscribers read (1 = paced).
const BATCH: usize = 1;

/// Publishes `batches` × BATCH numbered messages over UDP and reads every
/// one back on every subscriber, in order.
fn publish_and_drain(
    udp: &UdpSocket,
    to: std::net::SocketAddr,
    clients: &mut [BlockingClient],
    first: usize,
    batches: usize,
) {
    for b in 0..batches {
        let base = first + b * BATCH;
        for i in 0..BATCH {
            let msg = format!("message number {:06} with some padding", base + i);
            udp.send_to(msg.as_bytes(), to).expect("udp send");
        }
        for (c, client) in clients.iter_mut().enumerate() {
            for i in 0..BATCH {
                let want = format!("message number {:06} with some padding", base + i);
                match client.next_event() {
                    Ok(Some(Event::Message {
                        kind: MessageKind::Text,
                        data,
                    })) => assert_eq!(data, want.as_bytes(), "client {c}"),
                    other => panic!("client {c}: expected {want:?}, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn steady_state_broadcast_does_not_allocate_per_delivery() {
    let cfg = ServerConfig {
        ws: "127.0.0.1:0".parse().unwrap(),
        udp: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        ..ServerConfig::default()
    };
    // The server holds `Rc`s (it is single-threaded by design), so it is
    // bound on its own thread, which reports the addresses back.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let server = Server::bind(cfg).expect("bind");
            tx.send(server.bound().clone()).unwrap();
            COUNTING.with(|c| c.set(true));
            // Runs until the test process exits.
            let _ = server.run();
        })
        .expect("spawn server");
    let bound = rx.recv().expect("server bound");

    let url = format!("ws://{}/", bound.ws);
    let mut clients: Vec<BlockingClient> = (0..SUBSCRIBERS)
        .map(|_| BlockingClient::connect(&url, Limits::default()).expect("connect"))
        .collect();
    for c in &clients {
        c.stream()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = bound.udp.expect("udp on");

    // Warm-up: buffers, queues and the routing index reach their steady size.
    publish_and_drain(&udp, to, &mut clients, 0, 50);

    let before = COUNTED.load(Ordering::Relaxed);
    let batches = 500;
    publish_and_drain(&udp, to, &mut clients, 50 * BATCH, batches);
    let allocs = COUNTED.load(Ordering::Relaxed) - before;

    let publishes = (batches * BATCH) as f64;
    let deliveries = publishes * SUBSCRIBERS as f64;
    let per_publish = allocs as f64 / publishes;
    let per_delivery = allocs as f64 / deliveries;
    eprintln!(
        "{allocs} allocations for {publishes} publishes / {deliveries} deliveries: \
         {per_publish:.2} per publish, {per_delivery:.4} per delivery"
    );
    // One shared frame per publish (plus at most a little bookkeeping),
    // independent of the number of recipients: 50 subscribers allocating
    // even once each would be 50 per publish.
    assert!(
        per_publish <= 3.0,
        "{per_publish:.2} allocations per publish (50 subscribers): the broadcast \
         path allocates per recipient"
    );
    assert!(
        per_delivery < 0.1,
        "{per_delivery:.4} allocations per delivery"
    );

    // Client messages (the default `--client-messages broadcast`), same
    // server and subscribers: client 0 publishes, everyone reads it back.
    // The message's buffer goes back to client 0's connection after the
    // publish (`Connection::recycle`), so after the warm-up a client message
    // costs what a UDP publish costs (the shared frame and its `Rc`), not
    // one more allocation for the received message.
    publish_from_client(&mut clients, 0, 20);
    let before = COUNTED.load(Ordering::Relaxed);
    let messages = 300;
    publish_from_client(&mut clients, 20, messages);
    let allocs = COUNTED.load(Ordering::Relaxed) - before;
    let per_message = allocs as f64 / messages as f64;
    eprintln!(
        "{allocs} allocations for {messages} client messages to {SUBSCRIBERS} clients: \
         {per_message:.2} per message"
    );
    assert!(
        per_message <= 2.2,
        "{per_message:.2} allocations per client message: the received message's \
         buffer is not reused"
    );
}

/// Client 0 sends `count` numbered messages, each read back by every client
/// (the sender included) before the next is sent.
fn publish_from_client(clients: &mut [BlockingClient], first: usize, count: usize) {
    for n in first..first + count {
        let msg = format!("client message {n:06}");
        clients[0]
            .send(MessageKind::Text, msg.as_bytes())
            .expect("send");
        for (c, client) in clients.iter_mut().enumerate() {
            match client.next_event() {
                Ok(Some(Event::Message { data, .. })) => {
                    assert_eq!(data, msg.as_bytes(), "client {c}")
                }
                other => panic!("client {c}: expected {msg:?}, got {other:?}"),
            }
        }
    }
}
