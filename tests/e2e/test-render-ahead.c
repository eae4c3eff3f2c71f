/* SPDX-License-Identifier: ISC */
/*
 * Render-ahead (buffered streams) across processes, on the virtual
 * device: what a stop drops, what the latency counts, and how a client's
 * short or failed callback ends an output or input stream.
 */
#include "harness.h"
#include "sound-file.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define RATE 48000
#define PERIOD 128
/* A ring of 128 frames: a quarter of 256 is 64, raised to the period. */
#define LATENCY 256
#define RING 128
#define REALTIME "virtual:rate=48000,channels=2,period=128,out=%s"
#define FAST "virtual:clock=fast,rate=48000,channels=2,period=128,out=%s"

/* Waits until `*counter` reaches `n` (the runner's timeout catches a
 * hang). */
static void
wait_for(atomic_uint_fast64_t *counter, uint64_t n)
{
  while (atomic_load(counter) < n)
    usleep(1000);
}

/* --- A stop drops what was rendered ahead --------------------------------- */

struct ramp {
  struct e2e_watch watch;
  uint64_t total;              /* frames to produce before answering short */
  atomic_uint_fast64_t frames; /* produced */
  atomic_bool stopped;
  atomic_int calls_while_stopped;
};

/* Frames e2e_sample(0), e2e_sample(1), ... up to `total`, then short. */
static long
ramp_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm, (void)in;
  struct ramp *r = user;
  if (atomic_load(&r->stopped))
    atomic_fetch_add(&r->calls_while_stopped, 1);
  float *samples = out;
  uint64_t f = atomic_load(&r->frames);
  long i = 0;
  for (; i < n && f < r->total; i++, f++)
    for (uint32_t ch = 0; ch < 2; ch++)
      samples[i * 2 + ch] = e2e_sample(f, ch);
  atomic_store(&r->frames, f);
  return i;
}

static void
ramp_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct ramp *)user)->watch, state);
}

/* What the client tells the test: frames played before the stop, frames
 * produced by then, frames produced in all. */
struct stop_report {
  uint64_t played, produced, total;
};

E2E_CLIENT(stop_and_restart)
{
  static struct ramp r = {.total = UINT64_MAX};
  e2e_watch_init(&r.watch);
  cubeb_stream_params params = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "ramp", NULL, NULL, NULL, &params,
                              LATENCY, ramp_cb, ramp_state, &r),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_for(&r.frames, RATE / 10);

  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  atomic_store(&r.stopped, true);
  struct stop_report rep = {.produced = atomic_load(&r.frames)};
  CHECK_INT(cubeb_stream_get_position(stm, &rep.played), ==, CUBEB_OK);
  usleep(50 * 1000);
  CHECK_INT(atomic_load(&r.calls_while_stopped), ==, 0);
  CHECK_INT(atomic_load(&r.frames), ==, rep.produced);
  /* What was produced and not played is at most the ring. */
  CHECK(rep.played <= rep.produced);
  CHECK(rep.produced - rep.played <= RING);
  printf("  stopped after %llu frames played, %llu produced: %llu dropped\n",
         (unsigned long long)rep.played, (unsigned long long)rep.produced,
         (unsigned long long)(rep.produced - rep.played));

  rep.total = rep.produced + RATE / 10 + 77;
  r.total = rep.total;
  atomic_store(&r.stopped, false);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  e2e_watch_wait(&r.watch, CUBEB_STATE_DRAINED);
  CHECK_INT(e2e_watch_count(&r.watch, CUBEB_STATE_DRAINED), ==, 1);
  /* Every frame produced after the restart played, then DRAINED. */
  uint64_t position = 0;
  CHECK_INT(cubeb_stream_get_position(stm, &position), ==, CUBEB_OK);
  CHECK_INT(position, ==, rep.played + (rep.total - rep.produced));
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  CHECK(write(arg, &rep, sizeof(rep)) == sizeof(rep));
}

TEST(render_ahead_stop_drops_what_was_rendered_ahead)
{
  struct e2e e;
  e2e_start(&e, REALTIME);
  int report[2];
  CHECK_INT(pipe(report), ==, 0);
  pid_t pid = e2e_spawn_keeping(&e, stop_and_restart, report[1]);
  close(report[1]);
  struct stop_report rep;
  CHECK(read(report[0], &rep, sizeof(rep)) == sizeof(rep));
  close(report[0]);
  test_wait_ok(pid);
  AudioIpcStreamStats stats;
  CHECK_INT(audioipc_server_get_stream_stats(e.server, &stats, 1), ==, 1);
  CHECK_INT(stats.misses, ==, 0);
  e2e_stop_server(&e);

  /* The device heard frames 0 .. played-1, then, with no gap and nothing
   * of what the stop dropped, produced .. total-1: the same samples in
   * the same order. */
  struct aipc_sound_data wav;
  CHECK_INT(aipc_sound_load(e.wav, 8, &wav, NULL, 0), ==, 0);
  CHECK_INT(wav.frames, ==, rep.played + (rep.total - rep.produced));
  uint64_t wrong = 0;
  for (uint64_t f = 0; f < wav.frames; f++) {
    uint64_t want = f < rep.played ? f : rep.produced + (f - rep.played);
    for (uint32_t ch = 0; ch < 2; ch++)
      wrong += wav.samples[f * 2 + ch] != e2e_sample(want, ch);
  }
  CHECK_INT(wrong, ==, 0);
  aipc_sound_data_clear(&wav);
  e2e_finish(&e);
}

