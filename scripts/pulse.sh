#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# A private, headless PulseAudio for the tests (see shared audio-env notes):
# a null sink "ci_sink" (norewinds=1, or cubeb output stalls) and a 440 Hz
# tone in a second null sink whose monitor is the default source, as on
# machines without a microphone; "ci_mic_in", a source that is not a
# monitor, carries that tone too (the audioipc server never gives a client
# a monitor, the default or another); "ci_conf_sink", on which only the
# conformance suite plays (it measures the level on its monitor). pacmd
# works (the CLI socket), so a test can end a stream as an administrator
# would (kill-sink-input).
#
#   scripts/pulse.sh start   start it (idempotent; survives a crashed run)
#   scripts/pulse.sh stop    stop it (idempotent)
#   eval "$(scripts/pulse.sh env)"   point this shell's clients at it
#
# AUDIOENV_DIR (default /tmp/aipc-audio) holds its socket, state and log.
set -euo pipefail

dir=${AUDIOENV_DIR:-/tmp/aipc-audio}

print_env() {
  cat <<ENV
export AUDIOENV_DIR=$dir
export PULSE_RUNTIME_PATH=$dir/pulse
export PULSE_STATE_PATH=$dir/state
export PULSE_SERVER=unix:$dir/pulse/native
export PULSE_CLIENTCONFIG=$dir/client.conf
export PULSE_CONFIG=$dir/daemon.conf
export PULSE_COOKIE=$dir/cookie
ENV
}

eval "$(print_env)"

start() {
  mkdir -p -m 700 "$dir" "$PULSE_RUNTIME_PATH" "$PULSE_STATE_PATH"
  if pactl info >/dev/null 2>&1; then
    return 0
  fi
  printf 'autospawn = no\n' >"$PULSE_CLIENTCONFIG"
  printf '%s\n' 'daemonize = yes' 'exit-idle-time = -1' \
    'realtime-scheduling = no' 'high-priority = no' \
    'default-sample-format = float32le' 'default-sample-rate = 48000' \
    'alternate-sample-rate = 48000' >"$PULSE_CONFIG"
  cat >"$dir/ci.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 auth-cookie-enabled=0 socket=$PULSE_RUNTIME_PATH/native
load-module module-cli-protocol-unix
load-module module-null-sink sink_name=ci_sink norewinds=1 rate=48000 channels=2 sink_properties=device.description=CI-Null-Sink
load-module module-null-sink sink_name=ci_conf_sink norewinds=1 rate=48000 channels=2 sink_properties=device.description=CI-Conformance-Sink
load-module module-null-sink sink_name=ci_mic norewinds=1 rate=48000 channels=1 sink_properties=device.description=CI-Mic
load-module module-sine sink=ci_mic frequency=440
load-module module-remap-source source_name=ci_mic_in master=ci_mic.monitor source_properties=device.description=CI-Mic-Input
set-default-sink ci_sink
set-default-source ci_mic.monitor
PA
  # A previous run that crashed may have left its pid file or socket.
  local old
  old=$(cat "$PULSE_RUNTIME_PATH/pid" 2>/dev/null || true)
  if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
    kill -KILL "$old" 2>/dev/null || true
  fi
  rm -f "$PULSE_RUNTIME_PATH/native" "$PULSE_RUNTIME_PATH/pid"
  pulseaudio -n -F "$dir/ci.pa" --use-pid-file=yes \
    --log-target=file:"$dir/pulse.log" --log-level=notice
  for _ in $(seq 100); do
    pactl info >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "pulse.sh: PulseAudio did not come up; its log:" >&2
  cat "$dir/pulse.log" >&2 || true
  return 1
}

stop() {
  local pid
  pid=$(cat "$PULSE_RUNTIME_PATH/pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PULSE_RUNTIME_PATH/pid" "$PULSE_RUNTIME_PATH/native"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) print_env ;;
*)
  echo "usage: $0 start|stop|env" >&2
  exit 2
  ;;
esac
