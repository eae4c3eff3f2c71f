/* SPDX-License-Identifier: ISC */
/*
 * Streams the virtual device converts: other rates, channel layouts and
 * sample formats. Tones go in, and the WAV file (clock=fast) is measured:
 * frequency and level by a Goertzel filter, length against the frames
 * the callbacks returned and the resampler's stated delay.
 */
#include "../runner.h"
#include "../tone.h"
#include "sound-file.h"
#include "virtual.h"

#include <cubeb/cubeb.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DEVICE_RATE 48000
#define PERIOD 128
#define MAX_CHANNELS 8

struct tmp {
  char dir[256];
  char path[320];
};

static void
tmp_make(struct tmp *t)
{
  const char *base = getenv("TMPDIR");
  snprintf(t->dir, sizeof(t->dir), "%s/aipc-convert-XXXXXX",
           base && *base ? base : "/tmp");
  CHECK(mkdtemp(t->dir) != NULL);
  snprintf(t->path, sizeof(t->path), "%s/out.wav", t->dir);
}

static void
tmp_remove(struct tmp *t)
{
  CHECK(unlink(t->path) == 0 || errno == ENOENT);
  CHECK(rmdir(t->dir) == 0);
}

/* A stream playing (or recording) a tone, and what its callbacks saw. */
struct tone {
  cubeb_stream_params params;
  double hz;
  double amplitude[MAX_CHANNELS]; /* per stream channel */
  uint64_t total;                 /* frames to play, then drain */

  pthread_mutex_t lock;
  pthread_cond_t cond;
  cubeb_stream *stm;
  uint64_t returned; /* frames the callbacks returned */
  long min_asked, max_asked;
  int states[4];
  bool position_went_back, position_ran_ahead;
  uint64_t last_position;
  /* Input, as float, for input streams. */
  float *recorded;
  uint64_t recorded_cap, recorded_len;
};

static void
tone_init(struct tone *t, cubeb_sample_format format, uint32_t rate,
          uint32_t channels, cubeb_channel_layout layout)
{
  memset(t, 0, sizeof(*t));
  t->params = (cubeb_stream_params){
      .format = format, .rate = rate, .channels = channels, .layout = layout};
  t->hz = 1000.0;
  t->min_asked = -1;
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->cond, NULL);
}

static void
tone_destroy(struct tone *t)
{
  free(t->recorded);
  pthread_cond_destroy(&t->cond);
  pthread_mutex_destroy(&t->lock);
}

static bool
is_s16(cubeb_sample_format f)
{
  return f == CUBEB_SAMPLE_S16LE || f == CUBEB_SAMPLE_S16BE;
}

static bool
is_foreign(cubeb_sample_format f)
{
  return f != CUBEB_SAMPLE_S16NE && f != CUBEB_SAMPLE_FLOAT32NE;
}

static void
put_sample(cubeb_sample_format f, void *buf, size_t i, double v)
{
  if (is_s16(f)) {
    uint16_t s = (uint16_t)(int16_t)lrint(v * 32767.0);
    if (is_foreign(f))
      s = __builtin_bswap16(s);
    memcpy((uint8_t *)buf + 2 * i, &s, 2);
    return;
  }
  float x = (float)v;
  uint32_t u;
  memcpy(&u, &x, 4);
  if (is_foreign(f))
    u = __builtin_bswap32(u);
  memcpy((uint8_t *)buf + 4 * i, &u, 4);
}

