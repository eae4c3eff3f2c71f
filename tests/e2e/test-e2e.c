/* SPDX-License-Identifier: ISC */
/*
 * The remoted cubeb API end to end: a server on the virtual device in the
 * test process, clients in forked children calling libcubeb's public
 * functions on the context from audioipc_client_init.
 */
#include "../tone.h"
#include "harness.h"
#include "sound-file.h"
#include "virtual.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RATE 48000
#define FAST "virtual:clock=fast,rate=48000,channels=2,period=128,out=%s"

/* --- Output, bit-exact ---------------------------------------------------- */

#define PLAY_FRAMES (RATE + 77) /* not a multiple of the period */

struct player {
  struct e2e_watch watch;
  uint64_t frame;
  uint64_t total;
  cubeb_stream *stream;
  int bad_stream_ptr;
};

static long
play_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  struct player *p = user;
  (void)in;
  if (stm != p->stream || cubeb_stream_user_ptr(stm) != p)
    p->bad_stream_ptr++;
  float *samples = out;
  long i = 0;
  for (; i < n && p->frame < p->total; i++, p->frame++)
    for (uint32_t ch = 0; ch < 2; ch++)
      samples[i * 2 + ch] = e2e_sample(p->frame, ch);
  return i; /* fewer than n: drained */
}

static void
player_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct player *)user)->watch, state);
}

E2E_CLIENT(play_known_sequence)
{
  (void)arg;
  struct player p = {.total = PLAY_FRAMES};
  e2e_watch_init(&p.watch);
  cubeb_stream_params params = E2E_STEREO_OUT;
  CHECK_INT(cubeb_stream_init(ctx, &p.stream, "known", NULL, NULL, NULL,
                              &params, 256, play_cb, player_state, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(p.stream), ==, CUBEB_OK);
  e2e_watch_wait(&p.watch, CUBEB_STATE_DRAINED);
  CHECK_INT(e2e_watch_count(&p.watch, CUBEB_STATE_STARTED), ==, 1);
  CHECK_INT(e2e_watch_count(&p.watch, CUBEB_STATE_DRAINED), ==, 1);
  CHECK_INT(p.bad_stream_ptr, ==, 0);
  uint64_t position = 0;
  CHECK_INT(cubeb_stream_get_position(p.stream, &position), ==, CUBEB_OK);
  CHECK_INT(position, ==, PLAY_FRAMES);
  CHECK_INT(cubeb_stream_stop(p.stream), ==, CUBEB_OK);
  cubeb_stream_destroy(p.stream);
}

static void
check_known_sequence(unsigned pool_size, bool render_ahead)
{
  struct e2e e;
  e2e_start(&e, FAST);
  e.pool_size = pool_size;
  AudioIpcServerLimits limits;
  CHECK_INT(audioipc_server_get_limits(e.server, &limits), ==, 0);
  CHECK_INT(limits.render_ahead, ==, 1); /* the default */
  e2e_set_render_ahead(&e, render_ahead);
  test_wait_ok(e2e_spawn(&e, play_known_sequence, 0));

  /* The server's own account of the stream agrees. */
  AudioIpcStreamStats stats[4];
  CHECK_INT(audioipc_server_get_stream_stats(e.server, stats, 4), ==, 1);
  CHECK_INT(stats[0].client, ==, 1);
  CHECK_INT(stats[0].stream, ==, 1);
  CHECK_INT(stats[0].active, ==, 0);
  CHECK_INT(stats[0].frames, ==, PLAY_FRAMES);
  CHECK_INT(stats[0].misses, ==, 0);
  CHECK_INT(stats[0].callbacks, ==, (PLAY_FRAMES + 127) / 128);
  CHECK(stats[0].sleeps <= stats[0].callbacks);
  CHECK(stats[0].wait_p50_us <= stats[0].wait_p99_us);
  CHECK(stats[0].wait_p99_us <= stats[0].wait_max_us ||
        stats[0].wait_p99_us == 4096);
  e2e_stop_server(&e);

  struct aipc_sound_data wav;
  CHECK_INT(aipc_sound_load(e.wav, 8, &wav, NULL, 0), ==, 0);
  CHECK_INT(wav.channels, ==, 2);
  CHECK_INT(wav.rate, ==, RATE);
  CHECK(wav.frames >= PLAY_FRAMES);
  uint64_t wrong = 0;
  for (uint64_t f = 0; f < wav.frames; f++)
    for (uint32_t ch = 0; ch < 2; ch++) {
      float want = f < PLAY_FRAMES ? e2e_sample(f, ch) : 0.0f;
      wrong += wav.samples[f * 2 + ch] != want;
    }
  CHECK_INT(wrong, ==, 0);
  aipc_sound_data_clear(&wav);
  e2e_finish(&e);
}

/* Rendered ahead (the default for an output-only stream), or answering
 * each request: the same samples reach the device. */
TEST(e2e_output_reaches_the_wav_bit_exact)
{
  check_known_sequence(0, true);
}

TEST(e2e_pooled_output_reaches_the_wav_bit_exact)
{
  check_known_sequence(1, true);
}

TEST(e2e_synchronous_output_reaches_the_wav_bit_exact)
{
  check_known_sequence(0, false);
}

/* --- Output at another rate, converted by the device -------------------- */

#define TONE_RATE 44100
#define TONE_HZ 1000.0

static long
tone_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  struct player *p = user;
  (void)stm;
  (void)in;
  int16_t *samples = out;
  long i = 0;
  for (; i < n && p->frame < p->total; i++, p->frame++)
    samples[i] = (int16_t)lrint(
        16384.0 * sin(2.0 * M_PI * TONE_HZ * (double)p->frame / TONE_RATE));
  return i;
}

