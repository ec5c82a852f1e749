#!/usr/bin/env bash
# The Ansible roles applied to a local target, twice: a Podman container made
# from the project's Debian base (deploy/ansible/tests/Containerfile),
# reached through the containers.podman connection, with NET_ADMIN in its
# own network namespace so UFW really loads its rules there (never on the
# host). The first run must succeed, the second must change nothing; then
# the result is checked inside the target (tests/ansible/check_target.sh).
# ansible-lint (production profile) runs first. What a container cannot do
# (boot systemd, nested Podman, Let's Encrypt) the inventory switches off
# (filmpicker_test_target): docs/operations.md says what that leaves out.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/podman-env.sh
fp_podman_install
need=()
command -v ansible-playbook >/dev/null || need+=(ansible)
command -v ansible-lint >/dev/null || need+=(ansible-lint)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
./scripts/images.sh base
target=filmpicker-ansible-target
podman build -q --build-arg BASE=localhost/filmpicker-base:latest -t localhost/$target:latest \
    -f deploy/ansible/tests/Containerfile deploy/ansible/tests >/dev/null
podman rm -f "$target" >/dev/null 2>&1 || true
podman run -d --name "$target" --hostname "$target" --cap-add NET_ADMIN --cap-add NET_RAW \
    localhost/$target:latest >/dev/null
trap 'podman rm -f -t 0 "$target" >/dev/null 2>&1 || true' EXIT

cd deploy/ansible
echo "test-ansible: ansible-lint --profile production" >&2
ansible-lint --profile production --nocolor >/dev/null
log=$(mktemp -d)
for run in 1 2; do
    echo "test-ansible: run $run" >&2
    ANSIBLE_FORCE_COLOR=0 ansible-playbook -i tests/inventory.yml site.yml >"$log/run$run" 2>&1 || {
        tail -40 "$log/run$run" >&2
        echo "test-ansible: run $run failed" >&2
        exit 1
    }
    grep -A3 '^PLAY RECAP' "$log/run$run" >&2
done
if ! grep -Eq "^$target +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0" "$log/run2"; then
    grep -B2 -A6 '^changed:' "$log/run2" >&2 || true
    echo "test-ansible: the second run changed something: not idempotent" >&2
    exit 1
fi
cd ../..
bash tests/ansible/check_target.sh "$target"
echo "test-ansible: passed (applied twice, the second run changed nothing)" >&2
