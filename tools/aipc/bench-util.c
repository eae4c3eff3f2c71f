/* SPDX-License-Identifier: ISC */
/* aipc bench: clocks, pinning and percentiles, shared by its parts. */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

bool bench_show_progress;

void
bench_progress(const char *fmt, ...)
{
  if (!bench_show_progress)
    return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "aipc bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

int64_t
bench_rusage_ns(int who)
{
  struct rusage ru;
  getrusage(who, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
             AIPC_NSEC_PER_SEC +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) *
             AIPC_NSEC_PER_USEC;
}

int64_t
bench_rusage_sys_ns(int who)
{
  struct rusage ru;
  getrusage(who, &ru);
  return (int64_t)ru.ru_stime.tv_sec * AIPC_NSEC_PER_SEC +
         (int64_t)ru.ru_stime.tv_usec * AIPC_NSEC_PER_USEC;
}

int64_t
bench_thread_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * AIPC_NSEC_PER_SEC + ts.tv_nsec;
}

void
bench_sleep_until(int64_t t)
{
  struct timespec ts = aipc_timespec_from_ns(t);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

int
bench_pin(int cpu, const cpu_set_t *any)
{
  cpu_set_t one;
  CPU_ZERO(&one);
  if (cpu >= 0)
    CPU_SET(cpu, &one);
  if (sched_setaffinity(0, sizeof(one), cpu >= 0 ? &one : any) < 0) {
    fprintf(stderr, "aipc bench: sched_setaffinity: %s\n", strerror(errno));
    return -1;
  }
  return 0;
}

static int
compare_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile, `permille` of 1000, of n sorted samples. */
static int64_t
rank(const int64_t *sorted, size_t n, int permille)
{
  size_t r = (n * (size_t)permille + 999) / 1000;
  return sorted[r < 1 ? 0 : r - 1];
}

struct bench_lat
bench_summarize(int64_t *ns, size_t n, double unit)
{
  if (n == 0)
    return (struct bench_lat){0};
  qsort(ns, n, sizeof(*ns), compare_i64);
  return (struct bench_lat){.n = (int)n,
                            .p50 = (double)rank(ns, n, 500) / unit,
                            .p99 = (double)rank(ns, n, 990) / unit,
                            .p999 = (double)rank(ns, n, 999) / unit,
                            .max = (double)ns[n - 1] / unit};
}

double
bench_hist_rank(const uint64_t *hist, size_t buckets, uint64_t total,
                int permille)
{
  uint64_t want = (total * (uint64_t)permille + 999) / 1000, seen = 0;
  if (want < 1)
    want = 1;
  for (size_t b = 0; b < buckets; b++) {
    seen += hist[b];
    if (seen >= want)
      return (double)b;
  }
  return (double)(buckets - 1);
}

double
bench_ratio(double a, double b)
{
  return b > 0 ? a / b : 0;
}

void *
bench_server_start(const char *backend)
{
  void *server = audioipc_server_start("aipc-bench", backend, NULL);
  if (!server)
    fprintf(stderr, "aipc bench: cannot start a server on %s\n", backend);
  return server;
}
