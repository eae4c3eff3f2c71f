/* SPDX-License-Identifier: ISC */
/*
 * The virtual device, driven only through libcubeb's public functions on
 * a context from aipc_virtual_init. With clock=fast the WAV file it writes
 * is checked sample for sample.
 */
#include "../runner.h"
#include "sound-file.h"
#include "virtual.h"

#include <cubeb/cubeb.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RATE 48000

/* A private directory with one file name in it. */
struct tmp {
  char dir[256];
  char path[320];
};

static void
tmp_make(struct tmp *t, const char *file)
{
  const char *base = getenv("TMPDIR");
  snprintf(t->dir, sizeof(t->dir), "%s/aipc-virtual-XXXXXX",
           base && *base ? base : "/tmp");
  CHECK(mkdtemp(t->dir) != NULL);
  snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, file);
}

static void
tmp_remove(struct tmp *t)
{
  CHECK(unlink(t->path) == 0 || errno == ENOENT);
  CHECK(rmdir(t->dir) == 0);
}

/* A WAV file as read back, checked by hand rather than by the device's
 * own reader. */
struct wav {
  uint16_t tag;
  uint16_t channels;
  uint16_t bits;
  uint32_t rate;
  uint32_t riff_size;
  uint32_t data_size; /* as the header says */
  size_t file_len;
  size_t data_offset;
  uint8_t *file;
};

static uint32_t
le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint16_t
le16(const uint8_t *p)
{
  return (uint16_t)(p[0] | p[1] << 8);
}

static void
wav_load(const char *path, struct wav *w)
{
  memset(w, 0, sizeof(*w));
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  CHECK(fseek(f, 0, SEEK_END) == 0);
  long len = ftell(f);
  CHECK(len >= 12);
  rewind(f);
  w->file = malloc((size_t)len);
  CHECK(w->file != NULL);
  CHECK(fread(w->file, 1, (size_t)len, f) == (size_t)len);
  fclose(f);
  w->file_len = (size_t)len;

  CHECK(memcmp(w->file, "RIFF", 4) == 0);
  CHECK(memcmp(w->file + 8, "WAVE", 4) == 0);
  w->riff_size = le32(w->file + 4);
  size_t pos = 12;
  while (pos + 8 <= w->file_len) {
    const uint8_t *c = w->file + pos;
    uint32_t size = le32(c + 4);
    if (memcmp(c, "fmt ", 4) == 0) {
      w->tag = le16(c + 8);
      w->channels = le16(c + 10);
      w->rate = le32(c + 12);
      w->bits = le16(c + 22);
      CHECK(le16(c + 20) == w->channels * w->bits / 8);
    } else if (memcmp(c, "data", 4) == 0) {
      w->data_size = size;
      w->data_offset = pos + 8;
      break;
    }
    pos += 8 + size + (size & 1);
  }
  CHECK(w->data_offset != 0 && w->channels != 0);
  /* The header describes exactly what precedes the data, plus the data. */
  CHECK_INT(w->riff_size, ==, w->data_offset - 8 + w->data_size);
}

/* Loads a finished file: its header must cover the whole file. */
static uint32_t
wav_load_closed(const char *path, struct wav *w)
{
  wav_load(path, w);
  CHECK_INT(w->data_offset + w->data_size, ==, w->file_len);
  return w->data_size / (w->channels * w->bits / 8);
}

static float
wav_float(const struct wav *w, size_t i)
{
  float v;
  memcpy(&v, w->file + w->data_offset + 4 * i, sizeof(v));
  return v;
}

static int16_t
wav_s16(const struct wav *w, size_t i)
{
  return (int16_t)le16(w->file + w->data_offset + 2 * i);
}

static bool
same_bits(float a, float b)
{
  return memcmp(&a, &b, sizeof(a)) == 0;
}

/* Writes a WAV file for the device to read. */
static void
wav_write(const char *path, uint16_t tag, uint16_t channels, uint32_t rate,
          uint16_t bits, const void *data, uint32_t bytes)
{
  uint8_t h[44];
  uint16_t align = (uint16_t)(channels * bits / 8);
  memcpy(h, "RIFF", 4);
  uint32_t v32[] = {36 + bytes, 16, rate, rate * align, bytes};
  memcpy(h + 8, "WAVEfmt ", 8);
  for (int i = 0; i < 4; i++)
    h[4 + i] = (uint8_t)(v32[0] >> (8 * i));
  for (int i = 0; i < 4; i++)
    h[16 + i] = (uint8_t)(v32[1] >> (8 * i));
  h[20] = (uint8_t)tag;
  h[21] = (uint8_t)(tag >> 8);
  h[22] = (uint8_t)channels;
  h[23] = (uint8_t)(channels >> 8);
  for (int i = 0; i < 4; i++) {
    h[24 + i] = (uint8_t)(v32[2] >> (8 * i));
    h[28 + i] = (uint8_t)(v32[3] >> (8 * i));
    h[40 + i] = (uint8_t)(v32[4] >> (8 * i));
  }
  h[32] = (uint8_t)align;
  h[33] = (uint8_t)(align >> 8);
  h[34] = (uint8_t)bits;
  h[35] = (uint8_t)(bits >> 8);
  memcpy(h + 36, "data", 4);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  CHECK(fwrite(h, 1, sizeof(h), f) == sizeof(h));
  CHECK(fwrite(data, 1, bytes, f) == bytes);
  CHECK(fclose(f) == 0);
}

/* Shared by every stream in these tests: counts and state changes, so the
 * test thread can wait for them. */
struct player {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  long callbacks;
  int states[4];
  uint32_t channels;
  long full_periods; /* full callbacks before the short one */
  long last_frames;  /* what the short one returns */
  float value;       /* constant output */
  uint64_t next;     /* samples handed out so far */
  atomic_int inside;
  /* For the input checks. */
  double max_error;
  float *recorded;
  size_t recorded_cap;
  size_t recorded_len;
  int stop_result;       /* of a stop from the data callback */
  int drain_stop_result; /* of a stop from the DRAINED state callback */
};

static void
player_init(struct player *p, uint32_t channels)
{
  memset(p, 0, sizeof(*p));
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->channels = channels;
  p->full_periods = -1; /* never drain */
  atomic_init(&p->inside, 0);
}

static void
player_destroy(struct player *p)
{
  free(p->recorded);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->lock);
}

/* Counts a callback; returns which one it is, from 0. */
static long
player_tick(struct player *p)
{
  pthread_mutex_lock(&p->lock);
  long n = p->callbacks++;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  return n;
}

