#!/usr/bin/env python3
"""Builds a wstest spec from a checked-in template, for run-fuzzingclient.sh
(KIND fuzzingclient: the server under test is `servers[0]`) and
run-fuzzingserver.sh (KIND fuzzingserver: the spec's own `url`).

usage: spec.py KIND TEMPLATE URL CASES AGENT EXCLUDE SKIP_DEFLATE REPORT_DIR

CASES, EXCLUDE: comma-separated patterns or a JSON list ('' = the template's).
AGENT: fuzzingclient only ('' = the template's, else "testee").
SKIP_DEFLATE: 1 = make sure 12.*,13.* are excluded; 0 = run them too; '' = as
the template says. REPORT_DIR: '' = the template's outdir, relative to the
template's folder.

Creates the report directory, writes the spec into it as KIND.json, logs what
it built on stderr and prints "<report dir>\t<agent>" (agent empty for
fuzzingserver).
"""
import json
import os
import sys

DEFLATE = ["12.*", "13.*"]  # permessage-deflate groups (RFC 7692)
DEFAULT_OUTDIR = {"fuzzingclient": "reports/server", "fuzzingserver": "reports/client"}


def patterns(s):
    s = s.strip()
    if s.startswith("["):
        return json.loads(s)
    return [p.strip() for p in s.split(",") if p.strip()]


def main(argv):
    if len(argv) != 8 or argv[0] not in DEFAULT_OUTDIR:
        sys.exit(__doc__)
    kind, template, url, cases, agent, exclude, skip_deflate, report_dir = argv
    with open(template) as f:
        spec = json.load(f)
    spec.pop("_comment", None)
    # outdir: explicit, else the template's, relative to the template's folder.
    outdir = report_dir or os.path.join(os.path.dirname(os.path.abspath(template)),
                                        spec.get("outdir", DEFAULT_OUTDIR[kind]))
    outdir = os.path.abspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    if kind == "fuzzingclient":
        server = dict((spec.get("servers") or [{}])[0])
        server["agent"] = agent = agent or server.get("agent") or "testee"
        server["url"] = url
        spec["servers"] = [server]
    else:
        agent = ""
        spec["url"] = url
    spec["outdir"] = outdir
    if patterns(cases):
        spec["cases"] = patterns(cases)
    spec["cases"] = spec.get("cases") or ["*"]
    ex = list(spec.get("exclude-cases", []))
    ex += [p for p in patterns(exclude) if p not in ex]
    if skip_deflate == "1":
        ex += [p for p in DEFLATE if p not in ex]
    elif skip_deflate == "0":
        ex = [p for p in ex if p not in DEFLATE]
    spec["exclude-cases"] = ex
    spec.setdefault("exclude-agent-cases", {})
    path = os.path.join(outdir, kind + ".json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    sys.stderr.write("[autobahn] spec %s (from %s): cases=%s exclude=%s%s url=%s\n"
                     % (path, template, ",".join(spec["cases"]), ",".join(ex),
                        " agent=" + agent if agent else "", url))
    print("%s\t%s" % (outdir, agent))


if __name__ == "__main__":
    main(sys.argv[1:])
