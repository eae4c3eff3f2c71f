/* SPDX-License-Identifier: ISC */
#include "cases.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RATE 48000
#define LATENCY 4800 /* frames: 100 ms, within every backend's range */
#define DEADLINE_S 5.0
#define MAX_STATES 32

void
conf_note(struct conf_obs *o, const char *fmt, ...)
{
  char token[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(token, sizeof(token) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof(token) - 2)
    n = (int)sizeof(token) - 2;
  token[n++] = ' ';
  /* Below PIPE_BUF: one atomic write. */
  if (write(o->fd, token, (size_t)n) != n)
    abort();
}

static double
now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- A stream's callbacks, recorded ------------------------------------- */

enum answer {
  ANSWER_FULL,  /* every frame asked for */
  ANSWER_SHORT, /* half of them once `end_after` frames are out: the end */
  ANSWER_ERROR, /* CUBEB_ERROR once `end_after` frames are out */
};

struct probe {
  enum answer answer;
  long end_after;
  float amplitude; /* of the output's sine; 0 is silence */
  uint32_t out_channels;
  uint64_t phase;
  atomic_long calls;
  atomic_long frames; /* given to the backend (the short answer's too) */
  atomic_long in_frames;
  atomic_bool ended;      /* the callback answered short or with an error */
  atomic_long after_end;  /* data callbacks after that */
  atomic_bool saw_in;     /* an input buffer */
  atomic_bool saw_out;    /* an output buffer */
  atomic_bool loud_input; /* an input sample above 0.05 */
  atomic_int states[MAX_STATES]; /* state + 1; 0 until it is written */
  atomic_int state_count;
};

static long
probe_data(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct probe *p = user;
  atomic_fetch_add(&p->calls, 1);
  if (atomic_load(&p->ended)) {
    atomic_fetch_add(&p->after_end, 1);
    if (out)
      memset(out, 0, (size_t)n * p->out_channels * sizeof(float));
    return 0;
  }
  if (in) {
    atomic_store(&p->saw_in, true);
    atomic_fetch_add(&p->in_frames, n);
    for (long i = 0; i < n; i++)
      if (fabsf(((const float *)in)[i]) > 0.05f)
        atomic_store(&p->loud_input, true);
  }
  long give = n;
  if (p->answer != ANSWER_FULL && atomic_load(&p->frames) >= p->end_after) {
    atomic_store(&p->ended, true);
    if (p->answer == ANSWER_ERROR)
      return CUBEB_ERROR;
    give = n / 2;
  }
  if (out) {
    atomic_store(&p->saw_out, true);
    float *o = out;
    for (long i = 0; i < n; i++, p->phase++) {
      float v = i < give ? p->amplitude * (float)sin(2 * M_PI * 440 *
                                                     (double)p->phase / RATE)
                         : 0.0f;
      for (uint32_t c = 0; c < p->out_channels; c++)
        o[i * p->out_channels + c] = v;
    }
  }
  atomic_fetch_add(&p->frames, give);
  return give;
}

static void
probe_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct probe *p = user;
  int i = atomic_fetch_add(&p->state_count, 1);
  if (i < MAX_STATES)
    atomic_store(&p->states[i], (int)state + 1);
}

static const char *
state_name(int state)
{
  switch (state) {
  case CUBEB_STATE_STARTED:
    return "STARTED";
  case CUBEB_STATE_STOPPED:
    return "STOPPED";
  case CUBEB_STATE_DRAINED:
    return "DRAINED";
  case CUBEB_STATE_ERROR:
    return "ERROR";
  }
  return "?";
}

/* The states called back so far, "STARTED,STOPPED", or "none". */
static void
note_states(struct conf_obs *o, const char *key, struct probe *p)
{
  char text[MAX_STATES * 8 + 8] = "none";
  size_t len = 0;
  int n = atomic_load(&p->state_count);
  for (int i = 0; i < n && i < MAX_STATES; i++)
    len +=
        (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", i ? "," : "",
                         state_name(atomic_load(&p->states[i]) - 1));
  conf_note(o, "%s=%s", key, text);
}

static int
count_state(struct probe *p, int from, cubeb_state state)
{
  int n = 0, end = atomic_load(&p->state_count);
  for (int i = from; i < end && i < MAX_STATES; i++)
    n += atomic_load(&p->states[i]) == (int)state + 1;
  return n;
}

