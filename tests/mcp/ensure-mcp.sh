#!/usr/bin/env bash
# Makes tests/mcp/node_modules match package-lock.json (npm ci), unless it already does.
# scripts/test.sh runs it; the ctest fixture `mcp_npm_ci` runs it too. Node.js 18+.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "ensure-mcp: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
