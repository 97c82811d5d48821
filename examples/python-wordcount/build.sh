#!/usr/bin/env bash
# Builds the word-count projection (Python) and, given a data folder,
# defines it on a running node:
#
#   examples/python-wordcount/build.sh                  # -> target/examples/wordcount.wasm
#   weft module add projection wordcount target/examples/wordcount.wasm --language python
#   curl -s 'http://127.0.0.1:8080/projections/wordcount/actor?actor=http://127.0.0.1:8080/actors/alice'
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/target/examples/wordcount.wasm}"
mkdir -p "$(dirname "$OUT")"
"$ROOT/sdk/python/build.sh" projection "$HERE" wordcount "$OUT"
