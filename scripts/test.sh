#!/usr/bin/env bash
# The project's single test command (Debian 12, as root):
#
#   bash scripts/test.sh                   everything
#   SKIP_AUTOBAHN=1 bash scripts/test.sh   everything but the Autobahn conformance run
#   SKIP_AARCH64=1 bash scripts/test.sh    no aarch64 cross build (tests/aarch64.rs then
#                                          says SKIPPED)
#   bash scripts/test.sh ARGS...           ARGS go to `cargo test --release` (e.g. a filter)
#
# Steps, in order; the first failure stops the run with a non-zero exit:
#   1. scripts/install-test-deps.sh   test dependencies (idempotent; seconds when done)
#   2. cargo build --release          the library and the wsbroadcaster binary
#   3. scripts/aarch64-build.sh       the Raspberry Pi (aarch64) cross build, run under
#                                     qemu by tests/aarch64.rs (skipped with SKIP_AARCH64=1)
#   4. cargo test --release           unit, integration and doc tests; with the release
#                                     build, tests/budget.rs keeps the size and memory
#                                     budget (budget.toml) and tests/small_host.rs runs
#                                     10,000 clients in a 1-CPU, 64 MiB cgroup (docs/deployment.md)
#   5. scripts/check-doc-tests.sh     every test the docs name (docs/protocol.md's
#                                     rule-to-test list and others) still exists
#   6. autobahn/run.sh all            Autobahn testsuite, server (ws:// and wss://) and
#                                     client, strict bar
#                                     (skipped with SKIP_AUTOBAHN=1)
# The last line printed says whether everything passed, or which step failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

START=$(date +%s)
STEP=""
STEP_START=$START
TIMES=()

# Seconds since $1 (a `date +%s` stamp).
since() { echo $(($(date +%s) - $1)); }

# Begin a step: close the previous one's timing, print a banner.
step() {
    [ -n "$STEP" ] && TIMES+=("$STEP $(since "$STEP_START")s")
    STEP="$1"
    STEP_START=$(date +%s)
    printf '\n=== scripts/test.sh: %s ===\n' "$STEP"
}

# On any exit: a clear final line naming the failed step (success prints its own).
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '\nscripts/test.sh: FAILED at step "%s" (exit %s) after %ss\n' "$STEP" "$rc" "$(since "$START")" >&2
    fi
}
trap on_exit EXIT

step "install test dependencies (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh

step "cargo build --release"
cargo build --release

if [ "${SKIP_AARCH64:-0}" = 1 ]; then
    printf '\n=== scripts/test.sh: aarch64 cross build SKIPPED (SKIP_AARCH64=1) ===\n'
else
    step "aarch64 cross build (scripts/aarch64-build.sh)"
    bash scripts/aarch64-build.sh
fi

step "cargo test --release${*:+ $*}"
cargo test --release "$@"

step "docs name only existing tests (scripts/check-doc-tests.sh)"
sh scripts/check-doc-tests.sh

if [ "${SKIP_AUTOBAHN:-0}" = 1 ]; then
    TIMES+=("$STEP $(since "$STEP_START")s")
    STEP=""
    printf '\n=== scripts/test.sh: Autobahn conformance run SKIPPED (SKIP_AUTOBAHN=1) ===\n'
    done_what="deps, build, cargo test (Autobahn skipped)"
else
    step "Autobahn conformance (autobahn/run.sh all)"
    bash autobahn/run.sh all
    TIMES+=("$STEP $(since "$STEP_START")s")
    STEP=""
    done_what="deps, build, cargo test, Autobahn server+client"
fi

printf '\nscripts/test.sh: step times: '
(IFS=';'; printf '%s\n' "${TIMES[*]}" | sed 's/;/; /g')
printf 'scripts/test.sh: OK: all steps passed (%s) in %ss\n' "$done_what" "$(since "$START")"
