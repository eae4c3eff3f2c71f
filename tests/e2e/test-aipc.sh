#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# End-to-end tests of the aipc tool, all on the virtual device (no sound
# server needed).
#
#   test-aipc.sh AIPC TONE_CHECK
#
# Prints PASS/FAIL per check and a last line "N passed, N failed"; exits
# non-zero if anything failed.
set -u

aipc=$1
tone_check=$2
# The sandbox checks end processes with SIGSYS: no core files.
ulimit -c 0

dir=$(mktemp -d /tmp/aipc-test-XXXXXX) || exit 1
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then
    kill -KILL "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

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

# --- 1. The demo: sandboxed clients, every tone in the mix --------------------

demo_test() {
  local out=$dir/demo.out err=$dir/demo.err status
  "$aipc" demo --clients 3 --seconds 2 \
    --backend "virtual:clock=fast,out=$dir/demo.wav" >"$out" 2>"$err"
  status=$?
  show "$out"
  show "$err"
  check "demo exits 0" [ "$status" -eq 0 ]
  check "demo: every client exited 0 under the seccomp filter" \
    [ "$(grep -c '^client [123] (pid [0-9]*): ok: exited 0 under the seccomp filter' "$out")" -eq 3 ]
  check "demo: the duplex client received input" \
    grep -q '^client 1 .*received [1-9][0-9]* input frames' "$out"
  # The sandbox refuses sched_setscheduler; the server (root here) grants it.
  check "demo: every client's callbacks ran real-time, granted by the server" \
    [ "$(grep -c '^client [123] .*real-time callbacks (SCHED_FIFO, granted by the server)' "$out")" -eq 3 ]
  check "demo: the table has a row per stream with every frame" \
    [ "$(grep -cE '^ +[123] +[0-9]+ +[0-9]+ +[0-9]+ Hz.* 96000 ' "$out")" -eq 3 ]
  check "demo: the mix holds every client's tone" \
    "$tone_check" "$dir/demo.wav" 310 440 570
  check "demo: its own check finds exactly the clients' tones in the mix" \
    grep -q "^mix: $dir/demo.wav: [0-9]* frames; [0-9]* of its [0-9]* blocks of 100 ms hold exactly" "$out"
  check "demo: streams ask for cubeb's minimum latency (the device's period)" \
    [ "$(grep -cE '^ +[123] .* 0 +128$' "$out")" -eq 3 ]
  # The checker's own control: a tone nobody played is not found.
  check "demo: the mix does not hold a tone nobody played" \
    bash -c '! "$1" "$2" 700 830' _ "$tone_check" "$dir/demo.wav"
}

# --- 1b. The demo's verdict: a late answer is a glitch, lost audio a failure ----

# demo_fault KIND CLOCK: runs a 2-client demo whose client 2 has --fault
# KIND; sets status and out.
demo_fault() {
  out=$dir/fault-$1.out
  AIPC_DEMO_FAULT=2:$1 "$aipc" demo --clients 2 --seconds 1 \
    --backend "virtual:clock=$2,out=$dir/fault.wav" >"$out" 2>&1
  status=$?
  show "$out"
}

