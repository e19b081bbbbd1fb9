#!/usr/bin/env bash
# Makes tests/peers/node_modules match package-lock.json (npm ci), unless it already
# does. scripts/test.sh runs it; the ctest fixture `peers_npm_ci` runs it too so that a
# plain `ctest` works after a fresh checkout. Node.js 18+ (Debian 12's) is enough.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "ensure-peers: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
# Node.js trusts its own CA bundle; where the machine's egress adds a CA to the system
# store (update-ca-certificates), npm must trust the system store as well.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
npm ci --no-audit --no-fund --loglevel=error
