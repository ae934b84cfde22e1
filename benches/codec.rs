//! Protocol codec micro-benchmarks: `cargo bench --bench codec`.
//!
//! Compares, in one run and at payloads of 16 B, 1 KiB and 64 KiB:
//!
//! - `decode_unmask`: one masked client frame in, its payload unmasked and
//!   available as an owned buffer out.
//!   - `wsbroadcaster`: a server [`Connection::receive`] fed the frame as one
//!     read, yielding an `Event::Message` (header decode, role and limit
//!     checks, unmask into the message buffer, message event); the message
//!     buffer is then handed back with [`Connection::recycle`], as the
//!     server does once it has published, echoed or ignored a client
//!     message. tungstenite has no such API: its codec allocates a buffer
//!     per frame.
//!   - `wsbroadcaster_no_recycle`: the same without `recycle` (one
//!     allocation and free per message, as tungstenite).
//!   - `tungstenite_codec`: tungstenite's frame codec doing the same work as
//!     its `FrameCodec::read_frame` (which is not public): the public
//!     `FrameHeader::parse`, the payload copied into its own buffer (as the
//!     codec's `split_to` hands it out), unmasked with tungstenite's own
//!     masking routine (its `mask` module is private, so `tungstenite_mask`
//!     below is a verbatim copy of `apply_mask_fast32`), then
//!     `Frame::from_payload`. No role or limit checks: this is the lower
//!     bound of tungstenite's receive path.
//!   - `tungstenite_context`: tungstenite's public server read path,
//!     `WebSocketContext::read`, fed by a stream that returns one frame per
//!     `read` call (as one socket read would), yielding a `Message`.
//! - `encode`: one unfragmented, unmasked server frame appended to a reused
//!   output buffer: our `encode_frame` vs tungstenite's `Frame::format`.
//! - `unmask`: 64 KiB in place, `apply_mask` vs `apply_mask_bytewise` with a
//!   run-time mask phase (as on the receive path), the bytewise reference
//!   with a literal phase of 0 (which LLVM vectorises), and tungstenite's
//!   routine for reference; and 64 KiB into a reused buffer: `extend_masked`
//!   (one pass) vs a copy followed by `apply_mask` (two passes).
//!
//! Throughput is payload bytes per second.

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
use tungstenite::protocol::frame::{Frame, FrameHeader as TFrameHeader};
use tungstenite::protocol::{Role as TRole, WebSocketContext};

use wsbroadcaster::protocol::frame::{OpCode, encode_frame};
use wsbroadcaster::protocol::mask::{apply_mask, apply_mask_bytewise, extend_masked};
use wsbroadcaster::protocol::{Connection, Event, Limits, Role};

const SIZES: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// A masked binary frame as a client sends it.
fn client_frame(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, true, OpCode::Binary, &payload(len), Some(KEY));
    out
}

/// tungstenite 0.28's `protocol::frame::mask::apply_mask_fast32`, copied
/// verbatim (the module is private) so the codec path below runs the same
/// masking code tungstenite's `FrameCodec::read_frame` does.
fn tungstenite_mask(buf: &mut [u8], mask: [u8; 4]) {
    fn fallback(buf: &mut [u8], mask: [u8; 4]) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
    }
    let mask_u32 = u32::from_ne_bytes(mask);
    // SAFETY: any bit pattern is a valid u32, as in tungstenite.
    let (prefix, words, suffix) = unsafe { buf.align_to_mut::<u32>() };
    fallback(prefix, mask);
    let head = prefix.len() & 3;
    let mask_u32 = if head > 0 {
        if cfg!(target_endian = "big") {
            mask_u32.rotate_left(8 * head as u32)
        } else {
            mask_u32.rotate_right(8 * head as u32)
        }
    } else {
        mask_u32
    };
    for word in words.iter_mut() {
        *word ^= mask_u32;
    }
    fallback(suffix, mask_u32.to_ne_bytes());
}

/// tungstenite's codec work for one complete frame in `buf`: header parse,
/// payload into its own buffer, unmask, frame.
fn tungstenite_decode(buf: &[u8]) -> Frame {
    let mut cursor = Cursor::new(buf);
    let (mut header, len) = TFrameHeader::parse(&mut cursor)
        .expect("valid header")
        .expect("complete header");
    let start = cursor.position() as usize;
    let mut payload = buf[start..start + len as usize].to_vec();
    if let Some(mask) = header.mask.take() {
        tungstenite_mask(&mut payload, mask);
    }
    Frame::from_payload(header, tungstenite::Bytes::from(payload))
}