E2E_CLIENT(play_tone_44100)
{
  (void)arg;
  struct player p = {.total = TONE_RATE};
  e2e_watch_init(&p.watch);
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_S16NE,
                                .rate = TONE_RATE,
                                .channels = 1,
                                .layout = CUBEB_LAYOUT_UNDEFINED};
  CHECK_INT(cubeb_stream_init(ctx, &p.stream, "tone", NULL, NULL, NULL, &params,
                              256, tone_cb, player_state, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(p.stream), ==, CUBEB_OK);
  e2e_watch_wait(&p.watch, CUBEB_STATE_DRAINED);
  CHECK_INT(e2e_watch_count(&p.watch, CUBEB_STATE_DRAINED), ==, 1);
  uint64_t position = 0;
  CHECK_INT(cubeb_stream_get_position(p.stream, &position), ==, CUBEB_OK);
  CHECK_INT(position, ==, TONE_RATE);
  cubeb_stream_destroy(p.stream);
}

/* A 44.1 kHz mono s16 client on the 48 kHz stereo device: the server
 * passes it on as it is, the device resamples and mixes it, and the tone
 * is in both channels of the file at its level. */
TEST(e2e_output_at_another_rate_is_converted)
{
  struct e2e e;
  e2e_start(&e, FAST);
  test_wait_ok(e2e_spawn(&e, play_tone_44100, 0));
  AudioIpcStreamStats stats[4];
  CHECK_INT(audioipc_server_get_stream_stats(e.server, stats, 4), ==, 1);
  CHECK_INT(stats[0].frames, ==, TONE_RATE);
  CHECK_INT(stats[0].misses, ==, 0);
  e2e_stop_server(&e);

  struct aipc_sound_data wav;
  CHECK_INT(aipc_sound_load(e.wav, 8, &wav, NULL, 0), ==, 0);
  CHECK_INT(wav.rate, ==, RATE);
  CHECK_INT(wav.channels, ==, 2);
  CHECK_INT(wav.frames, >=, RATE);
  CHECK_INT(wav.frames, <=, RATE + 200);
  const float *mid = wav.samples + 2 * (RATE / 10);
  uint64_t n = RATE * 8 / 10;
  for (uint32_t ch = 0; ch < 2; ch++) {
    double a = test_tone_amplitude(mid + ch, 2, n, TONE_HZ, RATE);
    double beside =
        fmax(test_tone_amplitude(mid + ch, 2, n, TONE_HZ - 200, RATE),
             test_tone_amplitude(mid + ch, 2, n, TONE_HZ + 200, RATE));
    CHECK(fabs(20.0 * log10(a / 0.5)) < 0.5);
    CHECK(a > 100.0 * beside);
  }
  aipc_sound_data_clear(&wav);
  e2e_finish(&e);
}

static void ignore_state(cubeb_stream *stm, void *user, cubeb_state state);

/* An input stream at 44.1 kHz mono s16 on the 48 kHz device: it gets
 * the device's 440 Hz sine, resampled, at its level. */
struct recorder {
  float samples[TONE_RATE];
  atomic_long frames;
};

static long
record_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)out;
  struct recorder *r = user;
  const int16_t *samples = in;
  long have = atomic_load(&r->frames);
  for (long i = 0; i < n && have < TONE_RATE; i++, have++)
    r->samples[have] = (float)samples[i] / 32768.0f;
  atomic_store(&r->frames, have);
  return n;
}

