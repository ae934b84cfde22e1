#!/usr/bin/env python3
"""Print a Markdown per-group table from an Autobahn report directory, for
docs/conformance.md.

usage: python3 autobahn/table.py autobahn/reports/server [autobahn/reports/client]
"""
import collections
import json
import os
import sys

NAMES = {
    "1": "framing", "2": "pings/pongs", "3": "reserved bits", "4": "opcodes",
    "5": "fragmentation", "6": "UTF-8", "7": "close", "9": "limits/performance",
    "10": "misc", "12": "permessage-deflate", "13": "permessage-deflate params",
}
COLS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def table(report_dir: str) -> str:
    with open(os.path.join(report_dir, "index.json")) as f:
        index = json.load(f)
    agent, cases = next(iter(index.items()))
    groups = collections.OrderedDict()
    close = collections.defaultdict(collections.Counter)
    for case in sorted(cases, key=lambda c: [int(x) for x in c.split(".")]):
        g = case.split(".")[0]
        groups.setdefault(g, collections.Counter())[cases[case]["behavior"]] += 1
        close[g][cases[case]["behaviorClose"]] += 1
    out = [f"Agent `{agent}`, {len(cases)} cases.", "",
           "| group | cases | " + " | ".join(COLS) + " | behaviorClose |",
           "| --- | --- | " + " | ".join("---" for _ in COLS) + " | --- |"]
    total = collections.Counter()
    for g, c in groups.items():
        total.update(c)
        bc = ", ".join(f"{k} {v}" for k, v in sorted(close[g].items()))
        out.append(f"| {g} {NAMES.get(g, '')} | {sum(c.values())} | "
                   + " | ".join(str(c.get(k, 0)) for k in COLS) + f" | {bc} |")
    out.append(f"| **total** | **{sum(total.values())}** | "
               + " | ".join(f"**{total.get(k, 0)}**" for k in COLS) + " | |")
    return "\n".join(out)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        print(f"### {d}\n")
        print(table(d))
        print()
