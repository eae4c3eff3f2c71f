#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Starts the D-Bus system bus if none answers, so the server can ask RTKit
# for real-time priority on a sandboxed client's behalf (the bus starts
# rtkit-daemon and polkitd itself, by activation, on first use).
#   system-bus.sh start   start it unless one answers (idempotent)
#   system-bus.sh status  exit 0 if one answers
# CI machines boot without one; a desktop already has its own, which is
# used as it is. Needs root to start one.
set -euo pipefail

answers() {
  dbus-send --system --print-reply --dest=org.freedesktop.DBus \
    /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1
}

case "${1:-}" in
start)
  answers && exit 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-bus: no system bus answers, and starting one needs root" >&2
    exit 1
  fi
  mkdir -p /run/dbus
  rm -f /run/dbus/system_bus_socket /run/dbus/pid # stale: nobody answered
  dbus-daemon --system --fork
  for _ in $(seq 50); do
    answers && exit 0
    sleep 0.1
  done
  echo "system-bus: dbus-daemon started but does not answer" >&2
  exit 1
  ;;
status)
  answers
  ;;
*)
  echo "usage: $0 start|status" >&2
  exit 2
  ;;
esac
