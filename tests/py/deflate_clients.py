#!/usr/bin/env python3
"""N real `websockets` clients that negotiate permessage-deflate (the
library's default), for tests/deflate.rs.

usage: deflate_clients.py URL N COUNT RPC_HOST:PORT

Connects N clients, prints `ready <extensions header>`, then every client
waits for COUNT messages (30 s at most). Prints one line per client:
`got <i> <json list of [kind, len, sha256]>`, then calls the server's
MessagePack-RPC `stats()` and prints `stats <json>`.
"""

import hashlib
import json
import socket
import sys

import msgpack
from websockets.sync.client import connect


def rpc_stats(addr: str) -> dict:
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(msgpack.packb([0, 1, "stats", []]))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            data = s.recv(65536)
            if not data:
                raise SystemExit("rpc closed")
            unpacker.feed(data)
            for msg in unpacker:
                return msg[3]


def main() -> None:
    url, n, count, rpc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    clients = [connect(url, open_timeout=10, max_size=2**24) for _ in range(n)]
    ext = clients[0].response.headers.get("Sec-WebSocket-Extensions", "")
    print("ready " + ext, flush=True)
    for i, ws in enumerate(clients):
        got = []
        for _ in range(count):
            m = ws.recv(timeout=30)
            kind = "text" if isinstance(m, str) else "binary"
            raw = m.encode() if isinstance(m, str) else m
            got.append([kind, len(raw), hashlib.sha256(raw).hexdigest()])
        print(f"got {i} {json.dumps(got)}", flush=True)
    print("stats " + json.dumps(rpc_stats(rpc)), flush=True)
    for ws in clients:
        ws.close()


if __name__ == "__main__":
    main()
