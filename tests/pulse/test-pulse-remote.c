/* SPDX-License-Identifier: ISC */
/*
 * The remoted API on a real PulseAudio (the private one from
 * scripts/pulse.sh): a server on cubeb's "pulse" backend in the test
 * process, clients in forked children.
 */
#include "../e2e/harness.h"
#include "sound-file.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RATE 48000

static double
now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct tone {
  double hz;
  uint64_t frame;
  atomic_long frames;
  atomic_long loud_input; /* input frames with |x| > 0.1 */
};

static long
tone_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct tone *t = user;
  const float *input = in;
  float *output = out;
  for (long i = 0; i < n; i++, t->frame++) {
    if (input && fabsf(input[i]) > 0.1f)
      atomic_fetch_add(&t->loud_input, 1);
    if (output) {
      float v = (float)(0.2 * sin(2 * M_PI * t->hz * (double)t->frame / RATE));
      output[2 * i] = output[2 * i + 1] = v;
    }
  }
  atomic_fetch_add(&t->frames, n);
  return n;
}

static void
no_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  (void)user;
  CHECK(state != CUBEB_STATE_ERROR);
}

enum direction { OUT = 1, IN = 2, DUPLEX = 3 };

struct pace {
  enum direction dir;
  double hz;
  double seconds;
};

static const struct pace paces[] = {{OUT, 440, 1.0},
                                    {IN, 0, 1.0},
                                    {DUPLEX, 440, 1.0},
                                    {OUT, 440, 1.5},
                                    {OUT, 1000, 1.5}};

/* Plays (and/or records) for `seconds` and checks the pace. */
E2E_CLIENT(run_at_pace)
{
  const struct pace *p = &paces[arg];
  CHECK(strcmp(cubeb_get_backend_id(ctx), "pulse") == 0);
  struct tone t = {.hz = p->hz};
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream_params in = E2E_MONO_IN;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "pace", NULL, p->dir & IN ? &in : NULL,
                              NULL, p->dir & OUT ? &out : NULL, 1200, tone_cb,
                              no_state, &t),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  /* Measure from the first callback, not from stream setup. */
  while (atomic_load(&t.frames) == 0)
    usleep(1000);
  long first = atomic_load(&t.frames);
  double start = now_s();
  usleep((useconds_t)(p->seconds * 1e6));
  long frames = atomic_load(&t.frames) - first;
  double elapsed = now_s() - start;
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);

  double pace = (double)frames / (elapsed * RATE);
  printf("direction %d: %ld frames in %.2f s: %.0f%% of real time\n", p->dir,
         frames, elapsed, pace * 100);
  /* Generous bounds: this catches stalls, not jitter. */
  CHECK(pace > 0.75 && pace < 1.25);
  if (p->dir & IN)
    CHECK(atomic_load(&t.loud_input) > RATE / 10);
}

static void
start_pulse_server(struct e2e *e)
{
  if (!getenv("PULSE_SERVER"))
    test_fail(__FILE__, __LINE__,
              "PULSE_SERVER is not set: run scripts/pulse.sh start and "
              "eval \"$(scripts/pulse.sh env)\"");
  e2e_start(e, "pulse");
}

TEST(pulse_output_input_duplex_at_real_time_pace)
{
  struct e2e e;
  start_pulse_server(&e);
  for (int i = 0; i < 3; i++)
    test_wait_ok(e2e_spawn(&e, run_at_pace, i));
  e2e_finish(&e);
}

/* With render-ahead opted in for duplex streams, a duplex stream is
 * buffered (a quarter of its 1200 frames ahead), keeps pulse's pace and
 * hears its input. */
TEST(pulse_duplex_renders_ahead_when_opted_in)
{
  struct e2e e;
  start_pulse_server(&e);
  e2e_set_render_ahead(&e, 2);
  pid_t pid = e2e_spawn(&e, run_at_pace, 2);
  AudioIpcStreamInfo info = e2e_wait_live_stream(&e);
  CHECK_INT(info.input_channels, ==, 1);
  CHECK_INT(info.output_channels, ==, 2);
  CHECK_INT(info.ahead_frames, ==, 256);
  CHECK_INT(info.ring_frames, ==, 4 * 256);
  test_wait_ok(pid);
  e2e_finish(&e);
}

/* Goertzel power of `hz` in a mono signal, normalised by length. */
static double
tone_power(const float *x, size_t n, size_t stride, double hz)
{
  double k = 2 * cos(2 * M_PI * hz / RATE), s1 = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    double s = x[i * stride] + k * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / ((double)n * n);
}

