#!/usr/bin/env bash
# Builds a weft module written in Python into a component, with
# componentize-py (pinned below) and WASI stubbed out, so the component
# imports only the weft:module contract.
#
#   sdk/python/build.sh verb|projection SRC_DIR MODULE OUT.wasm
#
# SRC_DIR holds MODULE.py, which defines `class WitWorld(wit_world.WitWorld)`.
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
# The contract version this SDK targets (published versions never change).
WIT="$ROOT/sdk/wit/weft-module@0.1.0"

if [ ! -x "$CPY" ] || [ "$("$CPY" --version 2>/dev/null)" != "componentize-py $VERSION" ]; then
    PYTHON="${PYTHON:-python3}"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { echo "componentize-py needs Python 3.10 or newer to run ($PYTHON is older)" >&2; exit 3; }
    echo "installing componentize-py $VERSION into $VENV (the first build only; needs PyPI)…" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$VERSION"
    echo "installed componentize-py $VERSION" >&2
fi
echo "building $MODULE ($WORLD) from $SRC with componentize-py (takes a few seconds)…" >&2

# --stub-wasi: the Python runtime's WASI imports become stubs that trap, so
# print(), time and files are unavailable, as the contract intends.
"$CPY" -d "$WIT" -w "$WORLD" componentize --stub-wasi -p "$SRC" -o "$OUT" "$MODULE"
echo "built $OUT ($(stat -c %s "$OUT") bytes)"