static long
player_callbacks(struct player *p)
{
  pthread_mutex_lock(&p->lock);
  long n = p->callbacks;
  pthread_mutex_unlock(&p->lock);
  return n;
}

static int
player_states(struct player *p, cubeb_state state)
{
  pthread_mutex_lock(&p->lock);
  int n = p->states[state];
  pthread_mutex_unlock(&p->lock);
  return n;
}

static void
wait_callbacks(struct player *p, long n)
{
  pthread_mutex_lock(&p->lock);
  while (p->callbacks < n)
    pthread_cond_wait(&p->cond, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

static void
wait_state(struct player *p, cubeb_state state, int n)
{
  pthread_mutex_lock(&p->lock);
  while (p->states[state] < n)
    pthread_cond_wait(&p->cond, &p->lock);
  pthread_mutex_unlock(&p->lock);
}

static void
state_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  struct player *p = user;
  pthread_mutex_lock(&p->lock);
  p->states[state]++;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
}

/* How many frames callback number `n` plays, per the player's plan. */
static long
planned_frames(const struct player *p, long n, long nframes)
{
  if (p->full_periods < 0 || n < p->full_periods)
    return nframes;
  return n == p->full_periods ? p->last_frames : 0;
}

/* Distinct values with full mantissas, and a negative zero now and
 * then: any processing on the way to the file would show. */
static float
pattern(uint64_t i)
{
  if (i % 97 == 5)
    return -0.0f;
  return (float)(0.9 * sin((double)i * 0.37));
}

static long
pattern_cb(cubeb_stream *stm, void *user, const void *in, void *out,
           long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  float *o = out;
  for (long i = 0; i < frames * (long)p->channels; i++)
    o[i] = pattern(p->next++);
  return frames;
}

static long
constant_cb(cubeb_stream *stm, void *user, const void *in, void *out,
            long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  float *o = out;
  for (long i = 0; i < frames * (long)p->channels; i++)
    o[i] = p->value;
  return frames;
}

static cubeb_stream_params
params(cubeb_sample_format format, uint32_t channels)
{
  return (cubeb_stream_params){.format = format,
                               .rate = RATE,
                               .channels = channels,
                               .layout = CUBEB_LAYOUT_UNDEFINED,
                               .prefs = CUBEB_STREAM_PREF_NONE};
}

static cubeb *
context(const char *options)
{
  cubeb *ctx = NULL;
  CHECK_INT(aipc_virtual_init(&ctx, "test", options), ==, CUBEB_OK);
  CHECK(ctx != NULL);
  return ctx;
}

static cubeb_stream *
output_stream(cubeb *ctx, struct player *p, cubeb_data_callback cb,
              cubeb_sample_format format)
{
  cubeb_stream_params out = params(format, p->channels);
  cubeb_stream *stm = NULL;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "out", NULL, NULL, NULL, &out, 128, cb,
                              state_cb, p),
            ==, CUBEB_OK);
  CHECK(cubeb_stream_user_ptr(stm) == p);
  return stm;
}

static char *
fast_options(const char *extra, const char *out_path)
{
  static char buf[512];
  snprintf(buf, sizeof(buf), "clock=fast%s%s%s%s", *extra ? "," : "", extra,
           out_path ? ",out=" : "", out_path ? out_path : "");
  return buf;
}

TEST(context_queries)
{
  cubeb *ctx = context("rate=44100,channels=6,period=256");
  CHECK(strcmp(cubeb_get_backend_id(ctx), "virtual") == 0);
  uint32_t v = 0;
  CHECK_INT(cubeb_get_max_channel_count(ctx, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 6);
  cubeb_stream_params p = params(CUBEB_SAMPLE_FLOAT32NE, 2);
  p.rate = 44100;
  CHECK_INT(cubeb_get_min_latency(ctx, &p, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 256);
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 44100);
  cubeb_destroy(ctx);

  ctx = context(NULL);
  CHECK_INT(cubeb_get_max_channel_count(ctx, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 2);
  p.rate = RATE;
  CHECK_INT(cubeb_get_min_latency(ctx, &p, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 128);
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &v), ==, CUBEB_OK);
  CHECK_INT(v, ==, 48000);
  cubeb_destroy(ctx);
}

static void
check_info(const cubeb_device_info *d, bool output)
{
  CHECK(d->devid != NULL);
  CHECK(strcmp(d->device_id, output ? "virtual-out" : "virtual-in") == 0);
  CHECK(strcmp(d->friendly_name, output ? "Virtual Output" : "Virtual Input") ==
        0);
  CHECK(d->group_id != NULL && d->vendor_name != NULL);
  CHECK_INT(d->type, ==,
            output ? CUBEB_DEVICE_TYPE_OUTPUT : CUBEB_DEVICE_TYPE_INPUT);
  CHECK_INT(d->state, ==, CUBEB_DEVICE_STATE_ENABLED);
  CHECK(d->format & CUBEB_DEVICE_FMT_F32NE);
  CHECK(d->format & CUBEB_DEVICE_FMT_S16NE);
  CHECK_INT(d->default_format, ==, CUBEB_DEVICE_FMT_F32NE);
  CHECK_INT(d->max_channels, ==, 4);
  CHECK_INT(d->default_rate, ==, 32000);
  /* Streams at any of cubeb's rates are converted. */
  CHECK_INT(d->min_rate, ==, 1000);
  CHECK_INT(d->max_rate, ==, 192000);
  CHECK(d->format & CUBEB_DEVICE_FMT_F32BE);
  CHECK(d->format & CUBEB_DEVICE_FMT_S16BE);
  CHECK_INT(d->latency_lo, ==, 100);
  CHECK_INT(d->latency_hi, ==, 100);
}

TEST(enumerate_devices)
{
  cubeb *ctx = context("rate=32000,channels=4,period=100");
  cubeb_device_collection out, in, both;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &out), ==,
            CUBEB_OK);
  CHECK_INT(out.count, ==, 1);
  check_info(&out.device[0], true);
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &in), ==,
            CUBEB_OK);
  CHECK_INT(in.count, ==, 1);
  check_info(&in.device[0], false);
  CHECK(in.device[0].devid != out.device[0].devid);
  CHECK_INT(cubeb_enumerate_devices(
                ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, &both),
            ==, CUBEB_OK);
  CHECK_INT(both.count, ==, 2);
  /* Stable: the same device has the same devid every time. */
  for (size_t i = 0; i < both.count; i++) {
    bool output = both.device[i].type == CUBEB_DEVICE_TYPE_OUTPUT;
    check_info(&both.device[i], output);
    CHECK(both.device[i].devid ==
          (output ? out.device[0].devid : in.device[0].devid));
  }
  CHECK_INT(cubeb_device_collection_destroy(ctx, &both), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &in), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &out), ==, CUBEB_OK);
  CHECK(out.device == NULL && out.count == 0);
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_UNKNOWN, &out), ==,
            CUBEB_ERROR_INVALID_PARAMETER);
  cubeb_destroy(ctx);
}

