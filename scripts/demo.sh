#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Sets everything up and runs the main job: `aipc demo`, several sandboxed
# client processes playing through one server. Idempotent. Arguments go to
# `aipc demo` (see `build/tools/aipc demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
exec build/tools/aipc demo "$@"
