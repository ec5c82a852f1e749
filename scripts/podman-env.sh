#!/usr/bin/env bash
# Sourced by the stack scripts: points Podman at the project's settings
# (deploy/podman/containers.conf: runc, cgroupfs, ulimits at or below
# nofile=1024:1024 nproc=1024:1024) and installs Podman, podman-compose and
# debootstrap from Debian when missing.
fp_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONTAINERS_CONF="$fp_root/deploy/podman/containers.conf"
fp_podman_install() {
    local need=()
    command -v podman >/dev/null || need+=(podman runc netavark aardvark-dns iptables)
    command -v podman-compose >/dev/null || need+=(podman-compose)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v curl >/dev/null || need+=(curl)
    command -v openssl >/dev/null || need+=(openssl)
    if ((${#need[@]})); then
        # With Debian's recommends, as on the machines this was tested on.
        echo "installing ${need[*]} from Debian" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}