/* The stream plays 10 full periods, then 37 frames and drains: the file
 * must hold exactly those frames, bit for bit. */
TEST(output_wav_bit_exact)
{
  enum { PERIOD = 64, FULL = 10, LAST = 37 };
  struct tmp t;
  tmp_make(&t, "out.wav");
  cubeb *ctx = context(fast_options("period=64", t.path));
  struct player p;
  player_init(&p, 2);
  p.full_periods = FULL;
  p.last_frames = LAST;
  cubeb_stream *stm =
      output_stream(ctx, &p, pattern_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);
  uint64_t pos = 0;
  CHECK_INT(cubeb_stream_get_position(stm, &pos), ==, CUBEB_OK);
  CHECK_INT(pos, ==, FULL * PERIOD + LAST);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  CHECK_INT(player_callbacks(&p), ==, FULL + 1);
  CHECK_INT(p.states[CUBEB_STATE_STARTED], ==, 1);
  CHECK_INT(p.states[CUBEB_STATE_DRAINED], ==, 1);
  CHECK_INT(p.states[CUBEB_STATE_STOPPED], ==, 1);
  CHECK_INT(p.states[CUBEB_STATE_ERROR], ==, 0);

  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(w.tag, ==, 3);
  CHECK_INT(w.bits, ==, 32);
  CHECK_INT(w.channels, ==, 2);
  CHECK_INT(w.rate, ==, RATE);
  CHECK_INT(frames, ==, pos);
  for (size_t i = 0; i < (size_t)frames * 2; i++) {
    if (!same_bits(wav_float(&w, i), pattern(i)))
      test_fail(__FILE__, __LINE__, "sample %zu: %a, want %a", i,
                (double)wav_float(&w, i), (double)pattern(i));
  }
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

/* Compares every input sample with 0.5 sin(2 pi hz k / rate), then plays
 * it back so the file can be checked against what arrived. */
static long
sine_check_cb(cubeb_stream *stm, void *user, const void *in, void *out,
              long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  const float *i_ = in;
  float *o = out;
  for (long f = 0; f < nframes; f++) {
    uint64_t k = (uint64_t)n * (uint64_t)nframes + (uint64_t)f;
    double want = 0.5 * sin(2.0 * M_PI * 1000.0 * (double)k / RATE);
    double err = fabs(i_[f] - want);
    if (err > p->max_error)
      p->max_error = err;
    if (f < frames && p->recorded_len < p->recorded_cap)
      p->recorded[p->recorded_len++] = i_[f];
    if (f < frames)
      o[f] = i_[f];
  }
  return frames;
}

TEST(duplex_receives_sine)
{
  enum { PERIOD = 64, FULL = 20 };
  struct tmp t;
  tmp_make(&t, "loop.wav");
  cubeb *ctx = context(fast_options("period=64,in=sine:1000", t.path));
  struct player p;
  player_init(&p, 1);
  p.full_periods = FULL;
  p.recorded_cap = FULL * PERIOD;
  p.recorded = calloc(p.recorded_cap, sizeof(float));
  cubeb_stream_params in = params(CUBEB_SAMPLE_FLOAT32NE, 1);
  cubeb_stream_params out = params(CUBEB_SAMPLE_FLOAT32NE, 1);
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "duplex", NULL, &in, NULL, &out, 64,
                              sine_check_cb, state_cb, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  CHECK(p.max_error < 1e-6);
  CHECK_INT(p.recorded_len, ==, FULL * PERIOD);
  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(frames, ==, FULL * PERIOD);
  /* A mono stream reaches every device channel. */
  for (size_t f = 0; f < frames; f++) {
    CHECK(same_bits(wav_float(&w, 2 * f), p.recorded[f]));
    CHECK(same_bits(wav_float(&w, 2 * f + 1), p.recorded[f]));
  }
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

static long
s16_cb(cubeb_stream *stm, void *user, const void *in, void *out, long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  const int16_t *i_ = in;
  int16_t *o = out;
  for (long f = 0; f < nframes; f++) {
    uint64_t k = (uint64_t)n * (uint64_t)nframes + (uint64_t)f;
    double want = 32768.0 * 0.5 * sin(2.0 * M_PI * 440.0 * (double)k / RATE);
    double err = fabs(i_[f] - want);
    if (err > p->max_error)
      p->max_error = err;
    if (f < frames)
      o[f] = (int16_t)((int)(k * 997 % 65536) - 32768);
  }
  return frames;
}

TEST(s16_stream)
{
  enum { PERIOD = 32, FULL = 12 };
  struct tmp t;
  tmp_make(&t, "s16.wav");
  cubeb *ctx = context(fast_options("period=32,in=sine:440", t.path));
  struct player p;
  player_init(&p, 1);
  p.full_periods = FULL;
  cubeb_stream_params in = params(CUBEB_SAMPLE_S16NE, 1);
  cubeb_stream_params out = params(CUBEB_SAMPLE_S16NE, 1);
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "s16", NULL, &in, NULL, &out, 32,
                              s16_cb, state_cb, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  CHECK(p.max_error <= 1.0);
  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(frames, ==, FULL * PERIOD);
  for (uint32_t k = 0; k < frames; k++) {
    float want = (float)((int)(k * 997 % 65536) - 32768) / 32768.0f;
    CHECK(same_bits(wav_float(&w, 2 * k), want));
    CHECK(same_bits(wav_float(&w, 2 * k + 1), want));
  }
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

static long
ramp_cb(cubeb_stream *stm, void *user, const void *in, void *out, long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  float *o = out;
  for (long i = 0; i < frames; i++, p->next++) {
    /* Exact in s16, then the clipping both ways. */
    float v = (float)((int)(p->next * 331 % 65536) - 32768) / 32768.0f;
    if (p->next % 50 == 7)
      v = 2.0f;
    if (p->next % 50 == 8)
      v = -2.0f;
    o[i] = v;
  }
  return frames;
}

/* format=s16: the mix is written as 16-bit PCM. */
TEST(s16_device)
{
  enum { PERIOD = 40, FULL = 6 };
  struct tmp t;
  tmp_make(&t, "dev16.wav");
  cubeb *ctx = context(fast_options("period=40,channels=1,format=s16", t.path));
  cubeb_device_collection c;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &c), ==,
            CUBEB_OK);
  CHECK_INT(c.device[0].default_format, ==, CUBEB_DEVICE_FMT_S16NE);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &c), ==, CUBEB_OK);
  struct player p;
  player_init(&p, 1);
  p.full_periods = FULL;
  cubeb_stream *stm = output_stream(ctx, &p, ramp_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(w.tag, ==, 1);
  CHECK_INT(w.bits, ==, 16);
  CHECK_INT(w.channels, ==, 1);
  CHECK_INT(frames, ==, FULL * PERIOD);
  for (uint32_t k = 0; k < frames; k++) {
    int want = (int)(k * 331 % 65536) - 32768;
    if (k % 50 == 7)
      want = 32767;
    if (k % 50 == 8)
      want = -32768;
    CHECK_INT(wav_s16(&w, k), ==, want);
  }
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

/* Two contexts with the same options share one device: A plays 0.25 all
 * along, B plays 0.5 for exactly 8 periods while A runs. */
TEST(two_streams_mixed)
{
  enum { PERIOD = 64, FULL = 8 };
  struct tmp t;
  tmp_make(&t, "mix.wav");
  const char *options = fast_options("period=64", t.path);
  cubeb *ctx_a = context(options);
  cubeb *ctx_b = context(options);
  struct player a, b;
  player_init(&a, 2);
  a.value = 0.25f;
  player_init(&b, 2);
  b.value = 0.5f;
  b.full_periods = FULL;
  b.last_frames = 0;
  cubeb_stream *sa =
      output_stream(ctx_a, &a, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  cubeb_stream *sb =
      output_stream(ctx_b, &b, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(sa), ==, CUBEB_OK);
  wait_callbacks(&a, 1);
  CHECK_INT(cubeb_stream_start(sb), ==, CUBEB_OK);
  wait_state(&b, CUBEB_STATE_DRAINED, 1);
  CHECK_INT(cubeb_stream_stop(sa), ==, CUBEB_OK);
  uint64_t pos_a;
  CHECK_INT(cubeb_stream_get_position(sa, &pos_a), ==, CUBEB_OK);
  cubeb_stream_destroy(sb);
  cubeb_stream_destroy(sa);
  cubeb_destroy(ctx_b);
  cubeb_destroy(ctx_a);

  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(frames, ==, pos_a);
  uint32_t both = 0;
  for (uint32_t f = 0; f < frames; f++) {
    float l = wav_float(&w, 2 * f), r = wav_float(&w, 2 * f + 1);
    CHECK(same_bits(l, r));
    CHECK(same_bits(l, 0.25f) || same_bits(l, 0.75f));
    both += same_bits(l, 0.75f);
  }
  CHECK_INT(both, ==, FULL * PERIOD);
  free(w.file);
  player_destroy(&a);
  player_destroy(&b);
  tmp_remove(&t);
}

static long
fail_cb(cubeb_stream *stm, void *user, const void *in, void *out, long nframes)
{
  struct player *p = user;
  player_tick(p);
  return p->last_frames < 0 ? CUBEB_ERROR : nframes + 1;
}

/* CUBEB_ERROR, or more frames than asked for: ERROR once, then silence. */
TEST(bad_return_is_error)
{
  cubeb *ctx = context(fast_options("period=16", NULL));
  struct player neg, big, keeper;
  player_init(&neg, 1);
  neg.last_frames = -1;
  player_init(&big, 1);
  big.last_frames = 1;
  player_init(&keeper, 1);
  cubeb_stream *sn = output_stream(ctx, &neg, fail_cb, CUBEB_SAMPLE_FLOAT32NE);
  cubeb_stream *sb = output_stream(ctx, &big, fail_cb, CUBEB_SAMPLE_FLOAT32NE);
  cubeb_stream *sk =
      output_stream(ctx, &keeper, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(sn), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(sb), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(sk), ==, CUBEB_OK);
  wait_state(&neg, CUBEB_STATE_ERROR, 1);
  wait_state(&big, CUBEB_STATE_ERROR, 1);
  /* Let the device run many more periods. */
  wait_callbacks(&keeper, player_callbacks(&keeper) + 100);
  CHECK_INT(player_callbacks(&neg), ==, 1);
  CHECK_INT(player_callbacks(&big), ==, 1);
  CHECK_INT(player_states(&neg, CUBEB_STATE_ERROR), ==, 1);
  CHECK_INT(player_states(&big, CUBEB_STATE_ERROR), ==, 1);
  CHECK_INT(player_states(&neg, CUBEB_STATE_DRAINED), ==, 0);
  uint64_t pos = 1;
  CHECK_INT(cubeb_stream_get_position(sn, &pos), ==, CUBEB_OK);
  CHECK_INT(pos, ==, 0);
  cubeb_stream_destroy(sn);
  cubeb_stream_destroy(sb);
  cubeb_stream_destroy(sk);
  cubeb_destroy(ctx);
  player_destroy(&neg);
  player_destroy(&big);
  player_destroy(&keeper);
}

static void
spin_us(long us)
{
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000L +
               (now.tv_nsec - start.tv_nsec) / 1000 <
           us);
}

static long
slow_cb(cubeb_stream *stm, void *user, const void *in, void *out, long nframes)
{
  struct player *p = user;
  atomic_store(&p->inside, 1);
  player_tick(p);
  spin_us(50); /* so that stop often lands inside a callback */
  atomic_store(&p->inside, 0);
  return nframes;
}

/* After cubeb_stream_stop returns, the stream's callback neither runs
 * nor starts again, while the device goes on with another stream. */
TEST(stop_waits_for_callback)
{
  cubeb *ctx = context(fast_options("period=16", NULL));
  struct player slow, keeper;
  player_init(&slow, 1);
  player_init(&keeper, 1);
  cubeb_stream *ss = output_stream(ctx, &slow, slow_cb, CUBEB_SAMPLE_FLOAT32NE);
  cubeb_stream *sk =
      output_stream(ctx, &keeper, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(sk), ==, CUBEB_OK);
  for (int round = 0; round < 20; round++) {
    CHECK_INT(cubeb_stream_start(ss), ==, CUBEB_OK);
    wait_callbacks(&slow, player_callbacks(&slow) + 3);
    CHECK_INT(cubeb_stream_stop(ss), ==, CUBEB_OK);
    CHECK_INT(atomic_load(&slow.inside), ==, 0);
    long after_stop = player_callbacks(&slow);
    wait_callbacks(&keeper, player_callbacks(&keeper) + 20);
    CHECK_INT(player_callbacks(&slow), ==, after_stop);
  }
  CHECK_INT(player_states(&slow, CUBEB_STATE_STARTED), ==, 20);
  CHECK_INT(player_states(&slow, CUBEB_STATE_STOPPED), ==, 20);
  cubeb_stream_destroy(ss);
  cubeb_stream_destroy(sk);
  cubeb_destroy(ctx);
  player_destroy(&slow);
  player_destroy(&keeper);
}

static long
self_stop_cb(cubeb_stream *stm, void *user, const void *in, void *out,
             long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  if (n == 2) {
    p->stop_result = cubeb_stream_stop(stm);
    return 0;
  }
  return nframes;
}

static void
stop_on_drain_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  struct player *p = user;
  /* Stopping from the state callback is allowed, so not under p->lock:
   * it calls us back with STOPPED. */
  if (state == CUBEB_STATE_DRAINED)
    p->drain_stop_result = cubeb_stream_stop(stm);
  state_cb(stm, user, state);
}