static float
get_sample(cubeb_sample_format f, const void *buf, size_t i)
{
  if (is_s16(f)) {
    uint16_t s;
    memcpy(&s, (const uint8_t *)buf + 2 * i, 2);
    if (is_foreign(f))
      s = __builtin_bswap16(s);
    return (float)(int16_t)s / 32768.0f;
  }
  uint32_t u;
  memcpy(&u, (const uint8_t *)buf + 4 * i, 4);
  if (is_foreign(f))
    u = __builtin_bswap32(u);
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static long
tone_cb(cubeb_stream *stm, void *user, const void *in, void *out, long nframes)
{
  struct tone *t = user;
  uint32_t ch = t->params.channels;
  uint64_t position = 0;
  CHECK_INT(cubeb_stream_get_position(stm, &position), ==, CUBEB_OK);
  pthread_mutex_lock(&t->lock);
  if (t->min_asked < 0 || nframes < t->min_asked)
    t->min_asked = nframes;
  if (nframes > t->max_asked)
    t->max_asked = nframes;
  t->position_went_back |= position < t->last_position;
  t->position_ran_ahead |= position > t->returned;
  t->last_position = position;
  uint64_t k0 = t->returned;
  long frames = nframes;
  if (t->total && k0 + (uint64_t)frames > t->total)
    frames = (long)(t->total - k0);
  pthread_mutex_unlock(&t->lock);

  for (long f = 0; out && f < frames; f++) {
    double phase = 2.0 * M_PI * t->hz * (double)(k0 + f) / t->params.rate;
    for (uint32_t c = 0; c < ch; c++)
      put_sample(t->params.format, out, (size_t)f * ch + c,
                 t->amplitude[c] * sin(phase));
  }
  for (long f = 0; in && f < frames; f++) {
    for (uint32_t c = 0; c < ch && t->recorded_len < t->recorded_cap; c++)
      t->recorded[t->recorded_len++] =
          get_sample(t->params.format, in, (size_t)f * ch + c);
  }
  pthread_mutex_lock(&t->lock);
  t->returned += (uint64_t)frames;
  pthread_mutex_unlock(&t->lock);
  return frames;
}

static void
tone_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  struct tone *t = user;
  pthread_mutex_lock(&t->lock);
  t->states[state]++;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->lock);
}

static void
wait_drained(struct tone *t)
{
  pthread_mutex_lock(&t->lock);
  while (!t->states[CUBEB_STATE_DRAINED] && !t->states[CUBEB_STATE_ERROR])
    pthread_cond_wait(&t->cond, &t->lock);
  pthread_mutex_unlock(&t->lock);
}

static cubeb *
device(const char *extra, const char *out_path)
{
  char options[512];
  snprintf(options, sizeof(options), "clock=fast,period=%d%s%s,out=%s", PERIOD,
           *extra ? "," : "", extra, out_path);
  cubeb *ctx = NULL;
  CHECK_INT(aipc_virtual_init(&ctx, "convert", options), ==, CUBEB_OK);
  return ctx;
}

/* What one output stream left in the file. */
struct played {
  struct aipc_sound_data wav;
  uint64_t position; /* at DRAINED */
  uint32_t latency;  /* cubeb_stream_get_latency */
};

/* Plays `t` (which drains after t->total frames) at `volume` on a device
 * with `extra` options, and reads back the file. */
static void
play(struct tone *t, const char *extra, float volume, struct played *out)
{
  struct tmp tmp;
  tmp_make(&tmp);
  cubeb *ctx = device(extra, tmp.path);
  CHECK_INT(cubeb_stream_init(ctx, &t->stm, "tone", NULL, NULL, NULL,
                              &t->params, PERIOD, tone_cb, tone_state, t),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_set_volume(t->stm, volume), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_get_latency(t->stm, &out->latency), ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(t->stm), ==, CUBEB_OK);
  wait_drained(t);
  CHECK_INT(cubeb_stream_get_position(t->stm, &out->position), ==, CUBEB_OK);
  cubeb_stream_destroy(t->stm);
  cubeb_destroy(ctx);
  CHECK_INT(aipc_sound_load(tmp.path, 32, &out->wav, NULL, 0), ==, 0);
  tmp_remove(&tmp);
}

/* The level of the tone in channel `ch` of the file, over its middle
 * (the resampler's ramps at either end left out); and checks that the
 * tone stands 40 dB above its neighbours 200 Hz away. */
static double
level(const struct played *p, uint32_t ch, double hz)
{
  const struct aipc_sound_data *w = &p->wav;
  uint64_t skip = w->rate / 10;
  CHECK(w->frames > 3 * skip);
  const float *x = w->samples + skip * w->channels + ch;
  uint64_t n = w->frames - 2 * skip;
  double a = test_tone_amplitude(x, w->channels, n, hz, w->rate);
  double below = test_tone_amplitude(x, w->channels, n, hz - 200, w->rate);
  double above = test_tone_amplitude(x, w->channels, n, hz + 200, w->rate);
  if (a > 1e-3 && !(a > 100.0 * below && a > 100.0 * above))
    test_fail(__FILE__, __LINE__, "channel %u: %g at %g Hz, %g and %g beside",
              ch, a, hz, below, above);
  return a;
}

static void
check_db(double got, double want)
{
  double db = 20.0 * log10(got / want);
  if (!(fabs(db) <= 0.5))
    test_fail(__FILE__, __LINE__, "level %g, wanted %g (%+.2f dB)", got, want,
              db);
}

