#!/usr/bin/env bash
# The cargo subcommands CI uses, at pinned versions, installed from
# crates.io (`cargo install --locked`, so with their own lock files) when
# missing or at another version: `tools.sh` installs all of them,
# `tools.sh cargo-fuzz` only the ones named. It does not install
# toolchains or targets (rustup does, from rust-toolchain.toml).
set -euo pipefail

declare -A VERSIONS=(
    [cargo-deny]=0.20.2
    [cargo-fuzz]=0.13.2
)

# `cargo-deny --version` prints `cargo-deny 0.20.2`, `cargo-fuzz --version`
# `cargo-fuzz 0.13.2`.
install() {
    local crate=$1
    local version=${VERSIONS[$crate]:?unknown tool $crate}
    if command -v "$crate" >/dev/null 2>&1 &&
        [ "$("$crate" --version 2>/dev/null)" = "$crate $version" ]; then
        return
    fi
    echo "installing $crate $version" >&2
    cargo install "$crate" --locked --version "$version"
}

if [ "$#" -eq 0 ]; then
    set -- "${!VERSIONS[@]}"
fi
for crate in "$@"; do
    install "$crate"
done
