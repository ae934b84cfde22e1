#!/usr/bin/env python3
"""Summarises the last `cargo bench --bench codec` run as Markdown.

Reads criterion's target/criterion/<group>/<function>/<size>/new/estimates.json
(median time per iteration), turns it into throughput (payload bytes / median
time) and prints the table and the target ratios used in docs/benchmarks.md.
Usage: python3 benches/codec_summary.py [target-dir]
"""
import json
import os
import sys

target = sys.argv[1] if len(sys.argv) > 1 else "target"
root = os.path.join(target, "criterion")
SIZES = {"16B": 16, "1KiB": 1024, "64KiB": 65536}


def median_ns(group, func, size):
    path = os.path.join(root, group, func, size, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def fmt_time(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.1f} ns"


def fmt_tput(nbytes, ns):
    gib = nbytes / ns * 1e9 / 2**30
    return f"{gib:.2f} GiB/s" if gib >= 1 else f"{gib * 1024:.0f} MiB/s"


rows = []
for group in ("decode_unmask", "encode", "unmask"):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        continue
    for func in sorted(os.listdir(gdir)):
        fdir = os.path.join(gdir, func)
        if not os.path.isdir(fdir) or func == "report":
            continue
        for size in sorted(os.listdir(fdir), key=lambda s: SIZES.get(s, 0)):
            if size not in SIZES:
                continue
            ns = median_ns(group, func, size)
            rows.append((group, size, func, ns))

print("| benchmark | payload | implementation | median time | median throughput |")
print("|---|---|---|---|---|")
for group, size, func, ns in sorted(rows, key=lambda r: (r[0], SIZES[r[1]], r[2])):
    print(f"| {group} | {size} | {func} | {fmt_time(ns)} | {fmt_tput(SIZES[size], ns)} |")

t = {(g, s, f): ns for g, s, f, ns in rows}


def ratio(slow, fast):
    try:
        return t[slow] / t[fast]
    except KeyError:
        return float("nan")


print()
print("| ratio (time of the other / time of ours) | value | target |")
print("|---|---|---|")
for size, goal in (("64KiB", "≥ 2×"), ("16B", "≥ 1.5×"), ("1KiB", "—")):
    ours = ("decode_unmask", size, "wsbroadcaster")
    print(f"| decode+unmask {size} vs tungstenite_codec | "
          f"{ratio(('decode_unmask', size, 'tungstenite_codec'), ours):.2f}× | {goal} |")
    print(f"| decode+unmask {size} vs tungstenite_codec, ours without recycle | "
          f"{ratio(('decode_unmask', size, 'tungstenite_codec'), ('decode_unmask', size, 'wsbroadcaster_no_recycle')):.2f}× | (info) |")
    print(f"| decode+unmask {size} vs tungstenite_context | "
          f"{ratio(('decode_unmask', size, 'tungstenite_context'), ours):.2f}× | (info) |")
for size in ("16B", "1KiB", "64KiB"):
    print(f"| encode {size} vs tungstenite | "
          f"{ratio(('encode', size, 'tungstenite'), ('encode', size, 'wsbroadcaster')):.2f}× | — |")
m = ("unmask", "64KiB", "apply_mask")
print(f"| unmask 64KiB: apply_mask vs apply_mask_bytewise | "
      f"{ratio(('unmask', '64KiB', 'apply_mask_bytewise'), m):.2f}× | ≥ 8× |")
print(f"| unmask 64KiB: apply_mask vs apply_mask_bytewise_const_offset | "
      f"{ratio(('unmask', '64KiB', 'apply_mask_bytewise_const_offset'), m):.2f}× | (info) |")
print(f"| unmask into a buffer 64KiB: extend_masked vs copy_then_apply_mask | "
      f"{ratio(('unmask', '64KiB', 'copy_then_apply_mask'), ('unmask', '64KiB', 'extend_masked')):.2f}× | (info) |")
print(f"| unmask 64KiB: apply_mask vs tungstenite_mask | "
      f"{ratio(('unmask', '64KiB', 'tungstenite_mask'), m):.2f}× | (info) |")
