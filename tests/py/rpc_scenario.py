#!/usr/bin/env python3
"""MessagePack-RPC against a running wsbroadcaster, with real clients on both
sides: the Python `msgpack` package over a raw TCP socket as the caller (the
wire format Ruby's msgpack-rpc gem sends: [0, msgid, method, params] and
[2, method, params]) and Python `websockets` subscribers.

usage: python3 tests/py/rpc_scenario.py WS_BASE RPC_HOST:PORT MAX_MESSAGE

The server must run with --announce-id and --max-message MAX_MESSAGE.
Prints one line per step and `ok` at the end; any failure raises (exit 1).
Every wait is bounded by a timeout.
"""

import json
import socket
import sys
import time

import msgpack
from websockets.sync.client import connect

TIMEOUT = 10.0


def step(name):
    print(name, flush=True)


class Sub:
    """A websockets subscriber that learned its id from the greeting."""

    def __init__(self, url):
        self.ws = connect(url, proxy=None, open_timeout=TIMEOUT, ping_interval=None)
        greeting = json.loads(self.ws.recv(timeout=TIMEOUT))
        assert set(greeting) == {"id"}, greeting
        self.id = greeting["id"]

    def recv(self, timeout=TIMEOUT):
        return self.ws.recv(timeout=timeout)

    def nothing(self):
        try:
            got = self.ws.recv(timeout=0.3)
        except TimeoutError:
            return
        raise AssertionError(f"{self.id}: unexpected message {got!r}")


class Rpc:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def read(self):
        """The next decoded message from the server."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for msg in self.unpacker:
                return msg
            if time.monotonic() > deadline:
                raise TimeoutError("no response")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the RPC connection")
            self.unpacker.feed(chunk)

    def request(self, method, *params):
        msgid = self.next_id
        self.next_id += 1
        self.send_raw(msgpack.packb([0, msgid, method, list(params)], use_bin_type=True))
        resp = self.read()
        assert resp[0] == 1 and resp[1] == msgid, resp
        return resp[2], resp[3]

    def call(self, method, *params):
        err, result = self.request(method, *params)
        assert err is None, f"{method}: {err}"
        return result

    def closed(self):
        """True once the server has closed the connection (EOF or reset)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
            if not chunk:
                return True
            self.unpacker.feed(chunk)
        return False


def receipt(queued):
    return {"queued": queued, "skipped_slow": 0, "skipped_closing": 0, "relayed": False}


