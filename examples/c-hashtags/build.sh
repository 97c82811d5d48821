#!/usr/bin/env bash
# Builds the hashtag index projection (C) and shows how to define it on a
# running node:
#
#   examples/c-hashtags/build.sh          # -> target/examples/hashtags.wasm
#   weft module add projection hashtags target/examples/hashtags.wasm --language c
#   curl -s 'http://127.0.0.1:8080/projections/hashtags/tag?tag=weft'
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/target/examples/hashtags.wasm}"
mkdir -p "$(dirname "$OUT")"
"$ROOT/sdk/c/build.sh" projection "$HERE/hashtags.c" "$OUT"