/* --- Latency counts the ring ---------------------------------------------- */

static long
silence_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm, (void)user, (void)in;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  return n;
}

static void
no_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm, (void)user, (void)state;
}

/* arg 1: the stream renders ahead. The virtual device's own latency is
 * its period; a buffered stream adds what its ring holds. */
E2E_CLIENT(latency_of_a_playing_stream)
{
  cubeb_stream_params params = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "latency", NULL, NULL, NULL, &params,
                              LATENCY, silence_cb, no_state, NULL),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  /* The client refills the ring right after each period, so it is full
   * but for moments: most readings count it, and all stay within it. */
  uint32_t most = 0;
  for (int i = 0; i < 20; i++) {
    usleep(5000);
    uint32_t latency = 0;
    CHECK_INT(cubeb_stream_get_latency(stm, &latency), ==, CUBEB_OK);
    if (arg)
      CHECK(latency >= PERIOD && latency <= PERIOD + RING);
    else
      CHECK_INT(latency, ==, PERIOD);
    most = latency > most ? latency : most;
  }
  if (arg)
    CHECK(most > PERIOD);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
}

TEST(render_ahead_latency_counts_the_ring)
{
  struct e2e e;
  e2e_start(&e, REALTIME);
  test_wait_ok(e2e_spawn(&e, latency_of_a_playing_stream, 1));
  e2e_set_render_ahead(&e, 0);
  test_wait_ok(e2e_spawn(&e, latency_of_a_playing_stream, 0));
  e2e_finish(&e);
}

/* --- A short or failed callback ends the stream --------------------------- */

struct ender {
  struct e2e_watch watch;
  long answer; /* once `after` frames went: 0, or an error */
  uint64_t after;
  atomic_uint_fast64_t frames; /* passed to the callback */
  atomic_int calls_after_end;
  atomic_bool ended;
};

static long
ender_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm, (void)in;
  struct ender *e = user;
  if (atomic_load(&e->ended)) {
    atomic_fetch_add(&e->calls_after_end, 1);
    return 0;
  }
  if (out)
    memset(out, 0, (size_t)n * 2 * sizeof(float));
  if (atomic_fetch_add(&e->frames, (uint64_t)n) + (uint64_t)n < e->after)
    return n;
  atomic_store(&e->ended, true);
  return e->answer == 0 ? n / 2 : e->answer;
}

static void
ender_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct ender *)user)->watch, state);
}

/* Runs one stream (output, or input if `input`) whose callback answers
 * `answer` after a tenth of a second, and waits for `end`. */
static void
run_ender(cubeb *ctx, bool input, long answer, cubeb_state end)
{
  static struct ender e;
  memset(&e, 0, sizeof(e));
  e2e_watch_init(&e.watch);
  e.answer = answer;
  e.after = RATE / 10;
  cubeb_stream_params out = E2E_STEREO_OUT, in = E2E_MONO_IN;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "ender", NULL, input ? &in : NULL,
                              NULL, input ? NULL : &out, LATENCY, ender_cb,
                              ender_state, &e),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  e2e_watch_wait(&e.watch, end);
  usleep(50 * 1000);
  CHECK_INT(e2e_watch_count(&e.watch, end), ==, 1);
  CHECK_INT(atomic_load(&e.calls_after_end), ==, 0);
  CHECK(atomic_load(&e.frames) >= e.after);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
}

E2E_CLIENT(streams_that_end)
{
  (void)arg;
  run_ender(ctx, false, 0, CUBEB_STATE_DRAINED);
  run_ender(ctx, false, CUBEB_ERROR, CUBEB_STATE_ERROR);
  run_ender(ctx, true, 0, CUBEB_STATE_DRAINED);
  run_ender(ctx, true, CUBEB_ERROR, CUBEB_STATE_ERROR);
}

TEST(render_ahead_short_or_failed_callbacks_end_output_and_input)
{
  struct e2e e;
  e2e_start(&e, FAST);
  test_wait_ok(e2e_spawn(&e, streams_that_end, 0));
  AudioIpcStreamStats stats[4];
  CHECK_INT(audioipc_server_get_stream_stats(e.server, stats, 4), ==, 4);
  for (int i = 0; i < 4; i++)
    CHECK_INT(stats[i].misses, ==, 0);
  e2e_finish(&e);
}