E2E_CLIENT(record_44100)
{
  (void)arg;
  static struct recorder r;
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_S16NE,
                                .rate = TONE_RATE,
                                .channels = 1,
                                .layout = CUBEB_LAYOUT_MONO};
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "record", NULL, &params, NULL, NULL,
                              256, record_cb, ignore_state, &r),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  while (atomic_load(&r.frames) < TONE_RATE)
    usleep(1000);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  /* Past the resampler's start. */
  const float *mid = r.samples + TONE_RATE / 10;
  uint64_t n = TONE_RATE * 8 / 10;
  double a = test_tone_amplitude(mid, 1, n, 440.0, TONE_RATE);
  double beside = fmax(test_tone_amplitude(mid, 1, n, 640.0, TONE_RATE),
                       test_tone_amplitude(mid, 1, n, 240.0, TONE_RATE));
  printf("44.1 kHz input: 440 Hz at %.4f (0.5 sent), %.2g beside\n", a, beside);
  CHECK(fabs(20.0 * log10(a / 0.5)) < 0.5);
  CHECK(a > 100.0 * beside);
}

TEST(e2e_input_at_another_rate_is_converted)
{
  struct e2e e;
  e2e_start(&e, FAST);
  test_wait_ok(e2e_spawn(&e, record_44100, 0));
  e2e_finish(&e);
}

/* --- Duplex: the virtual input reaches the callback unchanged ------------- */

struct duplex {
  struct e2e_watch watch;
  uint64_t frame;
  uint64_t mismatches;
  double max_error;
};

static long
duplex_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct duplex *d = user;
  const float *input = in;
  float *output = out;
  for (long i = 0; i < n; i++, d->frame++) {
    double want =
        0.5 * sin(2.0 * M_PI * 440.0 * (double)d->frame / (double)RATE);
    double err = fabs((double)input[i] - want);
    if (err > d->max_error)
      d->max_error = err;
    if (err > 1e-4)
      d->mismatches++;
    output[2 * i] = output[2 * i + 1] = input[i];
  }
  return d->frame >= RATE / 10 ? 0 : n;
}

static void
duplex_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct duplex *)user)->watch, state);
}

E2E_CLIENT(run_duplex)
{
  (void)arg;
  struct duplex d = {.frame = 0};
  e2e_watch_init(&d.watch);
  cubeb_stream_params in = E2E_MONO_IN;
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "duplex", NULL, &in, NULL, &out, 128,
                              duplex_cb, duplex_state, &d),
            ==, CUBEB_OK);
  uint32_t latency = 0;
  CHECK_INT(cubeb_stream_get_input_latency(stm, &latency), ==, CUBEB_OK);
  CHECK(latency > 0);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  e2e_watch_wait(&d.watch, CUBEB_STATE_DRAINED);
  cubeb_stream_destroy(stm);
  if (d.mismatches)
    test_fail(__FILE__, __LINE__, "%llu input samples off (max error %g)",
              (unsigned long long)d.mismatches, d.max_error);
  CHECK(d.frame >= RATE / 10);
}

TEST(e2e_duplex_input_reaches_the_callback)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,in=sine:440,out=%s");
  test_wait_ok(e2e_spawn(&e, run_duplex, 0));
  e2e_finish(&e);
}

/* --- Every operation ----------------------------------------------------- */

/* The child asks the parent (which runs the server) to fire virtual
 * device events by writing a byte: 'c' collection, 'd' device. */
struct ops_sync {
  int request[2];
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int collection_changes, device_changes;
};

static struct ops_sync *sync_of_child;

static void
collection_changed(cubeb *ctx, void *user)
{
  (void)ctx;
  struct ops_sync *s = user;
  pthread_mutex_lock(&s->lock);
  s->collection_changes++;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

static void
device_changed(void *user)
{
  (void)user;
  struct ops_sync *s = sync_of_child;
  pthread_mutex_lock(&s->lock);
  s->device_changes++;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

static void
ask_parent_and_wait(struct ops_sync *s, char what, int *counter)
{
  CHECK(write(s->request[1], &what, 1) == 1);
  pthread_mutex_lock(&s->lock);
  while (*counter == 0)
    pthread_cond_wait(&s->cond, &s->lock);
  pthread_mutex_unlock(&s->lock);
}

static long
silence_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)user;
  (void)in;
  if (out)
    memset(out, 0, (size_t)n * 2 * sizeof(float));
  return n;
}

static void
ignore_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  (void)user;
  (void)state;
}

static const cubeb_device_info *
find_device(const cubeb_device_collection *c, const char *id)
{
  for (size_t i = 0; i < c->count; i++)
    if (c->device[i].device_id && strcmp(c->device[i].device_id, id) == 0)
      return &c->device[i];
  return NULL;
}

