//! DEFLATE for permessage-deflate (RFC 7692 §7.2), on flate2's raw
//! (headerless) streams with the negotiated window.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The empty stored block a sync flush ends with; removed by the sender and
/// put back by the receiver (RFC 7692 §7.2.1, §7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest step of output produced at once while inflating, so a small
/// compressed input cannot make us allocate a huge buffer in one go.
const INFLATE_STEP: usize = 64 * 1024;

/// Why inflating failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The output would pass the limit (a message too big, or a bomb).
    TooBig,
    /// The compressed data is corrupt.
    Corrupt,
}

/// Decompresses one direction of a connection.
pub struct Inflater {
    inner: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Inflater {
    /// An inflater for a peer that compresses with `window_bits` (8–15). A
    /// larger window decodes a smaller one's output, and raw inflate needs at
    /// least 9, so 8 is read with 9.
    pub fn new(window_bits: u8) -> Self {
        Inflater {
            inner: Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)),
        }
    }

    /// Inflates `input`, appending to `out`, which may not grow past
    /// `limit` bytes in total. Output is produced in bounded steps.
    pub fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                // Room for one byte past the limit: producing it proves the
                // message is too big without inflating any further.
                let room = (limit + 1 - out.len())
                    .min(INFLATE_STEP.max(out.len() / 2))
                    .max(1);
                out.reserve_exact(room);
            }
            let before_in = self.inner.total_in();
            // Output decoded before an error is kept in `out`: if it already
            // passed the limit, the message was too big before it was
            // corrupt (stream order decides, not how the input was split).
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| {
                    if out.len() > limit {
                        InflateError::TooBig
                    } else {
                        InflateError::Corrupt
                    }
                })?;
            let used = (self.inner.total_in() - before_in) as usize;
            input = &input[used..];
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            let full = out.len() == out.capacity();
            if status == Status::StreamEnd {
                // A final block: nothing after it may follow (the stream is
                // over), except that the message may continue after a reset.
                if !input.is_empty() {
                    return Err(InflateError::Corrupt);
                }
                return Ok(());
            }
            if input.is_empty() && !full {
                return Ok(());
            }
            if used == 0 && !full {
                return Err(InflateError::Corrupt); // no progress possible
            }
        }
    }

    /// Forgets the window (no context takeover).
    pub fn reset(&mut self) {
        self.inner.reset(false);
    }
}

/// Compresses one direction of a connection (or, with no context takeover,
/// any number of them: the server shares one per window size).
pub struct Deflater {
    inner: Compress,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflater")
    }
}

impl Deflater {
    /// A compressor with the given window (9–15; zlib-style compressors
    /// cannot honour 8, so negotiation never asks for it).
    pub fn new(window_bits: u8) -> Option<Self> {
        (9..=15).contains(&window_bits).then(|| Deflater {
            inner: Compress::new_with_window_bits(Compression::default(), false, window_bits),
        })
    }

    /// Appends `data` compressed as one message to `out`: a sync flush with
    /// its 4-byte tail removed (RFC 7692 §7.2.1).
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(data.len() / 2 + 64);
            }
            let before_in = self.inner.total_in();
            self.inner
                .compress_vec(input, out, FlushCompress::Sync)
                .expect("compressing into a buffer with room cannot fail");
            input = &input[(self.inner.total_in() - before_in) as usize..];
            // Done when everything was taken and the flush fitted (zlib
            // leaves spare room when it has nothing more to write).
            if input.is_empty() && out.capacity() - out.len() >= 64 {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // Nothing was pending (an empty message right after a flush):
            // send one empty stored block's header byte, so the receiver's
            // appended tail completes a valid block (RFC 7692 §7.2.3.6).
            out.push(0x00);
        }
    }

    /// Forgets the window (no context takeover).
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[u8], bits: u8) -> Vec<u8> {
        let mut d = Deflater::new(bits).unwrap();
        let mut c = Vec::new();
        d.compress(data, &mut c);
        let mut i = Inflater::new(bits);
        let mut out = Vec::new();
        i.inflate(&c, &mut out, 1 << 24).unwrap();
        i.inflate(&TAIL, &mut out, 1 << 24).unwrap();
        out
    }

    #[test]
    fn rfc7692_7_2_round_trip_every_window() {
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefgh"[(i * 7 % 8) as usize])
            .collect();
        for bits in 9..=15 {
            assert_eq!(round_trip(&text, bits), text, "bits {bits}");
            assert_eq!(round_trip(b"", bits), b"");
            // With context kept, an empty message right after another one.
            let mut d = Deflater::new(bits).unwrap();
            let mut i = Inflater::new(bits);
            for m in [&b"Hello"[..], b"", b"", b"Hello again"] {
                let mut c = Vec::new();
                d.compress(m, &mut c);
                assert!(!c.is_empty());
                let mut out = Vec::new();
                i.inflate(&c, &mut out, 1 << 20).unwrap();
                i.inflate(&TAIL, &mut out, 1 << 20).unwrap();
                assert_eq!(out, m, "bits {bits}");
            }
            assert_eq!(round_trip(b"x", bits), b"x");
        }
        assert!(Deflater::new(8).is_none());
    }

    /// RFC 7692 §7.2.3.1: the example "Hello" compressed.
    #[test]
    fn rfc7692_7_2_3_1_example() {
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        i.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        i.inflate(&TAIL, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the same message again with context takeover.
        let mut out = Vec::new();
        i.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        i.inflate(&TAIL, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    /// A decompression bomb stops one byte past the limit, whatever its size.
    #[test]
    fn bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let mut d = Deflater::new(15).unwrap();
        let mut c = Vec::new();
        d.compress(&zeros, &mut c);
        assert!(c.len() < 20_000, "{}", c.len());
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        assert_eq!(i.inflate(&c, &mut out, 1 << 20), Err(InflateError::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        assert_eq!(
            i.inflate(&[0xff, 0xff, 0xff, 0xff], &mut out, 100),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn no_context_takeover_messages_are_independent() {
        let mut d = Deflater::new(15).unwrap();
        let mut a = Vec::new();
        d.compress(b"the same message", &mut a);
        d.reset();
        let mut b = Vec::new();
        d.compress(b"the same message", &mut b);
        assert_eq!(a, b, "after a reset the output depends only on the message");
    }
}
