/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: real-time pacing, 64 streams of 128 frames on the virtual
 * device's real-time clock.
 *
 * Misses are sampled with the clock's late wake-ups every SAMPLE_NS, and
 * those of an interval in which late wake-ups grew, or of the intervals
 * on either side, are counted apart (see realtime_window).
 * CPU per stream and cycle is, as the issue defines it, this process's
 * CPU time (less this thread's: the bench's own reading and sampling)
 * plus the clients' (RUSAGE_CHILDREN once reaped), from spawning the
 * clients to reaping them, over 64 x the periods run meanwhile; the
 * "window" figure counts only the measured seconds (the clients time
 * themselves), without their start-up and teardown.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* The realtime phase samples the statistics this often, to tell misses
 * near a late wake-up from the others. */
#define SAMPLE_NS (20 * AIPC_NSEC_PER_MSEC)

static uint64_t
sum_misses(void *server, const struct bench_group *g)
{
  AudioIpcStreamStats total;
  bench_group_sum_stats(server, g, &total);
  return total.misses;
}

/*
 * Runs the measured window: samples the misses and the clock's late
 * wake-ups every SAMPLE_NS. A late wake-up and the misses of the same
 * stall can land in neighbouring samples (a miss shows when its deadline,
 * at least 10 ms, has passed; a request that was waiting when the stall
 * began misses before the next period counts the late wake-up), so the
 * misses of an interval in which late wake-ups grew, and of the intervals
 * on either side, are put down to the machine and counted apart.
 */
static int
realtime_window(void *server, const struct bench_group *g, int64_t length,
                struct bench_realtime *rt)
{
  size_t cap = (size_t)(length / SAMPLE_NS) + 2, n = 0;
  uint64_t *misses = calloc(cap, sizeof(*misses));
  uint64_t *late = calloc(cap, sizeof(*late));
  uint64_t periods0, periods = 0;
  if (!misses || !late) {
    free(misses);
    free(late);
    return -1;
  }
  int64_t start = aipc_now_ns(), next = start;
  /* Misses first: a late wake-up is never seen after a miss it caused. */
  misses[n] = sum_misses(server, g);
  audioipc_server_virtual_timing(&periods0, &late[n++]);
  do {
    next += SAMPLE_NS;
    bench_sleep_until(next);
    misses[n] = sum_misses(server, g);
    audioipc_server_virtual_timing(&periods, &late[n++]);
  } while (next - start < length && n < cap);
  rt->seconds = (double)(aipc_now_ns() - start) / 1e9;
  rt->periods = periods - periods0;
  rt->late_wakes = late[n - 1] - late[0];
  rt->misses_total = misses[n - 1] - misses[0];
  rt->misses = 0;
  /* Interval i runs from sample i - 1 to sample i. */
  for (size_t i = 1; i < n; i++) {
    bool tainted = late[i] != late[i - 1] ||
                   (i >= 2 && late[i - 1] != late[i - 2]) ||
                   (i + 1 < n && late[i + 1] != late[i]);
    if (!tainted)
      rt->misses += misses[i] - misses[i - 1];
  }
  free(misses);
  free(late);
  return 0;
}

int
bench_run_realtime(const struct bench_params *p, unsigned pool_size,
                   struct bench_realtime *rt)
{
  const uint32_t streams = 64, period = 128;
  const char *what = "realtime, 64 streams";
  bench_progress("real-time pacing: %u streams of %u frames, %g s%s", streams,
                 period, p->realtime_seconds,
                 pool_size ? ", one callback thread per client" : "");
  uint64_t *jitter = calloc(BENCH_JITTER_BUCKETS + 1, sizeof(*jitter));
  if (!jitter)
    return -1;
  struct bench_group g = {.what = what, .jitter = jitter};
  char per[16], latency[16];
  snprintf(per, sizeof(per), "%u", streams / BENCH_MAX_CLIENTS);
  snprintf(latency, sizeof(latency), "%u", period);
  char pool[32];
  snprintf(pool, sizeof(pool), "pool=%u", pool_size);
  char *args[] = {pool, "streams", per, latency, latency, "0", "1", NULL};
  void *server = bench_server_start("virtual:clock=realtime,period=128");
  int r = server ? 0 : -1;

