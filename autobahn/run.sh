#!/usr/bin/env bash
# Autobahn testsuite conformance run for wsbroadcaster: the one entry point.
#
# usage: bash autobahn/run.sh [server|server-tls|client|all]      (default: all)
#
#   server  wsbroadcaster's SERVER under test: starts
#             target/release/wsbroadcaster serve --ws 127.0.0.1:9002 --client-messages echo ...
#           in the background and runs wstest's fuzzingclient against it
#           (run-fuzzingclient.sh, spec template fuzzingclient.json).
#           Report: autobahn/reports/server/index.html
#   server-tls  the same SERVER over TLS: groups 1-10 against
#             serve --ws 127.0.0.1:9003 --tls-cert ... (a self-signed certificate made
#             for the run with the openssl CLI; wstest's Twisted client does not verify
#             it) at wss://127.0.0.1:9003. Report: autobahn/reports/server-tls/index.html
#   client  wsbroadcaster's CLIENT under test: runs wstest's fuzzingserver on
#           127.0.0.1:9001 and `target/release/wsbroadcaster autobahn-client` against it
#           (run-fuzzingserver.sh, spec template fuzzingserver.json; the client reads
#           AUTOBAHN_URL and AUTOBAHN_AGENT from its environment).
#           Report: autobahn/reports/client/index.html
#   all     all three, side by side (each part is one single-threaded wstest);
#           AUTOBAHN_SERIAL=1 runs them one after the other. All always run to the end.
#
# Steps: install the testsuite if missing (install.sh, /opt/autobahn), then
# `cargo build --release`, then the part(s). Case groups 1-10 only: the
# All 517 cases by default, the permessage-deflate groups 12.* and 13.* included.
#
# The bar is strict: every case must be OK or INFORMATIONAL with a clean close
# (no FAILED, NON-STRICT, UNIMPLEMENTED, bad behaviorClose), and every case must
# have run (AUTOBAHN_STRICT=1 AUTOBAHN_FAIL_UNIMPLEMENTED=1, see summarize.py).
# Exit status: 0 when every part run met the bar, 1 when one did not, 2 bad usage;
# a failed build or install stops the run with its own non-zero status.
#
# Environment (all optional):
#   AUTOBAHN_CASES        only these cases, both parts (e.g. '1.*,2.*'; default: the templates')
#   AUTOBAHN_SKIP_DEFLATE 0 (default) = all 517 cases; 1 = exclude 12.*,13.* (quick run)
#   AUTOBAHN_SERIAL       1 = run the parts of `all` one after the other (default: in parallel)
#   AUTOBAHN_TIMEOUT      seconds per part before wstest / the client is stopped (default: 2400)
#   AUTOBAHN_SERVER_PORT  port of the server under test (default: 9002)
#   AUTOBAHN_TLS_PORT     port of the server under test over TLS (default: 9003)
#   AUTOBAHN_PORT         port of the fuzzingserver (default: 9001)
#   AUTOBAHN_HOME / WSTEST  where wstest is (default: /opt/autobahn/wstest)
#   CARGO_TARGET_DIR      honoured when looking for the binary (default: ./target)
#   AUTOBAHN_BIN          test this executable instead; skips `cargo build --release`
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

# shellcheck source=autobahn/lib.sh
. "$HERE/lib.sh"
# This script's own lines say where they come from.
log() { printf '[autobahn/run] %s\n' "$*" >&2; }

MODE="${1:-all}"
case "$MODE" in
    server | server-tls | client | all) ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
