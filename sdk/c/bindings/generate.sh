#!/usr/bin/env bash
# (Re)generates the C bindings of one published contract version, once:
#
#   sdk/c/bindings/generate.sh 0.2.0     # -> sdk/c/bindings/0.2.0/
#
# with `wit-bindgen c` 0.63.0 (pinned below; default options), installed on
# first use with `cargo install --locked` into $WEFT_TOOLS/wit-bindgen
# (default: target/sdk-tools in this repository). Its whole output is kept:
# `verb.{c,h}`, `projection.{c,h}` and the `*_component_type.o` objects
# that carry each world (build.sh links them, so a module names its
# contract version and `weft module add` needs to guess nothing). A
# published version never changes, so neither do its bindings: run this
# for a new version only. Exit status 3: wit-bindgen cannot be installed.
set -euo pipefail

WIT_BINDGEN_VERSION="0.63.0"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 VERSION (e.g. 0.2.0)" >&2; exit 2; }
VERSION="$1"
WIT="$ROOT/sdk/wit/weft-module@$VERSION"
[ -d "$WIT" ] || { echo "no contract $WIT" >&2; exit 2; }
TOOLS="${WEFT_TOOLS:-$ROOT/target/sdk-tools}/wit-bindgen"
WB="$TOOLS/bin/wit-bindgen"

if [ ! -x "$WB" ] || [ "$("$WB" --version 2>/dev/null)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
    command -v cargo >/dev/null || { echo "cargo is needed to install wit-bindgen-cli" >&2; exit 3; }
    echo "installing wit-bindgen-cli $WIT_BINDGEN_VERSION into $TOOLS (needs crates.io)…" >&2
    cargo install --quiet --locked --root "$TOOLS" wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" \
        --no-default-features --features c \
        || { echo "cargo could not install wit-bindgen-cli $WIT_BINDGEN_VERSION" >&2; exit 3; }
fi

OUT="$HERE/$VERSION"
mkdir -p "$OUT"
for world in verb projection; do
    "$WB" c "$WIT" --world "$world" --out-dir "$OUT" >/dev/null
done
echo "generated $OUT: $(cd "$OUT" && echo *)"
