#!/usr/bin/env bash
# Builds FilmPicker: the C programs with CMake, then the web app (web/dist,
# served by `filmpicker serve`). build.sh [DIR] [extra cmake args...]; DIR
# defaults to build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}; shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
(cd web && npm run --silent build >/dev/null)