static long
self_destroy_cb(cubeb_stream *stm, void *user, const void *in, void *out,
                long nframes)
{
  struct player *p = user;
  if (player_tick(p) == 1)
    cubeb_stream_destroy(stm);
  return nframes;
}

/* From its own data callback a stream cannot be stopped (it would wait for
 * itself) but can be destroyed; from its state callback it can be
 * stopped. Nothing deadlocks. */
TEST(calls_from_callbacks)
{
  cubeb *ctx = context(fast_options("period=16", NULL));
  struct player self_stop, self_destroy, keeper;
  player_init(&self_stop, 1);
  player_init(&self_destroy, 1);
  player_init(&keeper, 1);
  cubeb_stream_params out = params(CUBEB_SAMPLE_FLOAT32NE, 1);
  cubeb_stream *s1, *s2;
  CHECK_INT(cubeb_stream_init(ctx, &s1, "a", NULL, NULL, NULL, &out, 16,
                              self_stop_cb, stop_on_drain_cb, &self_stop),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_init(ctx, &s2, "b", NULL, NULL, NULL, &out, 16,
                              self_destroy_cb, state_cb, &self_destroy),
            ==, CUBEB_OK);
  cubeb_stream *sk =
      output_stream(ctx, &keeper, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_start(sk), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(s1), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(s2), ==, CUBEB_OK);
  wait_state(&self_stop, CUBEB_STATE_STOPPED, 1);
  wait_callbacks(&self_destroy, 2);
  wait_callbacks(&keeper, player_callbacks(&keeper) + 50);
  CHECK_INT(self_stop.stop_result, ==, CUBEB_ERROR);
  CHECK_INT(self_stop.drain_stop_result, ==, CUBEB_OK);
  CHECK_INT(player_callbacks(&self_stop), ==, 3);
  CHECK_INT(player_states(&self_stop, CUBEB_STATE_DRAINED), ==, 1);
  CHECK_INT(player_callbacks(&self_destroy), ==, 2);
  cubeb_stream_destroy(s1);
  cubeb_stream_destroy(sk);
  cubeb_destroy(ctx);
  player_destroy(&self_stop);
  player_destroy(&self_destroy);
  player_destroy(&keeper);
}