/// Our receive path for one frame: `receive`, then (with `recycle`) the
/// message buffer handed back, as the server does after using it.
#[inline(always)]
fn ours(conn: &mut Connection, frame: &[u8], events: &mut Vec<Event>, recycle: bool) {
    conn.receive(black_box(frame), events);
    black_box(&*events);
    // One frame, one event.
    match events.pop() {
        Some(Event::Message { data, .. }) if recycle => conn.recycle(data),
        _ => {}
    }
    events.clear();
}

/// A socket that returns one whole frame per `read` call, forever, and
/// swallows writes.
struct FrameStream {
    frame: Vec<u8>,
    pos: usize,
}

impl Read for FrameStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.frame.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.frame[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.frame.len();
        Ok(n)
    }
}

impl Write for FrameStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn decode_unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_unmask");
    for (len, name) in SIZES {
        let frame = client_frame(len);
        group.throughput(Throughput::Bytes(len as u64));

        // Sanity: both sides really produce the unmasked payload.
        let expected = payload(len);
        let mut conn = Connection::new(Role::Server, Limits::default());
        let mut events = Vec::new();
        conn.receive(&frame, &mut events);
        assert!(matches!(&events[..], [Event::Message { data, .. }] if *data == expected));
        assert_eq!(tungstenite_decode(&frame).payload(), &expected[..]);

        for (func, recycle) in [("wsbroadcaster", true), ("wsbroadcaster_no_recycle", false)] {
            group.bench_function(BenchmarkId::new(func, name), |b| {
                let mut conn = Connection::new(Role::Server, Limits::default());
                let mut events = Vec::with_capacity(4);
                b.iter(|| ours(&mut conn, &frame, &mut events, recycle));
            });
        }
        group.bench_function(BenchmarkId::new("tungstenite_codec", name), |b| {
            b.iter(|| black_box(tungstenite_decode(black_box(&frame))));
        });
        group.bench_function(BenchmarkId::new("tungstenite_context", name), |b| {
            let mut ctx = WebSocketContext::new(TRole::Server, None);
            let mut stream = FrameStream {
                frame: frame.clone(),
                pos: 0,
            };
            match ctx.read(&mut stream) {
                Ok(Message::Binary(data)) => assert_eq!(&data[..], &expected[..]),
                other => panic!("tungstenite read {other:?}"),
            }
            b.iter(|| black_box(ctx.read(&mut stream).expect("message")));
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (len, name) in SIZES {
        let data = payload(len);
        let bytes = tungstenite::Bytes::from(data.clone());
        group.throughput(Throughput::Bytes(len as u64));

        let mut ours = Vec::new();
        encode_frame(&mut ours, true, OpCode::Binary, &data, None);
        let mut theirs = Vec::new();
        Frame::message(bytes.clone(), TOpCode::Data(Data::Binary), true)
            .format(&mut theirs)
            .unwrap();
        assert_eq!(ours, theirs);

        group.bench_function(BenchmarkId::new("wsbroadcaster", name), |b| {
            let mut out = Vec::with_capacity(len + 14);
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, true, OpCode::Binary, black_box(&data), None);
                black_box(&out);
            });
        });
        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            let mut out = Vec::with_capacity(len + 14);
            b.iter(|| {
                out.clear();
                // Cloning `Bytes` is a reference count, not a copy.
                Frame::message(black_box(bytes.clone()), TOpCode::Data(Data::Binary), true)
                    .format(&mut out)
                    .unwrap();
                black_box(&out);
            });
        });
    }
    group.finish();
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    let len = 64 * 1024;
    group.throughput(Throughput::Bytes(len as u64));
    let mut buf = payload(len);
    // The offset (mask phase) is opaque to the optimiser, as it is on the
    // receive path, where it is the frame's running byte count.
    group.bench_function(BenchmarkId::new("apply_mask", "64KiB"), |b| {
        b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), black_box(0)));
    });
    group.bench_function(BenchmarkId::new("apply_mask_bytewise", "64KiB"), |b| {
        b.iter(|| apply_mask_bytewise(black_box(&mut buf), black_box(KEY), black_box(0)));
    });
    // With a literal offset of 0, `key[(0 + i) % 4]` is a fixed 4-byte
    // pattern and LLVM vectorises the "byte-at-a-time" loop itself: shown
    // for transparency, it is not what the receive path runs.
    group.bench_function(
        BenchmarkId::new("apply_mask_bytewise_const_offset", "64KiB"),
        |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), black_box(KEY), 0));
        },
    );
    group.bench_function(BenchmarkId::new("tungstenite_mask", "64KiB"), |b| {
        b.iter(|| tungstenite_mask(black_box(&mut buf), black_box(KEY)));
    });
    // Unmasking into a new buffer, as the receive path does: in one pass
    // (`extend_masked`), and as a copy followed by `apply_mask` on the copy
    // (what the receive path did before, and what tungstenite's codec does).
    let src = payload(len);
    let mut dst = Vec::with_capacity(len);
    group.bench_function(BenchmarkId::new("extend_masked", "64KiB"), |b| {
        b.iter(|| {
            dst.clear();
            extend_masked(&mut dst, black_box(&src), black_box(KEY), black_box(0));
            black_box(&dst);
        });
    });
    group.bench_function(BenchmarkId::new("copy_then_apply_mask", "64KiB"), |b| {
        b.iter(|| {
            dst.clear();
            dst.extend_from_slice(black_box(&src));
            apply_mask(&mut dst, black_box(KEY), black_box(0));
            black_box(&dst);
        });
    });
    group.finish();
}

