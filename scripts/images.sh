#!/usr/bin/env bash
# Builds the stack's container images locally (no registry is reachable):
#   1. filmpicker-base:TAG - Debian 12 minbase made by debootstrap and
#      brought in with `podman import`. TAG is a hash of what goes into it
#      (suite, variant, mirror, deploy/images/base.packages, this recipe's
#      version), so it is built once and reused until one of those changes.
#   2. one image per deploy/images/NAME/Containerfile, FROM that base:
#      app (filmpicker serve/worker/migrate + the fake Letterboxd; the C code
#      is built once, in its build stage), postgres, redis, rabbitmq, nginx,
#      monitor (Prometheus, Alertmanager, exporters). Podman's layer cache
#      makes a rebuild of an unchanged image a matter of seconds.
# images.sh [--save FILE] [NAME...]   (default: all; --save writes them with
# `podman save` into FILE, the archive the Ansible role loads on a server).
# Needs root; installs Podman,
# podman-compose and debootstrap from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/podman-env.sh
fp_podman_install

suite=bookworm
mirror=${FP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
recipe=3 # bump when the steps below change what the base holds
packages=$(grep -v '^\s*#' deploy/images/base.packages | xargs | tr ' ' ,)
tag=$( { echo "$suite minbase $mirror $recipe"; echo "$packages"; } | sha256sum | cut -c1-16)
base=localhost/filmpicker-base:$tag

build_base() {
    if podman image exists "$base"; then
        return
    fi
    echo "images: building $base with debootstrap (a few minutes, once)" >&2
    local root
    root=$(mktemp -d /var/tmp/filmpicker-base.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >/dev/null
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
EOF
    # Images stay small: no recommends, no documentation, no locales but C.
    cat >"$root/etc/apt/apt.conf.d/90filmpicker" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
    cat >"$root/etc/dpkg/dpkg.cfg.d/90filmpicker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    # Services in these images are started by their own commands, never by
    # an init system: package scripts must not try to start them.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
        "$root"/usr/share/doc/*/changelog* "$root"/usr/share/man/* "$root"/usr/share/info/*
    : >"$root/etc/machine-id"
    tar --numeric-owner -C "$root" -c . |
        podman import -q --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$base" >/dev/null
    podman tag "$base" localhost/filmpicker-base:latest
}

build_image() {
    local name=$1 context=deploy/images/$1
    [ "$name" = app ] && context=.
    if [ "$name" = app ] && { [ ! -f web/dist/index.html ] ||
        [ ! -f web/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]; }; then
        echo "images: web/dist or Swagger UI missing: run ./scripts/build.sh first" >&2
        exit 1
    fi
    echo "images: filmpicker-$name" >&2
    podman build -q --layers --build-arg BASE="$base" --format docker -t "localhost/filmpicker-$name:latest" \
        -f "deploy/images/$name/Containerfile" "$context" >/dev/null
}

all=(app postgres redis rabbitmq nginx monitor)
save=""
if [ "${1:-}" = --save ]; then # --save FILE: build all, then `podman save` them into FILE
    save=${2:?--save needs a file}
    shift 2
fi
[ $# -gt 0 ] && all=("$@")
build_base
podman tag "$base" localhost/filmpicker-base:latest
for n in "${all[@]}"; do
    [ "$n" = base ] || build_image "$n"
done
if [ -n "$save" ]; then
    echo "images: saving to $save" >&2
    podman save -q -m -o "$save" $(printf 'localhost/filmpicker-%s:latest ' "${all[@]}")
fi
