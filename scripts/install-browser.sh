#!/usr/bin/env bash
# The browser tests drive Debian's chromium with Playwright (never `playwright install`).
# Install it when missing and we are root with apt-get (CI is); otherwise say how, and the
# browser tests skip (outside CI) with the same hint.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: installing Debian chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "install-browser: no chromium; browser tests will skip (as root: apt-get install chromium)" >&2
fi
