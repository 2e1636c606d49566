#!/usr/bin/env bash
# The main job on a fresh Debian machine: install, build in release mode, run on the built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
swift build -c release 2>&1 | grep -v '^\[' || true
.build/release/space smoke "$@"
