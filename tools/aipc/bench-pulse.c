/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: streams on PulseAudio, when one is reachable, synchronous
 * and rendering ahead: the time the backend's audio thread spends in the
 * server's callback, the CPU per stream callback, the slowest stream's
 * frame rate against plain libcubeb in this process, and misses with
 * every CPU busy.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <cubeb/cubeb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* How one case runs. */
struct pulse_setup {
  uint32_t latency, streams;
  unsigned clients_max;
  bool buffered;
  bool realtime; /* the clients' callback threads ask for it */
  double seconds;
};

/* The frames per second of the slowest of the `n` streams of `after`
 * over `seconds`, against the same streams in `before`. */
static double
slowest_fps(const AudioIpcStreamStats *before, int nb,
            const AudioIpcStreamStats *after, int n, double seconds)
{
  double slowest = -1;
  for (int i = 0; i < n; i++) {
    uint64_t from = 0;
    for (int k = 0; k < nb; k++)
      if (before[k].client == after[i].client &&
          before[k].stream == after[i].stream)
        from = before[k].frames;
    double fps = (double)(after[i].frames - from) / seconds;
    if (slowest < 0 || fps < slowest)
      slowest = fps;
  }
  return slowest < 0 ? 0 : slowest;
}

/* `s->streams` streams over up to `s->clients_max` clients of `server`,
 * measured for s->seconds after they settled. The CPU time is this
 * process's (less this thread's) and the clients' over that window, per
 * stream callback the server served in it. */
static int
pulse_case(const struct bench_params *p, void *server,
           const struct pulse_setup *s, struct bench_pulse_case *out)
{
  char what[96];
  snprintf(what, sizeof(what), "PulseAudio, %u stream%s of %u frames, %s",
           s->streams, s->streams == 1 ? "" : "s", s->latency,
           s->buffered ? "rendering ahead" : "synchronous");
  bench_progress("%s, %g s", what, s->seconds);
  uint32_t clients = s->streams < s->clients_max ? s->streams : s->clients_max;
  char per[16], text[16];
  snprintf(per, sizeof(per), "%u", s->streams / clients);
  snprintf(text, sizeof(text), "%u", s->latency);
  /* The jitter mode only for its measuring step and CPU reading. */
  char *args[] = {"streams", per, text, text, "0", "1", NULL};
  struct bench_group g = {.what = what};
  static AudioIpcStreamStats stats[BENCH_STATS_MAX], before[BENCH_STATS_MAX];

  if (bench_set_render_ahead(server, s->buffered) < 0)
    return -1;
  if (!s->realtime)
    setenv("AUDIOIPC_RT_PRIORITY", "0", 1);
  int r = bench_group_start_measuring(p, &g, server, args, clients);
  if (!s->realtime)
    unsetenv("AUDIOIPC_RT_PRIORITY");
  AudioIpcStreamStats sum0 = {.client = 0}, sum1 = {.client = 0};
  int64_t self = 0, main_cpu = 0, clients_cpu = 0, t0 = 0, t1 = 0;
  int nb = -1, n = -1;
  if (r == 0) {
    t0 = aipc_now_ns();
    self = bench_rusage_ns(RUSAGE_SELF);
    main_cpu = bench_thread_cpu_ns();
    nb = bench_group_stats(server, &g, before);
    if (nb < 0 || bench_group_sum_stats(server, &g, &sum0) < 0)
      r = -1;
    bench_sleep_until(t0 + (int64_t)(s->seconds * 1e9));
    n = r == 0 ? bench_group_stats(server, &g, stats) : -1;
    if (n < 0 || bench_group_sum_stats(server, &g, &sum1) < 0)
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
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  if (r < 0)
    return -1;
  if ((uint32_t)n != s->streams) {
    fprintf(stderr, "aipc bench: %s: the server knew %d streams\n", what, n);
    return -1;
  }
  struct bench_case agg = {0};
  bench_aggregate(stats, n, &agg);
  double seconds = (double)(t1 - t0) / 1e9;
  *out = (struct bench_pulse_case){
      .latency = s->latency,
      .streams = s->streams,
      .clients = clients,
      .buffered = s->buffered,
      .p50 = agg.p50,
      .p99 = agg.p99,
      .max = agg.max,
      .misses = sum1.misses - sum0.misses,
      .callbacks = sum1.callbacks - sum0.callbacks,
      .frames = sum1.frames - sum0.frames,
      .cpu_us = bench_ratio((double)(self - main_cpu + clients_cpu) / 1e3,
                            (double)(sum1.callbacks - sum0.callbacks)),
      .slowest_fps = slowest_fps(before, nb, stats, n, seconds),
      .seconds = seconds};
  return 0;
}

/* --- Plain libcubeb, in this process -------------------------------------- */

struct inproc_stream {
  cubeb_stream *stm;
  atomic_uint_fast64_t frames;
};

static long
inproc_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm, (void)in;
  struct inproc_stream *s = user;
  memset(out, 0, (size_t)n * BENCH_FRAME_BYTES);
  atomic_fetch_add_explicit(&s->frames, (uint64_t)n, memory_order_relaxed);
  return n;
}

