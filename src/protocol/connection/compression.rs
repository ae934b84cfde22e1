//! permessage-deflate state of one connection (RFC 7692 §6, §7.2).

use super::Role;
use crate::protocol::deflate::{DeflateParams, Deflater, InflateError, Inflater, TAIL};
use crate::protocol::mask::extend_masked;

/// The negotiated parameters and the codecs, created on first use and, where
/// the sender resets its context after every message, dropped after every
/// message so an idle connection holds no compression memory.
#[derive(Debug)]
pub(super) struct Compression {
    params: DeflateParams,
    role: Role,
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
    /// One received chunk of compressed payload, unmasked here before it is
    /// inflated (the caller's input is read-only).
    scratch: Vec<u8>,
    /// Compressed bytes received for the current message.
    received: usize,
}

impl Compression {
    pub(super) fn new(params: DeflateParams, role: Role) -> Self {
        Compression {
            params,
            role,
            inflater: None,
            deflater: None,
            scratch: Vec::new(),
            received: 0,
        }
    }

    /// The window and context rule of what the peer sends us.
    fn peer(&self) -> (u8, bool) {
        match self.role {
            Role::Server => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
            Role::Client => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
        }
    }

    /// The window and context rule of what we send.
    fn own(&self) -> (u8, bool) {
        match self.role {
            Role::Server => (
                self.params.server_max_window_bits,
                self.params.server_no_context_takeover,
            ),
            Role::Client => (
                self.params.client_max_window_bits,
                self.params.client_no_context_takeover,
            ),
        }
    }

    /// Inflates one received chunk of a compressed message into `out`
    /// (masked with `mask` from payload position `phase`).
    pub(super) fn inflate_chunk(
        &mut self,
        chunk: &[u8],
        mask: Option<[u8; 4]>,
        phase: usize,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        self.received += chunk.len();
        self.scratch.clear();
        match mask {
            Some(key) => extend_masked(&mut self.scratch, chunk, key, phase),
            None => self.scratch.extend_from_slice(chunk),
        }
        let window = self.peer().0;
        let inflater = self.inflater.get_or_insert_with(|| Inflater::new(window));
        inflater.inflate(&self.scratch, out, limit)
    }

    /// The message is complete: append the tail the sender removed
    /// (RFC 7692 §7.2.2), then reset or drop the context as negotiated.
    pub(super) fn end_message(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        // An empty payload is an empty message: the tail alone would not be
        // a complete block (its header bits live in the payload).
        let result = if self.received == 0 {
            Ok(())
        } else {
            let window = self.peer().0;
            let inflater = self.inflater.get_or_insert_with(|| Inflater::new(window));
            inflater.inflate(&TAIL, out, limit)
        };
        self.received = 0;
        if self.peer().1 {
            self.forget_inflater();
        }
        self.scratch = Vec::new();
        result
    }

    /// A message was abandoned (the connection failed): free everything.
    pub(super) fn abandon(&mut self) {
        self.received = 0;
        self.inflater = None;
        self.scratch = Vec::new();
    }

    /// Compresses an outgoing message; `None` when we cannot honour the
    /// negotiated window (8 bits), in which case the message goes out
    /// uncompressed, which RFC 7692 §6 allows.
    pub(super) fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let (window, resets) = self.own();
        if self.deflater.is_none() {
            self.deflater = Some(Deflater::new(window)?);
        }
        let deflater = self.deflater.as_mut()?;
        let mut out = Vec::new();
        deflater.compress(data, &mut out);
        if resets {
            match self.role {
                // No context to keep: a server frees the compressor (316 KiB)
                // rather than hold it for each of thousands of idle clients.
                Role::Server => self.deflater = None,
                // A client has one connection: reuse it (creating one per
                // message costs more than the message).
                Role::Client => deflater.reset(),
            }
        }
        Some(out)
    }

    /// The peer reset its context: a server frees the inflater (47 KiB per
    /// connection adds up over thousands of idle clients), a client keeps it
    /// and resets it (recreating it per message would dominate its CPU).
    fn forget_inflater(&mut self) {
        match self.role {
            Role::Server => self.inflater = None,
            Role::Client => {
                if let Some(i) = self.inflater.as_mut() {
                    i.reset();
                }
            }
        }
    }
}
