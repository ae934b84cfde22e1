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
# shellcheck source=autobahn/lib.sh
. "$HERE/lib.sh"

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    usage
    exit 2
fi

PORT="${AUTOBAHN_PORT:-9001}"
URL="ws://127.0.0.1:$PORT"
AGENT="${AUTOBAHN_AGENT:-wsbroadcaster-client}"
TEMPLATE="${AUTOBAHN_SPEC_TEMPLATE:-$HERE/fuzzingserver.json}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-5400}"
WEBPORT="${AUTOBAHN_WEBPORT:-0}"
CTL=(python3 "$HERE/fuzzingserver-ctl.py" "$URL")

# --- wstest ------------------------------------------------------------------
find_wstest

if [ "${1:-}" = --self-test ]; then
    shift
    [ -z "${AUTOBAHN_AGENT:-}" ] && AGENT=AutobahnPython-testeeclient
    set -- "$WSTEST" -m testeeclient -w "$URL" -i "$AGENT"
fi

if port_open "$PORT"; then
    log "127.0.0.1:$PORT is already in use; set AUTOBAHN_PORT"
    exit 3
fi

# --- spec, from the template ---------------------------------------------------
build_spec fuzzingserver "$TEMPLATE" "$URL" "${AUTOBAHN_CASES:-}" "" "${AUTOBAHN_EXCLUDE:-}" \
    "${AUTOBAHN_SKIP_DEFLATE:-}" "${AUTOBAHN_REPORT_DIR:-}"
SPEC="$REPORT_DIR/fuzzingserver.json"
clear_reports "$REPORT_DIR"

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
    port_open "$PORT" && break
    kill -0 "$SRVPID" 2>/dev/null || break
    sleep 0.2
done
if ! port_open "$PORT"; then
    log "fuzzingserver did not start; log:"
    cat "$LOG" >&2
    exit 4
fi
COUNT="$("${CTL[@]}" count)"
log "fuzzingserver (pid $SRVPID) on $URL: $COUNT cases; log $LOG"

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
        if [ -f "$REPORT_DIR/index.json" ]; then summarize "$REPORT_DIR"; else log "no report (no client called updateReports)"; fi
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
follow_groups "$CLIPID" "$LOG" "$START"
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
summarize "$REPORT_DIR" --agent "$AGENT" --expect "$COUNT"
src=$?
set -e
log "report: $REPORT_DIR/index.html (client wall time ${ELAPSED}s)"
if [ "$src" -ne 0 ]; then exit "$src"; fi
if [ "$crc" -ne 0 ]; then exit "$crc"; fi
exit 0
