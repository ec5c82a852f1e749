#!/usr/bin/env bash
# What can be checked of deploy/terraform here, where the Terraform binary
# cannot be had: hclfmt, built from Debian's HCL v2 sources (the library
# Terraform parses and formats its files with), checks the syntax of every
# .tf file and that each is already in canonical format (`-check
# -require-no-change`). terraform validate / plan are NOT run (no binary, no
# providers): docs/operations.md "Infrastructure as code".
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/gocode/src/github.com/hashicorp/hcl/v2/cmd/hclfmt
if ! command -v go >/dev/null || [ ! -d "$src" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        golang-go golang-github-hashicorp-hcl-v2-dev >/dev/null
fi
bin=build/tools/hclfmt
if [ ! -x "$bin" ]; then
    mkdir -p build/tools
    GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$PWD/build/tools/gocache" \
        go build -o "$bin" github.com/hashicorp/hcl/v2/cmd/hclfmt
fi
"$bin" -check -require-no-change deploy/terraform/*.tf >/dev/null
echo "check-terraform: $(ls deploy/terraform/*.tf | wc -l) files parse and are formatted (hclfmt); terraform validate/plan not run (no Terraform binary here)"
