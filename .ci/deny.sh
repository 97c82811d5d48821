#!/usr/bin/env bash
# cargo deny (deny.toml) over the workspace and over the fuzz workspace.
#
# Licenses, bans and sources need only crates.io (cargo metadata). The
# advisories check needs the RustSec database, which cargo-deny clones
# from github.com/rustsec/advisory-db: when GitHub cannot be reached (as on
# the machine this was written on), advisories are NOT checked and this
# says so loudly; WEFT_REQUIRE_ADVISORIES=1 makes that an error instead.
set -euo pipefail
cd "$(dirname "$0")/.."

checks=(bans licenses sources)
if timeout 20 git ls-remote --exit-code https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    checks+=(advisories)
elif [ "${WEFT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    echo "cargo deny: github.com/rustsec/advisory-db is unreachable and WEFT_REQUIRE_ADVISORIES=1" >&2
    exit 1
else
    echo "WARNING: github.com/rustsec/advisory-db is unreachable: RustSec advisories were NOT checked" >&2
    echo "WARNING: (only ${checks[*]}); set WEFT_REQUIRE_ADVISORIES=1 to fail instead" >&2
fi

# The exception for libfuzzer-sys's licence applies to the fuzz workspace
# only, so the workspace's own check is told not to miss it.
cargo deny check -A license-exception-not-encountered "${checks[@]}"
cargo deny --manifest-path fuzz/Cargo.toml check "${checks[@]}"