E2E_CLIENT(call_every_operation)
{
  static struct ops_sync sync = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                 .cond = PTHREAD_COND_INITIALIZER};
  struct ops_sync *s = &sync;
  s->request[1] = arg;
  sync_of_child = s;
  CHECK(strcmp(cubeb_get_backend_id(ctx), "virtual") == 0);
  uint32_t value = 0;
  CHECK_INT(cubeb_get_max_channel_count(ctx, &value), ==, CUBEB_OK);
  CHECK_INT(value, ==, 2);
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &value), ==, CUBEB_OK);
  CHECK_INT(value, ==, RATE);
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream_params in = E2E_MONO_IN;
  CHECK_INT(cubeb_get_min_latency(ctx, &out, &value), ==, CUBEB_OK);
  CHECK_INT(value, ==, 128);

  cubeb_device_collection outs, ins;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &outs), ==,
            CUBEB_OK);
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &ins), ==,
            CUBEB_OK);
  const cubeb_device_info *out_dev = find_device(&outs, "virtual-out");
  const cubeb_device_info *in_dev = find_device(&ins, "virtual-in");
  CHECK(out_dev && out_dev->type == CUBEB_DEVICE_TYPE_OUTPUT);
  CHECK(in_dev && in_dev->type == CUBEB_DEVICE_TYPE_INPUT);
  CHECK(out_dev->devid != NULL && out_dev->max_channels == 2);

  CHECK_INT(cubeb_register_device_collection_changed(
                ctx, CUBEB_DEVICE_TYPE_OUTPUT, collection_changed, s),
            ==, CUBEB_OK);
  ask_parent_and_wait(s, 'c', &s->collection_changes);
  CHECK_INT(cubeb_register_device_collection_changed(
                ctx, CUBEB_DEVICE_TYPE_OUTPUT, NULL, NULL),
            ==, CUBEB_OK);
  /* A device keeps its devid, as in libcubeb; the stream below opens on
   * the older enumeration's. */
  cubeb_device_collection both;
  CHECK_INT(cubeb_enumerate_devices(
                ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, &both),
            ==, CUBEB_OK);
  CHECK(find_device(&both, "virtual-out") &&
        find_device(&both, "virtual-out")->devid == out_dev->devid);
  CHECK(find_device(&both, "virtual-in") &&
        find_device(&both, "virtual-in")->devid == in_dev->devid);
  CHECK(out_dev->devid != in_dev->devid);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &both), ==, CUBEB_OK);

  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "bogus", NULL, NULL,
                              (cubeb_devid)(uintptr_t)0x5eed, &out, 256,
                              silence_cb, ignore_state, NULL),
            ==, CUBEB_ERROR_DEVICE_UNAVAILABLE);
  CHECK_INT(cubeb_stream_init(ctx, &stm, "every-op", in_dev->devid, &in,
                              out_dev->devid, &out, 256, silence_cb,
                              ignore_state, s),
            ==, CUBEB_OK);
  CHECK(cubeb_stream_user_ptr(stm) == s);
  CHECK_INT(cubeb_stream_set_name(stm, "renamed"), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_set_volume(stm, 0.5f), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_get_latency(stm, &value), ==, CUBEB_OK);
  CHECK(value > 0);
  CHECK_INT(cubeb_stream_get_input_latency(stm, &value), ==, CUBEB_OK);
  CHECK(value > 0);

  cubeb_device *current = NULL;
  CHECK_INT(cubeb_stream_get_current_device(stm, &current), ==, CUBEB_OK);
  CHECK(current->output_name &&
        strcmp(current->output_name, "virtual-out") == 0);
  CHECK(current->input_name && strcmp(current->input_name, "virtual-in") == 0);
  CHECK_INT(cubeb_stream_device_destroy(stm, current), ==, CUBEB_OK);

  CHECK_INT(cubeb_stream_register_device_changed_callback(stm, device_changed),
            ==, CUBEB_OK);
  ask_parent_and_wait(s, 'd', &s->device_changes);

  uint64_t position = 0;
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  while (position < 4 * 128)
    CHECK_INT(cubeb_stream_get_position(stm, &position), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_register_device_changed_callback(stm, NULL), ==,
            CUBEB_OK);
  cubeb_stream_destroy(stm);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &outs), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &ins), ==, CUBEB_OK);
  close(s->request[1]);
}

TEST(e2e_every_operation_through_libcubeb)
{
  struct e2e e;
  e2e_start(&e, FAST);
  int request[2];
  CHECK(pipe(request) == 0);
  pid_t pid = e2e_spawn_keeping(&e, call_every_operation, request[1]);
  close(request[1]);
  char what;
  while (read(request[0], &what, 1) == 1) {
    if (what == 'c')
      audioipc_server_virtual_collection_changed();
    else if (what == 'd')
      audioipc_server_virtual_device_changed();
  }
  close(request[0]);
  test_wait_ok(pid);
  e2e_finish(&e);
}

/* --- Semantics ------------------------------------------------------------ */

struct semantics {
  struct e2e_watch watch;
  cubeb_stream *stream;
  atomic_int callbacks;
  atomic_int nested_ok;
  atomic_int wrong_stream;
};

