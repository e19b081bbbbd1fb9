#!/usr/bin/env bash
# Installs every Debian package toani needs to build, test and run. Idempotent:
# installs only what is missing, so a second run does nothing. Debian 12.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache git
  # libraries (found with find_package / pkg-config)
  libssl-dev libsodium-dev libboost-dev nlohmann-json3-dev libcurl4-openssl-dev
  libsqlite3-dev libseccomp-dev libre2-dev libcli11-dev libhiredis-dev libpq-dev
  libyaml-cpp-dev libjemalloc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime: the connector sandbox, CA roots for real targets, tools the tests use
  bubblewrap ca-certificates openssl sqlite3 curl procps
  # the Redis 7 replay store's tests start their own redis-server
  redis-server
  # scale-out tests and benchmarks start their own PostgreSQL (initdb, postgres)
  postgresql
  # the browser connector drives Debian's Chromium headless in the sandbox
  chromium
)
# Node.js and npm run the tests' real peers (tests/peers: OAuth server, Standard
# Webhooks library). Installed from Debian only when no node/npm is there already (a
# machine may carry another Node.js build that provides both).
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
