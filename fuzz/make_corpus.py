#!/usr/bin/env python3
"""Writes the hand-made seed corpora under fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/make_corpus.py. The files are small and
deterministic, so re-running it gives the same bytes.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])
ZERO_KEY = bytes(4)  # masked, but the payload stays readable for the fuzzer


def frame(opcode, payload=b"", fin=True, key=KEY, rsv=0, length_form=None):
    """A frame as a client sends it (masked unless key is None)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if key is not None else 0
    n = len(payload)
    form = length_form or (7 if n <= 125 else 16 if n <= 0xFFFF else 64)
    if form == 7:
        head = bytes([b0, mask_bit | n])
    elif form == 16:
        head = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    if key is None:
        return head + payload
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def header(opcode, n, key=KEY, fin=True, form=None):
    return frame(opcode, b"\0" * n, fin=fin, key=key, length_form=form)[: -n or None]


# ----- frame_parser: headers (with a few payload bytes) -----
write("frame_parser", "text_7bit_masked", frame(1, b"Hello"))
write("frame_parser", "text_7bit_unmasked", frame(1, b"Hello", key=None))
write("frame_parser", "binary_16bit", header(2, 256, key=None))
write("frame_parser", "binary_16bit_masked", header(2, 300))
write("frame_parser", "binary_64bit", header(2, 65536, key=None))
write("frame_parser", "binary_64bit_masked", header(2, 70000))
write("frame_parser", "nonminimal_16bit", frame(2, b"abc", key=None, length_form=16))
write("frame_parser", "nonminimal_64bit", frame(2, b"abc", length_form=64))
write("frame_parser", "ping", frame(9, b"ping"))
write("frame_parser", "close", frame(8, struct.pack(">H", 1000) + b"bye"))
write("frame_parser", "continuation_nofin", frame(0, b"x", fin=False))
write("frame_parser", "rsv_bits", frame(1, b"x", rsv=4))

