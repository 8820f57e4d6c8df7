#!/usr/bin/env bash
# Install the pages' front-end libraries (web-vendor/package.json, pinned by its lock file) from
# the npm registry and copy the files the pages load into loopline/web/static/vendor/.
# The pages never fetch anything from another origin at run time. Without npm the pages still
# work, with their charts replaced by text; this script says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=loopline/web/static/vendor
if ! command -v npm >/dev/null 2>&1; then
  echo "install-web-vendor: npm not found: the pages will show text instead of charts" >&2
  exit 0
fi
npm ci --prefix web-vendor --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p "$dest/uplot"
cp web-vendor/node_modules/uplot/dist/uPlot.esm.js web-vendor/node_modules/uplot/dist/uPlot.min.css \
   web-vendor/node_modules/uplot/LICENSE "$dest/uplot/"
touch "$dest/.installed"
echo "install-web-vendor: uPlot $(node -p "require('./web-vendor/node_modules/uplot/package.json').version" 2>/dev/null || echo '?') in $dest"