/* Both channels of a stereo file hold the tone at these levels. */
static void
check_stereo(const struct played *p, double hz, double left, double right)
{
  CHECK_INT(p->wav.channels, ==, 2);
  check_db(level(p, 0, hz), left);
  check_db(level(p, 1, hz), right);
}

/* The file holds every frame the stream returned, at the device's rate,
 * and no more than the resampler's delay after them; DRAINED came once,
 * with the position at the frames returned. */
static void
check_drained(const struct tone *t, const struct played *p)
{
  CHECK_INT(t->states[CUBEB_STATE_DRAINED], ==, 1);
  CHECK_INT(t->states[CUBEB_STATE_ERROR], ==, 0);
  CHECK_INT(t->returned, ==, t->total);
  CHECK_INT(p->position, ==, t->total);
  CHECK(!t->position_went_back && !t->position_ran_ahead);
  uint32_t rate = t->params.rate;
  uint32_t asked_most = (PERIOD * rate + DEVICE_RATE - 1) / DEVICE_RATE;
  CHECK_INT(p->latency, >=, asked_most);
  if (rate != DEVICE_RATE)
    CHECK_INT(p->latency, >, asked_most);
  uint64_t delay = p->latency - asked_most; /* stream frames */
  uint64_t least = t->total * DEVICE_RATE / rate;
  uint64_t most = ((t->total + delay) * DEVICE_RATE + rate - 1) / rate + 1;
  CHECK_INT(p->wav.frames, >=, least);
  CHECK_INT(p->wav.frames, <=, most);
}

/* 44.1 kHz mono s16 on the 48 kHz stereo device: an undefined layout
 * goes to both channels at its level, the mono layout at -3 dB each (as
 * libcubeb mixes them). Each callback asks for what a period needs,
 * 117 or 118 frames. */
TEST(rate_44100_mono_s16)
{
  static const cubeb_channel_layout layouts[] = {CUBEB_LAYOUT_UNDEFINED,
                                                 CUBEB_LAYOUT_MONO};
  static const double gains[] = {1.0, M_SQRT1_2};
  for (int i = 0; i < 2; i++) {
    struct tone t;
    tone_init(&t, CUBEB_SAMPLE_S16NE, 44100, 1, layouts[i]);
    t.amplitude[0] = 0.5;
    t.total = 44100;
    struct played p;
    play(&t, "", 1.0f, &p);
    CHECK_INT(p.wav.rate, ==, DEVICE_RATE);
    CHECK_INT(p.wav.channels, ==, 2);
    CHECK_INT(t.min_asked, >=, 117);
    CHECK_INT(t.max_asked, <=, 118);
    check_drained(&t, &p);
    check_stereo(&p, 1000.0, 0.5 * gains[i], 0.5 * gains[i]);
    aipc_sound_data_clear(&p.wav);
    tone_destroy(&t);
  }
}

/* 96 kHz float stereo, each channel its own level: 256 frames a call
 * (255 the first time, while the resampler's phase starts). */
TEST(rate_96000_stereo)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, 96000, 2, CUBEB_LAYOUT_STEREO);
  t.hz = 5000.0;
  t.amplitude[0] = 0.5;
  t.amplitude[1] = 0.25;
  t.total = 96000 + 77;
  struct played p;
  play(&t, "", 1.0f, &p);
  CHECK_INT(t.min_asked, >=, 255);
  CHECK_INT(t.max_asked, ==, 256);
  check_drained(&t, &p);
  check_stereo(&p, 5000.0, 0.5, 0.25);
  aipc_sound_data_clear(&p.wav);
  tone_destroy(&t);
}

/* Volume applies to converted streams too. */
TEST(volume_on_converted_stream)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, 44100, 2, CUBEB_LAYOUT_UNDEFINED);
  t.amplitude[0] = t.amplitude[1] = 0.5;
  t.total = 44100;
  struct played p;
  play(&t, "", 0.5f, &p);
  check_stereo(&p, 1000.0, 0.25, 0.25);
  aipc_sound_data_clear(&p.wav);
  tone_destroy(&t);
}

/* A drain mid-period: every frame returned is played (the file is as
 * long as they are, and the tone is there to its end), DRAINED comes
 * once, the position is the frames returned. */
