/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: the remote callback overhead, on the fast virtual clock.
 *
 * The figures come from the server's own statistics
 * (audioipc_server_get_stream_stats): the backend's audio thread times
 * each request from asking to the client's answer, and the client's
 * callback only clears the frames, so that time is the remote overhead.
 * The statistics count whole microseconds, rounded down, and their
 * percentiles stop at BENCH_WAIT_CAP_US. Over several streams we report
 * the median of the streams' p50s, the largest of their p99s and p99.9s
 * (the worst stream) and the largest maximum. With several streams the
 * virtual device asks all of them before it collects any answer, so a
 * stream's wait also covers the asking of the streams after it and the
 * collecting of those before it; cycle_us (a whole period, timed in the
 * clients) divided by the streams is the cost per stream.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int
compare_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double
median(double *v, size_t n)
{
  qsort(v, n, sizeof(*v), compare_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void
bench_aggregate(const AudioIpcStreamStats *s, int n, struct bench_case *out)
{
  double p50[BENCH_STATS_MAX], p99[BENCH_STATS_MAX];
  out->p99 = out->p999 = out->max = 0;
  out->misses = out->callbacks = 0;
  for (int i = 0; i < n; i++) {
    p50[i] = s[i].wait_p50_us;
    p99[i] = s[i].wait_p99_us;
    out->p99 = fmax(out->p99, s[i].wait_p99_us);
    out->p999 = fmax(out->p999, s[i].wait_p999_us);
    out->max = fmax(out->max, s[i].wait_max_us);
    out->misses += s[i].misses;
    out->callbacks += s[i].callbacks;
  }
  out->p50 = n ? median(p50, (size_t)n) : 0;
  out->p99_median = n ? median(p99, (size_t)n) : 0;
}

/* `streams` streams of `period` frames over up to BENCH_MAX_CLIENTS clients on
 * a fresh server with the fast clock; the server (and with it the
 * clients) pinned to `cpu` unless it is negative. */
int
bench_run_case(const struct bench_params *p, uint32_t period, uint32_t streams,
               uint32_t target, int cpu, const cpu_set_t *any,
               struct bench_case *out)
{
  char backend[64], what[64];
  snprintf(backend, sizeof(backend), "virtual:clock=fast,period=%u", period);
  snprintf(what, sizeof(what), "%u stream%s of %u frames%s", streams,
           streams == 1 ? "" : "s", period, cpu >= 0 ? ", pinned" : "");
  bench_progress("callback overhead: %s", what);
  uint32_t clients = streams < BENCH_MAX_CLIENTS ? streams : BENCH_MAX_CLIENTS;
  char per[16], latency[16], count[16];
  snprintf(per, sizeof(per), "%u", streams / clients);
  snprintf(latency, sizeof(latency), "%u", period);
  snprintf(count, sizeof(count), "%u", target);
  char *args[] = {"streams", per, latency, latency, count, "0", NULL};

  struct bench_group g = {.what = what};
  static AudioIpcStreamStats stats[BENCH_STATS_MAX];
  if (bench_pin(cpu, any) < 0)
    return -1;
  void *server = bench_server_start(backend);
  int r = server ? 0 : -1;
  int64_t t0 = aipc_now_ns();
  for (uint32_t i = 0; i < clients && r == 0; i++)
    r = bench_group_spawn(&g, server, args);
  /* The children have inherited the pinning. */
  bench_pin(-1, any);
  if (r == 0)
    r = bench_group_wait(&g, BENCH_GOT_READY);
  if (r == 0) {
    bench_group_command(&g);
    r = bench_group_wait(&g, BENCH_GOT_STARTED);
  }
  if (r == 0)
    r = bench_group_wait(&g, BENCH_GOT_DONE);
  if (r == 0)
    bench_group_command(&g);
  double cycle = 0;
  bool fifo = true;
  if (r == 0 && (r = bench_group_wait(&g, BENCH_GOT_END)) == 0)
    for (unsigned i = 0; i < g.n; i++) {
      cycle += g.c[i].cycle_ns / g.n;
      fifo = fifo && g.c[i].fifo == 1;
    }
  int n = r == 0 ? bench_group_stats(server, &g, stats) : -1;
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  audioipc_server_stop(server);
  if (r < 0 || n < 0)
    return -1;
  if ((uint32_t)n != streams) {
    fprintf(stderr, "aipc bench: %s: the server knew %d streams\n", what, n);
    return -1;
  }
  *out = (struct bench_case){.period = period,
                             .streams = streams,
                             .clients = clients,
                             .cycle_us = cycle / 1e3,
                             .fifo = fifo,
                             .seconds = (double)(aipc_now_ns() - t0) / 1e9};
  bench_aggregate(stats, n, out);
  return 0;
}
