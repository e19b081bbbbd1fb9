#!/usr/bin/env bash
# npm ci of the tests' real peers (tests/peers/package-lock.json), unless already done.
# scripts/test.sh runs it; the ctest fixture `peers_npm_ci` runs it too so that a plain
# `ctest` works after a fresh checkout.
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../scripts/npm-ci.sh" "$here"
