//! A connection's outbound queue: frames waiting for the socket.
//!
//! A broadcast frame is encoded once and queued here by reference
//! ([`Chunk::Shared`]); connection-specific bytes (handshake reply, pongs,
//! close frames) are owned. One vectored write sends everything queued, up
//! to [`MAX_IOVECS`] chunks at a time. An empty queue holds no allocation.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Most chunks handed to one `writev` call.
const MAX_IOVECS: usize = 64;

/// Bytes waiting to be written.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// A frame shared by every recipient of a broadcast.
    Shared(Rc<Vec<u8>>),
    /// Bytes for this connection only.
    Owned(Vec<u8>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(b) => b,
            Chunk::Owned(b) => b,
        }
    }
}

/// The queue.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already written.
    head_written: usize,
    /// Bytes queued and not yet written.
    queued: usize,
}

impl Outbound {
    /// Queues a chunk (empty chunks are skipped).
    pub(crate) fn push(&mut self, chunk: Chunk) {
        let n = chunk.bytes().len();
        if n > 0 {
            self.queued += n;
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Nothing left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Drops every chunk not yet started, keeping a partly written one so the
    /// frame stream stays well-formed (used before closing a slow consumer).
    pub(crate) fn discard_unstarted(&mut self) {
        let keep = usize::from(self.head_written > 0);
        while self.chunks.len() > keep {
            if let Some(c) = self.chunks.pop_back() {
                self.queued -= c.bytes().len();
            }
        }
        if self.chunks.is_empty() {
            self.release();
        }
    }

    fn release(&mut self) {
        self.chunks = VecDeque::new();
        self.head_written = 0;
    }

    /// Writes until the queue is empty (`Ok(true)`) or the socket would block
    /// (`Ok(false)`).
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let b = chunk.bytes();
                slices[i] = IoSlice::new(if i == 0 { &b[self.head_written..] } else { b });
                count += 1;
            }
            match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.release();
        Ok(true)
    }

    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let head_left = self.chunks[0].bytes().len() - self.head_written;
            if n >= head_left {
                n -= head_left;
                self.chunks.pop_front();
                self.head_written = 0;
            } else {
                self.head_written += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `cap` bytes per call, then blocks after
    /// `budget` bytes in total.
    struct Trickle {
        out: Vec<u8>,
        cap: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                for &byte in b.iter() {
                    if n == self.cap || self.budget == 0 {
                        return Ok(n);
                    }
                    self.out.push(byte);
                    n += 1;
                    self.budget -= 1;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_and_accounting() {
        let shared = Rc::new(b"shared-frame".to_vec());
        let mut q = Outbound::default();
        q.push(Chunk::Owned(b"hello ".to_vec()));
        q.push(Chunk::Shared(shared.clone()));
        q.push(Chunk::Owned(Vec::new()));
        q.push(Chunk::Shared(shared));
        assert_eq!(q.queued_bytes(), 6 + 12 + 12);
        let mut w = Trickle {
            out: Vec::new(),
            cap: 5,
            budget: 13,
        };
        assert!(!q.write_to(&mut w).unwrap());
        assert_eq!(q.queued_bytes(), 30 - 13);
        w.budget = 100;
        assert!(q.write_to(&mut w).unwrap());
        assert_eq!(w.out, b"hello shared-frameshared-frame");
        assert!(q.is_empty());
        assert_eq!(q.chunks.capacity(), 0, "drained queue frees its buffer");
    }

    #[test]
    fn discard_keeps_a_partly_written_frame() {
        let mut q = Outbound::default();
        q.push(Chunk::Owned(b"0123456789".to_vec()));
        q.push(Chunk::Owned(b"abc".to_vec()));
        let mut w = Trickle {
            out: Vec::new(),
            cap: 4,
            budget: 4,
        };
        assert!(!q.write_to(&mut w).unwrap());
        q.discard_unstarted();
        assert_eq!(q.queued_bytes(), 6);
        w.budget = 100;
        assert!(q.write_to(&mut w).unwrap());
        assert_eq!(w.out, b"0123456789");
    }
}
