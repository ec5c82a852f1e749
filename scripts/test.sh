#!/usr/bin/env bash
# The whole test suite: unit, conformance (../shared/fixtures), lint and
# integration tests, once in a normal build (build/) and once under
# AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/); the abuse
# suite (tests/abuse, scripts/test-abuse.sh) against build/; then the web
# app's type check and unit tests (Vitest) and its end-to-end tests in
# headless Chromium against build/ (tests/e2e); last the container stack
# (scripts/test-stack.sh: images, the whole stack through nginx over HTTPS,
# alerts, backup and restore) and the Ansible roles applied twice to a local
# target (scripts/test-ansible.sh), and the Terraform files' syntax and
# format (scripts/check-terraform.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh build
(cd build && ctest --output-on-failure -j2)
FP_BUILD_DIR="$PWD/build" ./scripts/test-abuse.sh
./scripts/build.sh build-asan -DFP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ctest --output-on-failure -j2)
(cd web && npm run --silent typecheck && npm run --silent test)
FP_BUILD_DIR="$PWD/build" node tests/e2e/run.mjs
./scripts/test-stack.sh
./scripts/test-ansible.sh
./scripts/check-terraform.sh
echo "all tests passed"
