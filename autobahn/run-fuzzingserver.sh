#!/usr/bin/env bash
# Run Autobahn's fuzzingserver (wstest plays the server) to test a WebSocket
# CLIENT implementation, on ws://127.0.0.1:$AUTOBAHN_PORT (default 9001).
#
# usage: run-fuzzingserver.sh                       serve until Ctrl-C / AUTOBAHN_TIMEOUT
#        run-fuzzingserver.sh CLIENT_CMD [ARGS...]   serve, run the client, report, stop
#        run-fuzzingserver.sh --self-test            client = wstest's own testeeclient
#
# The client command runs with these variables set:
#   AUTOBAHN_URL=ws://127.0.0.1:9001   AUTOBAHN_AGENT=<agent>   AUTOBAHN_CASE_COUNT=<N>
# and must, for case = 1..N, connect to
#   $AUTOBAHN_URL/runCase?case=<case>&agent=<agent>
# echo every text/binary message back unchanged until the connection closes, and
# finally open $AUTOBAHN_URL/updateReports?agent=<agent> (this script also
# requests updateReports after the client exits, so a crashed client still
# leaves a report of the cases it ran). ($AUTOBAHN_URL/getCaseCount returns N.)
#
# The spec is built from the checked-in template fuzzingserver.json (beside this
# script: groups 1-10, permessage-deflate groups 12.*/13.* excluded) with outdir
# and url filled in, and written to $AUTOBAHN_REPORT_DIR/fuzzingserver.json.
#
# Environment (all optional):
#   AUTOBAHN_PORT         fuzzingserver port                       (default: 9001)
#   AUTOBAHN_AGENT        agent name the client reports under
#                         (default: wsbroadcaster-client; --self-test: AutobahnPython-testeeclient)
#   AUTOBAHN_CASES        comma-separated patterns or JSON list    (default: the template's)
#   AUTOBAHN_EXCLUDE      comma-separated patterns to exclude, added to the template's
#   AUTOBAHN_SKIP_DEFLATE 1 = make sure 12.*,13.* are excluded; 0 = run them too
#                         (default: as the template says, i.e. excluded)
#   AUTOBAHN_SPEC_TEMPLATE  spec template (default: fuzzingserver.json beside this script)
#   AUTOBAHN_REPORT_DIR   report directory (default: the template's outdir, relative
#                         to the template's folder, i.e. autobahn/reports/client)
#   AUTOBAHN_STRICT=1     summary also fails on NON-STRICT and non-OK behaviorClose
#   AUTOBAHN_FAIL_UNIMPLEMENTED=1  summary also fails on UNIMPLEMENTED
#   AUTOBAHN_SUMMARY_ARGS extra arguments for summarize.py
#   AUTOBAHN_TIMEOUT      seconds before server and client are stopped (default: 5400)
#   AUTOBAHN_WEBPORT      wstest's web UI port; 0 = off (default: 0; binds all interfaces)
#   AUTOBAHN_HOME / WSTEST  where wstest is; installed via install.sh if missing
#
# Exit status (client mode): that of summarize.py (0 = bar met, 1 = not met,
# 2 = no report), else the client's if it failed; 3 port busy; 4 install failed
# or the fuzzingserver did not start.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[autobahn] %s\n' "$*" >&2; }

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
fi

PORT="${AUTOBAHN_PORT:-9001}"
URL="ws://127.0.0.1:$PORT"
AGENT="${AUTOBAHN_AGENT:-wsbroadcaster-client}"
TEMPLATE="${AUTOBAHN_SPEC_TEMPLATE:-$HERE/fuzzingserver.json}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-5400}"
WEBPORT="${AUTOBAHN_WEBPORT:-0}"
CTL=(python3 "$HERE/fuzzingserver-ctl.py" "$URL")

port_open() {
    python3 -c 'import socket,sys
try: socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError: sys.exit(1)' "$PORT"
}

