#!/usr/bin/env bash
# The run command: install what is missing, build (release preset), then run the
# end-to-end demo, which starts `toani server --dev` on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target toani
DATA="${TOANI_DATA:-$PWD/toani-data}"
exec build/release/bin/toani demo --data "$DATA"
