#!/usr/bin/env bash
# Installs the browser the dashboard's end-to-end test drives: Debian's
# Chromium and its WebDriver (packages chromium and chromium-driver, which
# give /usr/bin/chromium and /usr/bin/chromedriver).  Idempotent: does
# nothing when both are there.  Needs root (or sudo) the first time.
set -euo pipefail

say() { echo "browser install: $*"; }
fail() { echo "browser install: ERROR: $*" >&2; exit 1; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  say "already installed: $(/usr/bin/chromium --version 2>/dev/null | head -1); $(/usr/bin/chromedriver --version | head -1)"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 \
  || fail "apt-get not found: install Chromium and ChromeDriver as /usr/bin/chromium and /usr/bin/chromedriver"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "run as root (or install sudo) to apt-get install chromium chromium-driver"
  as_root=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
say "running: apt-get install -y chromium chromium-driver"
if ! "${as_root[@]}" apt-get install -y --no-install-recommends chromium chromium-driver; then
  say "refreshing the package lists and trying again"
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends chromium chromium-driver \
    || fail "apt-get could not install chromium chromium-driver (is a Debian mirror reachable?)"
fi
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
  || fail "installed, but /usr/bin/chromium or /usr/bin/chromedriver is missing"
say "done: $(/usr/bin/chromedriver --version | head -1)"
