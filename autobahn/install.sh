#!/usr/bin/env bash
# Idempotent installer for the Autobahn WebSocket testsuite (`wstest`, 0.8.2).
#
# Adapted from a shared recipe; this copy is self-contained (it needs nothing
# outside this folder). Target: Debian 12 (bookworm), run as root (or with sudo).
#
# wstest is Python 2.7 only. Debian 12 has no python2.7, so it comes from the
# bullseye suite of the same Debian archive apt already uses; pip/setuptools/
# wheel for Python 2 are bootstrapped from wheels fetched by python3's pip; then
# autobahntestsuite is installed with `pip install --user` into the prefix
# $AUTOBAHN_HOME (PYTHONUSERBASE), pinned to a known-good dependency set.
#
# Usage:   [AUTOBAHN_HOME=/opt/autobahn] bash autobahn/install.sh
# Result:  $AUTOBAHN_HOME/wstest     a wrapper that runs wstest (no env needed)
#          $AUTOBAHN_HOME/bin/wstest pip's script (needs PYTHONUSERBASE=$AUTOBAHN_HOME)
# Last line printed on stdout: "wstest: <path of the wrapper>" (all else goes to stderr).
#
# Re-running is cheap (~1-2 s): when the wrapper already works it only prints the path.
# Env: AUTOBAHN_HOME     install prefix (default /opt/autobahn)
#      AUTOBAHN_PYTHON2  the Python 2.7 interpreter to use (default /usr/bin/python2.7,
#                        installed from Debian bullseye when missing). An absolute path
#                        is used on purpose: a `python2.7` found on PATH may be a pyenv
#                        shim that exists but does not run.
#      AUTOBAHN_FORCE=1  reinstall the Python packages even if wstest works
set -euo pipefail

AUTOBAHN_HOME="${AUTOBAHN_HOME:-/opt/autobahn}"
AUTOBAHN_TESTSUITE_VERSION=0.8.2
PY2="${AUTOBAHN_PYTHON2:-/usr/bin/python2.7}"
WRAPPER="$AUTOBAHN_HOME/wstest"
WHEELS="$AUTOBAHN_HOME/bootstrap-wheels"

log() { printf '[autobahn-install] %s\n' "$*" >&2; }

# Versions known to work together on Python 2.7 with autobahntestsuite 0.8.2
# (resolved by pip 20.3.4 on Debian 12 + bullseye python2.7). Used as pip
# constraints so a fresh install resolves the same set.
CONSTRAINTS='attrs==21.4.0
autobahn==0.10.9
autobahntestsuite==0.8.2
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
cryptography==3.3.2
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
incremental==22.10.0
ipaddress==1.0.23
Jinja2==2.11.3
klein==20.6.0
linecache2==1.0.0
MarkupSafe==1.1.1
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
pyOpenSSL==21.0.0
service-identity==21.1.0
six==1.17.0
traceback2==1.4.0
Tubes==0.2.1
Twisted==20.3.0
txaio==2.1.0
typing==3.10.0.0
ujson==2.0.3
unittest2==1.1.0
Werkzeug==1.0.1
wsaccel==0.6.6
zope.interface==5.5.2'

# True when $PY2 really runs and is a 2.7.
py2_works() {
    "$PY2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1
}

# Directory holding $PY2's Python.h (wsaccel and ujson build C extensions).
py2_include() {
    # (INCLUDEPY, not get_paths()["include"]: Debian's scheme points that at /usr/local.)
    "$PY2" -c 'import sysconfig; print(sysconfig.get_config_var("INCLUDEPY"))' 2>/dev/null
}

wstest_works() {
    [ -x "$WRAPPER" ] && "$WRAPPER" --autobahnversion >/dev/null 2>&1
}

write_wrapper() {
    mkdir -p "$AUTOBAHN_HOME"
    cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Runs Autobahn wstest $AUTOBAHN_TESTSUITE_VERSION (Python 2.7) installed under $AUTOBAHN_HOME.
# Written by autobahn/install.sh. Same as
#   PYTHONUSERBASE=$AUTOBAHN_HOME $PY2 $AUTOBAHN_HOME/bin/wstest
# plus:
#   WSTEST_INTERFACE=127.0.0.1  bind wstest's WebSocket listeners (fuzzingserver,
#                               echoserver, testeeserver) to that address only
#                               (plain wstest always binds all interfaces).
export PYTHONUSERBASE="$AUTOBAHN_HOME"
# Python 2 deprecation warnings from cryptography are noise here.
export PYTHONWARNINGS="\${PYTHONWARNINGS:-ignore}"
# -u: unbuffered, so progress lines reach a log file as they happen.
exec "$PY2" -u -c '
import os, sys
# Importing the package installs the reactor first and imports every mode.
from autobahntestsuite.wstest import run
iface = os.environ.get("WSTEST_INTERFACE")
if iface:
    import autobahn.twisted.websocket as _ws
    _listen = _ws.listenWS
    def listenWS(factory, contextFactory=None, backlog=50, interface=""):
        return _listen(factory, contextFactory, backlog, interface or iface)
    # The modes did "from autobahn.twisted.websocket import listenWS": rebind it there.
    for _m in list(sys.modules.values()):
        if getattr(_m, "listenWS", None) is _listen:
            _m.listenWS = listenWS
sys.argv[0] = "wstest"
sys.exit(run())
' "\$@"
EOF
    chmod 755 "$WRAPPER.tmp"
    mv -f "$WRAPPER.tmp" "$WRAPPER"
}

