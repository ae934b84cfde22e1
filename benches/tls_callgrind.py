#!/usr/bin/env python3
"""User-space instructions the server spends per delivered message, ws:// vs
wss://, counted by callgrind (repeatable on a busy machine).

usage: python3 benches/tls_callgrind.py [SIZE] [CLIENTS]   (defaults 512 200)
       binary: target/release/wsbroadcaster, or $WSB

For each scheme the server runs under `valgrind --tool=callgrind`; counting is
zeroed once every bench client is connected (so TLS handshakes are left out)
and dumped when the bench has finished (publish, drain, close). Two runs per
scheme, with 20 and 120 messages at 10/s over the Unix ingress; the
difference divided by the 100 extra messages times CLIENTS is the cost of a
delivery alone (the fixed costs, closing included, cancel out). Kernel work
(the write to each socket) is not counted. Needs valgrind and the openssl CLI.
"""
import glob, os, re, signal, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("WSB", os.path.join(ROOT, "target/release/wsbroadcaster"))
SIZE = sys.argv[1] if len(sys.argv) > 1 else "512"
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 200
RATE = 10


def run(tmp, scheme, messages):
    out = os.path.join(tmp, f"cg-{scheme}-{messages}.out")
    sock = os.path.join(tmp, f"{scheme}-{messages}.sock")
    tls = ["--tls-cert", f"{tmp}/cert.pem", "--tls-key", f"{tmp}/key.pem"] if scheme == "wss" else []
    srv = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", BIN, "serve",
         "--ws", "127.0.0.1:0", "--udp", "off", "--unix", sock, "--ping-interval", "0",
         "--idle-timeout", "0", "--log-level", "warn"] + tls,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stdout:
            m = re.match(r"listening wss? 127\.0\.0\.1:(\d+)", line)
            port = m.group(1) if m else port
            if line.strip() == "ready":
                break
        bench = subprocess.Popen(
            [BIN, "bench", "--url", f"{scheme}://localhost:{port}/", "--tls-ca", f"{tmp}/cert.pem",
             "-n", str(CLIENTS), "--publish", f"unix:{sock}", "--rate", str(RATE),
             "--size", SIZE, "--duration", f"{messages * 1000 // RATE}ms", "--drain", "30s",
             "--connect-concurrency", "10", "--connect-timeout", "120s", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        zeroed = False
        for line in bench.stderr:
            if not zeroed and line.startswith(f"connected {CLIENTS}/{CLIENTS} in"):
                subprocess.run(["callgrind_control", "-z", str(srv.pid)], check=True, capture_output=True)
                zeroed = True
        result = bench.stdout.read()
        assert bench.wait() == 0 and zeroed, result
        assert f'"lost":0,' in result, result
        subprocess.run(["callgrind_control", "-d", str(srv.pid)], check=True, capture_output=True)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=120)
    dump = sorted(glob.glob(out + ".*"), key=os.path.getmtime)[0]
    with open(dump) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


with tempfile.TemporaryDirectory(prefix="wsb-tls-cg.") as tmp:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"],
        check=True, capture_output=True)
    per = {}
    for scheme in ("ws", "wss"):
        few, many = run(tmp, scheme, 20), run(tmp, scheme, 120)
        per[scheme] = (many - few) / (100 * CLIENTS)
        print(f"{scheme:>3}: {few:,} Ir (20 messages), {many:,} Ir (120 messages): "
              f"{per[scheme]:,.0f} instructions per delivery ({SIZE} bytes, {CLIENTS} clients)")
    print(f"wss - ws: {per['wss'] - per['ws']:,.0f} instructions per delivery; "
          f"wss/ws {per['wss'] / per['ws']:.1f}x (user space only)")