TEST_TIMEOUT(pulse_two_clients_play_and_the_sink_hears_both, 120)
{
  struct e2e e;
  start_pulse_server(&e);
  char wav[256];
  snprintf(wav, sizeof(wav), "%s/capture.wav", e.dir);
  pid_t rec = fork();
  CHECK(rec >= 0);
  if (rec == 0) {
    execlp("parecord", "parecord", "-d", "ci_sink.monitor", "--file-format=wav",
           "--format=float32le", "--rate=48000", "--channels=2", wav,
           (char *)NULL);
    _exit(127);
  }
  pid_t p1 = e2e_spawn(&e, run_at_pace, 3);
  pid_t p2 = e2e_spawn(&e, run_at_pace, 4);
  test_wait_ok(p1);
  test_wait_ok(p2);
  kill(rec, SIGINT);
  test_wait(rec);

  struct aipc_sound_data data;
  CHECK_INT(aipc_sound_load(wav, 2, &data, NULL, 0), ==, 0);
  CHECK(data.frames > RATE / 2);
  double p440 = tone_power(data.samples, data.frames, 2, 440);
  double p1000 = tone_power(data.samples, data.frames, 2, 1000);
  double p700 = tone_power(data.samples, data.frames, 2, 700);
  printf("power: 440 Hz %.3g, 1000 Hz %.3g, 700 Hz (absent) %.3g\n", p440,
         p1000, p700);
  CHECK(p440 > 100 * p700);
  CHECK(p1000 > 100 * p700);
  aipc_sound_data_clear(&data);
  e2e_finish(&e);
}

E2E_CLIENT(list_devices)
{
  (void)arg;
  cubeb_device_collection c;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &c), ==,
            CUBEB_OK);
  bool sink = false, mic = false;
  for (size_t i = 0; i < c.count; i++) {
    sink |= c.device[i].device_id && !strcmp(c.device[i].device_id, "ci_sink");
    mic |= c.device[i].device_id && !strcmp(c.device[i].device_id, "ci_mic");
  }
  CHECK(sink && mic);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &c), ==, CUBEB_OK);
}

TEST(pulse_enumeration_lists_the_null_sinks)
{
  struct e2e e;
  start_pulse_server(&e);
  test_wait_ok(e2e_spawn(&e, list_devices, 0));
  e2e_finish(&e);
}

/* --- Device ids ----------------------------------------------------------- */

static atomic_int collection_changes;

static void
count_collection_change(cubeb *ctx, void *user)
{
  (void)ctx;
  (void)user;
  atomic_fetch_add(&collection_changes, 1);
}

/* Runs `pactl ARGS` and returns the first number it prints (a module's
 * index), or 0. */
static unsigned
pactl(const char *args)
{
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "pactl %s", args);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  unsigned n = 0;
  if (fscanf(p, "%u", &n) != 1)
    n = 0;
  CHECK_INT(pclose(p), ==, 0);
  return n;
}

/* Until the backend reports a collection change after `seen`. */
static void
wait_collection_change(int seen)
{
  double start = now_s();
  while (atomic_load(&collection_changes) == seen) {
    CHECK(now_s() - start < 10);
    usleep(1000);
  }
}

static const cubeb_device_info *
device_named(const cubeb_device_collection *c, const char *id)
{
  for (size_t i = 0; i < c->count; i++)
    if (c->device[i].device_id && !strcmp(c->device[i].device_id, id))
      return &c->device[i];
  return NULL;
}

static cubeb_devid
enumerate_and_compare(cubeb *ctx, const cubeb_device_collection *older,
                      cubeb_device_collection *now, const char *extra)
{
  CHECK_INT(cubeb_enumerate_devices(
                ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, now),
            ==, CUBEB_OK);
  int same = 0;
  for (size_t i = 0; i < older->count; i++) {
    const cubeb_device_info *o = &older->device[i];
    for (size_t j = 0; j < now->count; j++) {
      const cubeb_device_info *n = &now->device[j];
      if (o->type == n->type && o->device_id && n->device_id &&
          !strcmp(o->device_id, n->device_id)) {
        CHECK(o->devid == n->devid);
        same++;
      } else {
        /* Never another device's devid. */
        CHECK(o->devid != n->devid);
      }
    }
  }
  CHECK(same >= 2);
  const cubeb_device_info *x = extra ? device_named(now, extra) : NULL;
  CHECK(!extra || x);
  return x ? x->devid : NULL;
}

