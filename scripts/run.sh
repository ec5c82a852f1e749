#!/usr/bin/env bash
# Set-up and run on a fresh machine: installs dependencies, builds, and serves
# the app on FILMPICKER_LISTEN (default 127.0.0.1:8080) with the embedded
# defaults (SQLite file filmpicker.db, in-process jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
exec ./build/filmpicker serve "$@"
