#!/usr/bin/env bash
# npm-ci.sh DIR: makes DIR/node_modules match DIR/package-lock.json (npm ci), unless it
# already does. Used by tests/peers/ensure-peers.sh and tests/mcp/ensure-mcp.sh (which
# scripts/test.sh and their ctest fixtures run). Node.js 18+ (Debian 12's) is enough.
set -euo pipefail
cd "$1"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm-ci: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
# Node.js trusts its own CA bundle; where the machine's egress adds a CA to the system
# store (update-ca-certificates), npm must trust the system store as well.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
npm ci --no-audit --no-fund --loglevel=error