/* Two enumerations with a collection change in between give a device
 * present in both the same devid, and a stream opens on the older one. */
E2E_CLIENT(devids_outlive_collection_changes)
{
  (void)arg;
  CHECK_INT(cubeb_register_device_collection_changed(
                ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT,
                count_collection_change, NULL),
            ==, CUBEB_OK);
  /* Names of this run's own (a failed run leaves its sink behind). */
  char a[64], b[64], load[128];
  snprintf(a, sizeof(a), "aipc_devid_a_%d", (int)getpid());
  snprintf(b, sizeof(b), "aipc_devid_b_%d", (int)getpid());
  cubeb_device_collection first, second, third;
  CHECK_INT(
      cubeb_enumerate_devices(
          ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, &first),
      ==, CUBEB_OK);
  CHECK(device_named(&first, a) == NULL);

  int seen = atomic_load(&collection_changes);
  snprintf(load, sizeof(load), "load-module module-null-sink sink_name=%s", a);
  unsigned module = pactl(load);
  CHECK(module > 0);
  wait_collection_change(seen);
  cubeb_devid added = enumerate_and_compare(ctx, &first, &second, a);

  /* A stream on a devid of the older enumeration. */
  const cubeb_device_info *sink = device_named(&first, "ci_sink");
  CHECK(sink != NULL);
  struct tone t = {.hz = 440};
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "old devid", NULL, NULL, sink->devid,
                              &out, 1200, tone_cb, no_state, &t),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  double start = now_s();
  while (atomic_load(&t.frames) < RATE / 10) {
    CHECK(now_s() - start < 10);
    usleep(1000);
  }
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_device *current = NULL;
  CHECK_INT(cubeb_stream_get_current_device(stm, &current), ==, CUBEB_OK);
  CHECK(current->output_name && !strcmp(current->output_name, "ci_sink"));
  CHECK_INT(cubeb_stream_device_destroy(stm, current), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);

  /* The added sink goes and another comes: the newcomer never gets the
   * devid of the one that went. */
  seen = atomic_load(&collection_changes);
  char unload[64];
  snprintf(unload, sizeof(unload), "unload-module %u", module);
  pactl(unload);
  snprintf(load, sizeof(load), "load-module module-null-sink sink_name=%s", b);
  module = pactl(load);
  CHECK(module > 0);
  wait_collection_change(seen);
  cubeb_devid other = enumerate_and_compare(ctx, &second, &third, b);
  CHECK(device_named(&third, a) == NULL);
  CHECK(other != added);
  snprintf(unload, sizeof(unload), "unload-module %u", module);
  pactl(unload);

  CHECK_INT(
      cubeb_register_device_collection_changed(
          ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, NULL, NULL),
      ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &first), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &second), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &third), ==, CUBEB_OK);
}

TEST(pulse_devids_outlive_collection_changes)
{
  struct e2e e;
  start_pulse_server(&e);
  test_wait_ok(e2e_spawn(&e, devids_outlive_collection_changes, 0));
  e2e_finish(&e);
}

/* --- Restart after a drain ------------------------------------------------ */

struct drainer {
  atomic_int calls;
  atomic_int drained;
};

static long
short_once_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)in;
  struct drainer *d = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  return atomic_fetch_add(&d->calls, 1) == 0 ? n / 2 : n;
}

static void
count_drained(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct drainer *d = user;
  CHECK(state != CUBEB_STATE_ERROR);
  if (state == CUBEB_STATE_DRAINED)
    atomic_fetch_add(&d->drained, 1);
}

/* As in libcubeb on pulse: a stream that drained plays again when it is
 * started again. */
E2E_CLIENT(restart_after_drain)
{
  (void)arg;
  struct drainer d = {0};
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "restart", NULL, NULL, NULL, &out,
                              4800, short_once_cb, count_drained, &d),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  double start = now_s();
  while (atomic_load(&d.drained) == 0) {
    CHECK(now_s() - start < 10);
    usleep(1000);
  }
  int before = atomic_load(&d.calls);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  start = now_s();
  while (atomic_load(&d.calls) < before + 5) {
    CHECK(now_s() - start < 10);
    usleep(1000);
  }
  CHECK_INT(atomic_load(&d.drained), ==, 1);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
}

TEST(pulse_a_drained_stream_plays_again_when_started)
{
  struct e2e e;
  start_pulse_server(&e);
  test_wait_ok(e2e_spawn(&e, restart_after_drain, 0));
  e2e_finish(&e);
}
