#!/usr/bin/env bash
# Install everything wsbroadcaster's test suite needs, on Debian 12 as root.
#
# usage: bash scripts/install-test-deps.sh
#
# Idempotent: every step checks first and is skipped when already done, so a
# second run takes a few seconds. Fails loudly (non-zero exit) on any error.
#
#   1. Debian packages: netcat-openbsd (nc with -U and -u), redis-server,
#      chromium (/usr/bin/chromium, used headless by the browser tests),
#      systemd (systemd-analyze verify checks contrib/wsbroadcaster.service),
#      curl (the admin endpoint's publisher in tests/ops/),
#      openssl (the CLI makes the certificate of Autobahn's TLS part), binutils
#      (strip, for the size budget), and for the aarch64 (Raspberry Pi) cross
#      build and its qemu smoke test: rustc-web with its arm64 standard library
#      libstd-rust-web-dev:arm64 (dpkg multiarch: `dpkg --add-architecture arm64`
#      first), gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user; plus
#      nodejs/npm and python3-pip only if node / python3's pip are missing.
#      `apt-get update` runs first, and only when something is to be installed.
#      Installed with --no-install-recommends; no service is started by the
#      install (tests start their own redis-server on a port of their choosing).
#   2. Python packages for python3 (the one on PATH, or $PYTHON), pinned:
#      websockets, msgpack, prometheus_client, via `python3 -m pip install`.
#   3. playwright-core (pinned) with npm into tests/browser/node_modules, from
#      tests/browser/package.json + package-lock.json (`npm ci`; `npm install`
#      writes the lock file when it is missing). No browser is downloaded:
#      the tests drive Debian's /usr/bin/chromium. Likewise the socket.io
#      emitter (@socket.io/redis-emitter and the redis client) into
#      tests/socketio/node_modules, for tests/cluster/socketio.rs.
#   4. The Autobahn testsuite (wstest), via autobahn/install.sh.
#
# Env: PYTHON  the Python 3 interpreter the tests use (default: python3 on PATH)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

# Pinned versions (bump deliberately; the browser tests' lock file pins the rest).
PY_PKGS=(websockets==17.4 msgpack==1.2.4 prometheus_client==0.26.0)
PLAYWRIGHT_CORE_VERSION=1.65.1   # needs Node.js >= 20
NODE_MIN_MAJOR=20
APT_PKGS=(netcat-openbsd redis-server chromium systemd curl openssl binutils)
# scripts/aarch64-build.sh + tests/aarch64.rs (Debian's route: rustup has only x86_64's std).
ARM64_PKGS=(rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)

BROWSER_DIR="$ROOT/tests/browser"
SOCKETIO_DIR="$ROOT/tests/socketio"
START=$(date +%s)
SUMMARY=()

log() { printf '[install-test-deps] %s\n' "$*"; }
die() { printf '[install-test-deps] ERROR: %s\n' "$*" >&2; exit 1; }
# Name the command that failed (set -e then stops the script).
on_err() {
    local rc=$?
    printf '[install-test-deps] FAILED (exit %s) at line %s: %s\n' "$rc" "${BASH_LINENO[0]}" "$BASH_COMMAND" >&2
}
trap on_err ERR

# Seconds since $1 (a `date +%s` stamp).
since() { echo $(($(date +%s) - $1)); }

[ "$(id -u)" = 0 ] || die "run this as root (it installs Debian packages)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script targets Debian 12"

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# --- 1. Debian packages -----------------------------------------------------------
t=$(date +%s)
want=("${APT_PKGS[@]}" "${ARM64_PKGS[@]}")
# The arm64 standard library comes through multiarch: arm64 must be a foreign
# architecture before `apt-get update` (which then runs: the package is missing).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    dpkg --add-architecture arm64
fi
# Node.js and npm: whatever provides `node`/`npm` is kept (e.g. a newer nodejs from
# another source); Debian's packages only when none is there.
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)
# pip for the python3 the tests use; Debian's python3-pip when it has none.
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    want+=(python3-pip)
fi
missing=()
for p in "${want[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get update"
    apt-get update -qq
    # Debian's package scripts start services (redis-server) on install unless a
    # policy-rc.d forbids it. The tests start their own servers, so forbid it for
    # the duration of the install when the machine has no such policy already.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, from scripts/install-test-deps.sh: no service starts during the install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    log "apt-get install ${missing[*]}"
    set +e
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    arc=$?
    set -e
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$arc" -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $arc)"
    SUMMARY+=("apt: installed ${missing[*]} ($(since "$t")s)")
else
    SUMMARY+=("apt: ${want[*]} already installed")