static void
inproc_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm, (void)user, (void)state;
}

/* The frames per second of the slowest of BENCH_PULSE_ONE_CLIENT_STREAMS
 * streams of 256 frames that libcubeb runs on pulse in this process, as
 * an application does without us; 0 if they cannot run. */
static double
inprocess_slowest_fps(const struct bench_params *p)
{
  enum { N = BENCH_PULSE_ONE_CLIENT_STREAMS };
  static struct inproc_stream s[N];
  bench_progress("PulseAudio, %d streams of 256 frames in this process "
                 "(plain libcubeb), %g s",
                 N, p->pulse_seconds);
  cubeb *ctx;
  if (cubeb_init(&ctx, "aipc-bench", "pulse") != CUBEB_OK)
    return 0;
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = BENCH_RATE,
                                .channels = BENCH_CHANNELS,
                                .layout = CUBEB_LAYOUT_STEREO};
  int made = 0, ok = 1;
  for (; made < N && ok; made++) {
    atomic_store(&s[made].frames, 0);
    ok = cubeb_stream_init(ctx, &s[made].stm, "aipc-bench", NULL, NULL, NULL,
                           &params, 256, inproc_cb, inproc_state,
                           &s[made]) == CUBEB_OK &&
         cubeb_stream_start(s[made].stm) == CUBEB_OK;
  }
  double slowest = 0;
  if (ok) {
    bench_sleep_until(aipc_now_ns() + (int64_t)(p->settle_seconds * 1e9));
    uint64_t from[N];
    for (int i = 0; i < N; i++)
      from[i] = atomic_load(&s[i].frames);
    int64_t t0 = aipc_now_ns();
    bench_sleep_until(t0 + (int64_t)(p->pulse_seconds * 1e9));
    double seconds = (double)(aipc_now_ns() - t0) / 1e9;
    for (int i = 0; i < N; i++) {
      double fps = (double)(atomic_load(&s[i].frames) - from[i]) / seconds;
      if (i == 0 || fps < slowest)
        slowest = fps;
    }
  }
  for (int i = 0; i < made; i++) {
    if (s[i].stm) {
      cubeb_stream_stop(s[i].stm);
      cubeb_stream_destroy(s[i].stm);
      s[i].stm = NULL;
    }
  }
  cubeb_destroy(ctx);
  return slowest;
}

/* --- Every CPU busy ------------------------------------------------------- */

/* Starts one spinning process per CPU, at normal priority. */
static int
load_start(pid_t *pids, int n)
{
  for (int i = 0; i < n; i++) {
    pids[i] = fork();
    if (pids[i] < 0)
      return -1;
    if (pids[i] == 0) {
      for (volatile unsigned long x = 0;; x++)
        ;
    }
  }
  return 0;
}

