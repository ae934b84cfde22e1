#!/usr/bin/env bash
# Instructions per decoded frame, counted by callgrind (independent of
# machine noise): each decode case of benches/codec.rs at 1,000 and 3,000
# iterations; the difference / 2,000 is the cost of one frame, without
# start-up. Usage: benches/codec_instr.sh [sizes...] (default 16 1024 65536).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind >/dev/null || { echo "codec_instr: valgrind is required" >&2; exit 1; }
cargo bench --bench codec --no-run --quiet 2>/dev/null
tdir="${CARGO_TARGET_DIR:-target}"
bin=$(ls -t "$tdir"/release/deps/codec-* | grep -v '\.d$' | head -n1)
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(16 1024 65536)
count() { # case bytes iterations -> total instructions
  local out; out=$(mktemp)
  CODEC_INSTR="$1:$2:$3" valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"; rm -f "$out"
}
printf '%-8s %-20s %14s\n' bytes case instr/frame
for len in "${sizes[@]}"; do
  declare -A per=()
  for case in wsbroadcaster wsbroadcaster_no_recycle tungstenite_codec tungstenite_context; do
    a=$(count "$case" "$len" 1000); b=$(count "$case" "$len" 3000)
    per[$case]=$(( (b - a) / 2000 ))
    printf '%-8s %-20s %14s\n' "$len" "$case" "${per[$case]}"
  done
  awk -v w="${per[wsbroadcaster]}" -v u="${per[wsbroadcaster_no_recycle]}" -v c="${per[tungstenite_codec]}" -v x="${per[tungstenite_context]}" -v n="$len" \
    'BEGIN { printf "%-8s ratio (instructions, tungstenite / wsbroadcaster): codec %.2fx (no recycle %.2fx), context %.2fx\n", n, c / w, c / u, x / w }'
  unset per
done
