#!/usr/bin/env bash
# Side-by-side benchmark against the peer servers (uWebSockets.js, Node ws,
# tokio-tungstenite, fastwebsockets) with the shared harness, which lives
# outside this repository (default ../shared/bench; set BENCH_HARNESS).
# Optional tooling: nothing in the build or the test suite needs it.
#
#   scripts/bench-vs-peers.sh [RUNS] [extra run.sh options...]
#
# WSB_VARIANTS adds wsbroadcaster lines with extra serve flags, as
# NAME=FLAGS separated by `;`, e.g.
#   WSB_VARIANTS='wsb-wd50=--write-delay 50ms;wsb-wd100=--write-delay 100ms'
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
raise_group=""
if [ -n "${WSB_BENCH_SESSION:-}" ]; then
  if echo -15 2>/dev/null > /proc/self/autogroup; then
    raise_group=1
  else
    echo "bench-vs-peers: could not raise the autogroup priority: other sessions' jobs compete for the cores" >&2
  fi
fi

# The harness starts each server in a session (so an autogroup) of its own:
# give every process below PID our group's priority as it appears.
raise_descendants() {
  local root="$1" pid g
  while kill -0 "$root" 2>/dev/null; do
    for pid in $(ps -e -o pid=,ppid= | awk -v r="$root" '{p[$1] = $2}
        END { for (k in p) { x = k; while ((x in p) && x != r && x > 1) x = p[x]; if (x == r) print k } }'); do
      g="$(cat "/proc/$pid/autogroup" 2>/dev/null)" || continue
      case "$g" in *" nice -15") ;; *) echo -15 2>/dev/null > "/proc/$pid/autogroup" || true ;; esac
    done
    sleep 0.2
  done
}
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
port=9210
IFS=';' read -ra variants <<< "${WSB_VARIANTS:-}"
for v in "${variants[@]}"; do
  [ -n "$v" ] || continue
  name="${v%%=*}" flags="${v#*=}"
  echo "$name | $port | $bin serve --ws 127.0.0.1:{port} --udp off --unix off $flags | $bin serve --ws 127.0.0.1:{port} --udp off --unix off --client-messages echo $flags" >> "$conf"
  port=$((port + 10))
done
grep -v '^[[:space:]]*#' "$harness/servers.conf" | grep -v '^[[:space:]]*$' | grep -v '^wsbroadcaster' >> "$conf"

stamp="$(date -u +%Y%m%d-%H%M%S)"
for i in $(seq 1 "$runs"); do
  out="$harness/results/$stamp-run$i"
  echo "== run $i of $runs -> $out (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  (cd "$harness" && exec ./run.sh --conf "$conf" --out "$out" --ref uws "$@") &
  run_pid=$!
  [ -z "$raise_group" ] || raise_descendants "$run_pid" &
  watch_pid=$!
  wait "$run_pid" || { kill "$watch_pid" 2>/dev/null; exit 1; }
  wait "$watch_pid" 2>/dev/null || true
  echo "== run $i summary: $out/summary.md"
done
