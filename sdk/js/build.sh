#!/usr/bin/env bash
# Builds a weft module written in JavaScript into a component with
# componentize-qjs (QuickJS; pinned in package.json and package-lock.json),
# WASI stubbed out so the component imports only the weft:module contract.
#
#   sdk/js/build.sh verb|projection FILE.js OUT.wasm
#
# The contract version is 0.2.0; with WEFT_WIT=0.1.0 in the environment it is
# 0.1.0 (for a module written against 0.1.0: it imports `…@0.1.0`).
# The first run installs the pinned toolchain with `npm ci` from the npm
# registry into $WEFT_TOOLS (default: target/sdk-tools in this repository);
# later runs need no network.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ $# -eq 3 ] || { echo "usage: $0 verb|projection FILE.js OUT.wasm" >&2; exit 2; }
WORLD="$1" JS="$2" OUT="$3"
case "$WORLD" in verb|projection) ;; *) echo "the world is verb or projection, not $WORLD" >&2; exit 2;; esac
TOOLS="${WEFT_TOOLS:-$ROOT/target/sdk-tools}/js"
QJS="$TOOLS/node_modules/.bin/componentize-qjs"
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
exec 9>"$TOOLS.lock"
flock 9
if [ ! -x "$QJS" ] || ! cmp -s "$HERE/package-lock.json" "$TOOLS/package-lock.json"; then
    command -v npm >/dev/null || { echo "npm (Node.js 18 or newer) is needed to install componentize-qjs" >&2; exit 3; }
    mkdir -p "$TOOLS"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$TOOLS/"
    echo "installing componentize-qjs into $TOOLS (the first build only; needs the npm registry)…" >&2
    (cd "$TOOLS" && npm ci --silent --no-audit --no-fund)
    echo "installed componentize-qjs" >&2
fi
exec 9>&-

# --sync: the node's wasmtime has no component-model async ABI.
# --stub-wasi: QuickJS's WASI imports become stubs that trap, so console,
# Date and Math.random's entropy are unavailable, as the contract intends.
"$QJS" --wit "$WIT" --world "$WORLD" --js "$JS" -o "$OUT" --sync --stub-wasi >/dev/null
echo "built $OUT for weft:module@$WIT_VERSION ($(stat -c %s "$OUT") bytes)"
