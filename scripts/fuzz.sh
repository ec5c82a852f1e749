#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS (default 60) from its seed corpus,
# then prints one line per target: edges covered, features, runs, runs/s.
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   TARGET: lb_parse import username json_body utf8 http http_multipart (default all)
# Builds build-fuzz/ with clang (-DFP_FUZZ=ON: the core library instrumented,
# ASan + UBSan). Each run starts from the seeds alone; its corpus is left in
# build-fuzz/fuzz-work/TARGET/ and any crash in build-fuzz/fuzz-crash/.
# Exit status 1 when a target crashed (the others still run).
# A crash replays with: build-fuzz/fuzz/fuzz_TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=${*:-lb_parse import username json_body utf8 http http_multipart}
shared=$(cd .. && pwd)/shared/fixtures
CC=clang cmake -S . -B build-fuzz -DFP_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fuzz_%s ' $targets) >/dev/null
mkdir -p build-fuzz/fuzz-crash
summary=()
failed=0
for t in $targets; do
  opts=()
  case $t in
    lb_parse) seeds="tests/data/letterboxd $shared/letterboxd"; opts=(-max_len=262144) ;;
    import) seeds="tests/data $shared/letterboxd"; opts=(-max_len=262144) ;;
    username | json_body | utf8) seeds="fuzz/corpus/$t" ;;
    # The server keeps state between inputs (sessions, stored lists), so
    # libFuzzer's per-input leak check would only report it; the ctest
    # replay checks leaks at exit, after a clean shutdown.
    http) seeds="fuzz/corpus/http"; opts=(-max_len=4096 -detect_leaks=0 -timeout=10 -dict=fuzz/http.dict) ;;
    http_multipart) seeds="fuzz/corpus/http_multipart"; opts=(-max_len=65536 -detect_leaks=0 -timeout=10) ;;
    *) echo "fuzz.sh: unknown target $t" >&2; exit 2 ;;
  esac
  work=build-fuzz/fuzz-work/$t
  rm -rf "$work" && mkdir -p "$work"
  log=build-fuzz/fuzz-work/$t.log
  echo "== fuzz_$t for ${secs}s (log: $log)"
  rc=0
  ./build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix=build-fuzz/fuzz-crash/$t- "${opts[@]}" "$work" $seeds >"$log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  speed=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log")
  if [ "$rc" -ne 0 ]; then
    failed=1
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 || true
    result="CRASH (see $log)"
  else
    result=ok
  fi
  summary+=("$(printf '%-15s %5ss  edges %-6s features %-7s runs %-9s runs/s %-7s %s' \
    "$t" "$secs" "${cov:-?}" "${ft:-?}" "${runs:-?}" "${speed:-?}" "$result")")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $failed
