#!/usr/bin/env bash
# CPU time per decoded frame, for a machine too busy for criterion: each
# decode case of benches/codec.rs (the CODEC_INSTR loops) runs at N and 3N
# iterations under `perf stat -e task-clock`, which counts only the time
# the process is on a CPU (time spent waiting for one does not count); the
# difference / 2N is the cost of one frame, without start-up. The cases
# alternate, ROUNDS times (default 7), and the median per case is printed
# with the ratios tungstenite / ours. Shared caches and a busy sibling
# thread still add noise, so compare ratios, not single figures.
# Usage: benches/codec_time.sh [sizes...] (default 16 1024 65536).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v perf >/dev/null || { echo "codec_time: perf is required" >&2; exit 1; }
cargo bench --bench codec --no-run --quiet 2>/dev/null
tdir="${CARGO_TARGET_DIR:-target}"
bin=$(ls -t "$tdir"/release/deps/codec-* | grep -v '\.d$' | head -n1)
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(16 1024 65536)
rounds=${ROUNDS:-7}
cases=(wsbroadcaster wsbroadcaster_no_recycle tungstenite_codec extend_masked copy_then_apply_mask)
cpu_ms() { # case bytes iterations -> task-clock in ms
  CODEC_INSTR="$1:$2:$3" perf stat -x, -e task-clock "$bin" 2>&1 >/dev/null |
    awk -F, '$3 ~ /task-clock/ {print $1}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
printf '%-8s %-22s %12s   (%s rounds: min .. max)\n' bytes case ns/frame "$rounds"
for len in "${sizes[@]}"; do
  n=$(( 400000000 / (len / 4 + 400) ))
  declare -A all=()
  for ((r = 0; r < rounds; r++)); do
    for case in "${cases[@]}"; do
      a=$(cpu_ms "$case" "$len" "$n"); b=$(cpu_ms "$case" "$len" $((3 * n)))
      all[$case]+="$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", (b - a) * 1e6 / (2 * n)}') "
    done
  done
  declare -A med=()
  for case in "${cases[@]}"; do
    med[$case]=$(tr ' ' '\n' <<<"${all[$case]}" | grep . | median)
    range=$(tr ' ' '\n' <<<"${all[$case]}" | grep . | sort -g | sed -n '1p;$p' | paste -sd' ')
    printf '%-8s %-22s %12.2f   (%s)\n' "$len" "$case" "${med[$case]}" "${range/ / .. }"
  done
  awk -v w="${med[wsbroadcaster]}" -v u="${med[wsbroadcaster_no_recycle]}" -v c="${med[tungstenite_codec]}" \
      -v e="${med[extend_masked]}" -v t="${med[copy_then_apply_mask]}" -v n="$len" \
    'BEGIN { printf "%-8s ratio tungstenite_codec / wsbroadcaster: %.2fx (no recycle %.2fx); copy_then_apply_mask / extend_masked: %.2fx\n", n, c / w, c / u, t / e }'
  unset all med
done
