#!/bin/sh
# Checks that every unit-test path the docs name (`protocol::…::tests::…`,
# as printed by `cargo test --lib -- --list`) still exists, and that every
# bare RFC-rule test name (`rfc6455_…`, `rfc7692_…`) is a function in src/,
# tests/ or fuzz/. Run from the repository root; exits 1 on a stale name.
# Lists the tests of the release build, which scripts/test.sh (step 5) has
# just built, so there it costs no compilation.
set -eu
list=$(mktemp)
trap 'rm -f "$list"' EXIT
cargo test --quiet --release --lib -- --list 2>/dev/null | sed -n 's/: test$//p' | sort -u >"$list"
status=0
checked=0
for doc in README.md docs/*.md; do
    for path in $(grep -ohE '`[a-z_][a-z0-9_]*(::[a-z0-9_]+)*::tests(::[a-z0-9_]+)+`' "$doc" | tr -d '`' | sort -u); do
        checked=$((checked + 1))
        if ! grep -qxF "$path" "$list"; then
            echo "$doc: no such test: $path"
            status=1
        fi
    done
    for name in $(grep -ohE '`rfc[0-9]+_[a-z0-9_]+`' "$doc" | tr -d '`' | sort -u); do
        checked=$((checked + 1))
        if ! grep -rqE "fn $name\b" src tests fuzz 2>/dev/null; then
            echo "$doc: no test function named $name"
            status=1
        fi
    done
done
echo "checked $checked test references in README.md and docs/*.md"
exit $status
