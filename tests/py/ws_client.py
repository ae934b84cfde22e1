#!/usr/bin/env python3
"""A real third-party WebSocket client (the `websockets` library) that the
Rust integration tests drive over stdin/stdout, one command per line.

usage: python3 tests/py/ws_client.py ws://127.0.0.1:PORT/
       WS_CA_FILE=ca.pem python3 tests/py/ws_client.py wss://127.0.0.1:PORT/
       (wss:// trusts only the CA certificate in $WS_CA_FILE)

On connect it prints `open`. Then, for each stdin line:

  recv SECONDS        -> `text <json string>` | `binary <hex>` | `timeout`
                         | `closed <code> <json reason>` (the server's close)
  send TEXT           -> `sent`
  sendbin HEX         -> `sent`
  ping SECONDS        -> `pong` | `timeout` (a pong proves the server has
                         processed everything sent before the ping)
  wait_close SECONDS  -> `closed <code> <json reason>` | `timeout`
                         (messages before the close are skipped)
  close               -> closes normally, prints `bye`, exits

Every reply is one line, flushed at once. Errors print `error <text>` and
exit non-zero. The script never waits longer than the seconds it is given.
"""

import json
import os
import ssl
import sys
import time

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"error python websockets missing ({e}): run scripts/install-test-deps.sh", flush=True)
    sys.exit(3)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def closed_line(ws, exc) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return f"closed {rcvd.code} {json.dumps(rcvd.reason)}"
    # The TCP connection ended without a close frame from the server.
    return f"closed none {json.dumps(str(exc))}"


def describe(msg) -> str:
    if isinstance(msg, str):
        return "text " + json.dumps(msg)
    return "binary " + bytes(msg).hex()


def main() -> int:
    url = sys.argv[1]
    # proxy=None: never route loopback through an environment proxy.
    # ping_interval=None: the tests decide when pings happen.
    tls = None
    if url.startswith("wss://"):
        tls = ssl.create_default_context(cafile=os.environ["WS_CA_FILE"])
    ws = connect(
        url, ssl=tls, proxy=None, open_timeout=10, ping_interval=None, close_timeout=5
    )
    say("open")
    for raw in sys.stdin:
        cmd, _, arg = raw.rstrip("\n").partition(" ")
        try:
            if cmd == "recv":
                try:
                    say(describe(ws.recv(timeout=float(arg))))
                except TimeoutError:
                    say("timeout")
            elif cmd == "send":
                ws.send(arg)
                say("sent")
            elif cmd == "sendbin":
                ws.send(bytes.fromhex(arg))
                say("sent")
            elif cmd == "ping":
                ok = ws.ping().wait(float(arg))
                say("pong" if ok else "timeout")
            elif cmd == "wait_close":
                deadline = time.monotonic() + float(arg)
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        say("timeout")
                        break
                    try:
                        ws.recv(timeout=left)
                    except TimeoutError:
                        say("timeout")
                        break
            elif cmd == "close":
                ws.close()
                say("bye")
                return 0
            else:
                say(f"error unknown command {cmd!r}")
                return 2
        except ConnectionClosed as exc:
            say(closed_line(ws, exc))
    ws.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - any failure goes to the test as one line
        say(f"error {type(e).__name__}: {e}")
        sys.exit(1)
