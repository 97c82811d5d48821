#!/usr/bin/env bash
# Builds the Poll verb and the tally projection (JavaScript) and shows how
# to define them on a running node:
#
#   examples/js-poll/build.sh        # -> target/examples/poll.wasm, tally.wasm
#   weft module add verb Poll target/examples/poll.wasm --language javascript
#   weft module add verb Vote target/examples/poll.wasm --language javascript
#   weft module add projection tally target/examples/tally.wasm --language javascript
#   curl -s 'http://127.0.0.1:8080/projections/tally/poll?id=<the poll id>'
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/target/examples}"
mkdir -p "$OUT"
"$ROOT/sdk/js/build.sh" verb "$HERE/poll.js" "$OUT/poll.wasm"
"$ROOT/sdk/js/build.sh" projection "$HERE/tally.js" "$OUT/tally.wasm"
