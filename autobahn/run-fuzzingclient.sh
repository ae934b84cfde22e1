#!/usr/bin/env bash
# Run Autobahn's fuzzingclient (wstest plays the client) against a WebSocket
# SERVER under test that is already listening on loopback, then summarize.
#
# usage: run-fuzzingclient.sh URL [CASES]
#   URL    ws://127.0.0.1:PORT[/path]  (loopback only: 127.0.0.0/8, localhost, [::1])
#   CASES  comma-separated case patterns, or a JSON list (default: the template's)
#          e.g. '1.*,2.*'   '9.1.1'   '["5.*","6.4.*"]'
#
# The spec is built from the checked-in template fuzzingclient.json (beside this
# script: groups 1-10, permessage-deflate groups 12.*/13.* excluded) with outdir,
# url and agent filled in, and written to $AUTOBAHN_REPORT_DIR/fuzzingclient.json.
#
# Environment (all optional):
#   AUTOBAHN_AGENT        agent name in the report          (default: the template's)
#   AUTOBAHN_EXCLUDE      comma-separated patterns to exclude, added to the template's
#   AUTOBAHN_SKIP_DEFLATE 1 = make sure 12.*,13.* are excluded; 0 = run them too
#                         (default: as the template says, i.e. excluded)
#   AUTOBAHN_SPEC_TEMPLATE  spec template (default: fuzzingclient.json beside this script)
#   AUTOBAHN_REPORT_DIR   report directory (default: the template's outdir, relative
#                         to the template's folder, i.e. autobahn/reports/server)
#   AUTOBAHN_STRICT=1     summary also fails on NON-STRICT and non-OK behaviorClose
#   AUTOBAHN_FAIL_UNIMPLEMENTED=1  summary also fails on UNIMPLEMENTED
#   AUTOBAHN_SUMMARY_ARGS extra arguments for summarize.py (e.g. "--depth 2 --wide")
#   AUTOBAHN_TIMEOUT      seconds before wstest is stopped          (default: 5400)
#   AUTOBAHN_WAIT         seconds to wait for the server's port     (default: 15)
#   AUTOBAHN_HOME / WSTEST  where wstest is; installed via install.sh if missing
#
# Exit status: 0 when the bar is met; 1 when a case is below the bar or cases are
# missing; 2 bad arguments / non-loopback URL; 3 nothing listening; 4 install
# failed; wstest's own status (124 = timed out) if it failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=autobahn/lib.sh
. "$HERE/lib.sh"

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    usage
    exit 2
fi
URL="$1"
CASES="${2:-}"
TEMPLATE="${AUTOBAHN_SPEC_TEMPLATE:-$HERE/fuzzingclient.json}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-5400}"
WAIT="${AUTOBAHN_WAIT:-15}"

# --- the URL must point at loopback; wait for the port -----------------------
HOSTPORT=$(python3 - "$URL" <<'EOF'
import ipaddress, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
if u.scheme not in ("ws", "wss") or not u.hostname:
    sys.exit("URL must be ws://HOST:PORT[/path], got %r" % sys.argv[1])
h = u.hostname
ok = h == "localhost"
if not ok:
    try:
        ok = ipaddress.ip_address(h).is_loopback
    except ValueError:
        ok = False
if not ok:
    sys.exit("refusing non-loopback target %r: Autobahn runs here only against 127.0.0.0/8, localhost or [::1]" % h)
print(h, u.port or (443 if u.scheme == "wss" else 80))
EOF
) || exit 2
read -r HOST PORT <<<"$HOSTPORT"

python3 - "$HOST" "$PORT" "$WAIT" <<'EOF' || { log "nothing listening on $HOST:$PORT after ${WAIT}s"; exit 3; }
import socket, sys, time
host, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + wait
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        sys.exit(0)
    except OSError:
        if time.time() > deadline:
            sys.exit(1)
        time.sleep(0.2)
EOF

# --- wstest ------------------------------------------------------------------
find_wstest

# --- spec, from the template ---------------------------------------------------
build_spec fuzzingclient "$TEMPLATE" "$URL" "$CASES" "${AUTOBAHN_AGENT:-}" "${AUTOBAHN_EXCLUDE:-}" \
    "${AUTOBAHN_SKIP_DEFLATE:-}" "${AUTOBAHN_REPORT_DIR:-}"
SPEC="$REPORT_DIR/fuzzingclient.json"
clear_reports "$REPORT_DIR"

# --- run, bounded, with per-group progress ------------------------------------
LOG="$REPORT_DIR/wstest.log"
START=$(date +%s)
( cd "$REPORT_DIR" && exec timeout -k 20 "$TIMEOUT" "$WSTEST" -m fuzzingclient -s "$SPEC" ) >"$LOG" 2>&1 &
WSPID=$!
# shellcheck disable=SC2317  # only called from the traps
cleanup() { if kill -0 "$WSPID" 2>/dev/null; then kill "$WSPID" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

follow_groups "$WSPID" "$LOG" "$START"
set +e
wait "$WSPID"; rc=$?
set -e
END=$(date +%s)
trap - EXIT INT TERM

ELAPSED=$((END - START))
log "wstest finished (exit $rc) in $((ELAPSED / 60))m$((ELAPSED % 60))s; log: $LOG"
if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && log "wstest hit AUTOBAHN_TIMEOUT=${TIMEOUT}s"
    tail -n 30 "$LOG" >&2
fi

# wstest announces how many cases it will run; fewer in the report fails the bar.
EXPECT=$(sed -n 's/^Ok, will run \([0-9]*\) test cases.*/\1/p' "$LOG" | head -n1)
set +e
summarize "$REPORT_DIR" --agent "$AGENT" ${EXPECT:+--expect "$EXPECT"}
src=$?
set -e
log "report: $REPORT_DIR/index.html (wall time ${ELAPSED}s)"
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
exit "$src"