demo_verdict_test() {
  local out status
  # A callback that sleeps 60 ms is what a stalled machine does to a
  # client: the server's 20 ms deadline passes and it plays silence.
  demo_fault stall realtime
  check "demo: a stalled callback is a glitch, not a failure (exit 0)" \
    [ "$status" -eq 0 ]
  check "demo: the stalled client is ok, glitched" \
    grep -q '^client 2 (pid [0-9]*): ok: .*glitched' "$out"
  check "demo: the glitch has its figures (misses, silence, deadline)" \
    grep -qE "^  glitch: client 2's stream 1 \(440 Hz\) missed [0-9]+ deadlines?: the server played [0-9]+ callbacks? of silence .* the deadline: 20 ms" "$out"
  check "demo: the glitch says when, and how late the callback came" \
    grep -qE '^    [0-9]+ at [0-9.]+-[0-9.]+ s: its callback came [0-9.]+ ms late' "$out"
  check "demo: the mix check explains the silence by the misses" \
    grep -q '^mix: .*hold exactly' "$out"

  demo_fault wrong fast
  check "demo: a client's wrong frames fail the run (exit 1)" \
    [ "$status" -eq 1 ]
  check "demo: the mix check finds the wrong block" \
    grep -qE '^mix: .*: FAILED: [12] of its [0-9]+ blocks .* do not hold exactly' "$out"

  demo_fault lose fast
  check "demo: frames that never reached the server fail the run (exit 1)" \
    [ "$status" -eq 1 ]
  check "demo: the lost frames are named, with no miss to explain them" \
    grep -q '^client 2 (pid [0-9]*): FAILED: lost audio: the server counted 47872 of 48000 frames; 128 frames .* 0 deadline misses' "$out"

  demo_fault crash fast
  check "demo: a client that crashes fails the run (exit 1)" \
    eval '[ "$status" -eq 1 ] &&
      grep -q "^client 2 (pid [0-9]*): FAILED: crashed: killed by SIGABRT" "$out"'

  demo_fault error fast
  check "demo: a stream that errors fails the run (exit 1)" \
    eval '[ "$status" -eq 1 ] &&
      grep -q "^client 2 (pid [0-9]*): FAILED: .*its stream reported an error" "$out"'

  out=$dir/latency.out
  "$aipc" demo --clients 1 --seconds 0.5 --latency 20 \
    --backend virtual:clock=fast >"$out" 2>&1
  status=$?
  show "$out"
  check "demo --latency 20: the stream asks for 960 frames at 48 kHz" \
    eval '[ "$status" -eq 0 ] && grep -qE "^ +1 .* 960$" "$out"'
}

# --- 2. serve, and clients that connect to it ---------------------------------

# Starts "aipc serve" on $sock; waits for its "listening" line. Sets
# serve_pid and serve_fd (its stdout).
start_serve() {
  local line
  rm -f "$dir/serve.fifo"
  mkfifo "$dir/serve.fifo"
  "$aipc" serve --listen "$sock" --backend "$1" \
    >"$dir/serve.fifo" 2>>"$dir/serve.err" &
  serve_pid=$!
  exec {serve_fd}<"$dir/serve.fifo"
  if read -r -t 20 -u "$serve_fd" line; then
    echo "    | $line"
    [[ "$line" == *"listening on $sock" ]]
  else
    return 1
  fi
}

# Sends SIGTERM (or $1) to serve, collects its output, returns its status.
stop_serve() {
  local status
  kill "-${1:-TERM}" "$serve_pid"
  wait "$serve_pid"
  status=$?
  serve_pid=
  cat <&"$serve_fd" >>"$dir/serve.out"
  exec {serve_fd}<&-
  show "$dir/serve.out"
  return "$status"
}