fi
# `nc` must be the OpenBSD one (-U for Unix sockets, -u for UDP); another netcat
# may own the `nc` alternative.
# (`nc -h` exits non-zero, hence the `|| true`.)
nc_is_openbsd() { grep -q 'OpenBSD netcat' <<<"$(nc -h 2>&1 || true)"; }
if ! nc_is_openbsd; then
    log "pointing the nc alternative at nc.openbsd"
    update-alternatives --set nc /bin/nc.openbsd >/dev/null
    nc_is_openbsd || die "nc is not netcat-openbsd"
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server not on PATH"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not on PATH (Debian: redis-tools, a dependency of redis-server)"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing"
command -v systemd-analyze >/dev/null 2>&1 || die "systemd-analyze not on PATH"
command -v qemu-aarch64 >/dev/null 2>&1 || die "qemu-aarch64 not on PATH"
[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu/lib" ] ||
    die "Debian's rustc has no aarch64 standard library (libstd-rust-web-dev:arm64)"

# --- 2. Python packages --------------------------------------------------------------
t=$(date +%s)
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
# Exit 0 when every pinned package is installed at exactly its version.
py_pins_ok() {
    "$PYTHON" - "${PY_PKGS[@]}" <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if have != want:
        sys.exit(1)
EOF
}
if py_pins_ok; then
    SUMMARY+=("pip: ${PY_PKGS[*]} already installed for $(command -v "$PYTHON")")
else
    # Debian's own python3 is "externally managed" (PEP 668) and refuses pip
    # installs without this flag; other interpreters (pyenv, venvs) need none.
    pip_env=(PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1)
    if "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        pip_env+=(PIP_BREAK_SYSTEM_PACKAGES=1)
    fi
    log "$PYTHON -m pip install ${PY_PKGS[*]}"
    env "${pip_env[@]}" "$PYTHON" -m pip install -q "${PY_PKGS[@]}"
    py_pins_ok || die "pip install finished but the pinned versions are not importable by $PYTHON"
    SUMMARY+=("pip: installed ${PY_PKGS[*]} for $(command -v "$PYTHON") ($(since "$t")s)")
fi
"$PYTHON" -c 'import websockets, msgpack, prometheus_client' || die "$PYTHON cannot import the test packages"

# --- 3. playwright-core into tests/browser/node_modules -------------------------------
t=$(date +%s)
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge "$NODE_MIN_MAJOR" ] ||
    die "Node.js $(node --version) is too old: playwright-core $PLAYWRIGHT_CORE_VERSION needs Node.js >= $NODE_MIN_MAJOR"
mkdir -p "$BROWSER_DIR"
if [ ! -f "$BROWSER_DIR/package.json" ]; then
    log "writing tests/browser/package.json (playwright-core $PLAYWRIGHT_CORE_VERSION)"
    cat >"$BROWSER_DIR/package.json" <<EOF
{
  "name": "wsbroadcaster-browser-tests",
  "version": "0.0.0",
  "private": true,
  "description": "Browser tests for wsbroadcaster: playwright-core drives Debian's /usr/bin/chromium (no browser download). Installed by scripts/install-test-deps.sh.",
  "license": "MIT OR Apache-2.0",
  "dependencies": {
    "playwright-core": "$PLAYWRIGHT_CORE_VERSION"
  }
}
EOF
fi
if [ ! -f "$BROWSER_DIR/.gitignore" ]; then
    printf '# installed by scripts/install-test-deps.sh\nnode_modules/\n' >"$BROWSER_DIR/.gitignore"
fi
# npm: quiet, no audit/funding calls, no registry URLs in the lock file, and never a
# browser download (playwright-core has no install script; this is belt and braces).
npm_flags=(--no-audit --no-fund --loglevel=error)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
# One npm directory: `npm ci` from its committed lock file when node_modules is
# not already in step with it (`npm install` writes the lock file if missing).
npm_dir() {
    local dir="$1" name
    name=${dir#"$ROOT"/}
    if [ -f "$dir/package-lock.json" ] && (cd "$dir" && npm ls --depth=0 >/dev/null 2>&1); then
        SUMMARY+=("npm: $name/node_modules up to date")
    elif [ -f "$dir/package-lock.json" ]; then
        log "npm ci in $name"
        (cd "$dir" && npm ci "${npm_flags[@]}")
        SUMMARY+=("npm: npm ci in $name ($(since "$t")s)")
    else
        log "npm install in $name (writes package-lock.json)"
        (cd "$dir" && npm install "${npm_flags[@]}" --omit-lockfile-registry-resolved)
        SUMMARY+=("npm: npm install in $name, wrote package-lock.json ($(since "$t")s)")
    fi
}
npm_dir "$BROWSER_DIR"
# The socket.io emitter tests (tests/cluster/socketio.rs): the real @socket.io/redis-emitter
# and its redis client, pinned by tests/socketio/package.json + package-lock.json.
t=$(date +%s)
npm_dir "$SOCKETIO_DIR"
[ -f "$SOCKETIO_DIR/node_modules/@socket.io/redis-emitter/package.json" ] ||
    die "tests/socketio/node_modules lacks @socket.io/redis-emitter"
pw_version=$(node -p "require('$BROWSER_DIR/node_modules/playwright-core/package.json').version")
[ "$pw_version" = "$PLAYWRIGHT_CORE_VERSION" ] ||
    log "note: tests/browser has playwright-core $pw_version (this script's pin: $PLAYWRIGHT_CORE_VERSION; package.json wins)"

# --- 4. Autobahn testsuite -------------------------------------------------------------
t=$(date +%s)
wstest=$(bash "$ROOT/autobahn/install.sh" | sed -n 's/^wstest: //p' | tail -n1)
[ -x "$wstest" ] || die "autobahn/install.sh did not produce wstest"
SUMMARY+=("autobahn: $wstest ($(since "$t")s)")

# --- summary ----------------------------------------------------------------------------
log "done in $(since "$START")s:"
for line in "${SUMMARY[@]}"; do log "  $line"; done
nc_version=$(nc -h 2>&1 | head -n1 || true)
redis_version=$(redis-server --version | cut -d' ' -f1-3)
chromium_version=$(/usr/bin/chromium --version 2>/dev/null | head -n1)
log "  versions: ${nc_version:-nc ?}; $redis_version; $chromium_version; node $(node --version);" \
    "playwright-core $pw_version; $("$PYTHON" --version 2>&1)"
