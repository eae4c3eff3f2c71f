/* SPDX-License-Identifier: ISC */
/*
 * Clients that stall as hard as they can: streams whose requests are as
 * long as the protocol allows and that never answer them, while the same
 * client keeps asking for its streams' position and restarting them, so
 * that its requests wait on the backend (on pulse, on its context's lock,
 * which a waiting data callback holds). An honest client's control
 * requests must still be answered promptly, a stalled client that hangs
 * up must be torn down promptly, and so must a server stopped under
 * stalled clients. Run on the virtual device and on pulse.
 */
#include "fixture.h"
#include "hostile.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STALLERS 8
#define STALLER_STREAMS 4
/* Only catches the old stalls (33 s for one request); the figures are
 * printed. */
#define HONEST_BOUND_MS 3000.0

static bool
is_pulse(const char *backend)
{
  return backend && strcmp(backend, "pulse") == 0;
}

/* A stream whose every request is as long as can be: on pulse the
 * lowest rate, while the virtual device asks for a period at any rate. */
static struct aipc_stream_init
long_request_stream(const char *backend)
{
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, 96000);
  if (is_pulse(backend)) {
    q.out_rate = 1000;
    q.out_channels = 1;
    q.out_layout = CUBEB_LAYOUT_MONO;
  }
  return q;
}

struct staller {
  struct raw r;
  uint32_t streams[STALLER_STREAMS];
  pthread_t thread;
  atomic_bool quit;
  unsigned requests;
};

static void *
staller_main(void *data)
{
  struct staller *s = data;
  s->r.lax = true;
  for (unsigned i = 0; !atomic_load(&s->quit); i++) {
    uint32_t id = s->streams[i % STALLER_STREAMS];
    uint16_t op = i % 4 == 3   ? AIPC_OP_STREAM_STOP
                  : i % 4 == 0 ? AIPC_OP_STREAM_START
                               : AIPC_OP_STREAM_GET_POSITION;
    if (raw_stream_call(&s->r, op, id) == -ECONNRESET)
      break;
    s->requests++;
  }
  return NULL;
}

/* Connects, makes `n` streams that never answer, starts them. */
static void
staller_open(struct fixture *f, struct staller *s, const char *backend,
             unsigned n)
{
  memset(s, 0, sizeof(*s));
  fixture_connect(f, &s->r, NULL);
  raw_greet(&s->r);
  struct aipc_stream_init q = long_request_stream(backend);
  for (unsigned i = 0; i < n; i++) {
    int id = raw_stream_init(&s->r, &q, NULL, NULL);
    CHECK(id > 0);
    if (i < STALLER_STREAMS)
      s->streams[i] = (uint32_t)id;
    CHECK_INT(raw_stream_call(&s->r, AIPC_OP_STREAM_START, (uint32_t)id), ==,
              0);
  }
}

/* The worst and the median answer time of one kind of request. */
struct timing {
  double worst_ms;
  double samples[4096];
  unsigned n;
};

static void
timing_add(struct timing *t, double ms)
{
  if (ms > t->worst_ms)
    t->worst_ms = ms;
  if (t->n < 4096)
    t->samples[t->n++] = ms;
}

static int
compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double
timing_median(struct timing *t)
{
  if (!t->n)
    return 0;
  qsort(t->samples, t->n, sizeof(double), compare_doubles);
  return t->samples[t->n / 2];
}

enum { T_INIT, T_POSITION, T_DESTROY, T_KINDS };
static const char *const timing_names[T_KINDS] = {"STREAM_INIT", "GET_POSITION",
                                                  "STREAM_DESTROY"};

/* An honest client creates a stream, asks its position, destroys it, for
 * `ms` milliseconds. */
static void
honest_requests(struct fixture *f, double ms, struct timing *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  double start = fixture_now_ms();
  while (fixture_now_ms() - start < ms) {
    double t0 = fixture_now_ms();
    int id = raw_stream_init(&r, &q, NULL, NULL);
    CHECK(id > 0);
    double t1 = fixture_now_ms();
    CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_GET_POSITION, (uint32_t)id),
              ==, 0);
    double t2 = fixture_now_ms();
    CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, (uint32_t)id), ==, 0);
    double t3 = fixture_now_ms();
    timing_add(&t[T_INIT], t1 - t0);
    timing_add(&t[T_POSITION], t2 - t1);
    timing_add(&t[T_DESTROY], t3 - t2);
  }
  raw_close(&r);
}

static void
print_timings(const char *what, struct timing *t)
{
  for (int k = 0; k < T_KINDS; k++)
    printf("  %-28s %-14s %4u answers, median %7.2f ms, worst %7.2f ms\n", what,
           timing_names[k], t[k].n, timing_median(&t[k]), t[k].worst_ms);
  fflush(stdout);
}

