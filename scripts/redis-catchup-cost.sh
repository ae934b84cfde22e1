#!/bin/bash
# What a catch-up answered from Redis (the XRANGE fallback of shared history,
# docs/recovery.md "Across nodes") costs, next to one answered from the
# node's own ring (docs/benchmarks.md, "Shared history").
#
# Starts its own redis-server and two nodes (target/release/wsbroadcaster,
# --redis --history 1000, shared history: the default) on free loopback
# ports, all stopped by PID at the end. 100 messages of 128 bytes are
# published to channel `news` (and one to everyone) on node A; node B starts
# after them, so its ring holds none. Then JOINS clients (default 300), one
# after the other, connect with since=news:0:EPOCH&since=*:0:EPOCH and read
# the 100 + 1 replayed envelopes and both position envelopes: first on A
# (served from its ring), then on B (from Redis: one CATCH_UP script per
# stream). Reported per join: latency (median, p90), the node's CPU time and
# redis-server's CPU time (from /proc). Needs redis-server, redis-cli,
# python3 and a release build.
set -euf -o pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/wsbroadcaster"
joins=${JOINS:-300}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rport=$(free_port)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no >/dev/null 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
node() { # NAME WSPORT
  "$bin" serve --ws "127.0.0.1:$2" --udp off --unix "$tmp/$1.sock" --log-level warn \
    --redis "redis://127.0.0.1:$rport" --history 1000 >/dev/null 2>"$tmp/$1.log" &
  pids+=("$!")
  for _ in $(seq 100); do [ -S "$tmp/$1.sock" ] && break; sleep 0.1; done
  sleep 1 # subscribed
}
aport=$(free_port)
node a "$aport"
apid=${pids[-1]}
python3 - "$tmp/a.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"to everyone\n" + b"".join(b"@news m%03d %s\n" % (i, b"x" * 123) for i in range(1, 101)))
s.close()
EOF
sleep 1
ep=$(redis-cli -p "$rport" HGET wsbroadcaster:epoch:news ep)
star=$(redis-cli -p "$rport" HGET 'wsbroadcaster:epoch:*' ep)
bport=$(free_port)
node b "$bport"
bpid=${pids[-1]}
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for side in "A ring $aport $apid" "B redis $bport $bpid"; do
  set -- $side
  n0=$(cpu "$4"); r0=$(cpu "$rpid")
  python3 - "$3" "$ep" "$star" "$joins" "$2" <<'EOF'
import base64, os, socket, statistics, sys, time
port, ep, star, joins, how = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def frames(sock):
    buf = b""
    while True:
        while len(buf) >= 2:
            n = buf[1] & 0x7F; h = 2
            if n == 126:
                if len(buf) < 4: break
                n = int.from_bytes(buf[2:4], "big"); h = 4
            elif n == 127:
                if len(buf) < 10: break
                n = int.from_bytes(buf[2:10], "big"); h = 10
            if len(buf) < h + n: break
            yield buf[h:h + n].decode(); buf = buf[h + n:]
        d = sock.recv(65536)
        if not d: raise SystemExit("connection closed")
        buf += d
lat = []
for _ in range(joins):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"/?recover=1&channel=news&since=news:0:{ep}&since=%2A:0:{star}"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head, head
    got, positions = 0, 0
    for f in frames(s):
        if '"data"' in f: got += 1
        else:
            assert '"reset"' not in f, f
            positions += 1
            if positions == 2: break
    assert got == 101, got
    lat.append(time.perf_counter() - t)
    s.close()
lat.sort()
print(f"{how}: {joins} joins, each 101 messages replayed; latency median {statistics.median(lat)*1e3:.2f} ms, "
      f"p90 {lat[int(len(lat)*0.9)]*1e3:.2f} ms")
EOF
  n1=$(cpu "$4"); r1=$(cpu "$rpid")
  awk -v a="$n0" -v b="$n1" -v c="$r0" -v d="$r1" -v t="$tick" -v n="$joins" -v w="$1" \
    'BEGIN { printf "  node %s CPU %.0f us per join, redis-server CPU %.0f us per join\n", w, (b - a) * 1e6 / t / n, (d - c) * 1e6 / t / n }'
done
echo "node B: $(grep -c . "$tmp/b.log" || true) log lines (warnings and errors)"
