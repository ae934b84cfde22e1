#!/usr/bin/env python3
"""Medians over several runs of the shared side-by-side harness, and the
issue-6 target ratios against uWebSockets.js, as Markdown.

    scripts/bench-medians.py RESULTS_DIR [RESULTS_DIR ...] [--ref uws] [--ours wsbroadcaster]

Each RESULTS_DIR is one harness run (its all.json; scripts/bench-vs-peers.sh
makes them). Every figure is taken from each run's first pass, then the
median over runs is printed, per server, with the per-run values beside it
so the spread is visible. Optional tooling: stdlib only.
"""

import argparse
import json
import statistics
from pathlib import Path


def fanout(r):
    if not r or "wsload" not in r:
        return {}
    w = r["wsload"]
    lat = w.get("latency_us") or {}
    return {
        "cpu_us": (r.get("server_cpu_us_per_1k_deliveries") or 0) / 1000 or None,
        "p50_ms": lat.get("p50", 0) / 1000 if lat else None,
        "p99_ms": lat.get("p99", 0) / 1000 if lat else None,
        "lost": w.get("lost"),
    }


def sat(r):
    if not r or "error" in r:
        return None
    best = r.get("highest_clean")
    return best["rate"] if best else 0


def echo(r):
    if not r or "wsload" not in r:
        return None
    return r.get("server_cpu_us_per_round_trip")


def idle(r):
    if not r or "error" in r:
        return None
    return r.get("rss_kib_per_connection")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def show(x, digits=2):
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--ref", default="uws")
    ap.add_argument("--ours", default="wsbroadcaster")
    a = ap.parse_args()
    runs = [json.loads((Path(d) / "all.json").read_text())["results"] for d in a.runs]
    servers = list(runs[0].keys())

    def per_run(server, scen, fn):
        return [fn(r.get(server, {}).get("pass1", {}).get(scen)) for r in runs]

    rows = {}
    for s in servers:
        f1 = per_run(s, "fanout-1k", fanout)
        f10 = per_run(s, "fanout-10k", fanout)
        rows[s] = {
            "fanout-1k cpu": [x.get("cpu_us") for x in f1],
            "fanout-10k cpu": [x.get("cpu_us") for x in f10],
            "fanout-10k p99": [x.get("p99_ms") for x in f10],
            "fanout-10k lost": [x.get("lost") for x in f10],
            "sat-1k": per_run(s, "sat-1k", sat),
            "sat-10k": per_run(s, "sat-10k", sat),
            "echo-100": per_run(s, "echo-100", echo),
            "idle-10k": per_run(s, "idle-10k", idle),
        }
    cols = list(rows[servers[0]].keys())
    units = {
        "fanout-1k cpu": "µs CPU/delivery",
        "fanout-10k cpu": "µs CPU/delivery",
        "fanout-10k p99": "ms",
        "fanout-10k lost": "messages",
        "sat-1k": "highest clean msg/s (0 = none)",
        "sat-10k": "highest clean msg/s (0 = none)",
        "echo-100": "µs CPU/round trip",
        "idle-10k": "KiB RSS/connection",
    }
    print(f"Medians over {len(runs)} runs (per-run values in brackets):\n")
    print("| server | " + " | ".join(f"{c} ({units[c]})" for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for s in servers:
        cells = []
        for c in cols:
            vals = rows[s][c]
            cells.append(f"**{show(med(vals))}** [{', '.join(show(v) for v in vals)}]")
        print(f"| {s} | " + " | ".join(cells) + " |")

    if a.ref in rows and a.ours in rows:
        o, r = rows[a.ours], rows[a.ref]

        def ratio(c):
            mo, mr = med(o[c]), med(r[c])
            return mo / mr if mo is not None and mr else None

        print(f"\nTargets, {a.ours} against {a.ref} (medians):\n")
        print("| target | ours | ref | ratio | met? |")
        print("|---|---|---|---|---|")
        rt = ratio("fanout-10k cpu")
        print(f"| fanout-10k CPU per delivery ≤ 0.7× | {show(med(o['fanout-10k cpu']))} µs | "
              f"{show(med(r['fanout-10k cpu']))} µs | {show(rt)}× | {'yes' if rt is not None and rt <= 0.7 else 'no'} |")
        lo = med(o["fanout-10k lost"])
        print(f"| fanout-10k zero loss | {show(lo)} lost | {show(med(r['fanout-10k lost']))} lost | | "
              f"{'yes' if lo == 0 else 'no'} |")
        po, pr = med(o["fanout-10k p99"]), med(r["fanout-10k p99"])
        print(f"| fanout-10k p99 no worse than uWS | {show(po)} ms | {show(pr)} ms | {show(po / pr if po and pr else None)}× | "
              f"{'yes' if po is not None and pr is not None and po <= pr else 'no'} |")
        for c in ("sat-1k", "sat-10k"):
            so, sr = med(o[c]), med(r[c])
            ok = so is not None and sr is not None and so > 0 and (sr == 0 or so >= 1.3 * sr)
            print(f"| {c} highest clean rate ≥ 1.3× | {show(so)} msg/s | {show(sr)} msg/s | "
                  f"{show(so / sr if so and sr else None)}× | {'yes' if ok else 'no'} |")
        re_ = ratio("echo-100")
        print(f"| echo-100 CPU per round trip ≤ 1.0× | {show(med(o['echo-100']))} µs | {show(med(r['echo-100']))} µs | "
              f"{show(re_)}× | {'yes' if re_ is not None and re_ <= 1.0 else 'no'} |")
        ri = ratio("idle-10k")
        print(f"| idle-10k RSS per connection ≤ 0.5× | {show(med(o['idle-10k']))} KiB | {show(med(r['idle-10k']))} KiB | "
              f"{show(ri)}× | {'yes' if ri is not None and ri <= 0.5 else 'no'} |")


if __name__ == "__main__":
    main()
