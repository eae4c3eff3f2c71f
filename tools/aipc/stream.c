/* SPDX-License-Identifier: ISC */
/*
 * What aipc play and aipc record share: their options, the ring between
 * the audio callback and the main thread, the stream on a named device,
 * and stopping on a signal. The file or raw audio at the other end is
 * media.c's.
 */
#include "aipc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_MAX_LATENCY_FRAMES 96000

/* Set by SIGINT and SIGTERM (aipc_session_init), on whichever thread
 * takes the signal: a lock-free atomic, safe in a handler. */
static atomic_int stop_signal;
static sem_t *stop_wake;

static const struct aipc_sample_format formats[] = {
    {"u8", SF_FORMAT_PCM_U8, SF_ENDIAN_FILE, false, 0},
    {"s8", SF_FORMAT_PCM_S8, SF_ENDIAN_FILE, false, 0},
    {"s16", SF_FORMAT_PCM_16, SF_ENDIAN_FILE, true, CUBEB_SAMPLE_S16NE},
    {"s16le", SF_FORMAT_PCM_16, SF_ENDIAN_LITTLE, true, CUBEB_SAMPLE_S16LE},
    {"s16be", SF_FORMAT_PCM_16, SF_ENDIAN_BIG, true, CUBEB_SAMPLE_S16BE},
    {"s24", SF_FORMAT_PCM_24, SF_ENDIAN_FILE, false, 0},
    {"s32", SF_FORMAT_PCM_32, SF_ENDIAN_FILE, false, 0},
    {"f32", SF_FORMAT_FLOAT, SF_ENDIAN_FILE, true, CUBEB_SAMPLE_FLOAT32NE},
    {"f32le", SF_FORMAT_FLOAT, SF_ENDIAN_LITTLE, true, CUBEB_SAMPLE_FLOAT32LE},
    {"f32be", SF_FORMAT_FLOAT, SF_ENDIAN_BIG, true, CUBEB_SAMPLE_FLOAT32BE},
    {"f64", SF_FORMAT_DOUBLE, SF_ENDIAN_FILE, false, 0},
};

const struct aipc_sample_format *
aipc_sample_format_find(const char *name)
{
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
    if (strcmp(formats[i].name, name) == 0)
      return &formats[i];
  return NULL;
}

/* --- options -------------------------------------------------------------- */

static int __attribute__((format(printf, 2, 3)))
usage_error(const struct aipc_stream_args *a, const char *fmt, ...)
{
  char text[256], see[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  snprintf(see, sizeof(see), "see aipc %s --help\n", a->cmd);
  return aipc_usage_error(a->cmd, see, "%s", text);
}

static int
parse_volume(const char *text, double *out)
{
  char *end;
  if (!text || ((*text < '0' || *text > '9') && *text != '.'))
    return -EINVAL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || *end || !(v >= 0.0 && v <= 1.0))
    return -EINVAL;
  *out = v;
  return 0;
}

