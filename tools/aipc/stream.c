/* SPDX-License-Identifier: ISC */
/*
 * What aipc play and aipc record share: their options, the file or raw
 * audio at one end, the ring between the audio callback and the main
 * thread, the stream on a named device, and stopping on a signal.
 */
#include "aipc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM_MAX_LATENCY_FRAMES 96000
#define STREAM_MIN_RATE 1000
#define STREAM_MAX_RATE 192000
/* The server's channels_max by default (server.h). */
#define STREAM_MAX_CHANNELS 8

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
    if (aipc_parse_uint(optarg, STREAM_MIN_RATE, STREAM_MAX_RATE, &a->rate) < 0)
      return usage_error(a,
                         "--rate %s: not a whole number of Hz from 1000 "
                         "to 192000",
                         optarg);
    return -1;
  case 'n':
    if (aipc_parse_uint(optarg, 1, STREAM_MAX_CHANNELS, &a->channels) < 0)
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

/* --- the file, or raw audio on stdin/stdout ------------------------------- */

static size_t
sample_bytes(cubeb_sample_format format)
{
  return format == CUBEB_SAMPLE_S16LE || format == CUBEB_SAMPLE_S16BE ? 2 : 4;
}

/* libsndfile's channel names, as cubeb's. */
static const cubeb_channel channel_bits[SF_CHANNEL_MAP_MAX] = {
    [SF_CHANNEL_MAP_MONO] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_LEFT] = CHANNEL_FRONT_LEFT,
    [SF_CHANNEL_MAP_RIGHT] = CHANNEL_FRONT_RIGHT,
    [SF_CHANNEL_MAP_CENTER] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_FRONT_LEFT] = CHANNEL_FRONT_LEFT,
    [SF_CHANNEL_MAP_FRONT_RIGHT] = CHANNEL_FRONT_RIGHT,
    [SF_CHANNEL_MAP_FRONT_CENTER] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_REAR_CENTER] = CHANNEL_BACK_CENTER,
    [SF_CHANNEL_MAP_REAR_LEFT] = CHANNEL_BACK_LEFT,
    [SF_CHANNEL_MAP_REAR_RIGHT] = CHANNEL_BACK_RIGHT,
    [SF_CHANNEL_MAP_LFE] = CHANNEL_LOW_FREQUENCY,
    [SF_CHANNEL_MAP_FRONT_LEFT_OF_CENTER] = CHANNEL_FRONT_LEFT_OF_CENTER,
    [SF_CHANNEL_MAP_FRONT_RIGHT_OF_CENTER] = CHANNEL_FRONT_RIGHT_OF_CENTER,
    [SF_CHANNEL_MAP_SIDE_LEFT] = CHANNEL_SIDE_LEFT,
    [SF_CHANNEL_MAP_SIDE_RIGHT] = CHANNEL_SIDE_RIGHT,
    [SF_CHANNEL_MAP_TOP_CENTER] = CHANNEL_TOP_CENTER,
    [SF_CHANNEL_MAP_TOP_FRONT_LEFT] = CHANNEL_TOP_FRONT_LEFT,
    [SF_CHANNEL_MAP_TOP_FRONT_RIGHT] = CHANNEL_TOP_FRONT_RIGHT,
    [SF_CHANNEL_MAP_TOP_FRONT_CENTER] = CHANNEL_TOP_FRONT_CENTER,
    [SF_CHANNEL_MAP_TOP_REAR_LEFT] = CHANNEL_TOP_BACK_LEFT,
    [SF_CHANNEL_MAP_TOP_REAR_RIGHT] = CHANNEL_TOP_BACK_RIGHT,
    [SF_CHANNEL_MAP_TOP_REAR_CENTER] = CHANNEL_TOP_BACK_CENTER,
};

/* Mono and stereo by their count; more channels by the file's channel
 * map (a WAVE_FORMAT_EXTENSIBLE mask, a CAF layout), which cubeb can
 * name only when its channels come in cubeb's order. */
