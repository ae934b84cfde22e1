//! Incremental collection of an HTTP head (request or status line plus
//! header fields, up to the empty line).

/// Collects an HTTP head across reads.
///
/// Each call searches only the bytes it has not searched before (plus the
/// three before them, for a terminator split across reads), so a head that
/// arrives one byte at a time costs linear CPU; tungstenite re-parsed the
/// whole buffer on every read (CVE-2023-43669). The buffer never grows past
/// the limit, and bytes after the head are left to the caller.
#[derive(Debug)]
pub struct HeadBuffer {
    buf: Vec<u8>,
    limit: usize,
}

/// The head is larger than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadTooLarge;

impl HeadBuffer {
    /// An empty buffer that refuses heads over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            limit,
        }
    }

    /// The bytes collected so far (the whole head once complete).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many more bytes the buffer accepts before the limit.
    pub fn room(&self) -> usize {
        self.limit - self.buf.len()
    }

    /// Adds input. Returns `Ok(Some(n))` when the head is complete and used
    /// the first `n` bytes of `input`, `Ok(None)` when all of `input` was
    /// taken and more is needed.
    pub fn push(&mut self, input: &[u8]) -> Result<Option<usize>, HeadTooLarge> {
        let start = self.buf.len();
        let room = self.limit - start;
        let take = input.len().min(room);
        self.buf.extend_from_slice(&input[..take]);
        // A terminator is "\n\n" or "\n\r\n"; look at new bytes only, with
        // enough look-behind for one that straddles two reads.
        for i in start..self.buf.len() {
            if self.buf[i] != b'\n' || i == 0 {
                continue;
            }
            let b = &self.buf;
            if b[i - 1] == b'\n' || (i >= 2 && b[i - 1] == b'\r' && b[i - 2] == b'\n') {
                let end = i + 1;
                self.buf.truncate(end);
                return Ok(Some(end - start));
            }
        }
        if take < input.len() || self.buf.len() >= self.limit {
            return Err(HeadTooLarge);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_across_any_split_and_keeps_the_rest() {
        let msg = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nFRAME";
        let head_len = msg.len() - 5;
        for split in 0..=msg.len() {
            let mut h = HeadBuffer::new(1024);
            let (a, b) = msg.split_at(split);
            let rest: Vec<u8> = match h.push(a).unwrap() {
                Some(n) => [&a[n..], b].concat(),
                None => {
                    let n = h.push(b).unwrap().expect("complete");
                    b[n..].to_vec()
                }
            };
            assert_eq!(rest, b"FRAME", "split {split}");
            assert_eq!(h.bytes(), &msg[..head_len]);
        }
    }

    #[test]
    fn refuses_heads_over_the_limit() {
        let mut h = HeadBuffer::new(16);
        assert_eq!(h.push(b"GET / HTTP/1.1\r\n"), Err(HeadTooLarge));
        let mut h = HeadBuffer::new(16);
        assert_eq!(h.push(b"GET / HTTP/1"), Ok(None));
        assert_eq!(h.push(&[b'x'; 1_000_000]), Err(HeadTooLarge));
    }

    #[test]
    fn byte_at_a_time_is_linear() {
        // 8 KiB fed one byte at a time: each push looks at one new byte.
        let mut h = HeadBuffer::new(8192);
        let mut data = b"GET / HTTP/1.1\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'a', 8000));
        data.extend_from_slice(b"\r\n\r\n");
        let mut done = false;
        for &b in &data {
            if let Some(n) = h.push(&[b]).unwrap() {
                assert_eq!(n, 1);
                done = true;
            }
        }
        assert!(done);
    }

    /// A 60 KiB head trickling in one byte at a time (limit 64 KiB) is
    /// complete exactly on its last byte, and that byte alone was needed
    /// (`Some(1)`). Why this is linear: `push` scans only `buf[start..]`, the
    /// bytes it has just appended, and finds a terminator that straddles two
    /// pushes by indexing back into `buf` (at most two bytes), so each byte is
    /// examined a bounded number of times however the head is split. A parser
    /// that re-ran over the whole buffer on every read would be quadratic
    /// (tungstenite before 0.20.1, CVE-2023-43669).
    #[test]
    fn trickled_60_kib_head_completes_on_its_last_byte() {
        let mut data = b"GET / HTTP/1.1\r\n".to_vec();
        while data.len() < 60 * 1024 - 100 {
            data.extend_from_slice(b"X-Filler: ");
            data.extend(std::iter::repeat_n(b'a', 80));
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b"\r\n");
        let mut h = HeadBuffer::new(64 * 1024);
        let (last, rest) = data.split_last().unwrap();
        for (i, &b) in rest.iter().enumerate() {
            assert_eq!(h.push(&[b]), Ok(None), "byte {i}");
        }
        assert_eq!(h.push(&[*last]), Ok(Some(1)));
        assert_eq!(h.bytes(), &data[..]);
    }
}