/* Handles one option. Returns -1 to go on, or an exit status. */
static int
parse_one(struct aipc_stream_args *a, int c, const char *usage, char **argv)
{
  switch (c) {
  case 'c':
    a->connect = optarg;
    return -1;
  case 'b':
    a->backend = optarg;
    return -1;
  case 'd':
    a->device = optarg;
    return -1;
  case 't':
    if (a->input)
      return usage_error(a, "%s is for play", "--tone");
    if (aipc_parse_uint(optarg, 1, 24000, &a->tone) < 0)
      return usage_error(a,
                         "--tone %s: not a whole number of Hz from 1 to "
                         "24000",
                         optarg);
    return -1;
  case 's':
    if (aipc_parse_seconds(optarg, &a->seconds) < 0)
      return usage_error(a,
                         "--seconds %s: not a number of seconds above 0 "
                         "and at most 3600",
                         optarg);
    return -1;
  case 'v':
    if (parse_volume(optarg, &a->volume) < 0)
      return usage_error(a, "--volume %s: not a number from 0 to 1", optarg);
    return -1;
  case 'l':
    if (aipc_parse_uint(optarg, 1, 1000, &a->latency_ms) < 0)
      return usage_error(a,
                         "--latency %s: not a whole number of ms from 1 "
                         "to 1000",
                         optarg);
    return -1;
  case 'r':
    if (aipc_parse_uint(optarg, AIPC_STREAM_MIN_RATE, AIPC_STREAM_MAX_RATE,
                        &a->rate) < 0)
      return usage_error(a,
                         "--rate %s: not a whole number of Hz from 1000 "
                         "to 192000",
                         optarg);
    return -1;
  case 'n':
    if (aipc_parse_uint(optarg, 1, AIPC_STREAM_MAX_CHANNELS, &a->channels) < 0)
      return usage_error(a, "--channels %s: not a whole number from 1 to 8",
                         optarg);
    return -1;
  case 'f':
    a->format = aipc_sample_format_find(optarg);
    if (!a->format)
      return usage_error(a,
                         "--format %s: not one of u8 s8 s16 s16le s16be "
                         "s24 s32 f32 f32le f32be f64",
                         optarg);
    return -1;
  case 'h':
    fputs(usage, stdout);
    return AIPC_EXIT_OK;
  default: {
    char see[64];
    snprintf(see, sizeof(see), "see aipc %s --help\n", a->cmd);
    return aipc_bad_option(a->cmd, see, c, argv);
  }
  }
}

/* The checks between options, once all are in. */
static int
check_args(struct aipc_stream_args *a)
{
  bool raw = a->path && strcmp(a->path, "-") == 0;
  if (!a->input && !a->path && !a->tone)
    return usage_error(a, "give a FILE, - or --tone HZ");
  if (a->input && !a->path)
    return usage_error(a, "give an OUT file or -");
  if (a->path && a->tone)
    return usage_error(a, "give a FILE or --tone HZ, not both");
  if (a->connect && a->backend)
    return usage_error(a, "--backend is for the in-process server; "
                          "--connect uses another's");
  if (raw) {
    if (a->format && !a->format->raw)
      return usage_error(a,
                         "--format %s: raw audio is s16le, s16be, f32le "
                         "or f32be",
                         a->format->name);
    if (!a->format)
      a->format = aipc_sample_format_find(AIPC_RAW_FORMAT);
    if (!a->rate)
      a->rate = AIPC_RAW_RATE;
    if (!a->channels)
      a->channels = AIPC_RAW_CHANNELS;
    return -1;
  }
  if (!a->input && (a->rate || a->channels || a->format)) {
    const char *opt = a->rate       ? "--rate"
                      : a->channels ? "--channels"
                                    : "--format";
    return usage_error(a,
                       "%s is for raw input (-); a file or a tone has its "
                       "own",
                       opt);
  }
  return -1;
}