  uint64_t span_p0, span_l0, span_p1, span_l1;
  audioipc_server_virtual_timing(&span_p0, &span_l0);
  int64_t self0 = bench_rusage_ns(RUSAGE_SELF),
          children0 = bench_rusage_ns(RUSAGE_CHILDREN);
  int64_t sys0 =
      bench_rusage_sys_ns(RUSAGE_SELF) + bench_rusage_sys_ns(RUSAGE_CHILDREN);
  int64_t main0 = bench_thread_cpu_ns();
  if (r == 0)
    r = bench_group_start_measuring(p, &g, server, args, BENCH_MAX_CLIENTS);
  int64_t window_self = 0, window_main = 0, window_clients = 0;
  if (r == 0) {
    window_self = bench_rusage_ns(RUSAGE_SELF);
    window_main = bench_thread_cpu_ns();
    r = realtime_window(server, &g, (int64_t)(p->realtime_seconds * 1e9), rt);
    window_self = bench_rusage_ns(RUSAGE_SELF) - window_self;
    window_main = bench_thread_cpu_ns() - window_main;
  }
  if (r == 0) {
    bench_group_command(&g);
    r = bench_group_wait(&g, BENCH_GOT_END);
  }
  rt->fifo = true;
  for (unsigned i = 0; r == 0 && i < g.n; i++) {
    window_clients += g.c[i].cpu_ns;
    rt->fifo = rt->fifo && g.c[i].fifo == 1;
  }
  AudioIpcStreamStats run = {.client = 0};
  if (r == 0) {
    bench_group_sum_stats(server, &g, &run);
    rt->misses_run = run.misses;
  }
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  int64_t self = bench_rusage_ns(RUSAGE_SELF) - self0;
  int64_t children = bench_rusage_ns(RUSAGE_CHILDREN) - children0;
  int64_t sys = bench_rusage_sys_ns(RUSAGE_SELF) +
                bench_rusage_sys_ns(RUSAGE_CHILDREN) - sys0;
  int64_t bench = bench_thread_cpu_ns() - main0;
  audioipc_server_virtual_timing(&span_p1, &span_l1);
  audioipc_server_stop(server);
  if (r == 0) {
    rt->streams = streams;
    rt->clients = BENCH_MAX_CLIENTS;
    rt->pool_size = pool_size;
    rt->span_periods = span_p1 - span_p0;
    rt->sleeps_per_period =
        bench_ratio((double)run.sleeps, (double)rt->span_periods);
    rt->server_cpu_ms = (double)(self - bench) / 1e6;
    rt->clients_cpu_ms = (double)children / 1e6;
    rt->bench_cpu_ms = (double)bench / 1e6;
    rt->window_server_cpu_ms = (double)(window_self - window_main) / 1e6;
    rt->window_clients_cpu_ms = (double)window_clients / 1e6;
    rt->sys_share = bench_ratio((double)sys, (double)(self + children));
    rt->cpu_per_stream_cycle =
        bench_ratio((double)(self - bench + children) / 1e3,
                    (double)streams * (double)rt->span_periods);
    rt->cpu_steady =
        bench_ratio((double)(window_self - window_main + window_clients) / 1e3,
                    (double)streams * (double)rt->periods);
    uint64_t total = 0;
    for (size_t b = 0; b <= BENCH_JITTER_BUCKETS; b++)
      total += jitter[b];
    size_t top = BENCH_JITTER_BUCKETS;
    while (top > 0 && jitter[top] == 0)
      top--;
    rt->jitter_p50 =
        bench_hist_rank(jitter, BENCH_JITTER_BUCKETS + 1, total, 500);
    rt->jitter_p99 =
        bench_hist_rank(jitter, BENCH_JITTER_BUCKETS + 1, total, 990);
    rt->jitter_p999 =
        bench_hist_rank(jitter, BENCH_JITTER_BUCKETS + 1, total, 999);
    rt->jitter_max = (double)top;
    if (total == 0) {
      fprintf(stderr, "aipc bench: %s: no callback intervals measured\n", what);
      r = -1;
    }
  }
  free(jitter);
  return r;
}
