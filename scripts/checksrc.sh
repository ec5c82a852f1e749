#!/usr/bin/env bash
# Bans unbounded or error-swallowing libc calls in the project's C code, the
# way curl's checksrc does: a build that uses one fails this test.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
banned='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atof|sscanf|gets|strncpy|rand|srand)[[:space:]]*\('
hits=$(grep -RnE "$banned" "$root/src" "$root/tools" "$root/bench" "$root/fuzz" --include='*.c' --include='*.h' || true)
if [ -n "$hits" ]; then
  echo "banned calls found (use snprintf, fp_buf, strtol/strtoll, randombytes):"
  echo "$hits"
  exit 1
fi
echo "checksrc: clean"