static cubeb_channel_layout
layout_of(SNDFILE *file, uint32_t channels)
{
  if (channels <= 2)
    return channels == 1 ? CUBEB_LAYOUT_MONO : CUBEB_LAYOUT_STEREO;
  int map[STREAM_MAX_CHANNELS];
  if (!file || sf_command(file, SFC_GET_CHANNEL_MAP_INFO, map,
                          (int)(channels * sizeof(int))) != SF_TRUE)
    return CUBEB_LAYOUT_UNDEFINED;
  unsigned layout = 0;
  for (uint32_t c = 0; c < channels; c++) {
    unsigned bit = map[c] > 0 && map[c] < SF_CHANNEL_MAP_MAX
                       ? (unsigned)channel_bits[map[c]]
                       : 0;
    if (bit == 0 || bit <= layout)
      return CUBEB_LAYOUT_UNDEFINED;
    layout |= bit;
  }
  return (cubeb_channel_layout)layout;
}

int
aipc_media_open(const struct aipc_stream_args *a, uint32_t rate,
                uint32_t channels, struct aipc_media *m)
{
  *m = (struct aipc_media){.fd = -1};
  char why[AIPC_SOUND_WHY_MAX];
  if (strcmp(a->path, "-") == 0) {
    m->raw = true;
    m->fd = a->input ? STDOUT_FILENO : STDIN_FILENO;
    m->rate = a->rate;
    m->channels = a->channels;
    m->format = a->format->cubeb;
    m->frame_bytes = sample_bytes(m->format) * m->channels;
    m->layout = layout_of(NULL, m->channels);
    return 0;
  }
  if (!a->input) {
    SF_INFO info;
    if (aipc_sound_open(a->path, &m->file, &info, why, sizeof(why)) < 0)
      goto fail;
    if (info.channels > STREAM_MAX_CHANNELS ||
        info.samplerate < STREAM_MIN_RATE ||
        info.samplerate > STREAM_MAX_RATE) {
      snprintf(why, sizeof(why),
               "%d channels at %d Hz (a stream has 1 to %d channels at "
               "%d to %d Hz)",
               info.channels, info.samplerate, STREAM_MAX_CHANNELS,
               STREAM_MIN_RATE, STREAM_MAX_RATE);
      sf_close(m->file);
      m->file = NULL;
      goto fail;
    }
    m->rate = (uint32_t)info.samplerate;
    m->channels = (uint32_t)info.channels;
    m->sf_format = info.format;
    m->frames = (uint64_t)info.frames;
  } else {
    const struct aipc_sample_format *f =
        a->format ? a->format : aipc_sample_format_find("f32");
    int format;
    int r = aipc_sound_format_for(a->path, f->subtype, channels, rate, false,
                                  &format, why, sizeof(why));
    if (r < 0 && !a->format) /* FLAC has no float: then s24 */
      r = aipc_sound_format_for(a->path, SF_FORMAT_PCM_24, channels, rate,
                                false, &format, why, sizeof(why));
    if (r == 0)
      r = aipc_sound_create(a->path, format | f->endian, channels, rate,
                            &m->file, why, sizeof(why));
    if (r < 0)
      goto fail;
    m->rate = rate;
    m->channels = channels;
    m->sf_format = format | f->endian;
    /* An integer file gets s16 samples when it holds no more: those
     * pass bit for bit. */
    m->shorts = (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16 ||
                (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_U8 ||
                (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_S8;
  }
  m->format = m->shorts ? CUBEB_SAMPLE_S16NE : CUBEB_SAMPLE_FLOAT32NE;
  m->frame_bytes = sample_bytes(m->format) * m->channels;
  m->layout = layout_of(a->input ? NULL : m->file, m->channels);
  return 0;
fail:
  fprintf(stderr, "aipc %s: %s: %s\n", a->cmd, a->path, why);
  return -1;
}

int64_t
aipc_media_read(struct aipc_media *m, void *buf, size_t bytes)
{
  if (m->file) {
    sf_count_t frames = (sf_count_t)(bytes / m->frame_bytes);
    sf_count_t n = sf_readf_float(m->file, buf, frames);
    if (n < 0 || (n < frames && sf_error(m->file) != SF_ERR_NO_ERROR))
      return -EIO;
    return (int64_t)n * (int64_t)m->frame_bytes;
  }
  for (;;) {
    ssize_t n = read(m->fd, buf, bytes);
    if (n >= 0)
      return n;
    if (errno != EINTR || stop_signal)
      return -errno;
  }
}

int
aipc_media_write(struct aipc_media *m, const void *buf, size_t bytes)
{
  if (m->file) {
    sf_count_t frames = (sf_count_t)(bytes / m->frame_bytes);
    sf_count_t n = m->shorts ? sf_writef_short(m->file, buf, frames)
                             : sf_writef_float(m->file, buf, frames);
    return n == frames ? 0 : -EIO;
  }
  const uint8_t *p = buf;
  while (bytes > 0) {
    ssize_t n = write(m->fd, p, bytes);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    p += n;
    bytes -= (size_t)n;
  }
  return 0;
}

const char *
aipc_media_strerror(const struct aipc_media *m, int err)
{
  if (m->file && err == -EIO)
    return sf_strerror(m->file);
  return strerror(-err);
}

void
aipc_media_describe(const struct aipc_media *m, char *buf, size_t size)
{
  char kind[64];
  if (m->raw)
    snprintf(kind, sizeof(kind), "raw %s",
             m->format == CUBEB_SAMPLE_S16LE       ? "s16le"
             : m->format == CUBEB_SAMPLE_S16BE     ? "s16be"
             : m->format == CUBEB_SAMPLE_FLOAT32LE ? "f32le"
                                                   : "f32be");
  else
    aipc_sound_describe(m->sf_format, kind, sizeof(kind));
  snprintf(buf, size, "%s, %u channel%s at %u Hz", kind, m->channels,
           m->channels == 1 ? "" : "s", m->rate);
}

int
aipc_media_close(struct aipc_media *m, const char *cmd, const char *path)
{
  int r = 0;
  if (m->file) {
    char why[AIPC_SOUND_WHY_MAX];
    r = aipc_sound_close(m->file, why, sizeof(why));
    if (r < 0)
      fprintf(stderr, "aipc %s: finishing %s: %s\n", cmd, path, why);
    m->file = NULL;
  }
  return r;
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

/* Samples of raw formats in either byte order, scaled in place. */
void
aipc_scale_samples(cubeb_sample_format format, void *buf, size_t bytes,
                   double gain)
{
  bool swap = format == CUBEB_SAMPLE_S16BE || format == CUBEB_SAMPLE_FLOAT32BE;
  if (format == CUBEB_SAMPLE_S16LE || format == CUBEB_SAMPLE_S16BE) {
    uint16_t *p = buf;
    for (size_t i = 0; i < bytes / 2; i++) {
      uint16_t u = swap ? __builtin_bswap16(p[i]) : p[i];
      long v = lrint((int16_t)u * gain);
      u = (uint16_t)(int16_t)(v > INT16_MAX   ? INT16_MAX
                              : v < INT16_MIN ? INT16_MIN
                                              : v);
      p[i] = swap ? __builtin_bswap16(u) : u;
    }
    return;
  }
  uint32_t *p = buf;
  for (size_t i = 0; i < bytes / 4; i++) {
    uint32_t u = swap ? __builtin_bswap32(p[i]) : p[i];
    float f;
    memcpy(&f, &u, sizeof(f));
    f = (float)(f * gain);
    memcpy(&u, &f, sizeof(u));
    p[i] = swap ? __builtin_bswap32(u) : u;
  }
}
