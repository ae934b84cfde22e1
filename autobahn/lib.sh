# shellcheck shell=bash
# What run-fuzzingclient.sh, run-fuzzingserver.sh and run.sh share. Sourced
# (after `set -euo pipefail` and HERE=<this folder>), never run on its own.

log() { printf '[autobahn] %s\n' "$*" >&2; }

# The comment block at the top of the running script, as its --help.
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    python3 -c 'import socket,sys
try: socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError: sys.exit(1)' "$1"
}

# Sets WSTEST (default $AUTOBAHN_HOME/wstest, AUTOBAHN_HOME default /opt/autobahn),
# installing the testsuite with install.sh when it is missing; exit 4 when that fails.
find_wstest() {
    AUTOBAHN_HOME="${AUTOBAHN_HOME:-/opt/autobahn}"
    WSTEST="${WSTEST:-$AUTOBAHN_HOME/wstest}"
    if ! [ -x "$WSTEST" ]; then
        log "wstest not found at $WSTEST; installing into $AUTOBAHN_HOME"
        WSTEST="$(AUTOBAHN_HOME="$AUTOBAHN_HOME" bash "$HERE/install.sh" | sed -n 's/^wstest: //p' | tail -n1)"
        [ -x "$WSTEST" ] || { log "install failed"; exit 4; }
    fi
}

# Removes the results of an earlier run from report directory $1, so that they
# are never summarized as this run's.
clear_reports() {
    find "$1" -maxdepth 1 -type f \( -name 'index.json' -o -name 'index.html' \
        -o -name '*_case_*.json' -o -name '*_case_*.html' \) -delete
}

# build_spec KIND TEMPLATE URL CASES AGENT EXCLUDE SKIP_DEFLATE REPORT_DIR (spec.py):
# writes the spec into the report directory and sets AGENT (fuzzingclient: the
# one in the spec) and REPORT_DIR; exit 2 when the template cannot be used.
# shellcheck disable=SC2034  # AGENT and REPORT_DIR are for the caller
build_spec() {
    local resolved agent
    resolved=$(python3 "$HERE/spec.py" "$@") || { log "cannot build the spec from $2"; exit 2; }
    IFS=$'\t' read -r REPORT_DIR agent <<<"$resolved"
    [ -z "$agent" ] || AGENT="$agent"
}

# While process $1 runs, logs each new case group wstest's log $2 reaches, with
# the seconds since $3 (a `date +%s` stamp).
follow_groups() {
    local pid="$1" wslog="$2" start="$3" group="" cur g
    while kill -0 "$pid" 2>/dev/null; do
        cur=$(tail -n 20 "$wslog" 2>/dev/null | sed -n 's/^Running test case ID \([0-9.]*\) .*/\1/p' | tail -n1)
        g="${cur%%.*}"
        if [ -n "$g" ] && [ "$g" != "$group" ]; then
            log "$(printf '+%4ds' $(($(date +%s) - start))) group $g (case $cur)"
            group="$g"
        fi
        sleep 1
    done
}

# summarize REPORT_DIR [ARGS...]: summarize.py with ARGS and the bar the
# AUTOBAHN_STRICT, AUTOBAHN_FAIL_UNIMPLEMENTED and AUTOBAHN_SUMMARY_ARGS
# variables set; returns its exit status.
summarize() {
    local args=("$@")
    [ "${AUTOBAHN_STRICT:-0}" = 1 ] && args+=(--strict)
    [ "${AUTOBAHN_FAIL_UNIMPLEMENTED:-0}" = 1 ] && args+=(--fail-unimplemented)
    # shellcheck disable=SC2206  # word splitting of the extra flags is intended
    [ -n "${AUTOBAHN_SUMMARY_ARGS:-}" ] && args+=($AUTOBAHN_SUMMARY_ARGS)
    python3 "$HERE/summarize.py" "${args[@]}"
}