/* Waits (up to the deadline) for `state` to be called back at or after
 * log position `from`; says whether it was. */
static bool
wait_state(struct probe *p, int from, cubeb_state state)
{
  double start = now_s();
  while (count_state(p, from, state) == 0) {
    if (now_s() - start > DEADLINE_S)
      return false;
    usleep(1000);
  }
  return true;
}

static bool
wait_count(atomic_long *counter, long n)
{
  double start = now_s();
  while (atomic_load(counter) < n) {
    if (now_s() - start > DEADLINE_S)
      return false;
    usleep(1000);
  }
  return true;
}

static const char *
yes_no(bool b)
{
  return b ? "yes" : "no";
}

enum direction { DIR_OUT = 1, DIR_IN = 2, DIR_DUPLEX = 3 };

static int
open_stream(cubeb *ctx, cubeb_stream **stm, struct probe *p, enum direction d,
            cubeb_devid in_dev, cubeb_devid out_dev)
{
  cubeb_stream_params out = {.format = CUBEB_SAMPLE_FLOAT32NE,
                             .rate = RATE,
                             .channels = 2,
                             .layout = CUBEB_LAYOUT_STEREO};
  cubeb_stream_params in = {.format = CUBEB_SAMPLE_FLOAT32NE,
                            .rate = RATE,
                            .channels = 1,
                            .layout = CUBEB_LAYOUT_MONO};
  p->out_channels = 2;
  return cubeb_stream_init(
      ctx, stm, "conformance", in_dev, d & DIR_IN ? &in : NULL, out_dev,
      d & DIR_OUT ? &out : NULL, LATENCY, probe_data, probe_state, p);
}

/* Opens a stream on the default devices; notes init's return code. */
static bool
open_noted(cubeb *ctx, struct conf_obs *o, cubeb_stream **stm, struct probe *p,
           enum direction d)
{
  int r = open_stream(ctx, stm, p, d, NULL, NULL);
  conf_note(o, "init=%d", r);
  return r == CUBEB_OK;
}

/* Starts (or stops) and notes the return code and whether the state it
 * announces was called back. */
static void
step(struct conf_obs *o, const char *name, cubeb_stream *stm, struct probe *p)
{
  bool start = strcmp(name, "start") == 0;
  int mark = atomic_load(&p->state_count);
  int r = start ? cubeb_stream_start(stm) : cubeb_stream_stop(stm);
  bool seen =
      wait_state(p, mark, start ? CUBEB_STATE_STARTED : CUBEB_STATE_STOPPED);
  conf_note(o, "%s=%d,%s", name, r, seen ? "called-back" : "silent");
}

/* Stops, destroys and notes every state called back. */
static void
stop_and_destroy(struct conf_obs *o, cubeb_stream *stm, struct probe *p)
{
  step(o, "stop", stm, p);
  cubeb_stream_destroy(stm);
  note_states(o, "states", p);
}

/* Waits for `n` more data callbacks; notes whether they came. */
static void
note_flowing(struct conf_obs *o, const char *key, struct probe *p, long n)
{
  conf_note(o, "%s=%s", key,
            yes_no(wait_count(&p->calls, atomic_load(&p->calls) + n)));
}

/* Opens an output stream on the default device, starts it and waits
 * for its data callbacks; false if it did not open. */
static bool
open_and_play(cubeb *ctx, struct conf_obs *o, cubeb_stream **stm,
              struct probe *p)
{
  if (!open_noted(ctx, o, stm, p, DIR_OUT))
    return false;
  step(o, "start", *stm, p);
  note_flowing(o, "data", p, 3);
  return true;
}

/* After a stop, a destroy or the end: did any data callback follow? */
static void
note_quiet(struct conf_obs *o, const char *key, struct probe *p)
{
  long calls = atomic_load(&p->calls);
  usleep(200000); /* several periods of every way */
  conf_note(o, "%s=%s", key, yes_no(atomic_load(&p->calls) == calls));
}

static const char *
latency_class(uint32_t frames)
{
  if (frames == 0)
    return "zero";
  return frames <= RATE ? "within-1s" : "over-1s";
}

/* --- The cases ------------------------------------------------------------ */

