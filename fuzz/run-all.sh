#!/usr/bin/env bash
# Runs each fuzz target in turn, one job each, for SECONDS_PER_TARGET seconds
# (default 600), growing a working corpus under fuzz/work/<target> from the
# committed seeds in fuzz/corpus/<target>. Logs go to fuzz/work/<target>.log.
# Usage: bash fuzz/run-all.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_parser handshake_request connection_server connection_deflate)
declare -A max_len=([frame_parser]=64 [handshake_request]=4096 [connection_server]=20000 [connection_deflate]=20000)
cargo +nightly fuzz build
for t in "${targets[@]}"; do
    mkdir -p "fuzz/work/$t"
    echo "== $t: ${secs}s"
    cargo +nightly fuzz run "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len="${max_len[$t]}" -print_final_stats=1 \
        >"fuzz/work/$t.log" 2>&1 || { echo "$t FAILED: see fuzz/work/$t.log"; exit 1; }
    grep -E '^Done|stat::number_of_executed_units|stat::peak_rss' "fuzz/work/$t.log"
    echo "corpus: $(ls "fuzz/work/$t" | wc -l) files"
done
