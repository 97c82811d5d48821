#!/usr/bin/env bash
# Builds a weft module written in C into a core WebAssembly module that
# imports nothing but the weft:module contract and carries its WIT world
# (the bindings' `*_component_type.o`); `weft module add` makes the
# component, e.g.
#
#   sdk/c/build.sh projection my.c my.wasm
#   weft module add projection my-projection my.wasm --language c
#
# The contract version is 0.2.0; with WEFT_WIT=0.1.0 in the environment it is
# 0.1.0 (the bindings of each are in bindings/VERSION/).
#
# Toolchain: clang 19, lld 19 and its wasm32 runtime, and wasi-libc, from
# Debian's packages (pinned below). When they are missing and this runs as
# root, it installs them with apt-get; otherwise it exits with status 3.
#
# Only wasi-libc's malloc and string functions are linked (no crt1, no
# stdio): printf, time and files would import WASI, which the node refuses.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -ge 3 ] || { echo "usage: $0 verb|projection FILE.c… OUT.wasm" >&2; exit 2; }
WORLD="$1"; shift
OUT="${*: -1}"
SOURCES=("${@:1:$#-1}")
case "$WORLD" in verb|projection) ;; *) echo "the world is verb or projection, not $WORLD" >&2; exit 2;; esac
# The contract version (published versions never change, nor their bindings).
WIT_VERSION="${WEFT_WIT:-0.2.0}"
case "$WIT_VERSION" in
    0.1.0|0.2.0) ;;
    *) echo "WEFT_WIT is the contract version to build for, 0.2.0 (the default) or 0.1.0, not \`$WIT_VERSION\`" >&2; exit 2;;
esac
BINDINGS="$HERE/bindings/$WIT_VERSION"

CLANG=clang-19
RT=/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a
have_toolchain() {
    command -v "$CLANG" >/dev/null && command -v wasm-ld-19 >/dev/null \
        && [ -f /usr/lib/wasm32-wasi/libc.a ] && [ -f "$RT" ]
}
if ! have_toolchain; then
    # Builds running at once (the node's tests do) install once: the first
    # takes the lock and installs, the others wait for it and find the
    # toolchain there.
    TOOLS="${WEFT_TOOLS:-$HERE/../../target/sdk-tools}"
    mkdir -p "$TOOLS"
    exec 9>"$TOOLS/c.lock"
    flock 9
fi
if ! have_toolchain; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "needs clang-19, lld-19, libclang-rt-19-dev-wasm32 and wasi-libc (Debian packages); install them as root" >&2
        exit 3
    fi
    VERSION=1:19.1.7-3~deb12u1
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "clang-19=$VERSION" "lld-19=$VERSION" \
            "libclang-rt-19-dev-wasm32=$VERSION" "wasi-libc=0.0~git20220510.9886d3d-2"; } >&2; then
        echo "apt-get could not install the C toolchain" >&2
        exit 3
    fi
fi
exec 9>&- 2>/dev/null || true

FLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra
       -nostdinc -isystem /usr/lib/llvm-19/lib/clang/19/include
       -isystem /usr/include/wasm32-wasi -I"$BINDINGS")
# {verb,projection}_component_type.o holds the world in a custom section that the link
# keeps (--strip-all drops names, not custom sections).
"$CLANG" "${FLAGS[@]}" -Wno-unused-parameter \
    -nostartfiles -Wl,--no-entry -Wl,--strip-all \
    "${SOURCES[@]}" "$BINDINGS/$WORLD.c" "$BINDINGS/${WORLD}_component_type.o" -o "$OUT"
echo "built $OUT for weft:module@$WIT_VERSION ($(stat -c %s "$OUT") bytes; \`weft module add\` makes it a component)"
