//! Limits on what a peer may make us hold. Every one of these has been a
//! denial-of-service CVE in some WebSocket library, so each is explicit,
//! documented and configurable.

/// Limits for an established connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes. A frame announcing more
    /// is refused with 1009 before any of its payload is read.
    /// Default: 1 MiB.
    pub max_frame: u64,
    /// Largest message (all fragments together), in bytes. Refused with 1009
    /// as soon as a frame header shows the message would grow past it.
    /// Default: 1 MiB.
    pub max_message: usize,
    /// Most fragments (frames) in one message; refused with 1009 beyond.
    /// Default: 4096.
    pub max_fragments: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 1 << 20,
            max_message: 1 << 20,
            max_fragments: 4096,
        }
    }
}

/// Limits for the opening handshake (one HTTP request or response header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// Largest header block, request line included, in bytes. Default: 8 KiB.
    pub max_header_bytes: usize,
    /// Most header fields. Default: 32.
    pub max_headers: usize,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        HandshakeLimits {
            max_header_bytes: 8 * 1024,
            max_headers: 32,
        }
    }
}