static long
nesting_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)in;
  struct semantics *s = user;
  if (stm != s->stream)
    atomic_fetch_add(&s->wrong_stream, 1);
  /* Calling the library from its own callback fails; it must not abort
   * or deadlock. */
  uint64_t position;
  if (cubeb_stream_get_position(stm, &position) == CUBEB_ERROR)
    atomic_fetch_add(&s->nested_ok, 1);
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&s->callbacks, 1);
  return n;
}

static void
semantics_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  struct semantics *s = user;
  if (stm != s->stream)
    atomic_fetch_add(&s->wrong_stream, 1);
  e2e_watch_state(&s->watch, state);
}

E2E_CLIENT(check_semantics)
{
  (void)arg;
  struct semantics s = {.callbacks = 0};
  e2e_watch_init(&s.watch);
  cubeb_stream_params out = E2E_STEREO_OUT;
  CHECK_INT(cubeb_stream_init(ctx, &s.stream, "semantics", NULL, NULL, NULL,
                              &out, 128, nesting_cb, semantics_state, &s),
            ==, CUBEB_OK);
  for (int round = 0; round < 3; round++) {
    int before = atomic_load(&s.callbacks);
    CHECK_INT(cubeb_stream_start(s.stream), ==, CUBEB_OK);
    while (atomic_load(&s.callbacks) < before + 20)
      usleep(100);
    CHECK_INT(cubeb_stream_stop(s.stream), ==, CUBEB_OK);
    /* No data callback after stop returned. */
    int at_stop = atomic_load(&s.callbacks);
    usleep(20000);
    CHECK_INT(atomic_load(&s.callbacks), ==, at_stop);
  }
  CHECK_INT(atomic_load(&s.nested_ok), ==, atomic_load(&s.callbacks));
  CHECK_INT(atomic_load(&s.wrong_stream), ==, 0);
  e2e_watch_wait(&s.watch, CUBEB_STATE_STOPPED);
  CHECK_INT(e2e_watch_count(&s.watch, CUBEB_STATE_ERROR), ==, 0);
  cubeb_stream_destroy(s.stream);
}

static void
run_semantics(unsigned pool_size)
{
  struct e2e e;
  e2e_start(&e, FAST);
  e.pool_size = pool_size;
  test_wait_ok(e2e_spawn(&e, check_semantics, 0));
  e2e_finish(&e);
}

TEST(e2e_callbacks_get_the_stream_and_stop_means_stop)
{
  run_semantics(0);
}

TEST(e2e_pooled_callbacks_get_the_stream_and_stop_means_stop)
{
  run_semantics(1);
}

/* --- The server dies ------------------------------------------------------ */

struct survivor {
  struct e2e_watch watch;
  atomic_int callbacks;
};

static long
count_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)in;
  struct survivor *s = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&s->callbacks, 1);
  return n;
}

static void
survivor_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct survivor *)user)->watch, state);
}

static int64_t
now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

E2E_CLIENT(survive_server_death)
{
  int report = arg;
  struct survivor s = {.callbacks = 0};
  e2e_watch_init(&s.watch);
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *streams[2];
  for (int i = 0; i < 2; i++) {
    CHECK_INT(cubeb_stream_init(ctx, &streams[i], "survivor", NULL, NULL, NULL,
                                &out, 128, count_cb, survivor_state, &s),
              ==, CUBEB_OK);
    CHECK_INT(cubeb_stream_start(streams[i]), ==, CUBEB_OK);
  }
  while (atomic_load(&s.callbacks) < 10)
    usleep(1000);
  CHECK(write(report, "p", 1) == 1);

  /* Both streams hear of it, once each. */
  pthread_mutex_lock(&s.watch.lock);
  while (s.watch.states[CUBEB_STATE_ERROR] < 2)
    pthread_cond_wait(&s.watch.cond, &s.watch.lock);
  pthread_mutex_unlock(&s.watch.lock);
  int64_t t0 = now_ms();
  uint64_t position;
  CHECK_INT(cubeb_stream_get_position(streams[0], &position), ==, CUBEB_ERROR);
  CHECK_INT(cubeb_stream_stop(streams[1]), ==, CUBEB_ERROR);
  uint32_t rate;
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &rate), ==, CUBEB_ERROR);
  CHECK(now_ms() - t0 < 1000); /* generous: these fail without waiting */
  usleep(50000);
  CHECK_INT(e2e_watch_count(&s.watch, CUBEB_STATE_ERROR), ==, 2);
  for (int i = 0; i < 2; i++)
    cubeb_stream_destroy(streams[i]);
}

struct death_report {
  pid_t client;
  char dir[64];
};