TEST(volume_scales_output)
{
  enum { PERIOD = 64, FULL = 5 };
  struct tmp t;
  tmp_make(&t, "vol.wav");
  cubeb *ctx = context(fast_options("period=64", t.path));
  struct player p;
  player_init(&p, 2);
  p.full_periods = FULL;
  cubeb_stream *stm =
      output_stream(ctx, &p, pattern_cb, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(cubeb_stream_set_volume(stm, NAN), ==,
            CUBEB_ERROR_INVALID_PARAMETER);
  CHECK_INT(cubeb_stream_set_volume(stm, 1.5f), ==,
            CUBEB_ERROR_INVALID_PARAMETER);
  CHECK_INT(cubeb_stream_set_volume(stm, 0.5f), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  struct wav w;
  uint32_t frames = wav_load_closed(t.path, &w);
  CHECK_INT(frames, ==, FULL * PERIOD);
  for (size_t i = 0; i < (size_t)frames * 2; i++)
    CHECK(wav_float(&w, i) == pattern(i) * 0.5f);
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

/* aipc_virtual_init with stderr redirected; returns what it logged. */
static char *
init_logged(const char *options, int *result)
{
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  CHECK(saved >= 0);
  int fd = memfd_create("stderr", MFD_CLOEXEC);
  CHECK(fd >= 0);
  CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  cubeb *ctx = NULL;
  *result = aipc_virtual_init(&ctx, "test", options);
  CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
  close(saved);
  if (ctx)
    cubeb_destroy(ctx);
  static char text[4096];
  ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
  CHECK(n >= 0);
  text[n] = '\0';
  close(fd);
  return text;
}

TEST(bad_options_rejected)
{
  static const struct {
    const char *options;
    const char *named;
  } bad[] = {
      {"rate=999", "'rate'"},
      {"rate=192001", "'rate'"},
      {"rate=48k", "'rate'"},
      {"rate=-48000", "'rate'"},
      {"rate= 48000", "'rate'"},
      {"rate=", "'rate'"},
      {"rate", "'rate'"},
      {"rate=48000,rate=44100", "'rate'"},
      {"channels=0", "'channels'"},
      {"channels=9", "'channels'"},
      {"period=0", "'period'"},
      {"period=96001", "'period'"},
      {"clock=slow", "'clock'"},
      {"format=s24", "'format'"},
      {"in=sine:", "'in'"},
      {"in=sine:0", "'in'"},
      {"in=sine:abc", "'in'"},
      {"in=/nonexistent/x.wav", "'in'"},
      {"out=/nonexistent/x.wav", "'out'"},
      {"bogus=1", "'bogus'"},
      {"clock=fast,,period=8", "empty"},
      {",", "empty"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int r;
    const char *log = init_logged(bad[i].options, &r);
    if (r != CUBEB_ERROR_INVALID_PARAMETER || !strstr(log, bad[i].named))
      test_fail(__FILE__, __LINE__, "'%s': result %d, log '%s'", bad[i].options,
                r, log);
  }
  int r;
  const char *log = init_logged(
      "rate=1000,channels=8,period=96000,clock=realtime,format=s16,in=silence",
      &r);
  CHECK_INT(r, ==, CUBEB_OK);
  CHECK(*log == '\0');
  CHECK_INT(aipc_virtual_init(NULL, "x", NULL), ==,
            CUBEB_ERROR_INVALID_PARAMETER);
}

/* Files an embedder may name wrongly: a FIFO for in= (opening it waited
 * for a writer, with the device registry locked: every context creation
 * hung), a symlink for out= (followed, and its target truncated). Both
 * are refused at once, and the symlink's target is untouched. */
TEST(options_naming_odd_files_are_refused)
{
  char dir[] = "/tmp/aipc-virtual-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char fifo[64], link[64], target[64], options[160];
  snprintf(fifo, sizeof(fifo), "%s/fifo.wav", dir);
  snprintf(link, sizeof(link), "%s/link.wav", dir);
  snprintf(target, sizeof(target), "%s/precious", dir);
  CHECK(mkfifo(fifo, 0600) == 0);
  FILE *t = fopen(target, "w");
  CHECK(t != NULL);
  fputs("keep me", t);
  fclose(t);
  CHECK(symlink(target, link) == 0);

  int r;
  snprintf(options, sizeof(options), "in=%s", fifo);
  const char *log = init_logged(options, &r);
  CHECK_INT(r, ==, CUBEB_ERROR_INVALID_PARAMETER);
  CHECK(strstr(log, "'in'") != NULL);
  snprintf(options, sizeof(options), "out=%s", fifo);
  log = init_logged(options, &r);
  CHECK_INT(r, ==, CUBEB_ERROR_INVALID_PARAMETER);
  CHECK(strstr(log, "'out'") != NULL);
  snprintf(options, sizeof(options), "out=%s", link);
  log = init_logged(options, &r);
  CHECK_INT(r, ==, CUBEB_ERROR_INVALID_PARAMETER);
  CHECK(strstr(log, "'out'") != NULL);
  struct stat st;
  CHECK(stat(target, &st) == 0);
  CHECK_INT(st.st_size, ==, 7);

  unlink(fifo);
  unlink(link);
  unlink(target);
  rmdir(dir);
}

/* The clock is the clock= option's, not whatever text says clock=fast. */
TEST(options_clock_is_parsed_not_searched)
{
  CHECK(aipc_virtual_clock_is_fast("clock=fast"));
  CHECK(aipc_virtual_clock_is_fast("rate=48000,clock=fast,out=/tmp/x.wav"));
  CHECK(!aipc_virtual_clock_is_fast(""));
  CHECK(!aipc_virtual_clock_is_fast(NULL));
  CHECK(!aipc_virtual_clock_is_fast("out=/tmp/clock=fast.wav"));
  CHECK(!aipc_virtual_clock_is_fast("in=/x/clock=fast/a.wav,clock=realtime"));
  CHECK(!aipc_virtual_clock_is_fast("clock=fastest"));
}

static long
silent_cb(cubeb_stream *stm, void *user, const void *in, void *out,
          long nframes)
{
  return nframes;
}

static int
try_stream(cubeb *ctx, cubeb_devid in_dev, cubeb_stream_params *in,
           cubeb_devid out_dev, cubeb_stream_params *out)
{
  cubeb_stream *stm = NULL;
  int r = cubeb_stream_init(ctx, &stm, "try", in_dev, in, out_dev, out, 128,
                            silent_cb, state_cb, NULL);
  if (r == CUBEB_OK)
    cubeb_stream_destroy(stm);
  else
    CHECK(stm == NULL);
  return r;
}

TEST(stream_params_and_devids)
{
  cubeb *ctx = context(NULL);
  cubeb *other = context("period=64");
  cubeb_device_collection mine, theirs;
  CHECK_INT(cubeb_enumerate_devices(
                ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, &mine),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_enumerate_devices(other, CUBEB_DEVICE_TYPE_OUTPUT, &theirs),
            ==, CUBEB_OK);
  cubeb_devid out_id = mine.device[0].devid, in_id = mine.device[1].devid;
  CHECK_INT(mine.device[0].type, ==, CUBEB_DEVICE_TYPE_OUTPUT);
  cubeb_stream_params out = params(CUBEB_SAMPLE_FLOAT32NE, 2);
  cubeb_stream_params in = params(CUBEB_SAMPLE_FLOAT32NE, 1);

  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &out), ==, CUBEB_OK);
  CHECK_INT(try_stream(ctx, NULL, NULL, out_id, &out), ==, CUBEB_OK);
  CHECK_INT(try_stream(ctx, in_id, &in, NULL, NULL), ==, CUBEB_OK);
  CHECK_INT(try_stream(ctx, in_id, &in, out_id, &out), ==, CUBEB_OK);
  CHECK_INT(try_stream(ctx, NULL, NULL, (cubeb_devid)0x1234, &out), ==,
            CUBEB_ERROR_DEVICE_UNAVAILABLE);
  CHECK_INT(try_stream(ctx, NULL, NULL, in_id, &out), ==,
            CUBEB_ERROR_DEVICE_UNAVAILABLE);
  CHECK_INT(try_stream(ctx, out_id, &in, NULL, NULL), ==,
            CUBEB_ERROR_DEVICE_UNAVAILABLE);
  CHECK_INT(try_stream(ctx, NULL, NULL, theirs.device[0].devid, &out), ==,
            CUBEB_ERROR_DEVICE_UNAVAILABLE);

  /* Other rates and foreign-endian formats are converted, as every
   * libcubeb backend does; rates past libcubeb's bounds are not. */
  cubeb_stream_params bad = out;
  bad.rate = 44100;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==, CUBEB_OK);
  bad.rate = 999;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==,
            CUBEB_ERROR_INVALID_FORMAT);
  bad.rate = 192001;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==,
            CUBEB_ERROR_INVALID_FORMAT);
  bad = out;
  bad.format = CUBEB_SAMPLE_S16BE;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==, CUBEB_OK);
  bad.format = (cubeb_sample_format)7;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==,
            CUBEB_ERROR_INVALID_FORMAT);
  cubeb_stream_params in44 = in;
  in44.rate = 44100;
  CHECK_INT(try_stream(ctx, NULL, &in44, NULL, &out), ==,
            CUBEB_ERROR_INVALID_FORMAT);
  bad = out;
  bad.channels = 33;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==,
            CUBEB_ERROR_INVALID_FORMAT);
  bad = in;
  bad.prefs = CUBEB_STREAM_PREF_LOOPBACK;
  CHECK_INT(try_stream(ctx, NULL, &bad, NULL, NULL), ==,
            CUBEB_ERROR_NOT_SUPPORTED);
  /* More stream channels than the device has is fine. */
  bad = out;
  bad.channels = 6;
  CHECK_INT(try_stream(ctx, NULL, NULL, NULL, &bad), ==, CUBEB_OK);

  CHECK_INT(cubeb_device_collection_destroy(other, &theirs), ==, CUBEB_OK);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &mine), ==, CUBEB_OK);
  cubeb_destroy(other);
  cubeb_destroy(ctx);
}

