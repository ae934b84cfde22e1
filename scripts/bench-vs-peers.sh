#!/usr/bin/env bash
# Side-by-side benchmark against the peer servers (uWebSockets.js, Node ws,
# tokio-tungstenite, fastwebsockets) with the shared harness, which lives
# outside this repository (default ../shared/bench; set BENCH_HARNESS).
# Optional tooling: nothing in the build or the test suite needs it.
#
#   scripts/bench-vs-peers.sh [RUNS] [extra run.sh options...]
#
# Builds the release binary, writes a servers.conf with the harness's peers
# plus wsbroadcaster, and runs the harness RUNS times (default 3), each into
# its own results directory, printing where the summaries are.
set -euo pipefail
# `nice` only ranks processes within one scheduler autogroup (one session):
# builds started from other sessions would still take half of the server's
# core. Run in a session of our own and raise that autogroup's priority
# (needs CAP_SYS_NICE; without it the runs go on, and say so).
if [ -z "${WSB_BENCH_SESSION:-}" ] && [ -r /proc/sys/kernel/sched_autogroup_enabled ] \
   && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled)" = 1 ]; then
  WSB_BENCH_SESSION=1 exec setsid --wait "$0" "$@"
fi
if [ -n "${WSB_BENCH_SESSION:-}" ]; then
  echo -15 2>/dev/null > /proc/self/autogroup \
    || echo "bench-vs-peers: could not raise the autogroup priority: other sessions' jobs compete for the cores" >&2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
harness="${BENCH_HARNESS:-$root/../shared/bench}"
runs="${1:-3}"
shift || true
[ -x "$harness/run.sh" ] || { echo "bench-vs-peers: no harness at $harness (set BENCH_HARNESS)" >&2; exit 1; }
[ -x "$harness/target/release/wsload" ] || { echo "bench-vs-peers: run $harness/setup.sh first" >&2; exit 1; }

(cd "$root" && cargo build --release --quiet)
bin="$root/target/release/wsbroadcaster"
conf="$(mktemp /tmp/wsb-servers.XXXXXX.conf)"
trap 'rm -f "$conf"' EXIT
# Same flags for both lines except the client-message policy; UDP and Unix
# ingress off so nothing else listens. The harness adds `taskset -c 0`.
echo "wsbroadcaster | 9200 | $bin serve --ws 127.0.0.1:{port} --udp off --unix off | $bin serve --ws 127.0.0.1:{port} --udp off --unix off --client-messages echo" > "$conf"
grep -v '^[[:space:]]*#' "$harness/servers.conf" | grep -v '^[[:space:]]*$' | grep -v '^wsbroadcaster' >> "$conf"

stamp="$(date -u +%Y%m%d-%H%M%S)"
for i in $(seq 1 "$runs"); do
  out="$harness/results/$stamp-run$i"
  echo "== run $i of $runs -> $out (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  (cd "$harness" && ./run.sh --conf "$conf" --out "$out" --ref uws "$@")
  echo "== run $i summary: $out/summary.md"
done