static void
case_context(cubeb *ctx, struct conf_obs *o)
{
  const char *id = cubeb_get_backend_id(ctx);
  conf_note(o, "backend-id=%s", id && *id ? "named" : "none");
  uint32_t channels = 0, rate = 0, latency = 0;
  int r = cubeb_get_max_channel_count(ctx, &channels);
  conf_note(o, "max-channels=%d,%s", r, channels >= 1 ? ">=1" : "0");
  r = cubeb_get_preferred_sample_rate(ctx, &rate);
  conf_note(o, "preferred-rate=%d,%s", r,
            rate >= 1000 && rate <= 192000 ? "in-range" : "out-of-range");
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = RATE,
                                .channels = 2,
                                .layout = CUBEB_LAYOUT_STEREO};
  r = cubeb_get_min_latency(ctx, &params, &latency);
  conf_note(o, "min-latency=%d,%s", r, latency_class(latency));
}

static void
case_lifecycle(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  conf_note(o, "user-ptr=%s", yes_no(cubeb_stream_user_ptr(stm) == &p));
  step(o, "start", stm, &p);
  note_flowing(o, "data", &p, 3);
  step(o, "stop", stm, &p);
  note_quiet(o, "quiet-after-stop", &p);
  cubeb_stream_destroy(stm);
  note_states(o, "states", &p);
}

static void
case_restart(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_and_play(ctx, o, &stm, &p))
    return;
  step(o, "stop", stm, &p);
  step(o, "start", stm, &p);
  note_flowing(o, "data-again", &p, 3);
  stop_and_destroy(o, stm, &p);
}

static void
case_stop_before_start(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  /* The STOPPED, if any, is in the log before the STARTED that the
   * start waits for: one wait serves both, with no deadline spent. */
  conf_note(o, "stop=%d", cubeb_stream_stop(stm));
  step(o, "start", stm, &p);
  note_flowing(o, "data", &p, 3);
  stop_and_destroy(o, stm, &p);
}

static void
case_destroy_running(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_and_play(ctx, o, &stm, &p))
    return;
  cubeb_stream_destroy(stm);
  note_quiet(o, "quiet-after-destroy", &p);
  note_states(o, "states", &p);
}

static void
case_drain(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {
      .answer = ANSWER_SHORT, .end_after = RATE / 5, .amplitude = 0.1f};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  step(o, "start", stm, &p);
  bool drained = wait_state(&p, 0, CUBEB_STATE_DRAINED);
  conf_note(o, "drained=%s", yes_no(drained));
  uint64_t position = 0, later = 0;
  int r = cubeb_stream_get_position(stm, &position);
  /* Pulse's position at DRAINED is sometimes every frame given, often a
   * few hundred short (its drain timer is a latency estimate): within a
   * latency of the end is what every way keeps. */
  uint64_t given = (uint64_t)atomic_load(&p.frames);
  conf_note(o, "position=%d,%s", r,
            position + LATENCY >= given ? "at-the-end" : "short");
  note_quiet(o, "quiet-after-drained", &p);
  cubeb_stream_get_position(stm, &later);
  printf("  (drain: %ld frames given, position %llu at DRAINED, %llu later)\n",
         atomic_load(&p.frames), (unsigned long long)position,
         (unsigned long long)later);
  conf_note(o, "drained-count=%d", count_state(&p, 0, CUBEB_STATE_DRAINED));
  conf_note(o, "data-after-end=%ld", atomic_load(&p.after_end));
  stop_and_destroy(o, stm, &p);
}

static void
case_error(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.answer = ANSWER_ERROR, .end_after = RATE / 10};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  step(o, "start", stm, &p);
  bool error = wait_state(&p, 0, CUBEB_STATE_ERROR);
  conf_note(o, "error-state=%s", yes_no(error));
  note_quiet(o, "quiet-after-error", &p);
  conf_note(o, "data-after-end=%ld", atomic_load(&p.after_end));
  stop_and_destroy(o, stm, &p);
}

