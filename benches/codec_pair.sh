#!/usr/bin/env bash
# Decode + unmask, ours against tungstenite's codec, as ratios measured in
# alternating ~50 µs batches inside one process (CODEC_PAIR mode of
# benches/codec.rs): the machine's speed drifts by tens of per cent from one
# second, and one process, to the next, and criterion, which measures one
# function for seconds and then the other, lets a slow spell land on one
# side only. Each size runs ROUNDS times (default 9) as separate processes;
# each prints its median ratio and quartiles; the last line per size is the
# median of the rounds' medians. On a machine with scheduler autogroups the
# runs get their own group at nice -15, as scripts/bench-vs-peers.sh does.
# Usage: benches/codec_pair.sh [sizes...] (default 16 1024 65536);
# PAIRS (default 2000) batches per side and round; CODEC_PAIR_PLACES=1 also
# prints the medians for each of the eight placements of the frame.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${CODEC_PAIR_GROUP:-}" ] && [ -w /proc/self/autogroup ] && command -v setsid >/dev/null; then
  CODEC_PAIR_GROUP=1 exec setsid --wait "$0" "$@"
fi
[ -w /proc/self/autogroup ] && echo -15 >/proc/self/autogroup 2>/dev/null || true
cargo bench --bench codec --no-run --quiet 2>/dev/null
tdir="${CARGO_TARGET_DIR:-target}"
bin=$(ls -t "$tdir"/release/deps/codec-* | grep -v '\.d$' | head -n1)
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(16 1024 65536)
rounds=${ROUNDS:-9}
pairs=${PAIRS:-2000}
for len in "${sizes[@]}"; do
  medians=()
  for ((r = 0; r < rounds; r++)); do
    line=$(CODEC_PAIR="$len:$pairs" "$bin")
    echo "$line"
    medians+=("$(sed -E 's/.*median ([0-9.]+)x.*/\1/' <<<"$line")")
  done
  printf '%s\n' "${medians[@]}" | sort -g |
    awk -v n="$len" '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2;
      printf "%s B: median of %d rounds: %.2fx (rounds %.2f..%.2fx)\n", n, NR, m, a[1], a[NR]}'
done
