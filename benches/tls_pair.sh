#!/usr/bin/env bash
# What TLS costs the server per delivered message: a ws:// server and a wss://
# server side by side, each with its own bench, in the same time window (so a
# busy machine slows both alike); the server's CPU per delivery from
# `bench --server-pid`, and the wss/ws ratio per pair. Loopback only.
#
# usage: bash benches/tls_pair.sh [RATE] [SIZE] [DURATION] [RUNS] [CLIENTS]
#        (defaults: 20 512 20s 5 1000; binary: target/release/wsbroadcaster or $WSB)
# Needs the openssl CLI (a self-signed P-256 certificate is made for the run).
set -euo pipefail
RATE="${1:-20}" SIZE="${2:-512}" DUR="${3:-20s}" RUNS="${4:-5}" CLIENTS="${5:-1000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="${WSB:-$ROOT/target/release/wsbroadcaster}"
[ -x "$B" ] || { echo "no binary at $B: cargo build --release" >&2; exit 1; }
DIR="$(mktemp -d /tmp/wsb-tls-pair.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null

# start MODE: a server on an ephemeral port; sets SPID and SPORT.
start() {
    local mode=$1 tls=()
    [ "$mode" = wss ] && tls=(--tls-cert "$DIR/cert.pem" --tls-key "$DIR/key.pem")
    "$B" serve --ws 127.0.0.1:0 --udp off --unix "$DIR/$mode.sock" "${tls[@]}" \
        --log-level warn >"$DIR/$mode.out" 2>"$DIR/$mode.err" &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 300); do grep -q '^ready' "$DIR/$mode.out" && break; sleep 0.1; done
    SPORT=$(sed -n 's/^listening wss\{0,1\} 127.0.0.1://p' "$DIR/$mode.out")
    [ -n "$SPORT" ] || { echo "the $mode server did not start" >&2; cat "$DIR/$mode.err" >&2; exit 1; }
}

printf 'run  ws_us_per_delivery  wss_us_per_delivery  ratio  (rate %s/s, %s bytes, %s, %s clients)\n' \
    "$RATE" "$SIZE" "$DUR" "$CLIENTS"
for i in $(seq "$RUNS"); do
    start ws; P1=$SPID; O1=$SPORT
    start wss; P2=$SPID; O2=$SPORT
    "$B" bench --url "ws://localhost:$O1/" -n "$CLIENTS" --publish "unix:$DIR/ws.sock" \
        --rate "$RATE" --size "$SIZE" --duration "$DUR" --server-pid "$P1" --json -q \
        >"$DIR/b-ws.txt" 2>&1 &
    B1=$!
    "$B" bench --url "wss://localhost:$O2/" --tls-ca "$DIR/cert.pem" -n "$CLIENTS" \
        --publish "unix:$DIR/wss.sock" --rate "$RATE" --size "$SIZE" --duration "$DUR" \
        --server-pid "$P2" --json -q >"$DIR/b-wss.txt" 2>&1 &
    B2=$!
    wait "$B1" "$B2" || { echo "a bench failed:" >&2; cat "$DIR/b-ws.txt" "$DIR/b-wss.txt" >&2; exit 1; }
    kill "$P1" "$P2"; wait "$P1" "$P2" 2>/dev/null || true
    PIDS=()
    python3 - "$i" "$DIR/b-ws.txt" "$DIR/b-wss.txt" <<'PY'
import json, sys
run, a, b = sys.argv[1], *[json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[2:]]
def per(d):
    assert d["lost"] == 0, d
    return d["server_cpu_run_secs"] / d["delivered"] * 1e6
print(f"{run:>3}  {per(a):18.3f}  {per(b):19.3f}  {per(b) / per(a):5.2f}")
PY
done
