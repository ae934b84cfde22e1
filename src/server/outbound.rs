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

/// The queue. The first chunk is kept inline: with one broadcast per loop
/// turn (the common case) queuing a frame allocates nothing, and the
/// overflow `VecDeque` holds memory only while more is queued.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    /// The chunk being written; `None` means the queue is empty.
    head: Option<Chunk>,
    /// Chunks after the head.
    rest: VecDeque<Chunk>,
    /// Bytes of the head already written.
    head_written: usize,
    /// Bytes queued and not yet written.
    queued: usize,
    /// The last write stopped on `WouldBlock`: the client is behind.
    blocked: bool,
}

impl Outbound {
    /// Queues a chunk (empty chunks are skipped).
    pub(crate) fn push(&mut self, chunk: Chunk) {
        let n = chunk.bytes().len();
        if n == 0 {
            return;
        }
        self.queued += n;
        if self.head.is_none() {
            self.head = Some(chunk);
        } else {
            self.rest.push_back(chunk);
        }
    }

    /// Bytes not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Chunks (frames) queued, the partly written one included.
    pub(crate) fn chunks(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    /// Nothing left to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// The kernel refused part of what is queued: the client has fallen
    /// behind (slow-consumer policies hold its messages aside).
    pub(crate) fn is_behind(&self) -> bool {
        self.blocked && self.queued > 0
    }

    /// Drops every chunk not yet started, keeping a partly written one so the
    /// frame stream stays well-formed (used before closing a slow consumer).
    pub(crate) fn discard_unstarted(&mut self) {
        self.rest = VecDeque::new();
        if self.head_written == 0 {
            self.head = None;
        }
        self.queued = self
            .head
            .as_ref()
            .map_or(0, |h| h.bytes().len() - self.head_written);
    }

    /// Writes until the queue is empty (`Ok(true)`) or the socket would block
    /// (`Ok(false)`).
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        while let Some(head) = &self.head {
            let first = &head.bytes()[self.head_written..];
            let written = if self.rest.is_empty() {
                w.write(first)
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                slices[0] = IoSlice::new(first);
                let mut count = 1;
                for (slot, chunk) in slices[1..].iter_mut().zip(self.rest.iter()) {
                    *slot = IoSlice::new(chunk.bytes());
                    count += 1;
                }
                w.write_vectored(&slices[..count])
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.blocked = false;
        if self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
        Ok(true)
    }

    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(head) = &self.head else { return };
            let head_left = head.bytes().len() - self.head_written;
            if n >= head_left {
                n -= head_left;
                self.head = self.rest.pop_front();
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
        assert!(q.head.is_none());
        assert_eq!(q.rest.capacity(), 0, "drained queue frees its buffer");
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

#[cfg(test)]
mod more_tests {
    use super::*;

    /// More than MAX_IOVECS chunks go out in several vectored writes, in order.
    #[test]
    fn many_chunks_in_order() {
        let mut q = Outbound::default();
        let mut want = Vec::new();
        for i in 0..200u32 {
            let b = i.to_be_bytes().to_vec();
            want.extend_from_slice(&b);
            q.push(Chunk::Owned(b));
        }
        let mut out = Vec::new();
        assert!(q.write_to(&mut out).unwrap());
        assert_eq!(out, want);
        assert!(q.is_empty());
    }

    /// Discarding with nothing started empties the queue.
    #[test]
    fn discard_with_nothing_started() {
        let mut q = Outbound::default();
        q.push(Chunk::Owned(b"abc".to_vec()));
        q.push(Chunk::Owned(b"def".to_vec()));
        q.discard_unstarted();
        assert!(q.is_empty());
        let mut out = Vec::new();
        assert!(q.write_to(&mut out).unwrap());
        assert!(out.is_empty());
    }
}