TEST(drain_plays_every_frame)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, 44100, 1, CUBEB_LAYOUT_UNDEFINED);
  t.hz = 0.0; /* silence: only lengths count here */
  t.total = 10 * 117 + 41;
  struct played p;
  play(&t, "", 1.0f, &p);
  check_drained(&t, &p);
  aipc_sound_data_clear(&p.wav);
  tone_destroy(&t);

  /* A 400 Hz tone, whose last period is short: the file ends no sooner
   * than the tone did. */
  tone_init(&t, CUBEB_SAMPLE_S16NE, 22050, 2, CUBEB_LAYOUT_UNDEFINED);
  t.hz = 400.0;
  t.amplitude[0] = t.amplitude[1] = 0.5;
  t.total = 22050 + 13;
  play(&t, "", 1.0f, &p);
  check_drained(&t, &p);
  /* The tone's last cycle, 2.5 ms before its end, is still there. */
  uint64_t end = t.total * DEVICE_RATE / 22050;
  float peak = 0;
  for (uint64_t f = end - 240; f < end - 120; f++)
    peak = fmaxf(peak, fabsf(p.wav.samples[2 * f]));
  CHECK(peak > 0.45f);
  aipc_sound_data_clear(&p.wav);
  tone_destroy(&t);
}

/* 5.1 on the stereo device: a tone only in the centre reaches left and
 * right at 1/sqrt(2), libcubeb's centre mix level; one in the LFE too. */
TEST(surround_51_downmix_keeps_centre)
{
  static const int rates[] = {48000, 44100};
  for (int i = 0; i < 2; i++) {
    struct tone t;
    tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, (uint32_t)rates[i], 6,
              CUBEB_LAYOUT_3F2_LFE);
    t.amplitude[2] = 0.5; /* FL FR FC LFE SL SR */
    t.total = (uint64_t)rates[i];
    struct played p;
    play(&t, "", 1.0f, &p);
    CHECK_INT(p.wav.channels, ==, 2);
    check_drained(&t, &p);
    check_stereo(&p, 1000.0, 0.5 * M_SQRT1_2, 0.5 * M_SQRT1_2);
    aipc_sound_data_clear(&p.wav);
    tone_destroy(&t);
  }
}

/* 5.1 on the stereo device: a tone only in the left surround reaches
 * only the left, at 1/sqrt(2) (libcubeb's surround level, no matrix
 * encoding). */
TEST(surround_51_downmix_keeps_sides_on_their_side)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, 48000, 6, CUBEB_LAYOUT_3F2_LFE);
  t.amplitude[4] = 0.5; /* FL FR FC LFE SL SR */
  t.total = 48000;
  struct played p;
  play(&t, "", 1.0f, &p);
  CHECK_INT(p.wav.channels, ==, 2);
  check_db(level(&p, 0, 1000.0), 0.5 * M_SQRT1_2);
  CHECK(level(&p, 1, 1000.0) < 1e-3);
  aipc_sound_data_clear(&p.wav);
  tone_destroy(&t);
}

/* Big-endian streams at the device's rate arrive as their little-endian
 * twins would: float bit for bit, s16 as v / 32768. */
TEST(big_endian_output)
{
  static const cubeb_sample_format formats[] = {CUBEB_SAMPLE_FLOAT32BE,
                                                CUBEB_SAMPLE_S16BE};
  for (int i = 0; i < 2; i++) {
    struct tone t;
    tone_init(&t, formats[i], DEVICE_RATE, 2, CUBEB_LAYOUT_UNDEFINED);
    t.hz = 1234.5;
    t.amplitude[0] = 0.6;
    t.amplitude[1] = -0.3;
    t.total = 4 * PERIOD + 5;
    struct played p;
    play(&t, "", 1.0f, &p);
    CHECK_INT(p.position, ==, t.total);
    CHECK_INT(p.wav.frames, ==, t.total);
    for (uint64_t f = 0; f < t.total; f++) {
      for (uint32_t c = 0; c < 2; c++) {
        double v =
            t.amplitude[c] * sin(2.0 * M_PI * t.hz * (double)f / DEVICE_RATE);
        float want = is_s16(formats[i])
                         ? (float)(int16_t)lrint(v * 32767.0) / 32768.0f
                         : (float)v;
        CHECK(p.wav.samples[2 * f + c] == want);
      }
    }
    aipc_sound_data_clear(&p.wav);
    tone_destroy(&t);
  }
}