esac
[ $# -le 1 ] || { usage; exit 2; }

SERVER_PORT="${AUTOBAHN_SERVER_PORT:-9002}"
TLS_PORT="${AUTOBAHN_TLS_PORT:-9003}"
CASES="${AUTOBAHN_CASES:-}"
# The strict bar, for both parts (read by run-fuzzingclient.sh / run-fuzzingserver.sh).
export AUTOBAHN_STRICT=1 AUTOBAHN_FAIL_UNIMPLEMENTED=1
# All 517 cases, permessage-deflate groups 12.* and 13.* included (set
# AUTOBAHN_SKIP_DEFLATE=1 to leave them out for a quick run).
export AUTOBAHN_SKIP_DEFLATE="${AUTOBAHN_SKIP_DEFLATE:-0}"
# Per part. Groups 1-10 take under a minute; the deflate groups 12/13 take about
# 15 minutes per part here (wstest, pure Python, is the bottleneck). The bound is for a
# peer that hangs, and keeps a stuck run inside CI's 90 minutes.
export AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-2400}"

# Seconds since $1 (a `date +%s` stamp).
since() { echo $(($(date +%s) - $1)); }

RUN_START=$(date +%s)
cd "$ROOT"

# --- process handling ------------------------------------------------------------------
# Long steps run as background children that this script `wait`s for: bash defers a
# trap while a foreground child runs, so this way a TERM/INT is handled at once.
# Everything started here is stopped by its PID: the child step (whose own traps
# stop wstest) and the server under test.
CHILD_PID=""
SERVER_PID=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
# shellcheck disable=SC2317  # only called from the traps
stop_child() {
    [ -n "$CHILD_PID" ] || return 0
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
    CHILD_PID=""
}
# shellcheck disable=SC2317  # only called from the traps
on_signal() {
    log "interrupted: stopping what this run started"
    stop_child
    stop_server
    exit "$1"
}
trap 'stop_child; stop_server' EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# Run "$@" as a background child and wait for it; returns its exit status.
run_child() {
    "$@" &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}

# --- 1. the testsuite ----------------------------------------------------------------
export AUTOBAHN_HOME="${AUTOBAHN_HOME:-/opt/autobahn}"
WSTEST="${WSTEST:-$AUTOBAHN_HOME/wstest}"
if ! "$WSTEST" --autobahnversion >/dev/null 2>&1; then
    log "wstest missing at $WSTEST: running autobahn/install.sh"
    t=$(date +%s)
    WSTEST="$(bash "$HERE/install.sh" | sed -n 's/^wstest: //p' | tail -n1)"
    [ -x "$WSTEST" ] || { log "autobahn/install.sh failed"; exit 4; }
    log "testsuite installed in $(since "$t")s"
fi
export WSTEST

# --- 2. the binary ------------------------------------------------------------------------
if [ -n "${AUTOBAHN_BIN:-}" ]; then
    # A prebuilt binary (or a stand-in): no build.
    BIN="$AUTOBAHN_BIN"
    [ -x "$BIN" ] || { log "AUTOBAHN_BIN=$BIN is not executable"; exit 1; }
    log "using AUTOBAHN_BIN=$BIN (no cargo build)"
else
    t=$(date +%s)
    log "cargo build --release"
    run_child cargo build --release || { rc=$?; log "cargo build --release failed (exit $rc)"; exit "$rc"; }
    TARGET_DIR="${CARGO_TARGET_DIR:-target}"
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
    BIN="$TARGET_DIR/release/wsbroadcaster"
    [ -x "$BIN" ] || { log "no binary at $BIN after the build"; exit 1; }
    log "built $BIN in $(since "$t")s"
fi

