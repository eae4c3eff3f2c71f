#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# End-to-end tests of the aipc tool, all on the virtual device (no sound
# server needed).
#
#   test-aipc.sh AIPC TONE_CHECK SOUND_TOOL
#
# Prints PASS/FAIL per check and a last line "N passed, N failed"; exits
# non-zero if anything failed.
set -u

aipc=$1
tone_check=$2
sound_tool=$3
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

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

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
  # One callback of wrong frames spoils one or two blocks; a third was
  # seen once under ASan (13 blocks, a client starting late), so only
  # the verdict's cause is checked, not its count.
  check "demo: the mix check finds the wrong blocks" \
    grep -qE '^mix: .*: FAILED: [0-9]+ of its [0-9]+ blocks .* do not hold exactly' "$out"

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
  for args in "" "nosuch" "demo --clients x" "demo --latency 0" "serve" \
    "info extra"; do
    # shellcheck disable=SC2086 # split on purpose
    "$aipc" $args >"$dir/usage.out" 2>"$dir/usage.err"
    status=$?
    # The one wrong thing, and where to read more: two lines.
    check "'aipc $args' exits 2 naming the error and pointing to --help" \
      eval '[ "$status" -eq 2 ] && [ ! -s "$dir/usage.out" ] &&
        [ "$(wc -l <"$dir/usage.err")" -eq 2 ] &&
        grep -qx "see aipc\( [a-z]*\)\? --help" "$dir/usage.err"'
  done
  "$aipc" --version >"$dir/version.out" 2>&1
  status=$?
  check "'aipc --version' prints the project's version" \
    eval '[ "$status" -eq 0 ] && grep -qx "aipc [0-9]*\.[0-9]*\.[0-9]*" "$dir/version.out"'
  # play and record name the one wrong thing and where to look.
  for args in "play" "play --tone" "record --seconds 1" "play --rate 3 -" \
    "play --rate 8000 x.wav" "play --format s24 -" "record - --format s24" \
    "record --format nosuch x.wav" "record --tone 440 x.wav" \
    "play --volume 2 x.wav" "play --latency 0 x.wav" "play --bogus x.wav" \
    "play a.wav b.wav" "play --channels 9 -"; do
    # shellcheck disable=SC2086 # split on purpose
    "$aipc" $args >"$dir/usage.out" 2>"$dir/usage.err"
    status=$?
    show "$dir/usage.err"
    check "'aipc $args' exits 2 with one line and 'see aipc ${args%% *} --help'" \
      eval '[ "$status" -eq 2 ] && [ "$(wc -l <"$dir/usage.err")" -eq 2 ] &&
        [ "$(tail -n 1 "$dir/usage.err")" = "see aipc ${args%% *} --help" ] &&
        [ ! -s "$dir/usage.out" ]'
  done
  for args in demo serve top play record devices info; do
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

# --- 6. play: every container and sample type, any rate and channels ---------

# "container samples rate channels": at the device's rate and channels
# the output must be the file, read as float, bit for bit; otherwise
# the device converts, and the tone must be there at its length.
sound_files_test() {
  local spec c s r ch f out frames status lo hi
  for spec in "wav u8 48000 2" "aiff s8 48000 2" "wav s16 48000 2" \
    "wav s24 48000 2" "wav s32 48000 2" "wav f32 48000 2" "wav f64 48000 2" \
    "wavex s16 48000 2" "wavex s24 48000 2" "wavex f32 48000 2" \
    "flac s16 48000 2" "flac s24 48000 2" "aiff s16 48000 2" \
    "caf f32 48000 2" "w64 s32 48000 2" "au s16 48000 2" \
    "wav s16 44100 1" "wav f32 22050 2" "wavex s24 96000 6" \
    "flac s16 8000 1" "ogg vorbis 44100 2" "ogg vorbis 48000 1" \
    "wav u8 11025 3"; do
    read -r c s r ch <<<"$spec"
    f=$dir/in-$c-$s-$r-$ch.$c
    [ "$c" = wavex ] && f=$dir/in-$c-$s-$r-$ch.wav
    out=$dir/out-$c-$s-$r-$ch.wav
    frames=$((r / 2))
    if ! "$sound_tool" gen "$f" "$c" "$s" "$r" "$ch" "$frames" 440; then
      fail "sound-tool makes a $c $s file"
      continue
    fi
    "$aipc" play --backend "virtual:clock=fast,out=$out" "$f" \
      >"$dir/play.out" 2>&1
    status=$?
    show "$dir/play.out"
    if [ "$r" = 48000 ] && [ "$ch" = 2 ] && [ "$s" != vorbis ]; then
      check "play $c $s at 48000 Hz, stereo: exit 0, the output is the file bit for bit" \
        eval '[ "$status" -eq 0 ] && "$sound_tool" same "$f" "$out"'
    else
      # 0.5 s at 48 kHz, and the resampler's tail (its filter's delay).
      lo=23900 hi=24400
      check "play $c $s at $r Hz, $ch channels: exit 0, 440 Hz for 0.5 s in the output" \
        eval '[ "$status" -eq 0 ] &&
          "$tone_check" "$out" --frames "$lo:$hi" 440'
    fi
  done
}

