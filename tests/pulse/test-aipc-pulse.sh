#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# aipc play and record on the private PulseAudio (scripts/pulse.sh),
# checked on the sound server's side: the sink a stream is on from
# pactl, what reached a sink from its monitor through parec.
#
#   test-aipc-pulse.sh AIPC TONE_CHECK SOUND_TOOL
#
# Prints PASS/FAIL per check and a last line "N passed, N failed"; exits
# non-zero if anything failed (a PulseAudio that is not there too).
set -u

aipc=$1
tone_check=$2
sound_tool=$3

dir=$(mktemp -d /tmp/aipc-pulse-test-XXXXXX) || exit 1
sink=aipc_test_sink_$$
module=
cleanup() {
  [ -n "$module" ] && pactl unload-module "$module" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

# shellcheck source=../e2e/checks.sh
. "$(dirname "$0")/../e2e/checks.sh"

if ! pactl info >/dev/null 2>&1; then
  fail "a PulseAudio is reachable (start scripts/pulse.sh and eval its env)"
  echo "$passed passed, $failed failed"
  exit 1
fi
module=$(pactl load-module module-null-sink sink_name="$sink" norewinds=1 \
  rate=48000 channels=2 sink_properties=device.description=AIPC-Test-Sink)
sink_index=$(pactl list short sinks | awk -v s="$sink" '$2 == s {print $1}')
check "a second null sink, $sink, is loaded" [ -n "$sink_index" ]

# The sink index of the sink-input named "aipc play", or nothing.
sink_of_aipc_play() {
  pactl list sink-inputs | awk '
    /^Sink Input #/ { sink = "" }
    /^[ \t]*Sink: / { sink = $2 }
    /media.name = "aipc play"/ { print sink; exit }'
}

# --- --device, checked with pactl and through the sink's monitor --------------

# play_on_sink FILE WHAT [OPTIONS...]: plays FILE with --device $sink
# while parec records the sink's monitor; checks the stream sat on that
# sink and the tone arrived.
play_on_sink() {
  local file=$1 what=$2 status seen= parec_pid
  shift 2
  parec -d "$sink.monitor" --file-format=wav --format=float32le \
    --rate=48000 --channels=2 "$dir/monitor.wav" 2>"$dir/parec.err" &
  parec_pid=$!
  "$aipc" play --backend pulse --device "$sink" "$@" "$file" \
    >"$dir/play.out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    seen=$(sink_of_aipc_play)
    [ -n "$seen" ] && break
    sleep 0.05
  done
  wait "$pid"
  status=$?
  kill -INT "$parec_pid"
  wait "$parec_pid"
  show "$dir/play.out"
  echo "    | pactl: the stream \"aipc play\" was on sink #${seen:-?} ($sink is #$sink_index)"
  check "play --device $sink of $what: exit 0, on that sink by pactl" \
    eval '[ "$status" -eq 0 ] && [ "$seen" = "$sink_index" ]'
  check "play --device $sink of $what: the sink's monitor got 440 Hz" \
    "$tone_check" "$dir/monitor.wav" 440
}

device_test() {
  local spec c s r ch f
  for spec in "wav s16 44100 2" "wavex f32 96000 6" "flac s24 48000 1" \
    "ogg vorbis 48000 2" "wav u8 22050 1" "aiff s32 48000 2" \
    "wav f64 48000 2" "wavex s24 32000 1"; do
    read -r c s r ch <<<"$spec"
    f=$dir/in-$c-$s.$c
    [ "$c" = wavex ] && f=$dir/in-$c-$s.wav
    if "$sound_tool" gen "$f" "$c" "$s" "$r" "$ch" "$r" 440; then
      play_on_sink "$f" "$c $s at $r Hz, $ch channels"
    else
      fail "sound-tool makes a $c $s file"
    fi
  done

  # The stream's volume is PulseAudio's: a sine at 0.5 reaches the
  # monitor at 0.25.
  play_on_sink "$dir/in-wav-f64.wav" "wav f64 at --volume 0.5" --volume 0.5
  local peak
  peak=$("$sound_tool" peak "$dir/monitor.wav")
  echo "    | the monitor's peak: $peak"
  check "play --volume 0.5 on pulse: the sink's monitor peaks at 0.25" \
    awk -v p="$peak" 'BEGIN { exit !(p > 0.245 && p < 0.255) }'

  "$aipc" play --backend pulse --device nosuch_sink --tone 440 \
    >"$dir/play.out" 2>"$dir/play.err"
  local status=$?
  show "$dir/play.err"
  check "play --device nosuch_sink on pulse: exit 1, no such output device" \
    eval '[ "$status" -eq 1 ] &&
      grep -q "no output device \"nosuch_sink\"" "$dir/play.err"'
  "$aipc" record --backend pulse --device "$sink" "$dir/x.wav" --seconds 1 \
    >"$dir/rec.out" 2>"$dir/rec.err"
  status=$?
  show "$dir/rec.err"
  check "record --device of a sink on pulse: exit 1, no such input device" \
    eval '[ "$status" -eq 1 ] && grep -q "no input device" "$dir/rec.err"'
}

# --- record from ci_mic_in (a 440 Hz sine), stopped by a signal ---------------

record_test() {
  local sig file
  for sig in INT TERM; do
    for file in "$dir/rec-$sig.wav" "$dir/rec-$sig.flac"; do
      record_signal_check "$sig" "$file" --backend pulse --device ci_mic_in
    done
  done
}

# --- record - | play -, from the mic to the test sink -------------------------

pipe_test() {
  local parec_pid status
  parec -d "$sink.monitor" --file-format=wav --format=float32le \
    --rate=48000 --channels=2 "$dir/pipe-monitor.wav" 2>"$dir/parec.err" &
  parec_pid=$!
  "$aipc" record --backend pulse --device ci_mic_in - --seconds 1 \
    2>"$dir/pipe-rec.err" |
    "$aipc" play --backend pulse --device "$sink" - >"$dir/pipe-play.out" 2>&1
  status="${PIPESTATUS[0]} ${PIPESTATUS[1]}"
  kill -INT "$parec_pid"
  wait "$parec_pid"
  show "$dir/pipe-rec.err"
  show "$dir/pipe-play.out"
  # Live on both ends, play may run dry now and then (it says so, and
  # fills in silence): the frame count is not checked.
  check "aipc record - | aipc play - on pulse: both exit 0, the mic's 440 Hz reaches the sink" \
    eval '[ "$status" = "0 0" ] &&
      grep -q "played [0-9]* frames" "$dir/pipe-play.out" &&
      "$tone_check" "$dir/pipe-monitor.wav" 440'
}

device_test
record_test
pipe_test

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
