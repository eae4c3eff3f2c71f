#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Installs the build into a scratch root, builds examples/embed.c against
# the installed copy with nothing but pkg-config and -lcubeb, as a user
# would, and runs it on the virtual device: its samples must be bit-exact
# in the WAV.   usage: check-install.sh BUILD-DIR SOURCE-DIR
set -euo pipefail
build=$1
src=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

meson install -C "$build" --destdir "$root" --quiet
pcdir=$(dirname "$(find "$root" -name audioipc-client.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs audioipc-server audioipc-client)
echo "pkg-config: $flags"
cc -o "$root/embed" "$src/examples/embed.c" $flags -lcubeb -lm -pthread
LD_LIBRARY_PATH=$(dirname "$pcdir") "$root/embed" \
  "virtual:clock=fast,out=$root/tone.wav" "$root/tone.wav"
echo "1 passed, 0 failed"