def main():
    ws_base, rpc_addr, max_message = sys.argv[1], sys.argv[2], int(sys.argv[3])
    a = Sub(ws_base + "?channel=a")
    b = Sub(ws_base + "?channel=b")
    n = Sub(ws_base)
    subs = [a, b, n]
    rpc = Rpc(rpc_addr)

    step("push_data: str to everyone as text")
    assert rpc.call("push_data", "hello all") == receipt(3)
    for s in subs:
        assert s.recv() == "hello all"

    step("push_data: bin to everyone as binary")
    assert rpc.call("push_data", b"\x00\xffbin") == receipt(3)
    for s in subs:
        assert s.recv() == b"\x00\xffbin"

    step("publish: one channel only")
    assert rpc.call("publish", "a", "to a") == receipt(1)
    assert a.recv() == "to a"
    assert rpc.call("publish", "nobody", "x") == receipt(0)

    step("send: exactly one connection")
    assert rpc.call("send", b.id, "just b") == receipt(1)
    assert b.recv() == "just b"
    node = n.id.split(".")[0]
    assert rpc.call("send", node + ".zzzz", "x") == receipt(0)
    for s in subs:
        s.nothing()

    step("connections")
    conns = rpc.call("connections")
    by_id = {c["id"]: c for c in conns}
    assert set(by_id) == {a.id, b.id, n.id}, conns
    assert by_id[a.id]["channels"] == ["a"]
    assert by_id[b.id]["channels"] == ["b"]
    assert by_id[n.id]["channels"] == []
    for c in conns:
        assert set(c) == {"id", "peer", "channels", "queued_bytes"}, c
        assert c["peer"].startswith("127.0.0.1:"), c
        assert isinstance(c["queued_bytes"], int)

    step("stats")
    stats = rpc.call("stats")
    assert stats["connections_opened"] >= 3, stats
    assert stats["messages_published"] >= 5, stats
    assert stats["rpc_calls"] >= 6, stats

    step("notification: delivered, no response")
    rpc.send_raw(msgpack.packb([2, "push_data", ["note"]]))
    for s in subs:
        assert s.recv() == "note"
    # The next response on the wire is the next request's: nothing was
    # written for the notification.
    assert rpc.call("publish", "b", "after note") == receipt(1)
    assert b.recv() == "after note"

    step("pipelined: three requests in one write, three responses in order")
    batch = b"".join(
        msgpack.packb([0, 100 + i, "publish", ["a", f"p{i}"]]) for i in range(3)
    )
    rpc.send_raw(batch)
    for i in range(3):
        resp = rpc.read()
        assert resp == [1, 100 + i, None, receipt(1)], resp
        assert a.recv() == f"p{i}"

    step("a request split across many writes")
    whole = msgpack.packb([0, 200, "publish", ["b", "x" * 3000]])
    for i in range(0, len(whole), 7):
        rpc.send_raw(whole[i : i + 7])
        if i < 70:
            time.sleep(0.01)
    assert rpc.read() == [1, 200, None, receipt(1)]
    assert b.recv() == "x" * 3000

    step("errors: answered with a message and a nil result")
    for method, params, want in [
        ("nope", [], "unknown method"),
        ("push_data", [], "takes 1 parameter"),
        ("push_data", [1], "data must be a str"),
        ("publish", ["bad name", "x"], "channel must be"),
        ("send", ["not-an-id", "x"], "conn_id must be"),
        ("connections", [1], "takes 0 parameter"),
    ]:
        err, result = rpc.request(method, *params)
        assert isinstance(err, str) and want in err, (method, err)
        assert result is None
    # A str that is not UTF-8 (hand-encoded: fixstr of length 1, byte 0xff).
    raw = b"\x94" + msgpack.packb([0, 300, "push_data"])[1:] + b"\x91\xa1\xff"
    rpc.send_raw(raw)
    resp = rpc.read()
    assert resp[1] == 300 and "not valid UTF-8" in resp[2] and resp[3] is None, resp
    # Not a request, but a msgid can be found: an error response.
    rpc.send_raw(msgpack.packb([0, 301, "stats"]))
    resp = rpc.read()
    assert resp[1] == 301 and isinstance(resp[2], str), resp
    # The connection still works after errors.
    assert rpc.call("publish", "nobody", "x") == receipt(0)
    for s in subs:
        s.nothing()

    step("malformed: no msgid to answer, the RPC connection is closed")
    rpc.send_raw(msgpack.packb("just a string"))
    assert rpc.closed(), "the server should close the connection"
    rpc = Rpc(rpc_addr)
    rpc.send_raw(msgpack.packb([0, "not-an-int", "stats", []]))
    assert rpc.closed()
    rpc = Rpc(rpc_addr)
    rpc.send_raw(b"\x91" * 100)  # nested far deeper than any request
    assert rpc.closed()

    step("a request over --max-message + 1 KiB closes the connection")
    rpc = Rpc(rpc_addr)
    big = msgpack.packb([0, 400, "push_data", [b"y" * (max_message + 2048)]])
    try:
        rpc.send_raw(big)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert rpc.closed()
    for s in subs:
        s.nothing()

    step("the server keeps serving")
    rpc = Rpc(rpc_addr)
    assert rpc.call("push_data", "still here") == receipt(3)
    for s in subs:
        assert s.recv() == "still here"
    stats = rpc.call("stats")
    assert stats["rpc_errors"] >= 9, stats

    step("the RPC client closing after its requests still gets its answers")
    rpc = Rpc(rpc_addr)
    rpc.send_raw(msgpack.packb([0, 500, "publish", ["a", "last"]]))
    rpc.sock.shutdown(socket.SHUT_WR)
    assert rpc.read() == [1, 500, None, receipt(1)]
    assert a.recv() == "last"
    assert rpc.closed()

    for s in subs:
        s.ws.close()
    print("ok", flush=True)


if __name__ == "__main__":
    main()
