/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: streams on PulseAudio at cubeb's minimum latency, when one
 * is reachable: the server's wait per callback and the CPU per stream
 * callback.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* `streams` streams of `latency` frames over up to BENCH_MAX_CLIENTS clients of
 * `server`, measured for p->pulse_seconds after they settled. The CPU
 * time is this process's (less this thread's) and the clients' over that
 * window, per stream callback the server served in it. */
static int
pulse_case(const struct bench_params *p, void *server, uint32_t latency,
           uint32_t streams, struct bench_pulse_case *out)
{
  char what[64];
  snprintf(what, sizeof(what), "PulseAudio, %u stream%s", streams,
           streams == 1 ? "" : "s");
  bench_progress("%s of %u frames, %g s", what, latency, p->pulse_seconds);
  uint32_t clients = streams < BENCH_MAX_CLIENTS ? streams : BENCH_MAX_CLIENTS;
  char per[16], text[16];
  snprintf(per, sizeof(per), "%u", streams / clients);
  snprintf(text, sizeof(text), "%u", latency);
  /* The jitter mode only for its measuring step and CPU reading. */
  char *args[] = {"streams", per, text, text, "0", "1", NULL};
  struct bench_group g = {.what = what};
  static AudioIpcStreamStats stats[BENCH_STATS_MAX];

  int r = bench_group_start_measuring(p, &g, server, args, clients);
  AudioIpcStreamStats before = {.client = 0}, after = {.client = 0};
  int64_t self = 0, main_cpu = 0, clients_cpu = 0, t0 = 0, t1 = 0;
  if (r == 0) {
    t0 = aipc_now_ns();
    self = bench_rusage_ns(RUSAGE_SELF);
    main_cpu = bench_thread_cpu_ns();
    if (bench_group_sum_stats(server, &g, &before) < 0)
      r = -1;
    bench_sleep_until(t0 + (int64_t)(p->pulse_seconds * 1e9));
    if (r == 0 && bench_group_sum_stats(server, &g, &after) < 0)
      r = -1;
    self = bench_rusage_ns(RUSAGE_SELF) - self;
    main_cpu = bench_thread_cpu_ns() - main_cpu;
    t1 = aipc_now_ns();
  }
  if (r == 0) {
    bench_group_command(&g);
    r = bench_group_wait(&g, BENCH_GOT_END);
  }
  for (unsigned i = 0; r == 0 && i < g.n; i++)
    clients_cpu += g.c[i].cpu_ns;
  int n = r == 0 ? bench_group_stats(server, &g, stats) : -1;
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  if (r < 0 || n < 0)
    return -1;
  if ((uint32_t)n != streams) {
    fprintf(stderr, "aipc bench: %s: the server knew %d streams\n", what, n);
    return -1;
  }
  struct bench_case agg = {0};
  bench_aggregate(stats, n, &agg);
  *out = (struct bench_pulse_case){
      .streams = streams,
      .clients = clients,
      .p50 = agg.p50,
      .p99 = agg.p99,
      .max = agg.max,
      .misses = agg.misses,
      .callbacks = agg.callbacks,
      .cpu_us = bench_ratio((double)(self - main_cpu + clients_cpu) / 1e3,
                            (double)(after.callbacks - before.callbacks)),
      .seconds = (double)(t1 - t0) / 1e9};
  for (int i = 0; i < n; i++)
    out->frames += stats[i].frames;
  return 0;
}

/* The PulseAudio section: run only if PULSE_SERVER is set, a server on
 * the "pulse" backend starts and a client of it finds its context on
 * "pulse" and learns cubeb's minimum latency; otherwise out->ran stays
 * false. */
int
bench_run_pulse(const struct bench_params *p, struct bench_pulse *out)
{
  static const uint32_t streams[BENCH_PULSE_CASES] = {1, 8, 32};
  *out = (struct bench_pulse){0};
  const char *env = getenv("PULSE_SERVER");
  if (!env || !*env) {
    bench_progress("pulse: skipped (PULSE_SERVER is not set)");
    return 0;
  }
  bench_progress("PulseAudio: minimum latency");
  void *server = audioipc_server_start("aipc-bench", "pulse", NULL);
  if (!server) {
    bench_progress("pulse: skipped (no PulseAudio reachable)");
    return 0;
  }
  struct bench_group g = {.what = "PulseAudio, minimum latency"};
  char *args[] = {"minlat", NULL};
  int r = bench_group_spawn(&g, server, args);
  if (r == 0)
    r = bench_group_wait(&g, BENCH_GOT_END);
  long min = r == 0 ? g.c[0].min_latency : 0;
  /* libcubeb falls back to another backend when PulseAudio fails. */
  bool pulse = r == 0 && strcmp(g.c[0].backend, "pulse") == 0;
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  if (r < 0 || !pulse || min <= 0 || min > 96000) {
    bench_progress("pulse: skipped (no PulseAudio reachable)");
    audioipc_server_stop(server);
    return 0;
  }
  out->min_latency = (uint32_t)min;
  r = 0;
  for (int i = 0; i < BENCH_PULSE_CASES && r == 0; i++)
    r = pulse_case(p, server, out->min_latency, streams[i], &out->cases[i]);
  audioipc_server_stop(server);
  out->ran = r == 0;
  return r;
}
