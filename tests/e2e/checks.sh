# SPDX-License-Identifier: ISC
# What the aipc tool's test scripts share (sourced, not run): PASS/FAIL
# counting and waiting for a recording to grow.

passed=0
failed=0
pass() {
  echo "PASS: $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL: $1"
  failed=$((failed + 1))
}
# check NAME COMMAND...: passes if COMMAND succeeds. Compound conditions
# go through eval, in the caller's (dynamic) scope.
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
# Shows a file's content in the log, indented.
show() {
  sed 's/^/    | /' "$1"
}

# frames_at_least SOUND_TOOL FILE N: waits (30 s at most) until the
# header of the recording FILE (rewritten about once a second) counts
# at least N frames; prints the count. FLAC's header counts nothing
# until the end: there, the frames that can be decoded.
frames_at_least() {
  local n
  for _ in $(seq 300); do
    if [ "${2##*.}" = flac ]; then
      n=$("$1" count "$2" 2>/dev/null)
    else
      n=$("$1" info "$2" 2>/dev/null | awk '{print $5}')
    fi
    if [ -n "$n" ] && [ "$n" -ge "$3" ]; then
      echo "$n"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# record_signal_check SIG FILE ARGS...: runs "aipc record ARGS... FILE",
# waits until FILE holds a second, sends SIG and checks what is left:
# for SIGINT and SIGTERM exit 0 and a valid file with every frame the
# recorder says it took, no fewer than there were before the signal;
# for SIGKILL a valid file with no fewer frames than its header counted
# before. Both hold 440 Hz. Uses $aipc, $sound_tool, $tone_check, $dir.
record_signal_check() {
  local sig=$1 file=$2 pid status before after
  shift 2
  "$aipc" record "$@" "$file" >"$dir/sig.out" 2>&1 &
  pid=$!
  before=$(frames_at_least "$sound_tool" "$file" 48000) || before=
  kill "-$sig" "$pid"
  wait "$pid"
  status=$?
  show "$dir/sig.out"
  after=$("$sound_tool" info "$file" | awk '{print $5}')
  echo "    | frames before SIG$sig: ${before:-none}, after: ${after:-unreadable}"
  if [ "$sig" = KILL ]; then
    check "record $* (.${file##*.}) killed by SIGKILL: a valid file with what its header counted" \
      eval '[ "$status" -eq 137 ] && [ -n "$before" ] &&
        [ "$after" -ge "$before" ] && "$tone_check" "$file" 440'
  else
    check "record $* (.${file##*.}) stopped by SIG$sig: exit 0, a valid file with every frame taken" \
      eval '[ "$status" -eq 0 ] && [ -n "$before" ] &&
        [ "$after" -ge "$before" ] &&
        grep -q "recorded $after frames .*stopped by a signal" "$dir/sig.out" &&
        "$tone_check" "$file" 440'
  fi
}
