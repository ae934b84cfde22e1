#!/usr/bin/env bash
# Cross-build the release binary for aarch64 (Raspberry Pi 3/4/5 with a
# 64-bit OS) on an x86_64 Debian 12 machine, the Debian way: rustup here has
# only the x86_64 standard library, so this uses Debian's own compiler
# (rustc-web, a current rustc in bookworm's updates) with its arm64 standard
# library (libstd-rust-web-dev:arm64, through dpkg multiarch) and
# gcc-aarch64-linux-gnu as the linker. scripts/install-test-deps.sh installs
# them; tests/aarch64.rs runs the result under qemu-aarch64.
#
# usage: bash scripts/aarch64-build.sh
# Output: target/aarch64/aarch64-unknown-linux-gnu/release/wsbroadcaster
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET=aarch64-unknown-linux-gnu
DEBIAN_RUSTC=/usr/bin/rustc
die() { printf '[aarch64-build] ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$DEBIAN_RUSTC" ] || die "$DEBIAN_RUSTC missing: apt-get install rustc-web (scripts/install-test-deps.sh)"
sysroot=$("$DEBIAN_RUSTC" --print sysroot)
[ -d "$sysroot/lib/rustlib/$TARGET/lib" ] ||
    die "no $TARGET standard library in $sysroot: dpkg --add-architecture arm64 && apt-get install libstd-rust-web-dev:arm64"
command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing: apt-get install gcc-aarch64-linux-gnu"

printf '[aarch64-build] %s, %s standard library from %s\n' "$("$DEBIAN_RUSTC" --version)" "$TARGET" "$sysroot"
start=$(date +%s)
RUSTC="$DEBIAN_RUSTC" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TARGET_DIR="$ROOT/target/aarch64" \
    cargo build --release --locked --target "$TARGET" --bin wsbroadcaster
bin="$ROOT/target/aarch64/$TARGET/release/wsbroadcaster"
printf '[aarch64-build] %s (%s bytes) in %ss\n' "$bin" "$(stat -c %s "$bin")" "$(($(date +%s) - start))"
