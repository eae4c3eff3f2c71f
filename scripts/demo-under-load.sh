#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Runs `aipc demo` N times while every CPU is kept busy by a shell loop
# at normal priority, and prints each run's verdict, its glitches with
# their figures, and at the end "N/N passed". A benchmark of robustness,
# not a timed test: a glitch (a deadline miss) passes; a run passes when
# the demo exits 0, i.e. no audio was lost or corrupted, no stream
# failed and no client crashed.
#
#   scripts/demo-under-load.sh [--runs N] [--loops N] [--aipc PATH]
#                              [-- DEMO-ARGS...]
#
# --runs: how many demos (default 20); --loops: busy loops (default: one
# per CPU); --aipc: the program (default build/tools/aipc). DEMO-ARGS go
# to `aipc demo` (say --backend pulse, or --out FILE.wav for the virtual
# device); each run works in a fresh temporary directory, so a relative
# --out lands there; a failed run's directory is kept (its path is
# printed). Exits 0 if every run passed. The clients' callbacks
# run real-time (granted by the server) and so mostly beat the loops;
# AUDIOIPC_RT_PRIORITY=0 in the environment turns that off, and the
# machine then wakes them late often enough to show glitches.
set -u

runs=20
loops=$(nproc)
aipc=$(cd "$(dirname "$0")/.." && pwd)/build/tools/aipc
while [ $# -gt 0 ]; do
  case $1 in
  --runs) runs=$2; shift 2 ;;
  --loops) loops=$2; shift 2 ;;
  --aipc) aipc=$(realpath "$2"); shift 2 ;;
  --) shift; break ;;
  *) echo "usage: $0 [--runs N] [--loops N] [--aipc PATH] [-- DEMO-ARGS...]" >&2
     exit 2 ;;
  esac
done
case $runs$loops in *[!0-9]*) echo "$0: --runs and --loops take numbers" >&2; exit 2 ;; esac
# The demo's clients are killed by SIGSYS if the sandbox catches them:
# no core files.
ulimit -c 0

work=$(mktemp -d /tmp/aipc-load-XXXXXX) || exit 1
busy=()
cleanup() {
  for pid in "${busy[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${busy[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq "$loops"); do
  sh -c 'while :; do :; done' &
  busy+=($!)
done

echo "demo under load: $runs runs of 'aipc demo $*', $loops busy loops" \
  "(normal priority) on $(nproc) CPUs, $(uname -r)"
passed=0
glitched=0
misses=0
for i in $(seq "$runs"); do
  dir=$work/run-$i
  mkdir "$dir"
  (cd "$dir" && "$aipc" demo "$@") >"$dir/out" 2>&1
  status=$?
  run_misses=$(grep -oE "^  glitch: .* missed [0-9]+ deadline" "$dir/out" |
    grep -oE '[0-9]+ deadline' | awk '{s += $1} END {print s + 0}')
  # The server's wait per callback over the streams: the worst p99 and
  # the largest maximum, from the table's p50/p99/max column.
  waits=$(grep -oE '  [0-9]+/[0-9]+/[0-9]+ ' "$dir/out" | tr '/' ' ' |
    awk '$2 > p99 {p99 = $2} $3 > max {max = $3}
      END {printf "server wait p99 <= %d us, max %d us", p99, max}')
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    if [ "$run_misses" -gt 0 ]; then
      glitched=$((glitched + 1))
      misses=$((misses + run_misses))
      echo "run $i/$runs: ok, glitched ($run_misses deadline misses; $waits)"
    else
      echo "run $i/$runs: ok ($waits)"
    fi
  else
    kept=$(mktemp -d /tmp/aipc-load-failed-XXXXXX)
    cp -r "$dir"/. "$kept"/
    echo "run $i/$runs: FAILED (exit $status; its output and files in $kept)"
    grep -E "FAILED|^aipc demo: clients still|cannot" "$dir/out" | sed 's/^/  /'
  fi
  grep -E "^  glitch: |^    [0-9]+ (at|more)" "$dir/out"
  grep -E "^mix: " "$dir/out" | sed 's/^/  /'
done
echo "$passed/$runs passed; $glitched runs glitched, $misses deadline misses in all"
[ "$passed" -eq "$runs" ]