TEST(e2e_server_death_fails_calls_and_reports_error_once)
{
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  int info[2];
  CHECK(pipe(info) == 0);
  fflush(NULL);
  pid_t server_pid = fork();
  CHECK(server_pid >= 0);
  if (server_pid == 0) {
    close(info[0]);
    struct e2e e;
    e2e_start(&e, "virtual:clock=realtime,out=%s");
    e.clients_outlive_server = true; /* that is the point */
    struct death_report r = {
        .client = e2e_spawn_keeping(&e, survive_server_death, info[1])};
    snprintf(r.dir, sizeof(r.dir), "%s", e.dir);
    CHECK(write(info[1], &r, sizeof(r)) == sizeof(r));
    for (;;)
      pause(); /* until killed */
  }
  close(info[1]);
  struct death_report r;
  CHECK(read(info[0], &r, sizeof(r)) == sizeof(r));
  char playing;
  CHECK(read(info[0], &playing, 1) == 1);
  close(info[0]);
  kill(server_pid, SIGKILL);
  CHECK(WIFSIGNALED(test_wait(server_pid)));
  test_wait_ok(r.client);

  struct e2e leftover = {.server = NULL};
  snprintf(leftover.dir, sizeof(leftover.dir), "%s", r.dir);
  e2e_finish(&leftover);
}

/* --- Many clients at once ------------------------------------------------- */

E2E_CLIENT(four_streams_three_rounds)
{
  (void)arg;
  struct survivor s = {.callbacks = 0};
  e2e_watch_init(&s.watch);
  cubeb_stream_params out = E2E_STEREO_OUT;
  for (int round = 0; round < 3; round++) {
    cubeb_stream *streams[4];
    for (int i = 0; i < 4; i++)
      CHECK_INT(cubeb_stream_init(ctx, &streams[i], "many", NULL, NULL, NULL,
                                  &out, 128, count_cb, survivor_state, &s),
                ==, CUBEB_OK);
    int before = atomic_load(&s.callbacks);
    for (int i = 0; i < 4; i++)
      CHECK_INT(cubeb_stream_start(streams[i]), ==, CUBEB_OK);
    while (atomic_load(&s.callbacks) < before + 40)
      usleep(500);
    for (int i = 0; i < 4; i++) {
      CHECK_INT(cubeb_stream_stop(streams[i]), ==, CUBEB_OK);
      cubeb_stream_destroy(streams[i]);
    }
  }
  CHECK_INT(e2e_watch_count(&s.watch, CUBEB_STATE_ERROR), ==, 0);
}

static void
eight_clients(unsigned pool_size)
{
  struct e2e e;
  e2e_start(&e, FAST);
  e.pool_size = pool_size;
  pid_t pids[8];
  for (int i = 0; i < 8; i++)
    pids[i] = e2e_spawn(&e, four_streams_three_rounds, 0);
  for (int i = 0; i < 8; i++)
    test_wait_ok(pids[i]);
  e2e_finish(&e);
}

TEST(e2e_eight_clients_four_streams_each)
{
  eight_clients(0);
}

TEST(e2e_eight_pooled_clients_four_streams_each)
{
  eight_clients(1);
}

/* --- More of the data path ------------------------------------------------ */

/* Periods of 2000 frames are more than a stream's area holds (512 frames
 * for a latency of 256): the server serves them in chunks, and the WAV
 * must still hold exactly the sequence. */
TEST(e2e_big_backend_callbacks_are_served_in_chunks)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,period=2000,out=%s");
  test_wait_ok(e2e_spawn(&e, play_known_sequence, 0));
  e2e_stop_server(&e);
  struct aipc_sound_data wav;
  CHECK_INT(aipc_sound_load(e.wav, 8, &wav, NULL, 0), ==, 0);
  CHECK(wav.frames >= PLAY_FRAMES);
  uint64_t wrong = 0;
  for (uint64_t f = 0; f < wav.frames; f++)
    for (uint32_t ch = 0; ch < 2; ch++)
      wrong += wav.samples[f * 2 + ch] !=
               (f < PLAY_FRAMES ? e2e_sample(f, ch) : 0.0f);
  CHECK_INT(wrong, ==, 0);
  aipc_sound_data_clear(&wav);
  e2e_finish(&e);
}

struct failing {
  struct e2e_watch watch;
  atomic_int calls;
  atomic_long input_frames;
  atomic_long loud;
};

static long
fail_on_third_cb(cubeb_stream *stm, void *user, const void *in, void *out,
                 long n)
{
  (void)stm;
  (void)in;
  struct failing *f = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  return atomic_fetch_add(&f->calls, 1) == 2 ? CUBEB_ERROR : n;
}

