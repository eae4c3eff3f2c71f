/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: control calls (cubeb_stream_get_position through the
 * server), stream start-up (init + start until the first callback) and
 * memory per stream (shared, and the client's resident set).
 */
#include "aipc.h"
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LARGEST_CALLBACK_FRAMES 512

/* Runs one client "MODE ARG" to its end on `server`; its samples go to
 * *samples (taken by the caller) and its statistics to `stats`. */
static int
run_one(void *server, const char *what, const char *mode, int arg,
        int64_t **samples, size_t *nsamples, long rss[3],
        AudioIpcStreamStats *stats, int *nstats)
{
  char text[16];
  snprintf(text, sizeof(text), "%d", arg);
  char *args[] = {(char *)mode, text, NULL};
  struct bench_group g = {.what = what};
  int r = bench_group_spawn(&g, server, args);
  if (r == 0)
    r = bench_group_wait(&g, BENCH_GOT_END);
  if (r == 0 && samples) {
    *samples = g.c[0].samples;
    *nsamples = g.c[0].nsamples;
    g.c[0].samples = NULL;
  }
  if (r == 0 && rss)
    memcpy(rss, g.c[0].rss, sizeof(g.c[0].rss));
  if (r == 0 && stats && (*nstats = bench_group_stats(server, &g, stats)) < 0)
    r = -1;
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  return r;
}

/* get_position through a fresh server, pinned with its client to `cpu`
 * unless it is negative. */
int
bench_run_rpc(const struct bench_params *p, int cpu, const cpu_set_t *any,
              struct bench_lat *out)
{
  bench_progress("control calls: %d x cubeb_stream_get_position%s",
                 p->rpc_iterations, cpu >= 0 ? ", pinned" : "");
  if (bench_pin(cpu, any) < 0)
    return -1;
  void *server = bench_server_start("virtual:clock=realtime,period=128");
  int64_t *samples = NULL;
  size_t n = 0;
  int r = server ? run_one(server, "get_position", "rpc", p->rpc_iterations,
                           &samples, &n, NULL, NULL, NULL)
                 : -1;
  bench_pin(-1, any);
  if (r == 0 && n != (size_t)p->rpc_iterations) {
    fprintf(stderr, "aipc bench: get_position: %zu samples\n", n);
    r = -1;
  }
  if (r == 0)
    *out = bench_summarize(samples, n, 1e3);
  free(samples);
  audioipc_server_stop(server);
  return r;
}

int
bench_run_misc(const struct bench_params *p, struct bench_results *res)
{
  static AudioIpcStreamStats stats[BENCH_STATS_MAX];
  void *server = bench_server_start("virtual:clock=realtime,period=128");
  if (!server)
    return -1;
  int64_t *samples = NULL;
  size_t n = 0;
  long rss[3] = {0};
  int nstats = 0;

  bench_progress("stream start-up: %d streams", p->startup_streams);
  int r = run_one(server, "start-up", "startup", p->startup_streams, &samples,
                  &n, NULL, NULL, NULL);
  if (r == 0 && n != (size_t)p->startup_streams) {
    fprintf(stderr, "aipc bench: start-up: %zu samples\n", n);
    r = -1;
  }
  if (r == 0)
    res->start_ms = bench_summarize(samples, n, 1e6);
  free(samples);

  if (r == 0) {
    bench_progress("memory: %d streams of 512 frames", p->rss_streams);
    r = run_one(server, "memory", "rss", p->rss_streams, NULL, NULL, rss, stats,
                &nstats);
  }
  if (r == 0 && nstats != p->rss_streams) {
    fprintf(stderr, "aipc bench: memory: the server knew %d streams\n", nstats);
    r = -1;
  }
  if (r == 0) {
    res->shm_bytes = stats[0].shm_bytes;
    for (int i = 1; i < nstats; i++)
      if (stats[i].shm_bytes > res->shm_bytes)
        res->shm_bytes = stats[i].shm_bytes;
    res->largest_callback_bytes = LARGEST_CALLBACK_FRAMES * BENCH_FRAME_BYTES;
    res->rss_kib_per_stream = (double)(rss[1] - rss[0]) / p->rss_streams;
    res->rss_kib_per_stream_running =
        (double)(rss[2] - rss[0]) / p->rss_streams;
  }
  audioipc_server_stop(server);
  return r;
}