TEST(stream_queries)
{
  cubeb *ctx = context("period=200");
  cubeb_stream_params out = params(CUBEB_SAMPLE_FLOAT32NE, 2);
  cubeb_stream_params in = params(CUBEB_SAMPLE_FLOAT32NE, 1);
  cubeb_stream *so, *sd;
  CHECK_INT(cubeb_stream_init(ctx, &so, "o", NULL, NULL, NULL, &out, 512,
                              silent_cb, state_cb, NULL),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_init(ctx, &sd, "d", NULL, &in, NULL, &out, 512,
                              silent_cb, state_cb, NULL),
            ==, CUBEB_OK);
  uint32_t lat = 0;
  uint64_t pos = 1;
  CHECK_INT(cubeb_stream_get_latency(so, &lat), ==, CUBEB_OK);
  CHECK_INT(lat, ==, 200);
  CHECK(cubeb_stream_get_input_latency(so, &lat) != CUBEB_OK);
  CHECK_INT(cubeb_stream_get_input_latency(sd, &lat), ==, CUBEB_OK);
  CHECK_INT(lat, ==, 200);
  CHECK_INT(cubeb_stream_get_position(so, &pos), ==, CUBEB_OK);
  CHECK_INT(pos, ==, 0);
  CHECK_INT(cubeb_stream_set_name(so, "renamed"), ==, CUBEB_OK);

  cubeb_device *dev = NULL;
  CHECK_INT(cubeb_stream_get_current_device(so, &dev), ==, CUBEB_OK);
  CHECK(strcmp(dev->output_name, "virtual-out") == 0);
  CHECK(dev->input_name == NULL);
  CHECK_INT(cubeb_stream_device_destroy(so, dev), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_get_current_device(sd, &dev), ==, CUBEB_OK);
  CHECK(strcmp(dev->output_name, "virtual-out") == 0);
  CHECK(strcmp(dev->input_name, "virtual-in") == 0);
  CHECK_INT(cubeb_stream_device_destroy(sd, dev), ==, CUBEB_OK);

  cubeb_stream_destroy(sd);
  cubeb_stream_destroy(so);
  cubeb_destroy(ctx);
}

