#!/usr/bin/env bash
# The container stack's tests: Prometheus rules (promtool), then the whole
# stack started with `scripts/stack.sh up` and exercised through nginx over
# HTTPS (tests/stack/test_stack.py: compat and v1 searches, a web session
# with SSE, a worker and an API instance stopped, an alert reaching the fake
# Telegram, backup + destroy + restore), then stopped with its volumes.
# FP_STACK_KEEP=1 leaves the stack running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/podman-env.sh
fp_podman_install
./scripts/images.sh monitor
command -v yamllint >/dev/null || { apt-get update -qq && apt-get install -y -qq yamllint >/dev/null; }
echo "test-stack: yamllint of the deployment's YAML" >&2
yamllint --strict deploy .github .yamllint
echo "test-stack: promtool check + test rules" >&2
podman run --rm -v "$PWD/deploy/prometheus:/p:ro" -w /p localhost/filmpicker-monitor:latest \
    promtool check config prometheus.yml
podman run --rm -v "$PWD/deploy/prometheus:/p:ro" -w /p localhost/filmpicker-monitor:latest \
    promtool test rules rules_test.yml
./scripts/stack.sh down --volumes
status=0
if ./scripts/stack.sh up; then
    python3 tests/stack/test_stack.py --failfast || status=$?
else
    status=1
fi
if [ $status -ne 0 ]; then
    ./scripts/stack.sh status >&2 || true
    for c in api1 api2 worker1 worker2 nginx alertmanager prometheus; do
        echo "--- $c" >&2
        podman logs --tail 15 "filmpicker_${c}_1" >&2 2>&1 || true
    done
fi
[ "${FP_STACK_KEEP:-0}" = 1 ] || ./scripts/stack.sh down --volumes
exit $status