serve_test() {
  sock=$dir/sock
  local backend="virtual:clock=fast,out=$dir/serve.wav" pids=() f status
  : >"$dir/serve.out"
  : >"$dir/serve.err"
  if ! start_serve "$backend"; then
    fail "serve starts and listens"
    show "$dir/serve.err"
    return
  fi
  pass "serve starts and listens"
  check "serve: the socket has mode 0600" \
    [ "$(stat -c %a "$sock")" = 600 ]
  "$aipc" serve --listen "$sock" --backend virtual 2>"$dir/second.err"
  status=$?
  show "$dir/second.err"
  check "serve: a second server on a live socket refuses to run" \
    [ "$status" -eq 1 ]

  for f in 570 700 830; do
    "$aipc" play --connect "$sock" --tone "$f" --seconds 1 \
      >"$dir/play-$f.out" 2>&1 &
    pids+=($!)
  done
  local i=0
  for f in 570 700 830; do
    wait "${pids[$i]}"
    status=$?
    show "$dir/play-$f.out"
    check "play --connect --tone $f exits 0 (three at once)" [ "$status" -eq 0 ]
    i=$((i + 1))
  done

  "$aipc" record --connect "$sock" "$dir/rec.wav" --seconds 1 \
    >"$dir/rec.out" 2>&1
  status=$?
  show "$dir/rec.out"
  check "record --connect exits 0" [ "$status" -eq 0 ]
  check "record: ~48000 frames of the virtual input's 440 Hz sine" \
    "$tone_check" "$dir/rec.wav" --frames 47520:48480 440

  "$aipc" devices --connect "$sock" >"$dir/devices.out" 2>&1
  status=$?
  show "$dir/devices.out"
  check "devices --connect exits 0" [ "$status" -eq 0 ]
  check "devices lists virtual-out as an output" \
    grep -qE '^output +virtual-out ' "$dir/devices.out"
  check "devices lists virtual-in as an input" \
    grep -qE '^input +virtual-in ' "$dir/devices.out"

  "$aipc" info --connect "$sock" >"$dir/info.out" 2>&1
  status=$?
  show "$dir/info.out"
  check "info --connect reports the virtual backend at 48000 Hz" \
    grep -q 'preferred rate: *48000 Hz' "$dir/info.out"

  stop_serve TERM
  status=$?
  check "serve exits 0 on SIGTERM" [ "$status" -eq 0 ]
  check "serve removed its socket" [ ! -e "$sock" ]
  check "serve printed a line per client" \
    [ "$(grep -c 'client [0-9]* connected: pid' "$dir/serve.out")" -ge 6 ]
  check "serve's mix holds the three tones" \
    "$tone_check" "$dir/serve.wav" 570 700 830

  # A server killed outright leaves its socket; the next one replaces it.
  : >"$dir/serve.out"
  if start_serve virtual:clock=fast; then
    stop_serve KILL
    check "serve: a killed server leaves a stale socket" [ -S "$sock" ]
    if start_serve virtual:clock=fast; then
      pass "serve replaces a stale socket"
      stop_serve TERM
      check "serve (on a replaced socket) exits 0 on SIGTERM" [ $? -eq 0 ]
    else
      fail "serve replaces a stale socket"
      show "$dir/serve.err"
    fi
  else
    fail "serve starts again"
  fi
  rm -f "$sock"

  touch "$dir/not-a-socket"
  "$aipc" serve --listen "$dir/not-a-socket" --backend virtual \
    2>"$dir/file.err"
  status=$?
  show "$dir/file.err"
  check "serve refuses to replace a file that is not a socket" \
    eval '[ "$status" -eq 1 ] && [ -f "$dir/not-a-socket" ]'
}

# --- 3. Usage errors and --help -----------------------------------------------

usage_test() {
  local args status
  for args in "" "nosuch" "demo --clients x" "demo --latency 0" "play" "play --tone" \
    "record --seconds 1" "serve" "info extra"; do
    # shellcheck disable=SC2086 # split on purpose
    "$aipc" $args >"$dir/usage.out" 2>"$dir/usage.err"
    status=$?
    check "'aipc $args' exits 2 with a usage message on stderr" \
      eval '[ "$status" -eq 2 ] && grep -q "usage: aipc" "$dir/usage.err" &&
        [ ! -s "$dir/usage.out" ]'
  done
  for args in demo serve play record devices info; do
    "$aipc" "$args" --help >"$dir/help.out" 2>&1
    status=$?
    check "'aipc $args --help' exits 0 with its usage" \
      eval '[ "$status" -eq 0 ] && grep -q "^usage: aipc $args" "$dir/help.out"'
  done
}

# --- 4. The sandbox really is on ------------------------------------------------

