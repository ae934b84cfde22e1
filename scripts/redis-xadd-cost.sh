#!/bin/bash
# What history on Redis Streams would cost Redis per publish, next to the
# PUBLISH cluster mode already does (docs/recovery.md, docs/benchmarks.md).
#
# Starts its own redis-server on a free loopback port (stopped by PID at the
# end), then with redis-benchmark (one client, 200,000 commands, unpipelined
# and 16 deep) measures throughput and redis-server's CPU time per command for
#   PUBLISH wsb:cluster <184 bytes>
#   XADD wsb:hist:news MAXLEN ~ 1000 * d <184 bytes>
#   EVALSHA <the --redis-history sequencer> for one stream, which does HGET,
#     HINCRBY, XADD … MAXLEN ~ 1000 0-OFFSET and a PUBLISH (no subscriber)
# (184 bytes: the envelope of a 128-byte message), then the memory of 100,000
# stream entries. Needs redis-server, redis-cli, redis-benchmark.
set -euf -o pipefail
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)
payload=$(head -c 184 /dev/zero | tr '\0' x)
# The sequencer, as the node loads it (src/server/cluster/wire/history.rs, SEQUENCER).
root=$(cd "$(dirname "$0")/.." && pwd)
lua=$(sed -n '/^pub(crate) const SEQUENCER: &str = r#"$/,/^"#;$/p' "$root/src/server/cluster/wire/history.rs" | sed '1d;$d')
sha=$(redis-cli -p "$port" SCRIPT LOAD "$lua")
n=200000
for pipeline in 1 16; do
  for cmd in "PUBLISH wsb:cluster $payload" "XADD wsb:hist:news MAXLEN ~ 1000 * d $payload" \
    "EVALSHA $sha 2 wsb:hist:seq wsb:epoch:seq wsb:stream 1000 $payload 0123456789ab"; do
    c0=$(cpu)
    rps=$(redis-benchmark -p "$port" -n "$n" -P "$pipeline" -c 1 -q $cmd 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1)
    c1=$(cpu)
    printf '%-8s pipeline %2d: %s, redis-server CPU %s us per command\n' "${cmd%% *}" "$pipeline" "$rps" \
      "$(awk -v a="$c0" -v b="$c1" -v t="$tick" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / t / n }')"
  done
done
echo "sequencer: wsb:epoch:seq off=$(redis-cli -p "$port" HGET wsb:epoch:seq off) (every EVALSHA numbered one message), wsb:hist:seq XLEN=$(redis-cli -p "$port" XLEN wsb:hist:seq)"
mem() { redis-cli -p "$port" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
m0=$(mem)
redis-benchmark -p "$port" -n 100000 -P 16 -c 1 -q XADD wsb:hist:big MAXLEN '~' 1000000 '*' d "$payload" >/dev/null 2>&1
m1=$(mem)
echo "100000 stream entries of 184 bytes: $(( (m1 - m0) / 100000 )) bytes each (used_memory $m0 -> $m1)"
