#!/usr/bin/env bash
# Installs what building, running and testing FilmPicker needs on Debian 12,
# skipping whatever is already there. Safe to run again. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config git ca-certificates
      libmicrohttpd-dev libcurl4-openssl-dev libxml2-dev libjansson-dev
      libsqlite3-dev libpq-dev libhiredis-dev librabbitmq-dev libsodium-dev libcmocka-dev libcsv-dev libzip-dev libjemalloc-dev
      python3 python3-jsonschema python3-yaml yamllint zip unzip nodejs npm wrk valgrind slowhttptest
      chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js: the machine's own node/npm (e.g. a newer one on PATH) is fine too.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Front-end packages from the npm registry: the web app's build and test
# tools, playwright-core and axe-core for the browser tests (Debian's chromium
# above is the browser; nothing downloads one), Swagger UI for /docs. Again
# whenever package-lock.json changed since the last install.
if [ ! -f web/node_modules/swagger-ui-dist/swagger-ui-bundle.js ] ||
   [ ! -f web/node_modules/vite/package.json ] ||
   [ ! -f web/node_modules/.package-lock.json ] ||
   [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