/* Records `t` (t->total frames) from a device with `extra` options. */
static void
record(struct tone *t, const char *extra)
{
  struct tmp tmp;
  tmp_make(&tmp);
  cubeb *ctx = device(extra, tmp.path);
  t->recorded_cap = t->total * t->params.channels;
  t->recorded = calloc(t->recorded_cap, sizeof(float));
  CHECK_INT(cubeb_stream_init(ctx, &t->stm, "rec", NULL, &t->params, NULL, NULL,
                              PERIOD, tone_cb, tone_state, t),
            ==, CUBEB_OK);
  uint32_t latency = 0;
  CHECK_INT(cubeb_stream_get_input_latency(t->stm, &latency), ==, CUBEB_OK);
  if (t->params.rate != DEVICE_RATE)
    CHECK_INT(latency, >, PERIOD * t->params.rate / DEVICE_RATE + 1);
  CHECK_INT(cubeb_stream_start(t->stm), ==, CUBEB_OK);
  wait_drained(t);
  cubeb_stream_destroy(t->stm);
  cubeb_destroy(ctx);
  tmp_remove(&tmp);
  CHECK_INT(t->recorded_len, ==, t->recorded_cap);
}

/* The sine generator at 48 kHz reaches a 44.1 kHz mono s16 input stream
 * at its frequency and level. */
TEST(input_44100_mono_s16_gets_sine)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_S16NE, 44100, 1, CUBEB_LAYOUT_UNDEFINED);
  t.total = 44100;
  record(&t, "in=sine:1000");
  CHECK_INT(t.min_asked, >=, 117);
  CHECK_INT(t.max_asked, <=, 118);
  const float *x = t.recorded + 4410;
  uint64_t n = t.recorded_len - 4410;
  double a = test_tone_amplitude(x, 1, n, 1000.0, 44100);
  double beside = fmax(test_tone_amplitude(x, 1, n, 800.0, 44100),
                       test_tone_amplitude(x, 1, n, 1200.0, 44100));
  check_db(a, 0.5);
  CHECK(a > 100.0 * beside);
  tone_destroy(&t);
}

/* Big-endian input at the device's rate: the sine, swapped (the
 * generator's phase arithmetic differs from this one's in the last
 * bit). */
TEST(big_endian_input)
{
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32BE, DEVICE_RATE, 2, CUBEB_LAYOUT_UNDEFINED);
  t.total = 3 * PERIOD;
  record(&t, "in=sine:1000");
  for (uint64_t f = 0; f < t.total; f++) {
    float want =
        (float)(0.5 * sin(2.0 * M_PI * 1000.0 * (double)f / DEVICE_RATE));
    CHECK(fabsf(t.recorded[2 * f] - want) < 1e-6f);
    CHECK(t.recorded[2 * f + 1] == t.recorded[2 * f]);
  }
  tone_destroy(&t);
}

static void
split_begin(void *user, const void *input, long frames)
{
}

static long
split_end(void *user, void *output, long frames, int64_t deadline_ns)
{
  return frames;
}

/* The split path is offered by the most frames a stream is asked for:
 * a period, or twice that at 96 kHz on the 48 kHz device. */
TEST(split_takes_the_largest_request)
{
  static const struct aipc_virtual_split split = {split_begin, split_end};
  struct tmp tmp;
  tmp_make(&tmp);
  cubeb *ctx = device("", tmp.path);
  struct tone t;
  tone_init(&t, CUBEB_SAMPLE_FLOAT32NE, 96000, 2, CUBEB_LAYOUT_UNDEFINED);
  CHECK_INT(cubeb_stream_init(ctx, &t.stm, "split", NULL, NULL, NULL, &t.params,
                              PERIOD, tone_cb, tone_state, &t),
            ==, CUBEB_OK);
  CHECK(!aipc_virtual_stream_set_split(t.stm, &split, NULL, 2 * PERIOD - 1));
  CHECK(aipc_virtual_stream_set_split(t.stm, &split, NULL, 2 * PERIOD));
  cubeb_stream_destroy(t.stm);
  t.params.rate = DEVICE_RATE;
  CHECK_INT(cubeb_stream_init(ctx, &t.stm, "split", NULL, NULL, NULL, &t.params,
                              PERIOD, tone_cb, tone_state, &t),
            ==, CUBEB_OK);
  CHECK(!aipc_virtual_stream_set_split(t.stm, &split, NULL, PERIOD - 1));
  CHECK(aipc_virtual_stream_set_split(t.stm, &split, NULL, PERIOD));
  cubeb_stream_destroy(t.stm);
  cubeb_destroy(ctx);
  tmp_remove(&tmp);
  tone_destroy(&t);
}