bool
aipc_stream_parse(const char *cmd, bool input, const char *usage, int argc,
                  char **argv, struct aipc_stream_args *a, int *status)
{
  static const struct option options[] = {
      {"connect", required_argument, NULL, 'c'},
      {"backend", required_argument, NULL, 'b'},
      {"device", required_argument, NULL, 'd'},
      {"tone", required_argument, NULL, 't'},
      {"seconds", required_argument, NULL, 's'},
      {"volume", required_argument, NULL, 'v'},
      {"latency", required_argument, NULL, 'l'},
      {"rate", required_argument, NULL, 'r'},
      {"channels", required_argument, NULL, 'n'},
      {"format", required_argument, NULL, 'f'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *a = (struct aipc_stream_args){.cmd = cmd, .input = input, .volume = 1.0};
  int c, r = -1;
  optind = 0;
  opterr = 0;
  /* getopt leaves a lone "-" (raw audio) as an argument. */
  while (r < 0 && (c = getopt_long(argc, argv, ":h", options, NULL)) != -1)
    r = parse_one(a, c, usage, argv);
  if (r < 0 && optind < argc)
    a->path = argv[optind++];
  if (r < 0 && optind < argc)
    r = usage_error(a, "unexpected argument %s", argv[optind]);
  if (r < 0)
    r = check_args(a);
  *status = r;
  return r < 0;
}

/* --- the ring ------------------------------------------------------------- */

int
aipc_ring_init(struct aipc_ring *r, size_t bytes)
{
  r->buf = malloc(bytes);
  if (!r->buf)
    return -ENOMEM;
  r->size = bytes;
  atomic_init(&r->written, 0);
  atomic_init(&r->read, 0);
  return 0;
}

void
aipc_ring_destroy(struct aipc_ring *r)
{
  free(r->buf);
  r->buf = NULL;
}

size_t
aipc_ring_used(struct aipc_ring *r)
{
  return (size_t)(atomic_load_explicit(&r->written, memory_order_acquire) -
                  atomic_load_explicit(&r->read, memory_order_acquire));
}

/* Where ring position `pos` is, and how many bytes of `len` fit
 * before the wrap. */
static size_t
ring_at(const struct aipc_ring *r, uint64_t pos, size_t len, size_t *first)
{
  size_t at = (size_t)(pos % r->size);
  *first = len < r->size - at ? len : r->size - at;
  return at;
}

size_t
aipc_ring_push(struct aipc_ring *r, const void *data, size_t len)
{
  uint64_t w = atomic_load_explicit(&r->written, memory_order_relaxed);
  size_t room =
      r->size -
      (size_t)(w - atomic_load_explicit(&r->read, memory_order_acquire));
  if (len > room)
    len = room;
  size_t first, at = ring_at(r, w, len, &first);
  memcpy(r->buf + at, data, first);
  memcpy(r->buf, (const uint8_t *)data + first, len - first);
  atomic_store_explicit(&r->written, w + len, memory_order_release);
  return len;
}

size_t
aipc_ring_pop(struct aipc_ring *r, void *data, size_t len)
{
  uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
  size_t used =
      (size_t)(atomic_load_explicit(&r->written, memory_order_acquire) - rd);
  if (len > used)
    len = used;
  size_t first, at = ring_at(r, rd, len, &first);
  memcpy(data, r->buf + at, first);
  memcpy((uint8_t *)data + first, r->buf, len - first);
  atomic_store_explicit(&r->read, rd + len, memory_order_release);
  return len;
}

/* --- the stream ----------------------------------------------------------- */

static void
on_stop_signal(int sig)
{
  stop_signal = sig;
  if (stop_wake)
    sem_post(stop_wake);
}

int
aipc_session_init(struct aipc_session *s, size_t ring_bytes)
{
  memset(s, 0, sizeof(*s));
  if (sem_init(&s->wake, 0, 0) < 0)
    return -errno;
  atomic_init(&s->state, -1);
  atomic_init(&s->eof, false);
  atomic_init(&s->moved, 0);
  atomic_init(&s->gaps, 0);
  int r = ring_bytes ? aipc_ring_init(&s->ring, ring_bytes) : 0;
  if (r < 0) {
    sem_destroy(&s->wake);
    return r;
  }
  /* SIGINT and SIGTERM end the stream cleanly; SIGPIPE is a write
   * error (the reader of stdout went away). */
  stop_wake = &s->wake;
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  return 0;
}

void
aipc_session_destroy(struct aipc_session *s)
{
  if (s->stream)
    cubeb_stream_destroy(s->stream);
  s->stream = NULL;
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  stop_wake = NULL;
  aipc_ring_destroy(&s->ring);
  sem_destroy(&s->wake);
}

int
aipc_session_stop_signal(void)
{
  return stop_signal;
}

/* Any thread, the audio one included: a sem_post wakes the main thread
 * with a futex call only when it waits. */
static void
session_state_cb(cubeb_stream *stream, void *user, cubeb_state state)
{
  (void)stream;
  struct aipc_session *s = user;
  if (state == CUBEB_STATE_DRAINED || state == CUBEB_STATE_ERROR)
    atomic_store(&s->state, (int)state);
  sem_post(&s->wake);
}

void
aipc_session_wait(struct aipc_session *s, int ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += (long)ms * 1000000L;
  ts.tv_sec += ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  while (sem_clockwait(&s->wake, CLOCK_MONOTONIC, &ts) < 0 && errno == EINTR &&
         !stop_signal)
    ;
  /* Take every post at once: one wait per loop. */
  while (sem_trywait(&s->wake) == 0)
    ;
}

/* The devid of the device whose id is `id`, in `devices` (which owns
 * it). Returns 0, or -1 after saying there is none. */
static int
find_device(const struct aipc_stream_args *a, cubeb *ctx,
            cubeb_device_collection *devices, cubeb_devid *devid)
{
  cubeb_device_type type =
      a->input ? CUBEB_DEVICE_TYPE_INPUT : CUBEB_DEVICE_TYPE_OUTPUT;
  int r = cubeb_enumerate_devices(ctx, type, devices);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc %s: cannot list the devices (cubeb error %d)\n",
            a->cmd, r);
    return -1;
  }
  for (size_t i = 0; i < devices->count; i++) {
    const cubeb_device_info *d = &devices->device[i];
    if (d->device_id && strcmp(d->device_id, a->device) == 0) {
      *devid = d->devid;
      return 0;
    }
  }
  fprintf(stderr, "aipc %s: no %s device \"%s\" (see aipc devices)\n", a->cmd,
          a->input ? "input" : "output", a->device);
  cubeb_device_collection_destroy(ctx, devices);
  return -1;
}