static void
case_position(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  uint64_t pos = 1;
  int r = cubeb_stream_get_position(stm, &pos);
  /* Pulse's clock may have run a few frames while the stream connected. */
  conf_note(o, "before-start=%d,%s", r, pos <= LATENCY ? "near-0" : "far");
  printf("  (position before start: %llu)\n", (unsigned long long)pos);
  step(o, "start", stm, &p);
  /* Read it while it plays: it never goes back, and it moves. */
  uint64_t first = 0, last = 0;
  bool monotonic = true, ok = true;
  double start = now_s();
  while (now_s() - start < 0.4) {
    uint64_t now = last;
    ok &= cubeb_stream_get_position(stm, &now) == CUBEB_OK;
    monotonic &= now >= last;
    last = now;
    usleep(2000);
  }
  /* On a loaded machine the first 400 ms may not move it: wait. */
  cubeb_stream_get_position(stm, &first);
  while (first == 0 && now_s() - start < DEADLINE_S) {
    usleep(1000);
    ok &= cubeb_stream_get_position(stm, &first) == CUBEB_OK;
  }
  conf_note(o, "playing=%s,monotonic:%s,moves:%s", ok ? "0" : "error",
            yes_no(monotonic), yes_no(first > 0));
  step(o, "stop", stm, &p);
  uint64_t stopped = 0, later = 0;
  cubeb_stream_get_position(stm, &stopped);
  usleep(200000);
  r = cubeb_stream_get_position(stm, &later);
  conf_note(o, "stopped=%d,%s", r, later == stopped ? "still" : "moving");
  cubeb_stream_destroy(stm);
}

static void
case_latency(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_and_play(ctx, o, &stm, &p))
    return;
  uint32_t latency = 0;
  int r = cubeb_stream_get_latency(stm, &latency);
  conf_note(o, "latency=%d,%s", r, latency_class(latency));
  latency = 0;
  r = cubeb_stream_get_input_latency(stm, &latency);
  conf_note(o, "input-latency-of-output=%d", r);
  step(o, "stop", stm, &p);
  cubeb_stream_destroy(stm);
}

static const cubeb_device_info *
device_by_id(const cubeb_device_collection *c, const char *id)
{
  for (size_t i = 0; i < c->count; i++)
    if (c->device[i].device_id && !strcmp(c->device[i].device_id, id))
      return &c->device[i];
  return NULL;
}

static void
case_volume(cubeb *ctx, struct conf_obs *o)
{
  const char *id = getenv(CONF_ENV_OUT_DEVICE);
  cubeb_device_collection c = {0};
  int r = cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &c);
  const cubeb_device_info *dev = id ? device_by_id(&c, id) : NULL;
  conf_note(o, "device=%d,%s", r, dev ? "found" : "missing");
  struct probe p = {.amplitude = CONF_AMPLITUDE};
  cubeb_stream *stm;
  r = open_stream(ctx, &stm, &p, DIR_OUT, NULL, dev ? dev->devid : NULL);
  conf_note(o, "init=%d", r);
  if (r == CUBEB_OK) {
    conf_note(o, "set-volume=%d", cubeb_stream_set_volume(stm, 0.5f));
    step(o, "start", stm, &p);
    conf_note(o, "played=%s", yes_no(wait_count(&p.frames, RATE / 2)));
    step(o, "stop", stm, &p);
    cubeb_stream_destroy(stm);
  }
  cubeb_device_collection_destroy(ctx, &c);
}

/* Every device has an id and a devid, of the type asked for. */
static bool
well_formed(const cubeb_device_collection *c, cubeb_device_type type)
{
  for (size_t i = 0; i < c->count; i++)
    if (!c->device[i].devid || !c->device[i].device_id ||
        c->device[i].type != type)
      return false;
  return true;
}

/* A device in both keeps its devid, and no devid names two devices. */
static bool
same_devids(const cubeb_device_collection *a, const cubeb_device_collection *b)
{
  if (a->count != b->count)
    return false;
  for (size_t i = 0; i < a->count; i++) {
    const cubeb_device_info *x = device_by_id(b, a->device[i].device_id);
    if (!x || x->devid != a->device[i].devid)
      return false;
    for (size_t j = 0; j < a->count; j++)
      if (j != i && a->device[j].devid == a->device[i].devid)
        return false;
  }
  return true;
}

