#!/usr/bin/env bash
# Builds a weft module written in Python into a component, with
# componentize-py (pinned below) and WASI stubbed out, so the component
# imports only the weft:module contract.
#
#   sdk/python/build.sh verb|projection SRC_DIR MODULE OUT.wasm
#
# SRC_DIR holds MODULE.py, which defines `class WitWorld(wit_world.WitWorld)`.
# The contract version is 0.2.0; with WEFT_WIT=0.1.0 in the environment it is
# 0.1.0 (for a module written against 0.1.0).
# The first run installs componentize-py from PyPI into a virtual
# environment under $WEFT_TOOLS (default: target/sdk-tools in this
# repository); later runs need no network.
set -euo pipefail

VERSION="0.25.1"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ $# -eq 4 ] || { echo "usage: $0 verb|projection SRC_DIR MODULE OUT.wasm" >&2; exit 2; }
WORLD="$1" SRC="$2" MODULE="$3" OUT="$4"
case "$WORLD" in verb|projection) ;; *) echo "the world is verb or projection, not $WORLD" >&2; exit 2;; esac
TOOLS="${WEFT_TOOLS:-$ROOT/target/sdk-tools}"
VENV="$TOOLS/python"
CPY="$VENV/bin/componentize-py"
# The contract version to build for (published versions never change).
WIT_VERSION="${WEFT_WIT:-0.2.0}"
case "$WIT_VERSION" in
    0.1.0|0.2.0) ;;
    *) echo "WEFT_WIT is the contract version to build for, 0.2.0 (the default) or 0.1.0, not \`$WIT_VERSION\`" >&2; exit 2;;
esac
WIT="$ROOT/sdk/wit/weft-module@$WIT_VERSION"

# Builds running at once (the node's tests do) install once: the first takes
# the lock and installs, the others wait for it and find the tool there.
mkdir -p "$TOOLS"
exec 9>"$TOOLS/python.lock"
flock 9
if [ ! -x "$CPY" ] || [ "$("$CPY" --version 2>/dev/null)" != "componentize-py $VERSION" ]; then
    PYTHON="${PYTHON:-python3}"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { echo "componentize-py needs Python 3.10 or newer to run ($PYTHON is older)" >&2; exit 3; }
    echo "installing componentize-py $VERSION into $VENV (the first build only; needs PyPI)…" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$VERSION"
    echo "installed componentize-py $VERSION" >&2
fi
exec 9>&-
echo "building $MODULE ($WORLD of weft:module@$WIT_VERSION) from $SRC with componentize-py (takes a few seconds)…" >&2

# The build imports the module, which leaves bytecode in SRC_DIR/__pycache__:
# remove it unless it was there before.
if [ ! -e "$SRC/__pycache__" ]; then trap 'rm -rf "$SRC/__pycache__"' EXIT; fi
# --stub-wasi: the Python runtime's WASI imports become stubs that trap, so
# print(), time and files are unavailable, as the contract intends.
"$CPY" -d "$WIT" -w "$WORLD" componentize --stub-wasi -p "$SRC" -o "$OUT" "$MODULE"
echo "built $OUT for weft:module@$WIT_VERSION ($(stat -c %s "$OUT") bytes)"
