#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Sets everything up and runs the whole test suite, the way CI does:
#   1. installs missing Debian packages (scripts/deps.sh);
#   2. starts a private PulseAudio for suite `pulse` (scripts/pulse.sh) and
#      the D-Bus system bus, if none runs, for RTKit (scripts/system-bus.sh);
#   3. builds with gcc (warnings are errors) and runs every suite;
#   4. builds with clang under ASan+UBSan (halt on error) and runs them again;
#   5. builds with clang under TSan and runs the unit and e2e suites (the
#      hostile suite's real-time deadlines do not survive its slowdown);
#   6. builds the libFuzzer targets and fuzzes each for AIPC_FUZZ_SECONDS
#      (default 20) on a copy of its corpus.
# Idempotent; the build directories build-gcc, build-asan, build-tsan and
# build-fuzz are reused. Ends with one line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/system-bus.sh start
bash scripts/pulse.sh start
failed_cases=$(mktemp) # the failed cases, printed at the end
trap 'bash scripts/pulse.sh stop; rm -f "$failed_cases"' EXIT
eval "$(bash scripts/pulse.sh env)"

setup() { # DIR, then meson options
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir"
}

passed=0
failed=0
failures=()
count_results() { # DIR LABEL
  local counts
  counts=$(python3 - "$1/meson-logs/testlog.json" "$failed_cases" "$2" <<'PY'
import json, re, sys
ok = bad = 0
# A failed test's FAIL lines and the messages of its failed checks.
case = re.compile(r"^(FAIL  |\S+\.c:\d+: )")
with open(sys.argv[2], "a") as cases:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["result"] in ("OK", "EXPECTEDFAIL"):
            ok += 1
            continue
        bad += 1
        print("FAILED:", r["name"], file=sys.stderr)
        cases.write("%s %s (%s)\n" % (sys.argv[3], r["name"], r["result"]))
        for out in (r.get("stdout") or "").splitlines():
            if case.match(out):
                cases.write("    " + out + "\n")
print(ok, bad)
PY
)
  local ok bad
  read -r ok bad <<<"$counts"
  echo "== $2: $ok passed, $bad failed"
  passed=$((passed + ok))
  failed=$((failed + bad))
  [ "$bad" -eq 0 ] || failures+=("$2")
}

run_suite() { # DIR LABEL, then meson test options
  local dir=$1 label=$2
  shift 2
  meson test -C "$dir" --print-errorlogs "$@" || true
  count_results "$dir" "$label"
}

echo "== gcc, warnings as errors"
CC=gcc setup build-gcc -Dwerror=true
run_suite build-gcc gcc

echo "== clang, ASan+UBSan"
CC=clang setup build-asan -Dwerror=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_suite build-asan clang-asan --timeout-multiplier 3

echo "== clang, TSan (suites unit, e2e)"
CC=clang setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false
TSAN_OPTIONS=halt_on_error=1:suppressions=$PWD/tests/tsan.supp \
  run_suite build-tsan clang-tsan --suite unit --suite e2e \
  --timeout-multiplier 3

echo "== libFuzzer targets, ${AIPC_FUZZ_SECONDS:-20} s each"
CC=clang setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dc_args=-fno-sanitize-recover=all
for fuzzer in build-fuzz/tests/fuzz/fuzz-*; do
  [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue
  name=${fuzzer##*/fuzz-}
  work=$(mktemp -d)
  cp tests/fuzz/corpus/"$name"/* "$work"/
  if "$fuzzer" -max_total_time="${AIPC_FUZZ_SECONDS:-20}" -print_final_stats=1 \
    -artifact_prefix="build-fuzz/fuzz-$name-" "$work" \
    >"build-fuzz/fuzz-$name.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' \
      "build-fuzz/fuzz-$name.log" | grep -o '[0-9]*$' || echo '?')
    echo "== fuzz-$name: no finding in $runs executions"
    passed=$((passed + 1))
  else
    tail -40 "build-fuzz/fuzz-$name.log"
    echo "== fuzz-$name: FINDING (inputs in build-fuzz/)"
    failed=$((failed + 1))
    failures+=("fuzz-$name")
  fi
  rm -rf "$work"
done

if [ ${#failures[@]} -ne 0 ]; then
  cat "$failed_cases"
  echo "failed in: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
