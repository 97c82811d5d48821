#!/usr/bin/env bash
# Builds every SDK template for weft:module@0.2.0 into a temporary folder and
# checks each component with `wasm-tools component wit`: it imports nothing
# but `weft:module/…@0.2.0` interfaces and exports its world's functions
# (a projection: fold, fold-batch and query; a verb: validate and react).
#
#   sdk/check-templates.sh
#
# Templates: Rust (rust/template, a verb), Python (template/app.py, a projection), JavaScript
# (template/projection.js, template/verb.js) and C (template/projection.c;
# its core module is made a component with `wasm-tools component new`, as
# `weft module add` does). Each SDK's build script installs its pinned
# toolchain on first use; wasm-tools (pinned below) is taken from
# $WEFT_TOOLS/wasm-tools (default: target/sdk-tools) or PATH, or installed
# there with `cargo install --locked`.
#
# Exit status: 0 when every template passed; 1 when one failed to build or
# to check; 3 when none failed but a toolchain could not be installed (those
# templates are skipped, saying so).
set -euo pipefail

WASM_TOOLS_VERSION="1.258.3"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TOOLS="${WEFT_TOOLS:-$ROOT/target/sdk-tools}"
export WEFT_WIT=0.2.0

# wasm-tools at the pinned version.
WASM_TOOLS="$TOOLS/wasm-tools/bin/wasm-tools"
if [ "$("$WASM_TOOLS" --version 2>/dev/null)" != "wasm-tools $WASM_TOOLS_VERSION" ]; then
    if [ "$(wasm-tools --version 2>/dev/null)" = "wasm-tools $WASM_TOOLS_VERSION" ]; then
        WASM_TOOLS="$(command -v wasm-tools)"
    else
        command -v cargo >/dev/null || { echo "SKIPPED: cargo is needed to install wasm-tools $WASM_TOOLS_VERSION" >&2; exit 3; }
        echo "installing wasm-tools $WASM_TOOLS_VERSION into $TOOLS/wasm-tools (the first run only; needs crates.io)…" >&2
        cargo install --quiet --locked --root "$TOOLS/wasm-tools" wasm-tools --version "$WASM_TOOLS_VERSION" \
            --no-default-features --features component,validate,print \
            || { echo "SKIPPED: cargo could not install wasm-tools $WASM_TOOLS_VERSION" >&2; exit 3; }
    fi
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
failed=() skipped=()

# Runs a build; its output goes to $OUT/NAME.log. 0: built; 3: skipped (no
# toolchain); anything else: failed.
build() {
    local name=$1
    shift
    local status=0
    "$@" >"$OUT/$name.log" 2>&1 || status=$?
    if [ "$status" -eq 3 ]; then
        echo "SKIPPED $name: its toolchain cannot be installed here:" >&2
        sed 's/^/    /' "$OUT/$name.log" >&2
        skipped+=("$name")
    elif [ "$status" -ne 0 ]; then
        echo "FAILED $name: the build exited with status $status:" >&2
        sed 's/^/    /' "$OUT/$name.log" >&2
        failed+=("$name")
    fi
    return "$status"
}

# Checks the component $OUT/NAME.wasm of WORLD: prints what is wrong, if
# anything, and records the failure.
check() {
    local name=$1 world=$2 wit problems="" line
    if ! wit="$("$WASM_TOOLS" component wit "$OUT/$name.wasm" 2>&1)"; then
        echo "FAILED $name: wasm-tools cannot read its component: $wit" >&2
        failed+=("$name")
        return
    fi
    # The component's own world: the lines of `world root { … }` indented
    # by two spaces (deeper lines belong to inline interfaces).
    local top
    top="$(awk '/^world root \{/ {on = 1; next} on && /^\}/ {on = 0} on && /^  [^ ]/' <<<"$wit")"
    while IFS= read -r line; do
        case "$line" in
            "  import weft:module/"*"@0.2.0;") ;;
            "  import "*) problems+="    imports ${line#  import }"; problems="${problems%;}"; problems+=" (only weft:module/…@0.2.0 interfaces may be)"$'\n' ;;
        esac
    done <<<"$top"
    local wanted
    case "$world" in
        projection) wanted="fold fold-batch query" ;;
        verb) wanted="validate react" ;;
    esac
    for f in $wanted; do
        grep -q "^  export $f: func" <<<"$top" || problems+="    does not export \`$f\`"$'\n'
    done
    if [ -n "$problems" ]; then
        printf 'FAILED %s (%s of weft:module@0.2.0):\n%s' "$name" "$world" "$problems" >&2
        failed+=("$name")
    else
        echo "ok $name ($world): imports only weft:module/…@0.2.0, exports ${wanted// /, }"
    fi
}

if build python-app "$HERE/python/build.sh" projection "$HERE/python/template" app "$OUT/python-app.wasm"; then
    check python-app projection
fi
for world in projection verb; do
    if build "js-$world" "$HERE/js/build.sh" "$world" "$HERE/js/template/$world.js" "$OUT/js-$world.wasm"; then
        check "js-$world" "$world"
    fi
done
if build c-projection "$HERE/c/build.sh" projection "$HERE/c/template/projection.c" "$OUT/c-projection.core.wasm"; then
    if made="$("$WASM_TOOLS" component new "$OUT/c-projection.core.wasm" -o "$OUT/c-projection.wasm" 2>&1)"; then
        check c-projection projection
    else
        echo "FAILED c-projection: its core module does not make a component: $made" >&2
        failed+=(c-projection)
    fi
fi

# The Rust template (a verb), built as its README says: a copy of it next to
# nothing, with its `path` pointed at sdk/rust and the workspace's versions.
rust_template() {
    local copy="$OUT/rust-template"
    cp -r "$HERE/rust/template" "$copy"
    sed -i "s#path = \"\.\.\"#path = \"$HERE/rust\"#" "$copy/Cargo.toml"
    cp "$ROOT/Cargo.lock" "$copy/Cargo.lock"
    command -v cargo >/dev/null || { echo "cargo is needed" >&2; return 3; }
    CARGO_TARGET_DIR="$ROOT/target/sdk-templates" cargo build --quiet --release \
        --target wasm32-unknown-unknown --manifest-path "$copy/Cargo.toml"
    "$WASM_TOOLS" component new \
        "$ROOT/target/sdk-templates/wasm32-unknown-unknown/release/my_verb.wasm" \
        -o "$OUT/rust-verb.wasm"
}
if build rust-verb rust_template; then
    check rust-verb verb
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "check-templates: ${#failed[@]} template(s) failed: ${failed[*]}" >&2
    exit 1
fi
if [ ${#skipped[@]} -gt 0 ]; then
    echo "check-templates: skipped (no toolchain): ${skipped[*]}; the others passed" >&2
    exit 3
fi
echo "check-templates: every template builds for weft:module@0.2.0 and imports only it"