debian_mirror() {
    # The Debian archive that this machine's apt already uses, read from its sources,
    # so that no archive host is written into this script.
    # (A missing sources.list or an unmatched glob must not abort under pipefail:
    # Debian 12 images often have only sources.list.d/debian.sources.)
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | sed 's#[[:space:]/]*$##' | head -n1 || true
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else log "need root for: $*"; exit 1
    fi
}

# --- fast path: already installed ----------------------------------------------
if [ "${AUTOBAHN_FORCE:-0}" != 1 ]; then
    # An earlier install without the wrapper (e.g. a bare `pip install --user`
    # with PYTHONUSERBASE=$AUTOBAHN_HOME) only needs the wrapper written.
    # (Re)writing it is cheap and keeps it current with this script.
    if [ -f "$AUTOBAHN_HOME/bin/wstest" ] && py2_works; then
        write_wrapper
    fi
    if wstest_works; then
        log "already installed: $("$WRAPPER" --autobahnversion 2>/dev/null | tr '\n' ' ')"
        echo "wstest: $WRAPPER"
        exit 0
    fi
fi

# --- 1. system packages: python2.7 + headers, a C compiler, python3's pip ----------
need_apt=()
need_bullseye=0
if py2_works; then
    [ -f "$(py2_include)/Python.h" ] || { need_apt+=(python2.7-dev); need_bullseye=1; }
else
    if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
        log "AUTOBAHN_PYTHON2=$PY2 does not run as Python 2.7"
        exit 1
    fi
    need_apt+=(python2.7 python2.7-dev)
    need_bullseye=1
fi
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
# gcc only recommends the C library headers; the C extensions need them.
[ -f /usr/include/stdio.h ] || need_apt+=(libc6-dev)
# The bootstrap wheels are fetched with python3's pip. If the python3 on PATH has
# no pip (e.g. a bare Debian install), Debian's python3-pip is used instead.
PY3=python3
if ! python3 -m pip --version >/dev/null 2>&1; then
    PY3=/usr/bin/python3
    "$PY3" -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$need_bullseye" = 1 ] &&
        ! grep -rqs '^deb .*debian.* bullseye main' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding the Debian bullseye suite (python2.7 is not in bookworm)"
        mirror=$(debian_mirror)
        [ -n "$mirror" ] || { log "no Debian archive found in /etc/apt sources"; exit 1; }
        echo "deb $mirror bullseye main" |
            as_root tee /etc/apt/sources.list.d/bullseye.list >/dev/null
    fi
    log "apt-get install ${need_apt[*]}"
    # A failing third-party source makes `apt-get update` exit non-zero;
    # the install below is what must succeed.
    as_root apt-get update -qq || log "apt-get update reported errors; trying the install anyway"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
py2_works || { log "$PY2 does not run after the install"; exit 1; }
log "python 2: $PY2 ($("$PY2" --version 2>&1))"

# --- 2. pip/setuptools/wheel for Python 2, from wheels fetched by python3's pip ----
mkdir -p "$WHEELS"
PIPWHL="$WHEELS/pip-20.3.4-py2.py3-none-any.whl"
if [ ! -f "$PIPWHL" ] || [ ! -f "$WHEELS/setuptools-44.1.1-py2.py3-none-any.whl" ] ||
   [ ! -f "$WHEELS/wheel-0.37.1-py2.py3-none-any.whl" ]; then
    log "downloading bootstrap wheels with $PY3 -m pip"
    "$PY3" -m pip download -q --no-deps -d "$WHEELS" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 >&2
fi

export PYTHONUSERBASE="$AUTOBAHN_HOME"
export PYTHONWARNINGS=ignore
# Python 2's pip must not pick up python3-era pip settings from the environment
# (e.g. PIP_FIND_LINKS pointing at python3 wheels is harmless, but a
# PIP_REQUIRE_VIRTUALENV would break the --user install).
unset PIP_REQUIRE_VIRTUALENV
if ! "$PY2" -m pip --version 2>/dev/null | grep -q '^pip 20\.3\.4 '; then
    log "installing pip 20.3.4 / setuptools 44.1.1 / wheel 0.37.1 for python2.7 into $AUTOBAHN_HOME"
    "$PY2" "$PIPWHL/pip" install -q --user --no-index --no-warn-script-location \
        "$WHEELS"/pip-20.3.4-*.whl "$WHEELS"/setuptools-44.1.1-*.whl "$WHEELS"/wheel-0.37.1-*.whl >&2
fi

# --- 3. autobahntestsuite and its dependencies (pinned to a known-good set) ----------
printf '%s\n' "$CONSTRAINTS" >"$AUTOBAHN_HOME/constraints-py2.txt"
log "pip install --user autobahntestsuite==$AUTOBAHN_TESTSUITE_VERSION (python2.7, a minute or two)"
"$PY2" -m pip install -q --user --no-warn-script-location \
    -c "$AUTOBAHN_HOME/constraints-py2.txt" "autobahntestsuite==$AUTOBAHN_TESTSUITE_VERSION" >&2

# --- 4. the wrapper --------------------------------------------------------------
write_wrapper
if ! wstest_works; then
    log "wstest does not run; try: $WRAPPER --help"
    exit 1
fi
log "installed: $("$WRAPPER" --autobahnversion 2>/dev/null | tr '\n' ' ')"
echo "wstest: $WRAPPER"