sandbox_test() {
  local call status
  for call in open openat openat2 creat socket socketpair connect \
    memfd_create execve execveat; do
    # The demo's client role, told to try the call after its filter is
    # on. (The braces keep bash's "Bad system call" out of the log.)
    { "$aipc" _client demo-client --try "$call"; } 2>"$dir/sandbox.err"
    status=$?
    check "a demo client that calls $call is killed by SIGSYS" \
      [ "$status" -eq $((128 + 31)) ]
  done
}

# --- 5. Without --connect: an in-process server, the client in a child --------

local_test() {
  local status
  "$aipc" play --backend virtual:clock=fast --tone 440 --seconds 0.5 \
    >"$dir/local.out" 2>&1
  status=$?
  show "$dir/local.out"
  check "play with an in-process server exits 0" [ "$status" -eq 0 ]
  "$aipc" record --backend virtual:clock=fast "$dir/local.wav" --seconds 0.5 \
    >"$dir/local.out" 2>&1
  status=$?
  show "$dir/local.out"
  check "record with an in-process server: 24000 frames of 440 Hz" \
    eval '[ "$status" -eq 0 ] &&
      "$tone_check" "$dir/local.wav" --frames 24000:24000 440'
  "$aipc" info --backend virtual:clock=fast,rate=44100 >"$dir/local.out" 2>&1
  status=$?
  show "$dir/local.out"
  check "info with an in-process server reports its rate" \
    eval '[ "$status" -eq 0 ] &&
      grep -q "preferred rate: *44100 Hz" "$dir/local.out"'
  "$aipc" demo --clients 1 --seconds 1 --backend virtual:nosuch=1 \
    >"$dir/local.out" 2>&1
  status=$?
  show "$dir/local.out"
  check "demo on a backend the server cannot start fails with status 1" \
    eval '[ "$status" -eq 1 ] &&
      grep -q "cannot start a server on backend" "$dir/local.out"'
}

# --- serve with its fd table full ----------------------------------------------
# serve's soft fd limit is lowered to what it holds once it listens, so
# that the next accept fails with EMFILE while peers wait in the backlog:
# it must refuse them (accept and close, with a spare fd) without
# spinning on the readable listener, and say so once per burst, not once
# per try.
serve_emfile_test() {
  local esock=$dir/emfile.sock ticks0 ticks1 lines pid holder used
  "$aipc" serve --listen "$esock" --backend virtual:clock=fast,out=/dev/null \
    >"$dir/emfile.out" 2>"$dir/emfile.err" &
  pid=$!
  for _ in $(seq 100); do [ -S "$esock" ] && break; sleep 0.1; done
  if [ ! -S "$esock" ]; then
    fail "serve starts for the EMFILE test"
    show "$dir/emfile.err"
    kill -KILL "$pid" 2>/dev/null
    return
  fi
  # The lowest free fd: a limit there makes the next one fail.
  used=0
  while [ -e "/proc/$pid/fd/$used" ]; do used=$((used + 1)); done
  prlimit --pid "$pid" --nofile="$used:"
  python3 - "$esock" >"$dir/emfile.py" 2>&1 <<'PY' &
import socket, sys, time
held = []
for i in range(8):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(sys.argv[1])
    except OSError:
        pass
    held.append(s)
time.sleep(3)
PY
  holder=$!
  sleep 0.5
  ticks0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep 1.5
  ticks1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  wait "$holder"
  check "serve lives on at its fd limit" kill -0 "$pid"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  lines=$(grep -c "out of fds" "$dir/emfile.err")
  echo "    | serve at its fd limit ($used): $((ticks1 - ticks0)) CPU ticks" \
    "in 1.5 s, $lines log lines of it"
  check "serve with its fds used up does not spin" \
    [ $((ticks1 - ticks0)) -lt 30 ]
  check "serve says it is out of fds once a burst" \
    eval '[ "$lines" -ge 1 ] && [ "$lines" -le 3 ]'
}

demo_test
demo_verdict_test
serve_test
serve_emfile_test
usage_test
sandbox_test
local_test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
