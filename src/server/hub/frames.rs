//! The frames of one publish: encoded once, and compressed once per
//! window size for the clients that negotiated permessage-deflate, so every
//! recipient's queue shares the same bytes.

use std::rc::Rc;

use crate::protocol::MessageKind;
use crate::protocol::deflate::{Deflater, encode_compressed_server_frame};
use crate::protocol::frame::encode_server_frame;
use crate::server::peer::PeerDeflate;

/// What one recipient gets for a publish.
pub(super) enum FrameRef<'a> {
    /// Bytes encoded (and compressed) once, shared with other recipients.
    Shared(&'a Rc<Vec<u8>>),
    /// Compressed for this connection only, with its own context
    /// (`--deflate per-connection`).
    Own(MessageKind, &'a [u8]),
}

/// The frames of one publish, each built on first use: plain, and
/// compressed once per window size (no context takeover, so the bytes are
/// the same for every recipient with that window).
pub(super) struct Frames<'a> {
    kind: MessageKind,
    payload: &'a [u8],
    min_size: usize,
    plain: Option<Rc<Vec<u8>>>,
    compressed: [Option<Rc<Vec<u8>>>; 8],
}

impl<'a> Frames<'a> {
    pub(super) fn new(kind: MessageKind, payload: &'a [u8], min_size: usize) -> Self {
        Frames {
            kind,
            payload,
            min_size,
            plain: None,
            compressed: Default::default(),
        }
    }

    /// The plain (uncompressed) frame.
    pub(super) fn plain_rc(&mut self) -> Rc<Vec<u8>> {
        let (kind, payload) = (self.kind, self.payload);
        Rc::clone(
            self.plain
                .get_or_insert_with(|| Rc::new(encode_server_frame(kind.opcode(), payload))),
        )
    }

    pub(super) fn for_peer(
        &mut self,
        deflate: PeerDeflate,
        shared: &mut SharedDeflaters,
        compressions: &mut u64,
    ) -> FrameRef<'_> {
        match deflate {
            PeerDeflate::Shared(window) if self.payload.len() >= self.min_size => {
                if let Some(slot) = self
                    .compressed
                    .get_mut(usize::from(window.saturating_sub(8)))
                {
                    if slot.is_none() {
                        if let Some(frame) = shared.compress(window, self.kind, self.payload) {
                            *compressions += 1;
                            *slot = Some(Rc::new(frame));
                        }
                    }
                    if let Some(frame) = slot {
                        return FrameRef::Shared(frame);
                    }
                }
            }
            PeerDeflate::PerConnection if self.payload.len() >= self.min_size => {
                return FrameRef::Own(self.kind, self.payload);
            }
            _ => {}
        }
        let (kind, payload) = (self.kind, self.payload);
        FrameRef::Shared(
            self.plain
                .get_or_insert_with(|| Rc::new(encode_server_frame(kind.opcode(), payload))),
        )
    }
}

/// The loop's compressors for shared (no context takeover) broadcasts, one
/// per window size in use, created on first use.
#[derive(Default)]
pub(crate) struct SharedDeflaters {
    by_window: [Option<Box<Deflater>>; 8],
}

impl std::fmt::Debug for SharedDeflaters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedDeflaters")
    }
}

impl SharedDeflaters {
    /// One compressed server frame (RSV1 set) for `window`.
    fn compress(&mut self, window: u8, kind: MessageKind, payload: &[u8]) -> Option<Vec<u8>> {
        let slot = self
            .by_window
            .get_mut(usize::from(window.checked_sub(8)?))?;
        if slot.is_none() {
            *slot = Some(Box::new(Deflater::new(window)?));
        }
        let deflater = slot.as_mut()?;
        let mut compressed = Vec::new();
        deflater.compress(payload, &mut compressed);
        deflater.reset();
        Some(encode_compressed_server_frame(kind.opcode(), &compressed))
    }
}
