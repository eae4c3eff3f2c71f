#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Installs the Debian 12 packages the build, the tests and the demo need.
# Idempotent: does nothing (not even apt-get update) when all are present.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config cmake
  clang libclang-rt-14-dev llvm
  libcubeb-dev libseccomp-dev libdbus-1-dev libspeexdsp-dev libsndfile1-dev
  pulseaudio pulseaudio-utils libasound2-plugins
  dbus-bin dbus-daemon rtkit
  valgrind
  groff-base man-db python3
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
  --no-install-recommends "${missing[@]}"