# ----- handshake_request: [split selector] + request bytes -----
GOOD = (
    b"GET /chat?channel=news HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
write("handshake_request", "rfc_sample", b"\x80" + GOOD)
write("handshake_request", "rfc_sample_with_frame", b"\xf0" + GOOD + frame(1, b"Hello"))
write("handshake_request", "minimal_lf_only",
      b"\x10GET / HTTP/1.1\nHost: h\nUpgrade: websocket\nConnection: keep-alive, Upgrade\n"
      b"Sec-WebSocket-Key: bmxxAd1YiaYzLLnDb9pAEg==\nSec-WebSocket-Version: 13\n\n")
write("handshake_request", "version_8", b"\x40" + GOOD.replace(b"Version: 13", b"Version: 8"))
write("handshake_request", "plain_get", b"\x00GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
write("handshake_request", "post_upgrade", b"\x20" + GOOD.replace(b"GET ", b"POST "))

# ----- connection_server: [k=0 read sizes] + client stream -----
# Each also in a variant with read sizes 1, 7, 300 (k=3).
def conn(name, stream):
    write("connection_server", name, b"\x00" + stream)
    write("connection_server", name + "_split", b"\x03" + struct.pack(">HHH", 1, 7, 300) + stream)


conn("text_7bit", frame(1, b"Hello", key=ZERO_KEY))
conn("text_utf8", frame(1, "κόσμε 𝄞".encode(), key=KEY))
conn("binary_16bit", frame(2, bytes(range(256)) * 2, key=ZERO_KEY))
conn("binary_4096", frame(2, b"\xab" * 4096))
conn("fragmented_with_ping",
     frame(1, b"Hel", fin=False, key=ZERO_KEY) + frame(9, b"ping", key=ZERO_KEY)
     + frame(0, b"lo, ", fin=False, key=ZERO_KEY) + frame(10, b"pong", key=ZERO_KEY)
     + frame(0, b"world", key=ZERO_KEY))
conn("fragmented_near_limit",
     frame(2, b"a" * 3000, fin=False, key=ZERO_KEY) + frame(0, b"b" * 3000, fin=False, key=ZERO_KEY)
     + frame(0, b"c" * 2192, key=ZERO_KEY))
conn("close_normal", frame(1, b"hi", key=ZERO_KEY) + frame(8, struct.pack(">H", 1000) + b"bye", key=ZERO_KEY))
conn("close_empty", frame(8, b"", key=KEY))
conn("close_then_data", frame(8, struct.pack(">H", 4000), key=ZERO_KEY) + frame(1, b"ignored", key=ZERO_KEY))
conn("unmasked", frame(1, b"Hello", key=None))
conn("invalid_utf8", frame(1, b"ok\xed\xa0\x80", key=ZERO_KEY))
conn("nonminimal_length_ping", frame(9, b"abc", key=ZERO_KEY, length_form=16))
conn("empty_messages", frame(1, b"", key=ZERO_KEY) + frame(2, b"", fin=False, key=ZERO_KEY) + frame(0, b"", key=ZERO_KEY))

# ----- connection_deflate: [params] [k=0 | k=3 read sizes] + client stream -----
import zlib


def deflate_messages(messages, wbits=15, context_takeover=True):
    """Compressed payloads as RFC 7692 §7.2.1 says: sync flush, tail removed."""
    out = []
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    for m in messages:
        if not context_takeover:
            c = zlib.compressobj(9, zlib.DEFLATED, -wbits)
        data = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        out.append(data[:-4])
    return out


def defl(name, params, stream):
    write("connection_deflate", name, bytes([params, 0]) + stream)
    write("connection_deflate", name + "_split",
          bytes([params, 3]) + struct.pack(">HHH", 1, 7, 300) + stream)


TAKEOVER = 0x07          # context takeover both ways, client window 15
NO_TAKEOVER = 0xC7       # no context takeover, window 15
RSV1 = 4
hello, hello2 = deflate_messages([b"Hello", b"Hello"])
defl("rfc7692_hello", TAKEOVER, frame(1, hello, key=ZERO_KEY, rsv=RSV1))
defl("context_takeover_twice", TAKEOVER,
     frame(1, hello, key=ZERO_KEY, rsv=RSV1) + frame(1, hello2, key=ZERO_KEY, rsv=RSV1))
a, b = deflate_messages([b"abc" * 50, b"abc" * 50], context_takeover=False)
defl("no_context_takeover", NO_TAKEOVER,
     frame(2, a, key=ZERO_KEY, rsv=RSV1) + frame(2, b, key=ZERO_KEY, rsv=RSV1))
(frag,) = deflate_messages(["κόσμε ".encode() * 40])
defl("fragmented_with_ping", TAKEOVER,
     frame(1, frag[:10], fin=False, key=ZERO_KEY, rsv=RSV1) + frame(9, b"ping", key=ZERO_KEY)
     + frame(0, frag[10:], key=ZERO_KEY))
(bomb,) = deflate_messages([b"\0" * 100000])
defl("bomb_over_limit", TAKEOVER, frame(2, bomb, key=ZERO_KEY, rsv=RSV1))
(near,) = deflate_messages([b"x" * 8192])
defl("exactly_the_limit", NO_TAKEOVER, frame(2, near, key=KEY, rsv=RSV1))
defl("uncompressed_message", TAKEOVER, frame(1, b"plain", key=ZERO_KEY) + frame(8, b"\x03\xe8", key=ZERO_KEY))
defl("rsv1_on_continuation", TAKEOVER,
     frame(1, hello, fin=False, key=ZERO_KEY, rsv=RSV1) + frame(0, b"", key=ZERO_KEY, rsv=RSV1))
defl("window_9", 0x41, frame(1, deflate_messages([b"windowed " * 30], wbits=9)[0], key=ZERO_KEY, rsv=RSV1))
defl("empty_compressed", TAKEOVER, frame(1, b"", key=ZERO_KEY, rsv=RSV1))