/* --- The ring's size ------------------------------------------------------ */

/* The smallest latencies (a quarter of them is no frame at all) still
 * give a stream a ring that holds the device's callback, and it plays. */
E2E_CLIENT(tiny_latencies)
{
  (void)arg;
  for (unsigned latency = 1; latency <= 4; latency++) {
    static struct ramp r;
    memset(&r, 0, sizeof(r));
    e2e_watch_init(&r.watch);
    r.total = RATE / 100;
    cubeb_stream_params params = E2E_STEREO_OUT;
    cubeb_stream *stm;
    CHECK_INT(cubeb_stream_init(ctx, &stm, "tiny", NULL, NULL, NULL, &params,
                                latency, ramp_cb, ramp_state, &r),
              ==, CUBEB_OK);
    CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
    e2e_watch_wait(&r.watch, CUBEB_STATE_DRAINED);
    CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
    cubeb_stream_destroy(stm);
  }
}

TEST(render_ahead_tiny_latencies_get_a_ring)
{
  struct e2e e;
  e2e_start(&e, FAST);
  test_wait_ok(e2e_spawn(&e, tiny_latencies, 0));
  e2e_finish(&e);
}

/* --- Duplex, when the embedder opts in ------------------------------------ */

#define DUPLEX_FRAMES (RATE / 10 + 77)

struct echo {
  struct e2e_watch watch;
  atomic_uint_fast64_t frames;
};

/* Mono input to both output channels, DUPLEX_FRAMES in all. */
static long
echo_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct echo *e = user;
  const float *x = in;
  float *y = out;
  uint64_t f = atomic_load(&e->frames);
  long i = 0;
  for (; i < n && f < DUPLEX_FRAMES; i++, f++)
    y[2 * i] = y[2 * i + 1] = x[i];
  atomic_store(&e->frames, f);
  return i;
}

static void
echo_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct echo *)user)->watch, state);
}

/* arg: the frames the output runs behind the input (0: synchronous). */
E2E_CLIENT(echo_input)
{
  static struct echo e;
  e2e_watch_init(&e.watch);
  cubeb_stream_params out = E2E_STEREO_OUT, in = E2E_MONO_IN;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "echo", NULL, &in, NULL, &out, LATENCY,
                              echo_cb, echo_state, &e),
            ==, CUBEB_OK);
  uint32_t latency = 0;
  CHECK_INT(cubeb_stream_get_latency(stm, &latency), ==, CUBEB_OK);
  CHECK_INT(latency, ==, PERIOD + (uint32_t)arg);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  e2e_watch_wait(&e.watch, CUBEB_STATE_DRAINED);
  /* Position counts what the client made, not the silence before it. */
  uint64_t position = 0;
  CHECK_INT(cubeb_stream_get_position(stm, &position), ==, CUBEB_OK);
  CHECK_INT(position, ==, DUPLEX_FRAMES);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
}

/* The device's output file holds `behind` frames of silence, then the
 * input it gave the stream (its sine), frame for frame. */
static void
check_echo(const char *path, uint64_t behind)
{
  struct aipc_sound_data wav;
  CHECK_INT(aipc_sound_load(path, 8, &wav, NULL, 0), ==, 0);
  CHECK_INT(wav.frames, ==, behind + DUPLEX_FRAMES);
  uint64_t wrong = 0;
  for (uint64_t f = 0; f < wav.frames; f++) {
    double want =
        f < behind
            ? 0.0
            : 0.5 * sin(2.0 * M_PI * 440.0 * (double)(f - behind) / RATE);
    for (uint32_t ch = 0; ch < 2; ch++)
      wrong += fabs(wav.samples[f * 2 + ch] - want) > 1e-5;
  }
  CHECK_INT(wrong, ==, 0);
  aipc_sound_data_clear(&wav);
}

TEST(render_ahead_duplex_when_opted_in_runs_its_output_behind_its_input)
{
  for (unsigned mode = 1; mode <= 2; mode++) {
    struct e2e e;
    e2e_start(&e, FAST);
    e2e_set_render_ahead(&e, mode);
    /* Mode 1 (the default) keeps duplex synchronous. */
    uint64_t behind = mode == 2 ? RING : 0;
    test_wait_ok(e2e_spawn(&e, echo_input, (int)behind));
    AudioIpcStreamStats stats;
    CHECK_INT(audioipc_server_get_stream_stats(e.server, &stats, 1), ==, 1);
    CHECK_INT(stats.misses, ==, 0);
    e2e_stop_server(&e);
    check_echo(e.wav, behind);
    e2e_finish(&e);
  }
}