# A 5.1 file (WAVE_FORMAT_EXTENSIBLE's channel mask) is mixed down by
# its layout: left gets left, and centre, LFE and back left at 1/sqrt(2)
# each (libcubeb's rules), 0.5 * (1 + 3 / sqrt(2)). A file without a
# channel map goes channel to channel.
# play_peak NAME FILE PEAK: plays FILE on the virtual device; checks the
# output's largest sample.
play_peak() {
  local status want=$3
  "$aipc" play --backend "virtual:clock=fast,out=$dir/peak-out.wav" "$2" \
    >"$dir/play.out" 2>&1
  status=$?
  show "$dir/play.out"
  check "$1" eval '[ "$status" -eq 0 ] &&
    [ "$("$sound_tool" peak "$dir/peak-out.wav")" = "$want" ]'
}

layout_test() {
  "$sound_tool" gen "$dir/six.wav" wavex f32 48000 6 24000 440
  "$sound_tool" gen "$dir/six.w64" w64 f32 48000 6 24000 440
  play_peak "play of a 5.1 WAVE_FORMAT_EXTENSIBLE file: mixed to stereo by its layout" \
    "$dir/six.wav" 1.5607
  play_peak "play of a 6-channel file without a channel map: channel to channel" \
    "$dir/six.w64" 0.5000
}

# --- 7. Broken files: exit 1 and one line naming the file -------------------

broken_files_test() {
  local good=$dir/good.wav f status
  "$sound_tool" gen "$good" wav s16 48000 2 48000 440
  : >"$dir/empty.wav"
  head -c 1000 /dev/urandom >"$dir/garbage.wav"
  head -c 30 "$good" >"$dir/truncated-header.wav"
  printf 'RIFF\x24\x00\x00\x00WAVEfmt ' >"$dir/no-fmt.wav"
  mkfifo "$dir/fifo.wav"
  for f in empty garbage truncated-header no-fmt fifo missing; do
    timeout 30 "$aipc" play --backend virtual:clock=fast "$dir/$f.wav" \
      >"$dir/broken.out" 2>"$dir/broken.err"
    status=$?
    show "$dir/broken.err"
    check "play of a $f file: exit 1, one line on stderr naming it" \
      eval '[ "$status" -eq 1 ] && [ "$(wc -l <"$dir/broken.err")" -eq 1 ] &&
        grep -q "^aipc play: $dir/$f.wav: ." "$dir/broken.err" &&
        [ ! -s "$dir/broken.out" ]'
  done
  # The header says 1 s; the data chunk holds 0.25 s.
  head -c $((44 + 48000 * 4 / 4)) "$good" >"$dir/short.wav"
  "$aipc" play --backend "virtual:clock=fast,out=$dir/short-out.wav" \
    "$dir/short.wav" >"$dir/broken.out" 2>&1
  status=$?
  show "$dir/broken.out"
  check "play of a file whose data is shorter than its header says plays what is there" \
    eval '[ "$status" -eq 0 ] &&
      "$tone_check" "$dir/short-out.wav" --frames 12000:12000 440'
  "$aipc" play --backend virtual:clock=fast,in="$dir/garbage.wav" \
    --tone 440 --seconds 0.1 >"$dir/broken.out" 2>&1
  status=$?
  show "$dir/broken.out"
  check "a virtual device whose in= file is garbage does not start" \
    eval '[ "$status" -eq 1 ] && grep -q "garbage.wav" "$dir/broken.out"'
}

# --- 8. record: containers and sample types ----------------------------------