/* `n` stallers stall while an honest client's requests are timed for
 * `ms`; then they hang up. Returns the milliseconds their teardown took. */
static double
stall_round(struct fixture *f, const char *backend, int n, double ms,
            struct timing *stalled, unsigned *requests)
{
  static struct staller stallers[STALLERS];
  for (int i = 0; i < n; i++)
    staller_open(f, &stallers[i], backend, STALLER_STREAMS);
  for (int i = 0; i < n; i++)
    CHECK_INT(
        pthread_create(&stallers[i].thread, NULL, staller_main, &stallers[i]),
        ==, 0);
  honest_requests(f, ms, stalled);
  *requests = 0;
  for (int i = 0; i < n; i++) {
    atomic_store(&stallers[i].quit, true);
    pthread_join(stallers[i].thread, NULL);
    *requests += stallers[i].requests;
  }
  for (int i = 0; i < n; i++)
    raw_close(&stallers[i].r);
  return fixture_wait_baseline(f, "stallers gone");
}

static void
stallers_while_honest(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  static struct timing alone[T_KINDS], stalled[T_KINDS];
  unsigned requests;
  /* A rehearsal (what the backend allocates once: libpulse's pools grow
   * with the streams at once), then the figures. */
  memset(stalled, 0, sizeof(stalled));
  stall_round(&f, backend, STALLERS, 500, stalled, &requests);
  fixture_baseline(&f);

  memset(alone, 0, sizeof(alone));
  memset(stalled, 0, sizeof(stalled));
  honest_requests(&f, 1000, alone);
  double teardown =
      stall_round(&f, backend, STALLERS, 3000, stalled, &requests);

  print_timings("alone:", alone);
  char what[64];
  snprintf(what, sizeof(what), "with %d stalling clients:", STALLERS);
  print_timings(what, stalled);
  printf("  the %d stalling clients made %u requests meanwhile; torn down "
         "%.0f ms after they hung up\n",
         STALLERS, requests, teardown);
  fflush(stdout);
  for (int k = 0; k < T_KINDS; k++)
    CHECK(stalled[k].worst_ms < HONEST_BOUND_MS);
  fixture_check(&f, "stalling clients");
  fixture_finish(&f);
}

TEST_TIMEOUT(hostile_stalling_clients_hold_up_nobody_else, 120)
{
  stallers_while_honest(NULL);
}

TEST_TIMEOUT(pulse_stalling_clients_hold_up_nobody_else, 120)
{
  stallers_while_honest("pulse");
}

/* One client hangs up with 64 stalled streams; then a server is stopped
 * under two such clients (more streams than the server allows in all by
 * default: the limits are raised for them). */
static void
stalled_teardown(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  AudioIpcServerLimits l;
  CHECK_INT(audioipc_server_get_limits(f.e.server, &l), ==, 0);
  l.streams_max = 256;
  l.shm_max = 1ull << 30;
  CHECK_INT(audioipc_server_set_limits(f.e.server, &l), ==, 0);
  struct staller s;
  staller_open(&f, &s, backend, 64);
  usleep(100 * 1000); /* every stream has missed by now */
  raw_close(&s.r);
  double ms = fixture_wait_baseline(&f, "64 stalled streams");
  printf("  a client with 64 stalled streams torn down %.1f ms after it "
         "hung up\n",
         ms);
  fixture_check(&f, "64 stalled streams");
  CHECK(ms < HONEST_BOUND_MS);

  struct staller more[2];
  for (int i = 0; i < 2; i++)
    staller_open(&f, &more[i], backend, 64);
  usleep(100 * 1000);
  CHECK(write(f.honest_ctl, "q", 1) == 1);
  char c;
  CHECK(read(f.honest_ctl, &c, 1) == 1 && c == 'd');
  close(f.honest_ctl);
  test_wait_ok(f.honest_pid);
  double start = fixture_now_ms();
  e2e_stop_server(&f.e);
  double stop_ms = fixture_now_ms() - start;
  printf("  audioipc_server_stop under 2 clients with 64 stalled streams "
         "each: %.1f ms\n",
         stop_ms);
  fflush(stdout);
  CHECK(stop_ms < HONEST_BOUND_MS);
  for (int i = 0; i < 2; i++)
    raw_close(&more[i].r);
  e2e_finish(&f.e);
}

TEST_TIMEOUT(hostile_stalled_clients_torn_down_promptly, 120)
{
  stalled_teardown(NULL);
}

TEST_TIMEOUT(pulse_stalled_clients_torn_down_promptly, 120)
{
  stalled_teardown("pulse");
}
