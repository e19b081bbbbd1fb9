#!/usr/bin/env bash
# npm ci of the MCP SDK client (tests/mcp/package-lock.json), unless already done.
# scripts/test.sh runs it; the ctest fixture `mcp_npm_ci` runs it too.
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../scripts/npm-ci.sh" "$here"
