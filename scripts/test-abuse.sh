#!/usr/bin/env bash
# The abuse suite (tests/abuse): each attack of issue 8 replayed on loopback
# against build/filmpicker at its default limits, the attacker on 127.0.0.2,
# the honest client on 127.0.0.1. About a minute. Needs a build (build/) and
# slowhttptest (scripts/install-deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FP_BUILD_DIR:-$PWD/build}
[ -x "$build/filmpicker" ] && [ -f "$build/libbindsrc.so" ] || ./scripts/build.sh build
FP_BUILD_DIR="$build" python3 tests/abuse/test_abuse.py
