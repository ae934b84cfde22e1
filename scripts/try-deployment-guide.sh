#!/usr/bin/env bash
# Tries docs/deployment.md's quick start as a new user would, on a clean
# Debian 12 booted with systemd: debootstraps a minimal system, boots it with
# systemd-nspawn (sharing this host's network), unpacks the repository
# (git archive HEAD) in /root/wsbroadcaster, and runs the `sh` blocks of the
# quick start, extracted from the document as they stand (steps 1, 2 with the
# self-signed certificate, 3, 4 and 5), in one `bash -e` script, as root, in
# a clean environment. Then it checks what the guide promises: the service
# runs as a dynamic (non-root) user, both test messages arrived over wss://,
# `systemctl reload` works, `systemctl stop` ends it with status 0, and the
# firewall commands are valid nftables (in a private network namespace, so
# this host's firewall is untouched).
#
# usage (root; needs debootstrap and systemd-container, ~15 min, most of it
# the release build inside): bash scripts/try-deployment-guide.sh [DIR]
# Not part of scripts/test.sh: it downloads a Debian system and builds the
# project inside it. docs/deployment.md says what its last run showed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-/var/lib/machines/wsbroadcaster-guide}"
LOG="${DIR}.log"
log() { printf '[try-guide] %s\n' "$*"; }
die() { printf '[try-guide] FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
command -v debootstrap >/dev/null || die "apt-get install debootstrap"
command -v systemd-nspawn >/dev/null || die "apt-get install systemd-container"

rm -rf "$DIR"
log "debootstrap bookworm into $DIR"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
    bookworm "$DIR" >"$LOG" 2>&1 || die "debootstrap (see $LOG)"
# What a normal installation has and debootstrap does not write.
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$(cat "$DIR/etc/hostname")" >"$DIR/etc/hosts"
# A network that intercepts TLS with its own authority (as some sandboxes and
# company networks do) works inside as it does on this host.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$DIR/usr/local/share/ca-certificates/"
    chroot "$DIR" update-ca-certificates >>"$LOG" 2>&1
fi

mkdir -p "$DIR/root/wsbroadcaster"
git -C "$ROOT" archive HEAD | tar -x -C "$DIR/root/wsbroadcaster"
python3 - "$ROOT/docs/deployment.md" "$DIR/root/guide.sh" <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
quick = doc[doc.index("## Quick start"):doc.index("### How this guide was tried")]
blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
# Not here: Let's Encrypt (needs a public name), the firewall (checked below
# in a private namespace), the day-to-day commands (`journalctl -f` waits).
skip = ("certbot", "nft add rule", "journalctl -u wsbroadcaster -f")
chosen = [b for b in blocks if not any(s in b for s in skip)]
open(sys.argv[2], "w").write("set -ex\ncd /root/wsbroadcaster\n" + "\n".join(chosen))
PY

log "booting it with systemd-nspawn"
systemd-nspawn --register=no --keep-unit -q -D "$DIR" -b >>"$LOG" 2>&1 &
NSPAWN=$!
cleanup() {
    if kill -0 "$NSPAWN" 2>/dev/null; then
        [ -n "${LEADER:-}" ] && nsenter -t "$LEADER" -a -- systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
        kill "$NSPAWN" 2>/dev/null || true
    fi
}
trap cleanup EXIT
LEADER=""
for _ in $(seq 1 100); do
    LEADER=$(pgrep -P "$NSPAWN" | head -n1 || true)
    if [ -n "$LEADER" ]; then
        state=$(nsenter -t "$LEADER" -a -- systemctl is-system-running 2>/dev/null || true)
        case "$state" in running | degraded) break ;; esac
    fi
    sleep 0.3
done
[ -n "$LEADER" ] || die "the container did not boot (see $LOG)"
inside() {
    nsenter -t "$LEADER" -a -- env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

log "running the quick start's commands (log: $LOG)"
start=$(date +%s)
inside bash /root/guide.sh >>"$LOG" 2>&1 || die "a quick-start command failed (see the end of $LOG)"
log "quick start done in $(($(date +%s) - start))s"

user=$(inside ps -o user= -C wsbroadcaster | head -n1 | tr -d ' ')
[ -n "$user" ] && [ "$user" != root ] || die "the service should run as a dynamic user, not '$user'"
log "service user: $user (DynamicUser)"
inside grep -qx "hello over wss" /tmp/received.txt || die "no 'hello over wss' in /tmp/received.txt"
inside grep -qx "hello over the Unix socket" /tmp/received.txt || die "no Unix socket message received"
log "both messages received over wss://"
inside systemctl reload wsbroadcaster || die "systemctl reload"
sleep 1
inside journalctl -u wsbroadcaster --no-pager | grep -q "TLS certificate reloaded" || die "no reload in the log"
log "systemctl reload: certificate reloaded"
inside systemctl stop wsbroadcaster
[ "$(inside systemctl show -p ExecMainStatus --value wsbroadcaster)" = 0 ] || die "exit status after stop"
log "systemctl stop: exit status 0"

inside apt-get install -y -qq --no-install-recommends nftables util-linux >>"$LOG" 2>&1
python3 - "$ROOT/docs/deployment.md" "$DIR/root/firewall.sh" <<'PY'
import sys
doc = open(sys.argv[1]).read()
cmds = [l for l in doc.splitlines() if l.startswith("nft add rule")]
open(sys.argv[2], "w").write("set -ex\nnft -f /etc/nftables.conf\n" + "\n".join(cmds) + "\nnft list ruleset\n")
PY
inside unshare --net bash /root/firewall.sh >>"$LOG" 2>&1 || die "the nft commands (see $LOG)"
log "firewall: the guide's nft rules load (private network namespace)"
log "OK: the quick start works as written"