static long
input_only_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct failing *f = user;
  CHECK(out == NULL);
  const float *x = in;
  for (long i = 0; i < n; i++)
    if (fabsf(x[i]) > 0.25f)
      atomic_fetch_add(&f->loud, 1);
  atomic_fetch_add(&f->input_frames, n);
  return n;
}

static void
failing_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  e2e_watch_state(&((struct failing *)user)->watch, state);
}

E2E_CLIENT(error_and_input_only)
{
  (void)arg;
  struct failing f = {.calls = 0};
  e2e_watch_init(&f.watch);
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "fails", NULL, NULL, NULL, &out, 128,
                              fail_on_third_cb, failing_state, &f),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  e2e_watch_wait(&f.watch, CUBEB_STATE_ERROR);
  usleep(20000);
  CHECK_INT(atomic_load(&f.calls), ==, 3); /* no callback after the error */
  CHECK_INT(e2e_watch_count(&f.watch, CUBEB_STATE_ERROR), ==, 1);
  cubeb_stream_destroy(stm);

  cubeb_stream_params in = E2E_MONO_IN;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "input-only", NULL, &in, NULL, NULL,
                              128, input_only_cb, failing_state, &f),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  while (atomic_load(&f.input_frames) < RATE / 10)
    usleep(1000);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  /* A 0.5-amplitude sine is above 0.25 a third of the time or more. */
  CHECK(atomic_load(&f.loud) > atomic_load(&f.input_frames) / 3);
}

TEST(e2e_negative_return_is_an_error_and_input_only_streams_work)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,in=sine:1000,out=%s");
  test_wait_ok(e2e_spawn(&e, error_and_input_only, 0));
  e2e_finish(&e);
}

/* --- Isolation between clients -------------------------------------------- */

#define SLOW_MS 600

E2E_CLIENT(slow_stream_creation)
{
  int go = arg; /* read end: the quick client is measuring */
  char c;
  CHECK(read(go, &c, 1) == 1);
  cubeb_stream_params out = E2E_STEREO_OUT;
  for (int i = 0; i < 2; i++) {
    cubeb_stream *stm;
    CHECK_INT(cubeb_stream_init(ctx, &stm, "slow", NULL, NULL, NULL, &out, 128,
                                silence_cb, ignore_state, NULL),
              ==, CUBEB_OK);
    cubeb_stream_destroy(stm);
  }
}

E2E_CLIENT(quick_requests)
{
  int go = arg; /* write end */
  CHECK(write(go, "g", 1) == 1);
  int64_t worst = 0, end = now_ms() + 2 * SLOW_MS + 200;
  while (now_ms() < end) {
    int64_t t0 = now_ms();
    uint32_t rate;
    CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &rate), ==, CUBEB_OK);
    if (now_ms() - t0 > worst)
      worst = now_ms() - t0;
    usleep(5000);
  }
  printf("quick client: slowest request %lld ms while the other client's "
         "stream creations took %d ms each\n",
         (long long)worst, SLOW_MS);
  /* Generous: a shared queue would make this at least SLOW_MS. */
  CHECK(worst < SLOW_MS / 2);
}

TEST(e2e_a_slow_request_does_not_delay_another_client)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,init_delay_ms=600,out=%s");
  int go[2];
  CHECK(pipe(go) == 0);
  pid_t slow = e2e_spawn_keeping(&e, slow_stream_creation, go[0]);
  pid_t quick = e2e_spawn_keeping(&e, quick_requests, go[1]);
  close(go[0]);
  close(go[1]);
  test_wait_ok(slow);
  test_wait_ok(quick);
  e2e_finish(&e);
}

TEST(e2e_shared_context_serves_several_clients)
{
  setenv("AUDIOIPC_SHARED_CONTEXT", "1", 1);
  struct e2e e;
  e2e_start(&e, FAST);
  pid_t pids[3];
  for (int i = 0; i < 3; i++)
    pids[i] = e2e_spawn(&e, four_streams_three_rounds, 0);
  for (int i = 0; i < 3; i++)
    test_wait_ok(pids[i]);
  e2e_finish(&e);
}

/* --- Soak ----------------------------------------------------------------- */

#define SOAK_CYCLES 10000

/* Create, start, wait for a callback, stop and destroy, many times: under
 * ASan (CI) this doubles as a leak check of both sides. */
E2E_CLIENT(stream_cycles)
{
  struct survivor s = {.callbacks = 0};
  e2e_watch_init(&s.watch);
  cubeb_stream_params out = E2E_STEREO_OUT;
  for (int i = 0; i < arg; i++) {
    cubeb_stream *stm;
    CHECK_INT(cubeb_stream_init(ctx, &stm, "cycle", NULL, NULL, NULL, &out, 128,
                                count_cb, survivor_state, &s),
              ==, CUBEB_OK);
    int before = atomic_load(&s.callbacks);
    CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
    while (atomic_load(&s.callbacks) == before)
      ;
    CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
    cubeb_stream_destroy(stm);
  }
  CHECK_INT(e2e_watch_count(&s.watch, CUBEB_STATE_ERROR), ==, 0);
}