# --- the server part ----------------------------------------------------------------------
# run_server_part [tls]: plain ws:// on $SERVER_PORT, or wss:// on $TLS_PORT (groups 1-10).
run_server_part() {
    local tls="${1:-}" rc=0
    local part=server port="$SERVER_PORT" scheme=ws agent=wsbroadcaster
    local skip_deflate="$AUTOBAHN_SKIP_DEFLATE"
    if [ "$tls" = tls ]; then
        part=server-tls port="$TLS_PORT" scheme=wss agent=wsbroadcaster-tls
        # TLS is the transport under test here: the frame and message groups 1-10
        # exercise it fully; the deflate groups add compression, not transport.
        skip_deflate=1
    fi
    local dir="$HERE/reports/$part"
    mkdir -p "$dir"
    # No stale report may outlive a run that fails before wstest starts.
    clear_reports "$dir"
    if port_open "$port"; then
        log "127.0.0.1:$port is already in use (not by this run); set AUTOBAHN_SERVER_PORT / AUTOBAHN_TLS_PORT"
        return 3
    fi
    local args=(serve --ws "127.0.0.1:$port" --udp off --unix off --client-messages echo
        --max-message 16777216 --max-frame 16777216 --max-fragments 1048576
        --max-queued-bytes 67108864)
    if [ "$tls" = tls ]; then
        # A self-signed certificate for this run only.
        command -v openssl >/dev/null 2>&1 || { log "openssl (the CLI) is needed for the TLS part: run scripts/install-test-deps.sh"; return 4; }
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl.log" \
            || { log "openssl could not make a certificate:"; cat "$dir/openssl.log" >&2; return 4; }
        args+=(--tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem")
    fi
    log "starting $BIN ${args[*]} (log: $dir/server.log)"
    # `timeout` bounds the server's life even if this script is killed outright; it
    # passes the TERM from stop_server on to the server.
    timeout -k 10 "$((AUTOBAHN_TIMEOUT + 120))" "$BIN" "${args[@]}" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    local waited=0
    until port_open "$port"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || rc=$?
            SERVER_PID=""
            log "the server exited (status $rc) before listening; its log:"
            tail -n 30 "$dir/server.log" >&2
            return 1
        fi
        if [ "$waited" -ge 150 ]; then
            log "the server is not listening on 127.0.0.1:$port after 15s; its log:"
            tail -n 30 "$dir/server.log" >&2
            stop_server
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    log "server pid $SERVER_PID listening on $scheme://127.0.0.1:$port"

    AUTOBAHN_AGENT="$agent" AUTOBAHN_REPORT_DIR="$dir" AUTOBAHN_SKIP_DEFLATE="$skip_deflate" \
        run_child bash "$HERE/run-fuzzingclient.sh" "$scheme://127.0.0.1:$port" "$CASES" || rc=$?

    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local src=0
        wait "$SERVER_PID" 2>/dev/null || src=$?
        SERVER_PID=""
        log "the server died during the run (status $src); log tail:"
        tail -n 30 "$dir/server.log" >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    stop_server
    if grep -q 'panicked' "$dir/server.log" 2>/dev/null; then
        log "WARNING: the server log has panics:"
        grep -m 5 'panicked' "$dir/server.log" >&2
    fi
    return "$rc"
}

# --- the client part ----------------------------------------------------------------------
run_client_part() {
    AUTOBAHN_AGENT=wsbroadcaster-client AUTOBAHN_REPORT_DIR="$HERE/reports/client" \
        AUTOBAHN_CASES="$CASES" run_child bash "$HERE/run-fuzzingserver.sh" "$BIN" autobahn-client
}

# --- all: every part at once ------------------------------------------------------------
# Each part is bound by wstest (one single-threaded Python process), so on a 2-core
# machine running them side by side halves the wall time (groups 12/13 take ~15 min
# each; the TLS part, groups 1-10, about a minute). Each part is this script in
# `server`, `server-tls` or `client` mode with the binary built above; its output goes
# to autobahn/reports/<part>-part.log and is printed at the end.
if [ "$MODE" = all ] && [ "${AUTOBAHN_SERIAL:-0}" != 1 ]; then
    mkdir -p "$HERE/reports"
    log "=== server, client and server-tls parts in parallel (AUTOBAHN_SERIAL=1: one after the other) ==="
    AUTOBAHN_BIN="$BIN" bash "$HERE/run.sh" server >"$HERE/reports/server-part.log" 2>&1 &
    SPART=$!
    AUTOBAHN_BIN="$BIN" bash "$HERE/run.sh" client >"$HERE/reports/client-part.log" 2>&1 &
    CPART=$!
    AUTOBAHN_BIN="$BIN" bash "$HERE/run.sh" server-tls >"$HERE/reports/server-tls-part.log" 2>&1 &
    TPART=$!
    # shellcheck disable=SC2317  # only called from the traps
    stop_parts() {
        kill -TERM "$SPART" "$CPART" "$TPART" 2>/dev/null || true
        wait "$SPART" "$CPART" "$TPART" 2>/dev/null || true
    }
    trap 'stop_parts' EXIT
    trap 'stop_parts; exit 130' INT
    trap 'stop_parts; exit 143' TERM
    # A progress line every 60 s: the group each part is in (none yet is not an
    # error: `|| true`, or pipefail would end the run when a part is quiet).
    while kill -0 "$SPART" 2>/dev/null || kill -0 "$CPART" 2>/dev/null || kill -0 "$TPART" 2>/dev/null; do
        for _ in $(seq 1 60); do
            kill -0 "$SPART" 2>/dev/null || kill -0 "$CPART" 2>/dev/null || kill -0 "$TPART" 2>/dev/null || break
            sleep 1
        done
        sg=$(grep -hE 'group [0-9.]+ \(case' "$HERE/reports/server-part.log" 2>/dev/null | tail -n 1 | sed 's/^\[autobahn\] *//' || true)
        cg=$(grep -hE 'group [0-9.]+ \(case' "$HERE/reports/client-part.log" 2>/dev/null | tail -n 1 | sed 's/^\[autobahn\] *//' || true)
        tg=$(grep -hE 'group [0-9.]+ \(case' "$HERE/reports/server-tls-part.log" 2>/dev/null | tail -n 1 | sed 's/^\[autobahn\] *//' || true)
        log "$(since "$RUN_START")s: server [${sg:-starting}] client [${cg:-starting}] server-tls [${tg:-starting}]"
    done
    src=0
    wait "$SPART" || src=$?
    crc=0
    wait "$CPART" || crc=$?
    trc=0
    wait "$TPART" || trc=$?
    trap - EXIT INT TERM
    for part in server client server-tls; do
        echo ""
        echo "----- autobahn $part part (autobahn/reports/$part-part.log) -----"
        cat "$HERE/reports/$part-part.log"
    done
    echo ""
    if [ "$src" -eq 0 ] && [ "$crc" -eq 0 ] && [ "$trc" -eq 0 ]; then
        echo "autobahn/run.sh: OK: server, client and server-tls met the strict bar (total $(since "$RUN_START")s)"
        exit 0
    fi
    echo "autobahn/run.sh: FAILED: server exit $src, client exit $crc, server-tls exit $trc (total $(since "$RUN_START")s)"
    exit 1
fi

# --- run the parts, time them, report ------------------------------------------------------
case "$MODE" in
    all) PARTS=(server server-tls client) ;;
    *) PARTS=("$MODE") ;;
esac
RESULTS=()
FAILED=0
for part in "${PARTS[@]}"; do
    log "=== $part part ==="
    t=$(date +%s)
    rc=0
    case "$part" in
        server) run_server_part || rc=$? ;;
        server-tls) run_server_part tls || rc=$? ;;
        client) run_client_part || rc=$? ;;
    esac
    secs=$(since "$t")
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("$part: PASS (bar met) in ${secs}s, report autobahn/reports/$part/index.html")
    else
        RESULTS+=("$part: FAIL (exit $rc) in ${secs}s, report autobahn/reports/$part/index.html")
        FAILED=1
    fi
    log "=== $part part: exit $rc, wall time ${secs}s ==="
done
trap - EXIT INT TERM

echo ""
for r in "${RESULTS[@]}"; do echo "autobahn/run.sh: $r"; done
if [ "$FAILED" -eq 0 ]; then
    echo "autobahn/run.sh: OK: ${PARTS[*]} met the strict bar (total $(since "$RUN_START")s)"
else
    echo "autobahn/run.sh: FAILED: not every part met the strict bar (total $(since "$RUN_START")s)"
fi
exit "$FAILED"
