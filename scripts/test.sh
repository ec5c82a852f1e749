#!/usr/bin/env bash
# The whole test suite: unit, conformance (../shared/fixtures), lint and
# integration tests, once in a normal build (build/) and once under
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
(cd build && ctest --output-on-failure -j2)
./scripts/build.sh build-asan -DFP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ctest --output-on-failure -j2)
echo "all tests passed"
