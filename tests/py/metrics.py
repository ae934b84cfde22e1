#!/usr/bin/env python3
"""Fetch a Prometheus text-format page and parse it with the reference
parser (`prometheus_client.parser`), printing one `name{labels} value` line
per sample, sorted, then `families N`. Fails (exit 1) if the page does not
parse or a family has no TYPE.

usage: python3 tests/py/metrics.py http://127.0.0.1:PORT/metrics
"""

import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    url = sys.argv[1]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as resp:
        ctype = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    if not ctype.startswith("text/plain; version=0.0.4"):
        print(f"error content type {ctype!r}", flush=True)
        return 1
    lines = []
    families = 0
    for fam in text_string_to_metric_families(text):
        families += 1
        if fam.type not in ("counter", "gauge"):
            print(f"error family {fam.name} has type {fam.type}", flush=True)
            return 1
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            name = f"{s.name}{{{labels}}}" if labels else s.name
            value = int(s.value) if s.value == int(s.value) else s.value
            lines.append(f"{name} {value}")
    for line in sorted(lines):
        print(line)
    print(f"families {families}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
