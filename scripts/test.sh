#!/usr/bin/env bash
# The test command: install what is missing, build (dev preset: all warnings
# are errors), run the whole test suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
tests/peers/ensure-peers.sh   # npm ci of the tests' real peers (committed package-lock.json)
tests/mcp/ensure-mcp.sh       # npm ci of the MCP SDK client (tests/mcp/package-lock.json)
cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev "$@"
