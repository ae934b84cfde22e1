//! Where the tests find things: the binary under test, the crate's root,
//! and fresh Unix socket paths.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wsbroadcaster");

/// The crate's root (tests/py, tests/browser live under it).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, unique Unix socket path under /tmp (short: sun_path is 108 bytes).
pub fn unique_sock_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = PathBuf::from(format!(
        "/tmp/wsbt-{}-{n}-{nanos:x}-{tag}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}
