#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS (default 60) from its seed corpus.
# usage: scripts/fuzz.sh [SECONDS]. Builds build-fuzz/ with clang.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DFP_FUZZ=ON -DFP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_lb_parse fuzz_import fuzz_username
shared=$(cd .. && pwd)/shared/fixtures
for t in lb_parse import username; do
  work=$(mktemp -d)
  case $t in
    lb_parse) seeds="tests/data/letterboxd $shared/letterboxd" ;;
    import) seeds="tests/data $shared/letterboxd" ;;
    username) seeds="fuzz/corpus/username" ;;
  esac
  echo "== fuzz_$t for ${secs}s"
  ./build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" -max_len=262144 "$work" $seeds
  rm -rf "$work"
done