struct notes {
  atomic_int changed;
  atomic_int collection;
  cubeb *ctx;
  atomic_int wrong_ctx;
};

static void
changed_cb(void *user)
{
  struct player *p = user;
  player_tick(p);
}

static void
collection_cb(cubeb *ctx, void *user)
{
  struct notes *n = user;
  atomic_fetch_add(&n->collection, 1);
  if (ctx != n->ctx)
    atomic_fetch_add(&n->wrong_ctx, 1);
}

TEST(triggers_reach_callbacks)
{
  cubeb *ctx_a = context("period=64");
  cubeb *ctx_b = context("period=32");
  struct player pa, pb;
  player_init(&pa, 1);
  player_init(&pb, 1);
  cubeb_stream *sa = output_stream(ctx_a, &pa, silent_cb, CUBEB_SAMPLE_S16NE);
  cubeb_stream *sb = output_stream(ctx_b, &pb, silent_cb, CUBEB_SAMPLE_S16NE);
  CHECK_INT(cubeb_stream_register_device_changed_callback(sa, changed_cb), ==,
            CUBEB_OK);
  struct notes na = {.ctx = ctx_a}, nb = {.ctx = ctx_b};
  CHECK_INT(cubeb_register_device_collection_changed(
                ctx_a, CUBEB_DEVICE_TYPE_OUTPUT, collection_cb, &na),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_register_device_collection_changed(
                ctx_b, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT,
                collection_cb, &nb),
            ==, CUBEB_OK);

  aipc_virtual_trigger_device_changed();
  CHECK_INT(player_callbacks(&pa), ==, 1);
  CHECK_INT(player_callbacks(&pb), ==, 0);
  aipc_virtual_trigger_collection_changed(CUBEB_DEVICE_TYPE_OUTPUT);
  CHECK_INT(atomic_load(&na.collection), ==, 1);
  CHECK_INT(atomic_load(&nb.collection), ==, 1);
  aipc_virtual_trigger_collection_changed(CUBEB_DEVICE_TYPE_INPUT);
  CHECK_INT(atomic_load(&na.collection), ==, 1);
  CHECK_INT(atomic_load(&nb.collection), ==, 2);

  CHECK_INT(cubeb_register_device_collection_changed(
                ctx_a, CUBEB_DEVICE_TYPE_OUTPUT, NULL, NULL),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_register_device_changed_callback(sa, NULL), ==,
            CUBEB_OK);
  aipc_virtual_trigger_collection_changed(CUBEB_DEVICE_TYPE_OUTPUT);
  aipc_virtual_trigger_device_changed();
  CHECK_INT(atomic_load(&na.collection), ==, 1);
  CHECK_INT(atomic_load(&nb.collection), ==, 3);
  CHECK_INT(player_callbacks(&pa), ==, 1);
  CHECK_INT(atomic_load(&na.wrong_ctx) + atomic_load(&nb.wrong_ctx), ==, 0);

  cubeb_stream_destroy(sa);
  cubeb_stream_destroy(sb);
  cubeb_destroy(ctx_a);
  cubeb_destroy(ctx_b);
  player_destroy(&pa);
  player_destroy(&pb);
}

static long
record_cb(cubeb_stream *stm, void *user, const void *in, void *out,
          long nframes)
{
  struct player *p = user;
  long n = player_tick(p);
  long frames = planned_frames(p, n, nframes);
  size_t count = (size_t)frames * p->channels;
  if (count > p->recorded_cap - p->recorded_len)
    count = p->recorded_cap - p->recorded_len;
  memcpy(p->recorded + p->recorded_len, in, count * sizeof(float));
  p->recorded_len += count;
  return frames;
}

/* Records what an input stream of `channels` receives from `options`. */
static void
record_input(const char *options, struct player *p, uint32_t channels,
             long periods)
{
  cubeb *ctx = context(options);
  player_init(p, channels);
  p->full_periods = periods;
  p->recorded_cap = (size_t)periods * 64 * channels;
  p->recorded = calloc(p->recorded_cap, sizeof(float));
  cubeb_stream_params in = params(CUBEB_SAMPLE_FLOAT32NE, channels);
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "in", NULL, &in, NULL, NULL, 64,
                              record_cb, state_cb, p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(p, CUBEB_STATE_DRAINED, 1);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);
  CHECK_INT(p->recorded_len, ==, p->recorded_cap);
}