int
aipc_session_open(struct aipc_session *s, const struct aipc_stream_args *a,
                  cubeb *ctx, cubeb_stream_params *params,
                  cubeb_data_callback data_cb)
{
  cubeb_device_collection devices = {0};
  cubeb_devid devid = NULL;
  if (a->device && find_device(a, ctx, &devices, &devid) < 0)
    return -1;
  uint32_t latency;
  if (a->latency_ms)
    latency = (uint32_t)((uint64_t)params->rate * a->latency_ms / 1000);
  else if (cubeb_get_min_latency(ctx, params, &latency) != CUBEB_OK)
    latency = params->rate / 100;
  if (latency < 1)
    latency = 1;
  if (latency > STREAM_MAX_LATENCY_FRAMES)
    latency = STREAM_MAX_LATENCY_FRAMES;
  char name[32];
  snprintf(name, sizeof(name), "aipc %s", a->cmd);
  int r = cubeb_stream_init(ctx, &s->stream, name, a->input ? devid : NULL,
                            a->input ? params : NULL, a->input ? NULL : devid,
                            a->input ? NULL : params, latency, data_cb,
                            session_state_cb, s);
  if (a->device)
    cubeb_device_collection_destroy(ctx, &devices);
  if (r != CUBEB_OK) {
    s->stream = NULL;
    fprintf(stderr,
            "aipc %s: cannot open a %u-channel %s stream at %u Hz (cubeb "
            "error %d)\n",
            a->cmd, params->channels, a->input ? "input" : "output",
            params->rate, r);
    return -1;
  }
  /* A recording's volume is applied to its samples (libcubeb's backends
   * have none for input). */
  if (!a->input && a->volume != 1.0) {
    r = cubeb_stream_set_volume(s->stream, (float)a->volume);
    if (r != CUBEB_OK) {
      fprintf(stderr, "aipc %s: cannot set the volume (cubeb error %d)\n",
              a->cmd, r);
      return -1;
    }
  }
  r = cubeb_stream_start(s->stream);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc %s: cannot start the stream (cubeb error %d)\n",
            a->cmd, r);
    return -1;
  }
  return 0;
}
