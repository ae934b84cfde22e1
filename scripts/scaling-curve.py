#!/usr/bin/env python3
"""Scaling curve: server CPU per delivered message and RSS per connection
as the fan-out grows, for wsbroadcaster and the peer servers, plotted as a
PNG (one line per server).

Optional tooling, like scripts/bench-vs-peers.sh: it drives the shared
side-by-side harness (default ../shared/bench, or BENCH_HARNESS), reusing its
driver (server pinned to core 0, its `wsload` on core 1, CPU time and RSS
from /proc at wsload's sync markers). Nothing in the build or the test suite
needs it. Plotting needs matplotlib (`pip install matplotlib`).

    scripts/scaling-curve.py --conf SERVERS.conf --out DIR [--clients 1000,5000,10000,19000]

The publish rate is chosen per point so every point delivers about
100,000 messages/s (100 msg/s to 1,000 clients, 10 msg/s to 10,000), 64-byte
messages for 10 s: what changes along the curve is the fan-out, not the load.
The open-file limit caps the client count: each process (server and wsload)
needs one descriptor per connection.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("BENCH_HARNESS", ROOT.parent / "shared" / "bench")).resolve()
DELIVERIES_PER_S = 100_000


def own_autogroup() -> None:
    """Run in a session (so a scheduler autogroup) of our own at priority -15.

    With `sched_autogroup_enabled`, `nice` only ranks processes within one
    session: builds started from other sessions would still take half of the
    server's core (see docs/benchmarks.md). Needs CAP_SYS_NICE; without it the
    curve is measured anyway, with a warning."""
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        enabled = False
    if not enabled:
        return
    if not os.environ.get("WSB_BENCH_SESSION"):
        os.environ["WSB_BENCH_SESSION"] = "1"
        sys.exit(subprocess.call(["setsid", "--wait", sys.executable, *sys.argv]))
    try:
        Path("/proc/self/autogroup").write_text("-15")
    except OSError:
        print("scaling-curve: could not raise the autogroup priority: other sessions' jobs compete for the cores",
              file=sys.stderr)
        return
    threading.Thread(target=raise_descendants, daemon=True).start()


def raise_descendants() -> None:
    """The harness starts each server in a session of its own: give every
    process below ours the same autogroup priority as it appears."""
    me = os.getpid()
    while True:
        parents = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    parents[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        for pid in parents:
            x = pid
            while x in parents and x not in (me, 0, 1):
                x = parents[x]
            if x == me and pid != me:
                try:
                    g = Path(f"/proc/{pid}/autogroup").read_text()
                    if not g.strip().endswith("nice -15"):
                        Path(f"/proc/{pid}/autogroup").write_text("-15")
                except OSError:
                    pass
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conf", required=True, help="servers.conf (scripts/bench-vs-peers.sh writes one)")
    ap.add_argument("--out", required=True, help="results directory (JSON per point, curve.json, scaling.png)")
    ap.add_argument("--clients", default="1000,5000,10000,19000")
    ap.add_argument("--servers", default="", help="comma-separated names (default: all in the conf)")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--plot-only", action="store_true", help="re-plot an existing curve.json")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.plot_only:
        own_autogroup()
        measure(args, out)
    plot(out)


def measure(args, out: Path) -> None:
    sys.path.insert(0, str(HARNESS))
    os.chdir(HARNESS)  # the conf's commands are relative to the harness
    import driver  # the harness's own driver: same sampling as its table

    counts = [int(c) for c in args.clients.split(",")]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for n in counts:
        if n + 100 > hard:
            sys.exit(f"scaling-curve: {n} clients need more than the open-file hard limit ({hard})")
    specs = driver.load_conf(Path(args.conf))
    if args.servers:
        want = args.servers.split(",")
        specs = [s for s in specs if s.name in want]
    ns = argparse.Namespace(server_cpu="0", load_cpu="1", scale=1.0, max_clients=0, no_warmup=False)
    runner = driver.Runner(ns, out)
    curve = {"machine_load_at_start": open("/proc/loadavg").read().split()[:3], "points": []}
    for spec in specs:
        for n in counts:
            rate = DELIVERIES_PER_S / n
            driver.log(f"{spec.name}: {n} clients x {rate:g} msg/s")
            srv = runner.start(spec, "broadcast")
            try:
                runner.warmup(spec, srv, "fanout")
                r = runner.fanout_once(spec, srv, n, rate, args.duration, 64, 5, f"scaling-{n}")
            except RuntimeError as e:
                driver.log(f"  failed: {e}")
                r = {"error": str(e)}
            finally:
                srv.stop()
            runner.write(spec, f"scaling-{n}", r)
            w = r.get("wsload", {})
            point = {
                "server": spec.name,
                "clients": n,
                "rate": rate,
                "cpu_us_per_delivery": (r.get("server_cpu_us_per_1k_deliveries") or 0) / 1000 or None,
                "rss_kib_per_connection": r.get("rss_kib_per_connection"),
                "rss_kib_connected": r.get("rss_kib", {}).get("connected"),
                "lost": w.get("lost"),
                "latency_p99_ms": ((w.get("latency_us") or {}).get("p99") or 0) / 1000 or None,
                "loadgen_saturated": w.get("loadgen_saturated"),
            }
            driver.log(f"  {json.dumps(point)}")
            curve["points"].append(point)
            (out / "curve.json").write_text(json.dumps(curve, indent=2) + "\n")
            time.sleep(1)


def plot(out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("scaling-curve: matplotlib is needed for the plot (pip install matplotlib); data is in curve.json")
    curve = json.loads((out / "curve.json").read_text())
    servers = []
    for p in curve["points"]:
        if p["server"] not in servers:
            servers.append(p["server"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in servers:
        pts = sorted((p for p in curve["points"] if p["server"] == s and p["cpu_us_per_delivery"]),
                     key=lambda p: p["clients"])
        if not pts:
            continue
        style = dict(marker="o", linewidth=2.5 if s == "wsbroadcaster" else 1.2)
        ax1.plot([p["clients"] for p in pts], [p["cpu_us_per_delivery"] for p in pts], label=s, **style)
        mem = [p for p in pts if p["rss_kib_per_connection"] is not None]
        ax2.plot([p["clients"] for p in mem], [p["rss_kib_per_connection"] for p in mem], label=s, **style)
    ax1.set(xscale="log", xlabel="connections (subscribers)", ylabel="server CPU µs per delivered message",
            title="CPU per delivery vs fan-out (~100k deliveries/s)")
    ax2.set(xscale="log", yscale="log", xlabel="connections (subscribers)", ylabel="server RSS KiB per connection",
            title="Memory per connection vs fan-out")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    print(f"wrote {out / 'scaling.png'}")


if __name__ == "__main__":
    main()