criterion_group!(benches, decode_unmask, encode, unmask);

/// `CODEC_INSTR=<case>:<bytes>:<iterations>` runs one decode case that many
/// times and exits, for `valgrind --tool=callgrind`, whose instruction
/// counts do not depend on machine noise (benches/codec_instr.sh runs every
/// case at two iteration counts and prints instructions per frame). Cases:
/// `wsbroadcaster`, `wsbroadcaster_no_recycle`, `tungstenite_codec`,
/// `tungstenite_context`, and the unmask step alone: `extend_masked`,
/// `copy_then_apply_mask`. benches/codec_time.sh runs the same loops under
/// `perf stat -e task-clock` for CPU time per frame.
fn instr(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [case, len, iters] = parts[..] else {
        panic!("CODEC_INSTR={spec:?}: want <case>:<bytes>:<iterations>");
    };
    let len: usize = len.parse().expect("bytes");
    let iters: usize = iters.parse().expect("iterations");
    let frame = client_frame(len);
    match case {
        "wsbroadcaster" | "wsbroadcaster_no_recycle" => {
            let recycle = case == "wsbroadcaster";
            let mut conn = Connection::new(Role::Server, Limits::default());
            let mut events = Vec::with_capacity(4);
            for _ in 0..iters {
                ours(&mut conn, &frame, &mut events, recycle);
            }
        }
        "tungstenite_codec" => {
            for _ in 0..iters {
                black_box(tungstenite_decode(black_box(&frame)));
            }
        }
        "tungstenite_context" => {
            let mut ctx = WebSocketContext::new(TRole::Server, None);
            let mut stream = FrameStream { frame, pos: 0 };
            for _ in 0..iters {
                black_box(ctx.read(&mut stream).expect("message"));
            }
        }
        // The unmask step alone, into a reused buffer, with the payload at
        // the frame's offset in `frame`, as the receive path reads it.
        "extend_masked" | "copy_then_apply_mask" => {
            let src = &frame[frame.len() - len..];
            let mut dst = Vec::with_capacity(len);
            for _ in 0..iters {
                dst.clear();
                if case == "extend_masked" {
                    extend_masked(&mut dst, black_box(src), black_box(KEY), black_box(0));
                } else {
                    dst.extend_from_slice(black_box(src));
                    apply_mask(&mut dst, black_box(KEY), black_box(0));
                }
                black_box(&dst);
            }
        }
        other => panic!("CODEC_INSTR: unknown case {other:?}"),
    }
}

