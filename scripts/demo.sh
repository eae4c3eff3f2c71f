#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Sets everything up and runs the main job. Idempotent.
#
# Until the sandboxed-clients demo arrives, this runs the core's
# cross-process smoke benchmark: a real server process and a real client
# process doing RPC round trips and futex ping-pongs, with percentiles.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
if [ -f build/build.ninja ]; then
  ninja -C build >/dev/null
else
  meson setup build >/dev/null
  ninja -C build >/dev/null
fi
exec build/bench/ipc-bench "$@"
