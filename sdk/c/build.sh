#!/usr/bin/env bash
# Builds a weft module written in C into a core WebAssembly module that
# imports nothing but the weft:module contract; `weft module add` makes
# the component (it embeds the WIT world), e.g.
#
#   sdk/c/build.sh projection my.c my.wasm
#   weft module add projection my-projection my.wasm --language c
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

CLANG=clang-19
RT=/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a
if ! command -v "$CLANG" >/dev/null || ! command -v wasm-ld-19 >/dev/null \
    || [ ! -f /usr/lib/wasm32-wasi/libc.a ] || [ ! -f "$RT" ]; then
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

FLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra
       -nostdinc -isystem /usr/lib/llvm-19/lib/clang/19/include
       -isystem /usr/include/wasm32-wasi -I"$HERE/bindings")
"$CLANG" "${FLAGS[@]}" -Wno-unused-parameter \
    -nostartfiles -Wl,--no-entry -Wl,--strip-all \
    "${SOURCES[@]}" "$HERE/bindings/$WORLD.c" "$HERE/weft_world.c" -o "$OUT"
echo "built $OUT ($(stat -c %s "$OUT") bytes; \`weft module add\` makes it a component)"