static void
enumerate_twice(cubeb *ctx, struct conf_obs *o, const char *key,
                cubeb_device_type type, enum direction d)
{
  cubeb_device_collection first = {0}, second = {0};
  int r1 = cubeb_enumerate_devices(ctx, type, &first);
  int r2 = cubeb_enumerate_devices(ctx, type, &second);
  conf_note(o, "%s=%d,%d,%s,well-formed:%s,stable:%s", key, r1, r2,
            first.count >= 1 ? ">=1" : "none",
            yes_no(well_formed(&first, type)),
            yes_no(same_devids(&first, &second)));
  if (r1 == CUBEB_OK && first.count >= 1) {
    /* A stream opens on the first device of the first enumeration. */
    struct probe p = {.amplitude = 0};
    cubeb_stream *stm;
    cubeb_devid dev = first.device[0].devid;
    int r = open_stream(ctx, &stm, &p, d, d == DIR_IN ? dev : NULL,
                        d == DIR_OUT ? dev : NULL);
    conf_note(o, "%s-stream=%d", key, r);
    if (r == CUBEB_OK) {
      conf_note(o, "%s-start=%d", key, cubeb_stream_start(stm));
      note_flowing(o, key, &p, 3);
      conf_note(o, "%s-stop=%d", key, cubeb_stream_stop(stm));
      cubeb_stream_destroy(stm);
    }
  }
  conf_note(o, "%s-destroy=%d,%d", key,
            cubeb_device_collection_destroy(ctx, &first),
            cubeb_device_collection_destroy(ctx, &second));
}

static void
case_devices(cubeb *ctx, struct conf_obs *o)
{
  enumerate_twice(ctx, o, "outputs", CUBEB_DEVICE_TYPE_OUTPUT, DIR_OUT);
  enumerate_twice(ctx, o, "inputs", CUBEB_DEVICE_TYPE_INPUT, DIR_IN);
}

static void
collection_changed(cubeb *ctx, void *user)
{
  (void)ctx;
  (void)user;
}

static void
case_collection_changed(cubeb *ctx, struct conf_obs *o)
{
  static const struct {
    const char *name;
    cubeb_device_type type;
  } types[] = {{"output", CUBEB_DEVICE_TYPE_OUTPUT},
               {"input", CUBEB_DEVICE_TYPE_INPUT},
               {"both", CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT}};
  int user;
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
    int on = cubeb_register_device_collection_changed(
        ctx, types[i].type, collection_changed, &user);
    /* Unregistered before the context goes: libcubeb's pulse asserts. */
    int off = cubeb_register_device_collection_changed(ctx, types[i].type, NULL,
                                                       NULL);
    conf_note(o, "%s=%d,%d", types[i].name, on, off);
  }
}

static void
device_changed(void *user)
{
  (void)user;
}

static void
case_device_changed(cubeb *ctx, struct conf_obs *o)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, DIR_OUT))
    return;
  conf_note(o, "register=%d",
            cubeb_stream_register_device_changed_callback(stm, device_changed));
  conf_note(o, "unregister=%d",
            cubeb_stream_register_device_changed_callback(stm, NULL));
  cubeb_stream_destroy(stm);
}

/* An input-only or duplex stream on the default devices. */
static void
record(cubeb *ctx, struct conf_obs *o, enum direction d)
{
  struct probe p = {.amplitude = 0};
  cubeb_stream *stm;
  if (!open_noted(ctx, o, &stm, &p, d))
    return;
  step(o, "start", stm, &p);
  bool frames = wait_count(&p.in_frames, RATE / 10);
  conf_note(o, "input=%s,output:%s,frames:%s", yes_no(atomic_load(&p.saw_in)),
            yes_no(atomic_load(&p.saw_out)), yes_no(frames));
  conf_note(o, "signal=%s", yes_no(atomic_load(&p.loud_input)));
  if (d == DIR_IN) {
    uint32_t latency = 0;
    int r = cubeb_stream_get_input_latency(stm, &latency);
    conf_note(o, "input-latency=%d,%s", r, latency_class(latency));
  }
  stop_and_destroy(o, stm, &p);
}

static void
case_duplex(cubeb *ctx, struct conf_obs *o)
{
  record(ctx, o, DIR_DUPLEX);
}

static void
case_input(cubeb *ctx, struct conf_obs *o)
{
  record(ctx, o, DIR_IN);
}

const struct conf_case conf_cases[] = {
    {"context", case_context, false},
    {"lifecycle", case_lifecycle, false},
    {"start-stop-start", case_restart, false},
    {"stop-before-start", case_stop_before_start, false},
    {"destroy-running", case_destroy_running, false},
    {"drain", case_drain, false},
    {"callback-error", case_error, false},
    {"position", case_position, false},
    {"latency", case_latency, false},
    {"volume", case_volume, true},
    {"devices", case_devices, false},
    {"collection-changed", case_collection_changed, false},
    {"device-changed", case_device_changed, false},
    {"duplex", case_duplex, false},
    {"input", case_input, false},
};
const size_t conf_case_count = sizeof(conf_cases) / sizeof(conf_cases[0]);