static void
load_stop(const pid_t *pids, int n)
{
  for (int i = 0; i < n; i++) {
    if (pids[i] > 0) {
      kill(pids[i], SIGKILL);
      waitpid(pids[i], NULL, 0);
    }
  }
}

static int
loaded_cases(const struct bench_params *p, void *server, int ncpus,
             struct bench_pulse *out)
{
  pid_t pids[64] = {0};
  int n = ncpus < 64 ? ncpus : 64;
  int r = load_start(pids, n);
  for (int b = 0; b < 2 && r == 0; b++) {
    struct pulse_setup s = {.latency = out->min_latency,
                            .streams = BENCH_PULSE_LOADED_STREAMS,
                            .clients_max = BENCH_MAX_CLIENTS,
                            .buffered = b == 1,
                            .seconds = p->loaded_seconds};
    r = pulse_case(p, server, &s, &out->loaded[b]);
  }
  load_stop(pids, n);
  return r;
}

/* --- The section ---------------------------------------------------------- */

/* The server's backend and cubeb's minimum latency, as a client sees
 * them: 0 unless that backend is pulse (libcubeb falls back to another
 * backend when PulseAudio fails). */
static uint32_t
pulse_min_latency(void *server)
{
  struct bench_group g = {.what = "PulseAudio, minimum latency"};
  char *args[] = {"minlat", NULL};
  int r = bench_group_spawn(&g, server, args);
  if (r == 0)
    r = bench_group_wait(&g, BENCH_GOT_END);
  long min = r == 0 ? g.c[0].min_latency : 0;
  bool pulse = r == 0 && strcmp(g.c[0].backend, "pulse") == 0;
  if (bench_group_finish(&g, r < 0) < 0)
    r = -1;
  return r == 0 && pulse && min > 0 && min <= 96000 ? (uint32_t)min : 0;
}

/* The PulseAudio section: run only if PULSE_SERVER is set and a server
 * on the "pulse" backend starts and serves "pulse"; otherwise out->ran
 * stays false. */
int
bench_run_pulse(const struct bench_params *p, int ncpus,
                struct bench_pulse *out)
{
  static const uint32_t counts[BENCH_PULSE_COUNTS] = {1, 8, 32};
  *out = (struct bench_pulse){0};
  const char *env = getenv("PULSE_SERVER");
  if (!env || !*env) {
    bench_progress("pulse: skipped (PULSE_SERVER is not set)");
    return 0;
  }
  bench_progress("PulseAudio: minimum latency");
  void *server = audioipc_server_start("aipc-bench", "pulse", NULL);
  out->min_latency = server ? pulse_min_latency(server) : 0;
  if (out->min_latency == 0) {
    bench_progress("pulse: skipped (no PulseAudio reachable)");
    if (server)
      audioipc_server_stop(server);
    return 0;
  }
  int r = 0, k = 0;
  for (int l = 0; l < 2; l++)
    for (int i = 0; i < BENCH_PULSE_COUNTS; i++)
      for (int b = 0; b < 2 && r == 0; b++) {
        struct pulse_setup s = {.latency = l == 0 ? out->min_latency : 256,
                                .streams = counts[i],
                                .clients_max = BENCH_MAX_CLIENTS,
                                .buffered = b == 1,
                                .realtime = true,
                                .seconds = p->pulse_seconds};
        r = pulse_case(p, server, &s, &out->cases[k++]);
      }
  for (int b = 0; b < 2 && r == 0; b++) {
    struct pulse_setup s = {.latency = 256,
                            .streams = BENCH_PULSE_ONE_CLIENT_STREAMS,
                            .clients_max = 1,
                            .buffered = b == 1,
                            .realtime = true,
                            .seconds = p->pulse_seconds};
    r = pulse_case(p, server, &s, &out->one_client[b]);
  }
  if (r == 0)
    out->inprocess_slowest_fps = inprocess_slowest_fps(p);
  if (r == 0)
    r = loaded_cases(p, server, ncpus, out);
  audioipc_server_stop(server);
  out->ran = r == 0;
  return r;
}