static void
soak(unsigned pool_size, int cycles)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,out=/dev/null");
  e.pool_size = pool_size;
  int fds = test_count_fds();
  test_wait_ok(e2e_spawn(&e, stream_cycles, cycles));
  /* The server lets go of every stream's memory and fd (the client's
   * teardown runs after its hang-up, so wait for it). */
  AudioIpcStreamStats stats[1];
  CHECK(audioipc_server_get_stream_stats(e.server, stats, 1) >= 1);
  CHECK_INT(stats[0].active, ==, 0);
  while (test_count_fds() != fds)
    usleep(1000);
  e2e_finish(&e);
}

TEST_TIMEOUT(e2e_ten_thousand_stream_cycles, 600)
{
  soak(0, SOAK_CYCLES);
}

/* Pooled, the thread stays and streams come and go on it. */
TEST_TIMEOUT(e2e_pooled_stream_cycles, 600)
{
  soak(1, SOAK_CYCLES / 4);
}

/* --- A pool of callback threads ------------------------------------------- */

struct pooled {
  cubeb_stream *stm;
  atomic_int callbacks;
  atomic_int tid;
  atomic_int wrong_stream;
};

static long
pooled_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)in;
  struct pooled *p = user;
  if (stm != p->stm)
    atomic_fetch_add(&p->wrong_stream, 1);
  atomic_store(&p->tid, (int)gettid());
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&p->callbacks, 1);
  return n;
}

static void
pooled_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm, (void)user;
  CHECK(state != CUBEB_STATE_ERROR);
}

static void
pooled_start(cubeb *ctx, struct pooled *p)
{
  cubeb_stream_params out = E2E_STEREO_OUT;
  CHECK_INT(cubeb_stream_init(ctx, &p->stm, "pooled", NULL, NULL, NULL, &out,
                              128, pooled_cb, pooled_state, p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(p->stm), ==, CUBEB_OK);
}

/* Until `p` has had `more` callbacks beyond now. */
static void
pooled_wait(struct pooled *p, int more)
{
  int until = atomic_load(&p->callbacks) + more;
  while (atomic_load(&p->callbacks) < until)
    usleep(200);
}

/* With pool_size 2: six streams run on two threads; one stops or goes
 * while the others play on; a new one joins. */
E2E_CLIENT(pooled_streams)
{
  (void)arg;
  enum { N = 6 };
  static struct pooled p[N + 1];
  for (int i = 0; i < N; i++)
    pooled_start(ctx, &p[i]);
  for (int i = 0; i < N; i++)
    pooled_wait(&p[i], 20);

  int tids[2] = {atomic_load(&p[0].tid), 0};
  for (int i = 1; i < N; i++) {
    int t = atomic_load(&p[i].tid);
    if (t != tids[0]) {
      CHECK(tids[1] == 0 || tids[1] == t); /* no third thread */
      tids[1] = t;
    }
  }
  CHECK(tids[1] != 0); /* spread over both */

  CHECK_INT(cubeb_stream_stop(p[0].stm), ==, CUBEB_OK);
  int at_stop = atomic_load(&p[0].callbacks);
  for (int i = 1; i < N; i++)
    pooled_wait(&p[i], 20);
  CHECK_INT(atomic_load(&p[0].callbacks), ==, at_stop);

  cubeb_stream_destroy(p[1].stm);
  for (int i = 2; i < N; i++)
    pooled_wait(&p[i], 20);

  pooled_start(ctx, &p[N]);
  pooled_wait(&p[N], 20);
  int t = atomic_load(&p[N].tid);
  CHECK(t == tids[0] || t == tids[1]);

  cubeb_stream_destroy(p[0].stm);
  for (int i = 2; i <= N; i++) {
    CHECK_INT(cubeb_stream_stop(p[i].stm), ==, CUBEB_OK);
    cubeb_stream_destroy(p[i].stm);
  }
  for (int i = 0; i <= N; i++)
    CHECK_INT(atomic_load(&p[i].wrong_stream), ==, 0);
}

TEST(e2e_pooled_streams_share_threads_and_stop_alone)
{
  struct e2e e;
  e2e_start(&e, FAST);
  e.pool_size = 2;
  test_wait_ok(e2e_spawn(&e, pooled_streams, 0));
  AudioIpcStreamStats stats[8];
  int n = audioipc_server_get_stream_stats(e.server, stats, 8);
  CHECK_INT(n, ==, 7);
  for (int i = 0; i < n; i++)
    CHECK_INT(stats[i].misses, ==, 0);
  e2e_finish(&e);
}