/// `CODEC_PAIR=<bytes>:<pairs>`: our decode and tungstenite's codec in
/// alternating batches of about 50 µs each, in one process, and the median
/// of the per-pair time ratios, for a machine whose speed drifts from one
/// second (or one process) to the next: criterion measures one function for
/// seconds, then the other, and a slow spell lands on one side only. Each
/// pair runs the two batches back to back, in alternating order; the
/// median of the ratios and its interquartile range are printed with the
/// median time per frame of each side. benches/codec_pair.sh runs it.
///
/// The frame sits at one of eight places in a larger buffer, the next one
/// every two pairs (both sides of a pair read the same copy), as a frame
/// lies anywhere in a real read buffer: how the input and the output buffer
/// fall relative to each other (within a cache line, and modulo the 4 KiB
/// that load/store aliasing checks look at) moves the time of a large copy
/// by up to 2x on either side, and one fixed placement would measure one
/// draw of that lottery.
fn pair(spec: &str) {
    let parts: Vec<&str> = spec.split(':').collect();
    let [len, pairs] = parts[..] else {
        panic!("CODEC_PAIR={spec:?}: want <bytes>:<pairs>");
    };
    let len: usize = len.parse().expect("bytes");
    let pairs: usize = pairs.parse().expect("pairs");
    let frame = client_frame(len);
    const PLACES: [usize; 8] = [0, 1031, 2062, 3093, 4124, 5155, 6186, 7217];
    let mut storage = vec![0u8; frame.len() + PLACES[7]];
    for &at in &PLACES {
        storage[at..at + frame.len()].copy_from_slice(&frame);
    }
    let at = |i: usize| &storage[PLACES[i % 8]..PLACES[i % 8] + frame.len()];
    let batch = (50_000 / (len / 40 + 20)).max(1);
    let mut conn = Connection::new(Role::Server, Limits::default());
    let mut events = Vec::with_capacity(4);
    let mut run_ours = |frame: &[u8]| {
        let t = std::time::Instant::now();
        for _ in 0..batch {
            ours(&mut conn, frame, &mut events, true);
        }
        t.elapsed().as_nanos() as f64 / batch as f64
    };
    let run_theirs = |frame: &[u8]| {
        let t = std::time::Instant::now();
        for _ in 0..batch {
            black_box(tungstenite_decode(black_box(frame)));
        }
        t.elapsed().as_nanos() as f64 / batch as f64
    };
    // Warm up both (buffers allocated, caches and branch predictors).
    for i in 0..16 {
        run_ours(at(i));
        run_theirs(at(i));
    }
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        // Two pairs in a row share a placement, one in each order.
        let frame = at(i / 2);
        let (x, y) = if i % 2 == 0 {
            let x = run_ours(frame);
            (x, run_theirs(frame))
        } else {
            let y = run_theirs(frame);
            (run_ours(frame), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    let q = |v: &mut Vec<f64>, f: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * f).round() as usize]
    };
    if std::env::var_os("CODEC_PAIR_PLACES").is_some() {
        for (p, place) in PLACES.iter().enumerate() {
            let mine = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .enumerate()
                    .filter(|(i, _)| i / 2 % 8 == p)
                    .map(|(_, x)| *x)
                    .collect()
            };
            let src = at(p).as_ptr() as usize + frame.len() - len;
            println!(
                "  place {place:5} (payload at {:#x} mod 4096): wsbroadcaster {:.1} ns, tungstenite_codec {:.1} ns, ratio {:.2}x",
                src % 4096,
                q(&mut mine(&a), 0.5),
                q(&mut mine(&b), 0.5),
                q(&mut mine(&ratio), 0.5),
            );
        }
    }
    println!(
        "{len} B: wsbroadcaster {:.1} ns, tungstenite_codec {:.1} ns per frame (medians); \
         ratio tungstenite / wsbroadcaster: median {:.2}x (quartiles {:.2}-{:.2}x, {pairs} pairs of {batch} frames)",
        q(&mut a, 0.5),
        q(&mut b, 0.5),
        q(&mut ratio, 0.5),
        q(&mut ratio, 0.25),
        q(&mut ratio, 0.75),
    );
}

fn main() {
    if let Ok(spec) = std::env::var("CODEC_INSTR") {
        return instr(&spec);
    }
    if let Ok(spec) = std::env::var("CODEC_PAIR") {
        return pair(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
