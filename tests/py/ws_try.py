#!/usr/bin/env python3
"""Try one WebSocket upgrade with the `websockets` library, as a browser-like
client would, and report the outcome on one line.

usage: python3 tests/py/ws_try.py URL [ORIGIN] [RECV_SECONDS]

Prints `open` and then, with RECV_SECONDS, the first message received
(`text <json string>` or `timeout`), or `refused STATUS <json body>` when the
server answers the upgrade with an HTTP error. Any other failure prints
`error ...` and exits 1. ORIGIN `-` sends no Origin header.
"""

import json
import sys

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def main() -> int:
    url = sys.argv[1]
    origin = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    recv = float(sys.argv[3]) if len(sys.argv) > 3 else None
    try:
        ws = connect(url, origin=origin, proxy=None, open_timeout=10, ping_interval=None)
    except InvalidStatus as e:
        body = e.response.body.decode("utf-8", "replace") if e.response.body else ""
        print(f"refused {e.response.status_code} {json.dumps(body)}", flush=True)
        return 0
    with ws:
        print("open", flush=True)
        if recv is not None:
            try:
                msg = ws.recv(timeout=recv)
                print("text " + json.dumps(msg) if isinstance(msg, str) else "binary " + msg.hex(), flush=True)
            except TimeoutError:
                print("timeout", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - reported to the Rust test as one line
        print(f"error {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