record_formats_test() {
  local spec fmt file want status
  for spec in "s16 wav s16" "s24 wav s24" "f32 wav f32" "u8 wav u8" \
    "s32 wav s32" "f64 wav f64" "s16 flac s16" "- flac s24" "s24 flac s24" \
    "- wav f32" "- ogg vorbis" "s16be aiff s16" "f32 caf f32"; do
    read -r fmt file want <<<"$spec"
    file=$dir/rec-$fmt.$file
    local opts=()
    [ "$fmt" != - ] && opts=(--format "$fmt")
    "$aipc" record --backend virtual:clock=fast "${opts[@]}" "$file" \
      --seconds 0.5 >"$dir/rec.out" 2>&1
    status=$?
    show "$dir/rec.out"
    check "record ${opts[*]:-(default format)} to .${file##*.}: exit 0, $want samples, 24000 frames of 440 Hz" \
      eval '[ "$status" -eq 0 ] &&
        "$sound_tool" info "$file" | grep -q "^[a-z0-9]* $want 48000 2 24000$" &&
        "$tone_check" "$file" 440'
  done
  # The virtual device's in= takes any file libsndfile reads, at any
  # rate: a 44.1 kHz mono FLAC of 570 Hz, resampled once to 48 kHz.
  "$sound_tool" gen "$dir/in570.flac" flac s16 44100 1 44100 570
  "$aipc" record --backend "virtual:clock=fast,in=$dir/in570.flac" \
    "$dir/rec-in.wav" --seconds 0.5 >"$dir/rec.out" 2>&1
  status=$?
  show "$dir/rec.out"
  check "record from a virtual device with in= a 44.1 kHz FLAC: its 570 Hz" \
    eval '[ "$status" -eq 0 ] &&
      "$tone_check" "$dir/rec-in.wav" --frames 24000:24000 570 &&
      ! "$tone_check" "$dir/rec-in.wav" 440'
  "$aipc" record --backend virtual:clock=fast --format f32 "$dir/x.flac" \
    --seconds 0.5 >"$dir/rec.out" 2>"$dir/rec.err"
  status=$?
  show "$dir/rec.err"
  check "record --format f32 to FLAC: exit 1, one line" \
    eval '[ "$status" -eq 1 ] && [ "$(wc -l <"$dir/rec.err")" -eq 1 ]'
  "$aipc" record --backend virtual:clock=fast --rate 44100 --channels 1 \
    --volume 0.5 "$dir/rec-opts.wav" --seconds 0.5 >"$dir/rec.out" 2>&1
  status=$?
  show "$dir/rec.out"
  check "record --rate 44100 --channels 1 --volume 0.5: the sine at 0.25" \
    eval '[ "$status" -eq 0 ] &&
      "$sound_tool" info "$dir/rec-opts.wav" | grep -q " 44100 1 22050$" &&
      [ "$("$sound_tool" peak "$dir/rec-opts.wav")" = 0.2500 ]'
}

# --- 9. record until a signal; its header kept current -----------------------

record_signal_test() {
  local sig file
  for sig in INT TERM KILL; do
    for file in "$dir/sig-$sig.wav" "$dir/sig-$sig.flac"; do
      [ "$sig" = KILL ] && [ "${file##*.}" = flac ] && continue
      record_signal_check "$sig" "$file" --backend virtual:clock=realtime
    done
  done
}

# --- 10. Raw audio through a pipe; devices ------------------------------------

raw_and_devices_test() {
  local fmt status
  for fmt in "" s16le s16be f32le f32be; do
    local opts=()
    [ -n "$fmt" ] && opts=(--format "$fmt")
    "$aipc" record --backend virtual:clock=fast "${opts[@]}" - --seconds 1 \
      2>"$dir/raw-rec.err" |
      "$aipc" play --backend "virtual:clock=realtime,out=$dir/raw.wav" \
        "${opts[@]}" - >"$dir/raw-play.out" 2>&1
    status="${PIPESTATUS[0]} ${PIPESTATUS[1]}"
    show "$dir/raw-rec.err"
    show "$dir/raw-play.out"
    check "aipc record ${opts[*]} - | aipc play ${opts[*]} -: a second of 440 Hz" \
      eval '[ "$status" = "0 0" ] &&
        "$tone_check" "$dir/raw.wav" --frames 48000:49000 440'
  done
  "$aipc" play --backend "virtual:clock=fast,out=$dir/dev.wav" \
    --device virtual-out --volume 0.5 --latency 20 \
    "$dir/in-wav-f32-48000-2.wav" >"$dir/dev.out" 2>&1
  status=$?
  show "$dir/dev.out"
  check "play --device virtual-out --volume 0.5 --latency 20: the sine at 0.25" \
    eval '[ "$status" -eq 0 ] && [ "$("$sound_tool" peak "$dir/dev.wav")" = 0.2500 ]'
  "$aipc" play --backend virtual:clock=fast --device nosuch --tone 440 \
    >"$dir/dev.out" 2>"$dir/dev.err"
  status=$?
  show "$dir/dev.err"
  check "play --device nosuch: exit 1, says there is no such device" \
    eval '[ "$status" -eq 1 ] && grep -q "no output device \"nosuch\"" "$dir/dev.err"'
  "$aipc" record --backend virtual:clock=fast --device virtual-out \
    "$dir/dev.wav" --seconds 0.1 >"$dir/dev.out" 2>"$dir/dev.err"
  status=$?
  show "$dir/dev.err"
  check "record --device (an output's id): exit 1, no such input device" \
    eval '[ "$status" -eq 1 ] && grep -q "no input device \"virtual-out\"" "$dir/dev.err"'
}

demo_test
demo_verdict_test
serve_test
serve_emfile_test
usage_test
sandbox_test
local_test
sound_files_test
layout_test
broken_files_test
record_formats_test
record_signal_test
raw_and_devices_test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