# --- wstest ------------------------------------------------------------------
AUTOBAHN_HOME="${AUTOBAHN_HOME:-/opt/autobahn}"
WSTEST="${WSTEST:-$AUTOBAHN_HOME/wstest}"
if ! [ -x "$WSTEST" ]; then
    log "wstest not found at $WSTEST; installing into $AUTOBAHN_HOME"
    WSTEST="$(AUTOBAHN_HOME="$AUTOBAHN_HOME" bash "$HERE/install.sh" | sed -n 's/^wstest: //p' | tail -n1)"
    [ -x "$WSTEST" ] || { log "install failed"; exit 4; }
fi

if [ "${1:-}" = --self-test ]; then
    shift
    [ -z "${AUTOBAHN_AGENT:-}" ] && AGENT=AutobahnPython-testeeclient
    set -- "$WSTEST" -m testeeclient -w "$URL" -i "$AGENT"
fi

if port_open; then
    log "127.0.0.1:$PORT is already in use; set AUTOBAHN_PORT"
    exit 3
fi

# --- spec, from the template ---------------------------------------------------
# Prints the report dir; it is created and the spec written into it.
REPORT_DIR=$(python3 - "$TEMPLATE" "$URL" "${AUTOBAHN_CASES:-}" "${AUTOBAHN_EXCLUDE:-}" \
    "${AUTOBAHN_SKIP_DEFLATE:-}" "${AUTOBAHN_REPORT_DIR:-}" <<'EOF'
import json, os, sys
template, url, cases, exclude, skip_deflate, report_dir = sys.argv[1:7]
DEFLATE = ["12.*", "13.*"]  # permessage-deflate groups (RFC 7692)
def patterns(s):
    s = s.strip()
    if s.startswith("["):
        return json.loads(s)
    return [p.strip() for p in s.split(",") if p.strip()]
with open(template) as f:
    spec = json.load(f)
spec.pop("_comment", None)
# outdir: explicit, else the template's, relative to the template's folder.
outdir = report_dir or os.path.join(os.path.dirname(os.path.abspath(template)),
                                    spec.get("outdir", "reports/client"))
outdir = os.path.abspath(outdir)
os.makedirs(outdir, exist_ok=True)
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
with open(os.path.join(outdir, "fuzzingserver.json"), "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
sys.stderr.write("[autobahn] spec %s/fuzzingserver.json (from %s): cases=%s exclude=%s url=%s\n"
                 % (outdir, template, ",".join(spec["cases"]), ",".join(ex), url))
print(outdir)
EOF
) || { log "cannot build the spec from $TEMPLATE"; exit 2; }
SPEC="$REPORT_DIR/fuzzingserver.json"
# Stale results from an earlier run must not be summarized as this one's.
find "$REPORT_DIR" -maxdepth 1 -type f \( -name 'index.json' -o -name 'index.html' \
    -o -name '*_case_*.json' -o -name '*_case_*.html' \) -delete

# --- start the fuzzingserver (loopback only), bounded --------------------------
LOG="$REPORT_DIR/wstest.log"
( cd "$REPORT_DIR" && WSTEST_INTERFACE=127.0.0.1 exec timeout -k 20 "$TIMEOUT" \
    "$WSTEST" -m fuzzingserver -s "$SPEC" -u "$WEBPORT" ) >"$LOG" 2>&1 &
SRVPID=$!
CLIPID=""
stop_all() {
    if [ -n "$CLIPID" ] && kill -0 "$CLIPID" 2>/dev/null; then kill "$CLIPID" 2>/dev/null || true; fi
    if kill -0 "$SRVPID" 2>/dev/null; then
        kill "$SRVPID" 2>/dev/null || true
        wait "$SRVPID" 2>/dev/null || true
    fi
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

for _ in $(seq 1 150); do
    port_open && break
    kill -0 "$SRVPID" 2>/dev/null || break
    sleep 0.2
done
if ! port_open; then
    log "fuzzingserver did not start; log:"
    cat "$LOG" >&2
    exit 4
fi
COUNT="$("${CTL[@]}" count)"
log "fuzzingserver (pid $SRVPID) on $URL: $COUNT cases; log $LOG"

summarize() {
    local args=("$REPORT_DIR")
    [ -n "${1:-}" ] && args+=(--agent "$1" --expect "$COUNT")
    [ "${AUTOBAHN_STRICT:-0}" = 1 ] && args+=(--strict)
    [ "${AUTOBAHN_FAIL_UNIMPLEMENTED:-0}" = 1 ] && args+=(--fail-unimplemented)
    # shellcheck disable=SC2206  # word splitting of the extra flags is intended
    [ -n "${AUTOBAHN_SUMMARY_ARGS:-}" ] && args+=($AUTOBAHN_SUMMARY_ARGS)
    python3 "$HERE/summarize.py" "${args[@]}"
}

# --- interactive mode: just serve ----------------------------------------------
if [ $# -eq 0 ]; then
    cat >&2 <<EOF
[autobahn] Serving. Point the client under test at $URL:
             $URL/getCaseCount                      -> one text message: "$COUNT"
             $URL/runCase?case=N&agent=AGENT        for N = 1..$COUNT, echo every message back
             $URL/updateReports?agent=AGENT         writes $REPORT_DIR/index.json
           then: python3 $HERE/summarize.py $REPORT_DIR
           Ctrl-C (or ${TIMEOUT}s) stops the server.
EOF
    finish() {
        stop_all
        trap - EXIT INT TERM
        if [ -f "$REPORT_DIR/index.json" ]; then summarize; else log "no report (no client called updateReports)"; fi
    }
    trap 'finish; exit $?' INT TERM
    set +e
    wait "$SRVPID"
    set -e
    finish
    exit $?
fi

# --- client mode ----------------------------------------------------------------
export AUTOBAHN_URL="$URL" AUTOBAHN_AGENT="$AGENT" AUTOBAHN_CASE_COUNT="$COUNT"
log "client: $* (AUTOBAHN_URL=$URL AUTOBAHN_AGENT=$AGENT); output: $REPORT_DIR/client.log"
START=$(date +%s)
timeout -k 10 "$TIMEOUT" "$@" >"$REPORT_DIR/client.log" 2>&1 &
CLIPID=$!
group=""
while kill -0 "$CLIPID" 2>/dev/null; do
    cur=$(tail -n 20 "$LOG" 2>/dev/null | sed -n 's/^Running test case ID \([0-9.]*\) .*/\1/p' | tail -n1)
    g="${cur%%.*}"
    if [ -n "$g" ] && [ "$g" != "$group" ]; then
        log "$(printf '+%4ds' $(($(date +%s) - START))) group $g (case $cur)"
        group="$g"
    fi
    sleep 1
done
set +e
wait "$CLIPID"; crc=$?
set -e
CLIPID=""
END=$(date +%s)
ELAPSED=$((END - START))
log "client exited ($crc) after $((ELAPSED / 60))m$((ELAPSED % 60))s; its output: $REPORT_DIR/client.log"
if [ "$crc" -ne 0 ]; then
    [ "$crc" -eq 124 ] && log "the client hit AUTOBAHN_TIMEOUT=${TIMEOUT}s"
    tail -n 20 "$REPORT_DIR/client.log" >&2
fi

if kill -0 "$SRVPID" 2>/dev/null; then
    "${CTL[@]}" update "$AGENT" || log "updateReports failed"
    "${CTL[@]}" stop || true
    for _ in $(seq 1 50); do kill -0 "$SRVPID" 2>/dev/null || break; sleep 0.1; done
else
    log "fuzzingserver is gone before updateReports; log tail:"
    tail -n 20 "$LOG" >&2
fi
stop_all
trap - EXIT INT TERM

set +e
summarize "$AGENT"
src=$?
set -e
log "report: $REPORT_DIR/index.html (client wall time ${ELAPSED}s)"
if [ "$src" -ne 0 ]; then exit "$src"; fi
if [ "$crc" -ne 0 ]; then exit "$crc"; fi
exit 0
