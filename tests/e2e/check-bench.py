#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Smoke test of `aipc bench --quick --json`.

    check-bench.py AIPC

Passes if the bench exits 0 and prints exactly one JSON object with every
figure the issue asks for. Whether the targets hold is the bench's report,
not this test's business.
"""
import json
import subprocess
import sys

TOP = [
    "floor_futex_p50_us", "floor_futex_p99_us", "floor_futex_p999_us",
    "floor_futex_any_p50_us", "floor_futex_any_p99_us",
    "floor_futex_any_p999_us",
    "callback_overhead_p50_us", "callback_overhead_p99_us",
    "callback_overhead_p999_us",
    "by_streams",
    "socket_baseline_p50_us", "socket_baseline_p99_us",
    "realtime64_misses", "realtime64_late_wakes", "realtime64_periods",
    "realtime64_jitter_p99_us", "cpu_us_per_stream_cycle",
    "realtime64_misses_pooled", "cpu_us_per_stream_cycle_pooled",
    "rpc_position_p50_us", "rpc_position_p99_us", "rpc_raw_p50_us",
    "stream_start_ms_p50",
    "shm_bytes_per_stream", "largest_callback_bytes",
    "client_rss_kib_per_stream",
    "targets",
]
CASE = ["period", "streams", "clients", "p50_us", "p99_us", "p999_us",
        "max_us", "misses"]
TARGETS = 13


def main():
    aipc = sys.argv[1]
    run = subprocess.run([aipc, "bench", "--quick", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=280)
    sys.stderr.write(run.stderr)
    print(run.stdout, end="")
    problems = []
    if run.returncode != 0:
        problems.append(f"exit status {run.returncode}")
    try:
        # raw_decode, so that anything after the object is caught too.
        text = run.stdout.strip()
        obj, end = json.JSONDecoder().raw_decode(text)
        if end != len(text):
            problems.append("more than one JSON value on stdout")
        if not isinstance(obj, dict):
            problems.append("the output is not a JSON object")
            obj = {}
    except ValueError as e:
        problems.append(f"the output is not JSON: {e}")
        obj = {}
    for key in TOP:
        if key not in obj:
            problems.append(f"missing field {key}")
    cases = obj.get("by_streams", [])
    want = {(p, s) for p in (128, 512) for s in (1, 8, 32, 64)}
    seen = set()
    for case in cases if isinstance(cases, list) else []:
        for key in CASE:
            if key not in case:
                problems.append(f"by_streams entry {case} lacks {key}")
        seen.add((case.get("period"), case.get("streams")))
        if case.get("clients") != min(case.get("streams", 0), 8):
            problems.append(f"by_streams entry {case}: wrong clients")
    if seen != want:
        problems.append(f"by_streams cases {sorted(seen)}, want {sorted(want)}")
    pulse = obj.get("pulse")
    if pulse is not None:
        # Sync and render-ahead at two latencies x 1, 8, 32 streams; one
        # client's 32 streams both ways; the loaded case both ways.
        shape = {"by_streams": 12, "one_client": 2, "loaded": 2}
        for key, n in shape.items():
            entries = pulse.get(key)
            if not isinstance(entries, list) or len(entries) != n:
                problems.append(f"pulse.{key}: want {n} entries")
                continue
            modes = sorted(e.get("render_ahead") for e in entries)
            if modes != [False] * (n // 2) + [True] * (n // 2):
                problems.append(f"pulse.{key}: want both modes, half each")
        if "inprocess_slowest_fps" not in pulse:
            problems.append("pulse lacks inprocess_slowest_fps")
    targets = obj.get("targets", {})
    if not isinstance(targets, dict) or len(targets) != TARGETS:
        problems.append(f"targets: want {TARGETS} entries")
    else:
        for name, t in targets.items():
            for key in ("value", "limit", "holds"):
                if key not in t:
                    problems.append(f"target {name} lacks {key}")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print("PASS: aipc bench --quick --json")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