/* in=PATH.wav loops the file; a mono file reaches every channel, a
 * stereo one its first two. */
TEST(wav_file_input)
{
  struct tmp t;
  tmp_make(&t, "in.wav");
  char options[400];
  snprintf(options, sizeof(options), "clock=fast,period=64,in=%s", t.path);

  float mono[100];
  for (int i = 0; i < 100; i++)
    mono[i] = (float)i / 128.0f - 0.3f;
  wav_write(t.path, 3, 1, RATE, 32, mono, sizeof(mono));
  struct player p;
  record_input(options, &p, 2, 5);
  for (size_t f = 0; f < p.recorded_len / 2; f++) {
    CHECK(same_bits(p.recorded[2 * f], mono[f % 100]));
    CHECK(same_bits(p.recorded[2 * f + 1], mono[f % 100]));
  }
  player_destroy(&p);

  int16_t stereo[2 * 50];
  for (int i = 0; i < 50; i++) {
    stereo[2 * i] = (int16_t)(i * 100);
    stereo[2 * i + 1] = (int16_t)(-i * 100 - 1);
  }
  wav_write(t.path, 1, 2, RATE, 16, stereo, sizeof(stereo));
  cubeb *ctx = context(options);
  cubeb_device_collection c;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &c), ==,
            CUBEB_OK);
  CHECK_INT(c.device[0].max_channels, ==, 2);
  CHECK_INT(cubeb_device_collection_destroy(ctx, &c), ==, CUBEB_OK);
  cubeb_destroy(ctx);
  record_input(options, &p, 3, 4);
  for (size_t f = 0; f < p.recorded_len / 3; f++) {
    CHECK(p.recorded[3 * f] == (float)stereo[2 * (f % 50)] / 32768.0f);
    CHECK(p.recorded[3 * f + 1] == (float)stereo[2 * (f % 50) + 1] / 32768.0f);
    CHECK(p.recorded[3 * f + 2] == 0.0f);
  }
  player_destroy(&p);

  /* A file at another rate is resampled to the device's, once: ten
   * cycles of 100 Hz at 44.1 kHz loop as 100 Hz at 48 kHz, from the
   * file's first frame on (the filter's delay is cut; the loop then
   * skips as many frames). */
  float slow[4410];
  for (int i = 0; i < 4410; i++)
    slow[i] = 0.5f * (float)sin(2 * M_PI * 100 * i / 44100.0);
  wav_write(t.path, 3, 1, 44100, 32, slow, sizeof(slow));
  record_input(options, &p, 1, 70); /* 4480 frames: before the loop */
  double worst = 0;
  for (size_t f = 32; f < p.recorded_len; f++) {
    double want = 0.5 * sin(2 * M_PI * 100 * (double)f / RATE);
    worst = fmax(worst, fabs(p.recorded[f] - want));
  }
  printf("44.1 kHz input at 48 kHz: worst error %.4f\n", worst);
  CHECK(worst < 0.02);
  player_destroy(&p);

  int r;
  FILE *f = fopen(t.path, "w");
  CHECK(f != NULL);
  fputs("not a wav file at all", f);
  fclose(f);
  CHECK(strstr(init_logged(options, &r), "'in'") != NULL);
  CHECK_INT(r, ==, CUBEB_ERROR_INVALID_PARAMETER);
  tmp_remove(&t);
}

/* The header is rewritten about once a second of audio while the device
 * runs, so a process that dies leaves a readable file. */
TEST(wav_header_kept_current)
{
  enum { PERIOD = 800, FULL = 15 };
  struct tmp t;
  tmp_make(&t, "sync.wav");
  cubeb *ctx = context(fast_options("rate=8000,period=800", t.path));
  struct player p;
  player_init(&p, 2);
  p.full_periods = FULL;
  p.last_frames = 0;
  cubeb_stream_params out = params(CUBEB_SAMPLE_FLOAT32NE, 2);
  out.rate = 8000;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "o", NULL, NULL, NULL, &out, 800,
                              pattern_cb, state_cb, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  wait_state(&p, CUBEB_STATE_DRAINED, 1);

  struct wav w;
  wav_load(t.path, &w);
  CHECK_INT(w.data_size, ==, 8000 * 2 * 4);
  CHECK_INT(w.data_offset + w.data_size, <=, w.file_len);
  free(w.file);

  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);
  CHECK_INT(wav_load_closed(t.path, &w), ==, FULL * PERIOD);
  free(w.file);
  player_destroy(&p);
  tmp_remove(&t);
}

/* Paced by CLOCK_MONOTONIC; no timing is asserted, only progress and a
 * clean stop. */
TEST(realtime_clock_progresses)
{
  cubeb *ctx = context("clock=realtime,period=480");
  struct player p;
  player_init(&p, 2);
  p.value = 0.1f;
  cubeb_stream *stm =
      output_stream(ctx, &p, constant_cb, CUBEB_SAMPLE_FLOAT32NE);
  for (int round = 0; round < 2; round++) {
    CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
    wait_callbacks(&p, player_callbacks(&p) + 10);
    CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  }
  uint64_t pos;
  CHECK_INT(cubeb_stream_get_position(stm, &pos), ==, CUBEB_OK);
  CHECK_INT(pos, ==, player_callbacks(&p) * 480);
  CHECK(player_callbacks(&p) >= 20);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);
  player_destroy(&p);
}

/* What the out= writer (and aipc record) stop at: the frames a 32-bit
 * RIFF, AIFF or AU size can count; the 64-bit containers have no such
 * bound. */
TEST(sound_file_limits)
{
  CHECK_INT(aipc_sound_max_frames(SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2), ==,
            (UINT32_MAX - 4096) / 8);
  CHECK_INT(aipc_sound_max_frames(SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2), ==,
            (UINT32_MAX - 4096) / 4);
  CHECK_INT(aipc_sound_max_frames(SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 1), ==,
            (UINT32_MAX - 4096) / 3);
  CHECK(aipc_sound_max_frames(SF_FORMAT_W64 | SF_FORMAT_FLOAT, 2) ==
        UINT64_MAX);
  CHECK(aipc_sound_max_frames(SF_FORMAT_RF64 | SF_FORMAT_FLOAT, 2) ==
        UINT64_MAX);
}
