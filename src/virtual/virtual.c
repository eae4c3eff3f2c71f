/* SPDX-License-Identifier: ISC */
#include "virtual.h"

#include "clock.h"
#include "convert.h"
#include "cubeb-ops.h"
#include "log.h"
#include "options.h"
#include "resample.h"
#include "sound-file.h"
#include "thread.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Streams may have more channels than the device (they are mixed down),
 * but not without bound: their buffers are period-sized. */
#define STREAM_MAX_CHANNELS 32
/* libcubeb's bounds (its validate_stream_params). */
#define STREAM_MIN_RATE 1000
#define STREAM_MAX_RATE 192000
#define INPUT_FILE_MAX_CHANNELS 32

/* The realtime clock sleeps at most this long at once, so that closing
 * the device never waits for the end of a long period. */
#define SLEEP_SLICE_NS (50 * AIPC_NSEC_PER_MSEC)
/* Further behind than this, the realtime clock starts a new timeline
 * rather than run the missed periods back to back. */
#define LATE_LIMIT_NS (200 * AIPC_NSEC_PER_MSEC)

enum stream_state {
  STREAM_STOPPED,
  STREAM_STARTED,
  STREAM_DRAINED,
  STREAM_ERROR,
};

/*
 * One per distinct option string, shared by every context created with
 * it. Lock order: registry.lock, then device.lock. No user callback runs
 * with either held.
 */
struct device {
  /* registry.lock */
  struct device *next;
  char *key;
  unsigned refs;
  bool closing;

  /* Immutable once the clock thread runs. */
  struct aipc_virtual_options opts;
  struct aipc_sound_data input; /* AIPC_VIRTUAL_SOURCE_FILE, at opts.rate */
  pthread_t thread;

  pthread_mutex_t lock;
  pthread_cond_t wake; /* the clock thread waits for a started stream */
  pthread_cond_t idle; /* stop and destroy wait for a callback to end */
  /* Written under lock; the realtime sleep also reads it without. */
  atomic_bool quit;
  unsigned active; /* streams in STREAM_STARTED */
  struct cubeb_stream *streams;
  struct cubeb_stream *busy; /* whose callback the clock thread is in */
  bool busy_in_data;         /* its data callback, not its state callback */

  /* Clock thread only, then device_release after the join. */
  float *mix;
  int16_t *mix16;
  SNDFILE *out; /* opts.out_path */
  uint64_t out_frames, out_max_frames;
  uint64_t frames_since_sync;
  bool out_failed;
};

struct cubeb {
  const struct cubeb_ops *ops; /* first: libcubeb dispatches through it */
  struct device *dev;
  char *name;

  /* registry.lock */
  struct cubeb *next;
  cubeb_device_type collection_type;
  cubeb_device_collection_changed_callback collection_cb;
  void *collection_user_ptr;

  /* Only their addresses matter: they are this context's devids. */
  char output_devid;
  char input_devid;
};

struct cubeb_stream {
  cubeb *context; /* first two: libcubeb reads them directly */
  void *user_ptr;

  struct device *dev;
  cubeb_data_callback data_cb;
  cubeb_state_callback state_cb;
  cubeb_sample_format format;
  uint32_t in_channels;  /* 0: no input */
  uint32_t out_channels; /* 0: no output */
  size_t in_frame_bytes, out_frame_bytes;
  void *in_buf;
  void *out_buf;
  /* NULL where the stream has the device's format (convert.h). */
  struct aipc_convert *in_conv, *out_conv;
  uint32_t max_frames; /* the most a callback is asked for */

  /* dev->lock */
  struct cubeb_stream *next;
  enum stream_state state;
  const struct aipc_virtual_split *split; /* see virtual.h */
  void *split_user;
  bool pending; /* asked this period (split), not yet collected */
  bool doomed;  /* destroyed from its own callback; the clock thread frees */
  bool input_muted;
  float volume;
  uint64_t position;
  char *name;
  cubeb_device_changed_callback changed_cb;

  /* Clock thread only. */
  uint64_t in_frames;
  uint32_t asked; /* frames asked of the callback this period */
  bool draining;  /* a converted stream's tail plays out: no callbacks */
};

static struct {
  pthread_mutex_t lock;
  pthread_cond_t closed; /* a closing device has left the list */
  struct device *devices;
  struct cubeb *contexts;
} registry = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .closed = PTHREAD_COND_INITIALIZER,
};

/*
 * The test hooks call device-changed and collection-changed callbacks
 * with no lock of ours held, but under this one, which destroying a
 * stream or context and unregistering a callback also take: once they
 * return, no hook is in a callback that names what they took away. A
 * callback may unregister or destroy from within (in_notify). Taken
 * before registry.lock and any device's lock, never under them.
 */
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool in_notify;

static void
quiesce_begin(void)
{
  if (!in_notify)
    pthread_mutex_lock(&notify_lock);
}

static void
quiesce_end(void)
{
  if (!in_notify)
    pthread_mutex_unlock(&notify_lock);
}

/* Realtime periods run, and those started more than LATE_WAKE_NS late,
 * over every device in the process. */
#define LATE_WAKE_NS AIPC_NSEC_PER_MSEC
static struct {
  atomic_uint_fast64_t periods, late;
} timing;

void
aipc_virtual_timing(uint64_t *periods, uint64_t *late_wakes)
{
  *periods = atomic_load(&timing.periods);
  *late_wakes = atomic_load(&timing.late);
}

/* Set on each clock thread: calls from a callback must not wait for the
 * callback to end. */
static _Thread_local struct device *clock_device;

static float
load_sample(cubeb_sample_format format, const void *buf, size_t i)
{
  if (format == CUBEB_SAMPLE_S16NE)
    return (float)((const int16_t *)buf)[i] / 32768.0f;
  return ((const float *)buf)[i];
}

static void
store_sample(cubeb_sample_format format, void *buf, size_t i, float v)
{
  if (format == CUBEB_SAMPLE_S16NE)
    ((int16_t *)buf)[i] = aipc_sample_to_s16(v);
  else
    ((float *)buf)[i] = v;
}

static float
sine_sample(double hz, uint32_t rate, uint64_t k)
{
  /* Whole seconds apart from the rest keeps the phase exact over long
   * runs for whole-number frequencies. */
  double cycles =
      fmod(hz * (double)(k / rate), 1.0) + hz * (double)(k % rate) / rate;
  return (float)(0.5 * sin(2.0 * M_PI * cycles));
}

static int64_t
frames_to_ns(uint64_t frames, uint32_t rate)
{
  return (int64_t)(frames / rate) * AIPC_NSEC_PER_SEC +
         (int64_t)(frames % rate) * AIPC_NSEC_PER_SEC / rate;
}

/* Clock thread. */
static void
fill_input(struct device *dev, struct cubeb_stream *stm, bool muted)
{
  const struct aipc_virtual_options *o = &dev->opts;
  uint32_t channels = stm->in_channels;
  uint64_t k = stm->in_frames;
  stm->in_frames += o->period;
  if (muted || o->source == AIPC_VIRTUAL_SOURCE_SILENCE) {
    memset(stm->in_buf, 0, (size_t)o->period * stm->in_frame_bytes);
    return;
  }
  const struct aipc_sound_data *file = &dev->input;
  for (uint32_t f = 0; f < o->period; f++, k++) {
    float sine = 0;
    const float *frame = NULL;
    if (o->source == AIPC_VIRTUAL_SOURCE_SINE)
      sine = sine_sample(o->sine_hz, o->rate, k);
    else
      frame = file->samples + (k % file->frames) * file->channels;
    for (uint32_t c = 0; c < channels; c++) {
      float v = sine;
      if (frame) {
        uint32_t src = file->channels == 1 ? 0 : c;
        v = src < file->channels ? frame[src] : 0.0f;
      }
      store_sample(stm->format, stm->in_buf, (size_t)f * channels + c, v);
    }
  }
}

/* The device's input channels: the file's, or the output's. */
static uint32_t
input_channels(const struct device *dev)
{
  return dev->opts.source == AIPC_VIRTUAL_SOURCE_FILE ? dev->input.channels
                                                      : dev->opts.channels;
}

/* Clock thread. A period of the device's own input, in its channels, for
 * a converted stream. */
static void
generate_input(struct device *dev, struct cubeb_stream *stm, bool muted)
{
  const struct aipc_virtual_options *o = &dev->opts;
  float *area = aipc_convert_in_area(stm->in_conv);
  uint32_t channels = input_channels(dev);
  uint64_t k = stm->in_frames;
  stm->in_frames += o->period;
  if (muted || o->source == AIPC_VIRTUAL_SOURCE_SILENCE) {
    memset(area, 0, (size_t)o->period * channels * sizeof(float));
    return;
  }
  const struct aipc_sound_data *file = &dev->input;
  for (uint32_t f = 0; f < o->period; f++, k++) {
    float *to = area + (size_t)f * channels;
    if (o->source == AIPC_VIRTUAL_SOURCE_FILE) {
      memcpy(to, file->samples + (k % file->frames) * channels,
             channels * sizeof(float));
      continue;
    }
    float sine = sine_sample(o->sine_hz, o->rate, k);
    for (uint32_t c = 0; c < channels; c++)
      to[c] = sine;
  }
}

/* Clock thread, without dev->lock. Readies the stream's input for this
 * period and returns how many frames its callback is asked for: a period,
 * or what the conversions make of one (maybe 0). */
static uint32_t
stream_prepare(struct device *dev, struct cubeb_stream *stm, bool muted)
{
  uint32_t frames = dev->opts.period;
  if (stm->out_conv)
    frames = aipc_convert_out_wanted(stm->out_conv);
  if (stm->in_conv) {
    generate_input(dev, stm, muted);
    aipc_convert_in_capture(stm->in_conv);
    /* Duplex streams have one rate: what the output asks for has come
     * in (convert.h). */
    if (!stm->out_channels)
      frames = aipc_convert_in_available(stm->in_conv);
    if (frames > stm->max_frames)
      frames = stm->max_frames;
    aipc_convert_in_pull(stm->in_conv, stm->in_buf, frames);
  } else if (stm->in_channels) {
    fill_input(dev, stm, muted);
  }
  stm->asked = frames;
  return frames;
}

/* Clock thread, without dev->lock. For the streams that need no
 * conversion (their channels are the device's). */
static void
mix_stream(struct device *dev, const struct cubeb_stream *stm, uint32_t frames,
           float volume)
{
  uint32_t dev_channels = dev->opts.channels;
  uint32_t stm_channels = stm->out_channels;
  for (uint32_t f = 0; f < frames; f++) {
    float *out = dev->mix + (size_t)f * dev_channels;
    size_t in = (size_t)f * stm_channels;
    for (uint32_t c = 0; c < dev_channels; c++) {
      uint32_t src = stm_channels == 1 ? 0 : c;
      if (src >= stm_channels)
        break;
      out[c] += load_sample(stm->format, stm->out_buf, in + src) * volume;
    }
  }
}

/* Clock thread. libsndfile writes an uncompressed container (the
 * device refuses others) straight from our buffer: a write(), no
 * allocation; the header, once a second, a seek and a write. */
static void
write_mix(struct device *dev, uint32_t frames)
{
  char why[AIPC_SOUND_WHY_MAX];
  if (frames > dev->out_max_frames - dev->out_frames) {
    dev->out_failed = true;
    aipc_error("virtual device: writing %s: its container can hold no "
               "more; recording stops",
               dev->opts.out_path);
    return;
  }
  dev->out_frames += frames;
  sf_count_t written;
  if (dev->opts.is_float) {
    written = sf_writef_float(dev->out, dev->mix, frames);
  } else {
    size_t count = (size_t)frames * dev->opts.channels;
    for (size_t i = 0; i < count; i++)
      dev->mix16[i] = aipc_sample_to_s16(dev->mix[i]);
    written = sf_writef_short(dev->out, dev->mix16, frames);
  }
  int r = 0;
  if (written != (sf_count_t)frames) {
    snprintf(why, sizeof(why), "%s", sf_strerror(dev->out));
    r = -EIO;
  } else {
    /* Keep the header current, for a process that dies before close. */
    dev->frames_since_sync += frames;
    if (dev->frames_since_sync >= dev->opts.rate) {
      dev->frames_since_sync = 0;
      r = aipc_sound_sync(dev->out, why, sizeof(why));
    }
  }
  if (r < 0) {
    dev->out_failed = true;
    aipc_error("virtual device: writing %s: %s; recording stops",
               dev->opts.out_path, why);
  }
}

static void
unlink_stream(struct device *dev, struct cubeb_stream *stm)
{
  for (struct cubeb_stream **p = &dev->streams; *p; p = &(*p)->next) {
    if (*p == stm) {
      *p = stm->next;
      return;
    }
  }
}

static void
stream_free(struct cubeb_stream *stm)
{
  aipc_convert_destroy(stm->in_conv);
  aipc_convert_destroy(stm->out_conv);
  free(stm->in_buf);
  free(stm->out_buf);
  free(stm->name);
  free(stm);
}

/* How far past its time a period may be collected: two periods, but at
 * least 20 ms (a loaded machine's jitter; the bound a real backend's
 * callback gets, AIPC_DEADLINE_NS in the server). The device's
 * schedule is absolute, so however late one period ends, the next ones
 * are still due at their own times: whoever is slow, the device keeps
 * real time. */
#define SPLIT_SLACK_MIN_NS (20 * AIPC_NSEC_PER_MSEC)

/* Clock thread, with dev->lock held; drops it around every callback.
 * `due` is when this period was due (realtime clock), or -1; `overslept`
 * if the machine woke the clock thread late for it. */
static void
run_period(struct device *dev, int64_t due, bool overslept)
{
  const uint32_t period = dev->opts.period;
  const size_t samples = (size_t)period * dev->opts.channels;
  uint32_t frames = 0; /* the most frames any stream played */
  bool mixed = false;

  /* The split streams' shared deadline (virtual.h): the period's time
   * plus the slack; or, if the device runs later than that, a period
   * from now while it catches up (which still keeps real time whoever is
   * slow), and the slack from now in the period the machine woke it late
   * for (the clients were stalled with it). */
  int64_t deadline = -1;
  if (due >= 0) {
    int64_t period_ns = frames_to_ns(period, dev->opts.rate);
    int64_t slack =
        2 * period_ns > SPLIT_SLACK_MIN_NS ? 2 * period_ns : SPLIT_SLACK_MIN_NS;
    int64_t floor = aipc_now_ns() + (overslept ? slack : period_ns);
    deadline = due + slack > floor ? due + slack : floor;
  }

  /* -0.0 is the identity of float addition: a lone stream passes
   * bit-exact, negative zeros included. */
  for (size_t i = 0; i < samples; i++)
    dev->mix[i] = -0.0f;

  /* Fan-out: ask every split-phase stream before waiting for any. A
   * pending stream cannot be unlinked (destroy waits for it). */
  for (struct cubeb_stream *stm = dev->streams; stm; stm = stm->next) {
    if (stm->state != STREAM_STARTED || !stm->split || stm->draining)
      continue;
    stm->pending = true;
    bool muted = stm->input_muted;
    pthread_mutex_unlock(&dev->lock);
    uint32_t asked = stream_prepare(dev, stm, muted);
    if (asked > 0)
      stm->split->begin(stm->split_user, stm->in_channels ? stm->in_buf : NULL,
                        (long)asked);
    pthread_mutex_lock(&dev->lock);
  }

  struct cubeb_stream *stm = dev->streams;
  while (stm) {
    /* A pending stream stopped meanwhile is still collected. */
    if (stm->state != STREAM_STARTED && !stm->pending) {
      stm = stm->next;
      continue;
    }
    bool split = stm->pending;
    dev->busy = stm;
    dev->busy_in_data = true;
    float volume = stm->volume;
    bool muted = stm->input_muted;
    pthread_mutex_unlock(&dev->lock);

    /* A draining stream only plays out what it has. */
    bool draining = stm->draining;
    uint32_t asked = 0;
    if (!draining)
      asked = split ? stm->asked : stream_prepare(dev, stm, muted);
    if (asked > 0 && stm->out_channels)
      memset(stm->out_buf, 0, (size_t)asked * stm->out_frame_bytes);
    long n = 0;
    if (asked > 0)
      n = split ? stm->split->end(stm->split_user,
                                  stm->out_channels ? stm->out_buf : NULL,
                                  (long)asked, deadline)
                : stm->data_cb(stm, stm->user_ptr, stm->in_buf, stm->out_buf,
                               (long)asked);
    bool valid = n >= 0 && n <= (long)asked;
    uint32_t played = 0;
    if (valid && stm->out_conv) {
      if (!draining)
        aipc_convert_out_push(stm->out_conv, stm->out_buf, (uint32_t)n,
                              n < (long)asked);
      played = aipc_convert_out_mix(stm->out_conv, dev->mix, volume);
      mixed |= played > 0;
    } else if (valid) {
      /* Input-only streams count too, as they always have. */
      played = (uint32_t)n;
      if (n > 0 && stm->out_channels) {
        mix_stream(dev, stm, (uint32_t)n, volume);
        mixed = true;
      }
    }

    pthread_mutex_lock(&dev->lock);
    bool ended = !valid || n < (long)asked;
    if (valid) {
      if (stm->out_conv) {
        /* Converted output drains once its queue has played out. */
        stm->position = aipc_convert_out_played(stm->out_conv);
        stm->draining = draining || n < (long)asked;
        ended = stm->draining && aipc_convert_out_empty(stm->out_conv);
      } else {
        stm->position += (uint64_t)n;
      }
      if (played > frames)
        frames = played;
    }
    /* A stream stopped meanwhile has been told so already. */
    if (stm->state == STREAM_STARTED && ended) {
      stm->draining = false;
      stm->state = valid ? STREAM_DRAINED : STREAM_ERROR;
      dev->active--;
      dev->busy_in_data = false;
      pthread_mutex_unlock(&dev->lock);
      stm->state_cb(stm, stm->user_ptr,
                    valid ? CUBEB_STATE_DRAINED : CUBEB_STATE_ERROR);
      pthread_mutex_lock(&dev->lock);
    }
    stm->pending = false;
    dev->busy = NULL;
    pthread_cond_broadcast(&dev->idle);
    struct cubeb_stream *next = stm->next;
    if (stm->doomed) {
      pthread_mutex_unlock(&dev->lock);
      quiesce_begin();
      pthread_mutex_lock(&dev->lock);
      next = stm->next;
      unlink_stream(dev, stm);
      quiesce_end();
      stream_free(stm);
    }
    stm = next;
  }

  if (frames == 0 || !dev->out || dev->out_failed)
    return;
  if (!mixed)
    memset(dev->mix, 0, samples * sizeof(float));
  pthread_mutex_unlock(&dev->lock);
  write_mix(dev, frames);
  pthread_mutex_lock(&dev->lock);
}

/* Clock thread, without dev->lock. */
static void
sleep_until(struct device *dev, int64_t deadline)
{
  for (;;) {
    int64_t now = aipc_now_ns();
    if (now >= deadline || atomic_load(&dev->quit))
      return;
    int64_t until =
        deadline - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : deadline;
    struct timespec ts = aipc_timespec_from_ns(until);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
  }
}

/* Clock thread. */
static void
clock_main(void *data)
{
  struct device *dev = data;
  const struct aipc_virtual_options *o = &dev->opts;
  bool restart = true, slept = false;
  int64_t base = 0;
  uint64_t frames = 0; /* played since base */

  clock_device = dev;
  /* Only a paced clock: a fast one never sleeps between periods and would
   * starve everything else at real-time priority. */
  if (o->clock == AIPC_VIRTUAL_CLOCK_REALTIME)
    aipc_thread_promote();
  pthread_mutex_lock(&dev->lock);
  while (!atomic_load(&dev->quit)) {
    if (dev->active == 0) {
      pthread_cond_wait(&dev->wake, &dev->lock);
      restart = true;
      continue;
    }
    if (o->clock == AIPC_VIRTUAL_CLOCK_REALTIME) {
      int64_t now = aipc_now_ns();
      int64_t deadline = base + frames_to_ns(frames, o->rate);
      int64_t late = restart ? 0 : now - deadline;
      if (restart || late > LATE_LIMIT_NS) {
        base = deadline = now;
        frames = 0;
        restart = false;
      }
      if (deadline > now) {
        pthread_mutex_unlock(&dev->lock);
        sleep_until(dev, deadline);
        pthread_mutex_lock(&dev->lock);
        slept = true;
        continue; /* streams may have stopped, or the device closed */
      }
      /* Woken late by the machine: no design absorbs that, so it is
       * counted apart. */
      atomic_fetch_add_explicit(&timing.periods, 1, memory_order_relaxed);
      if (late > LATE_WAKE_NS)
        atomic_fetch_add_explicit(&timing.late, 1, memory_order_relaxed);
    }
    bool realtime = o->clock == AIPC_VIRTUAL_CLOCK_REALTIME;
    int64_t due = base + frames_to_ns(frames, o->rate);
    run_period(dev, realtime ? due : -1,
               realtime && slept && aipc_now_ns() - due > LATE_WAKE_NS);
    slept = false;
    frames += o->period;
  }
  pthread_mutex_unlock(&dev->lock);
}

/* Brings an input file to the device's rate, once, before the clock
 * runs. The filter's delay is cut from the start, so that the file's
 * first frame is the input's first; its tail, the last few frames, is
 * left out, which a looped input does not miss. Returns 0 or a negative
 * errno with `why`. */
static int
input_resample(struct aipc_sound_data *data, uint32_t rate, char *why,
               size_t why_size)
{
  struct aipc_resampler *rs;
  int r = aipc_resampler_new(&rs, data->channels, data->rate, rate,
                             AIPC_RESAMPLER_QUALITY);
  if (r < 0) {
    snprintf(why, why_size, "cannot resample %u Hz to %u Hz: %s", data->rate,
             rate, strerror(-r));
    return r;
  }
  /* aipc_sound_load keeps files far below 2^32 frames. */
  uint64_t total = 0;
  uint64_t room = aipc_resampler_output_for(rs, (uint32_t)data->frames);
  float *out = room ? malloc(room * data->channels * sizeof(float)) : NULL;
  if (!out) {
    aipc_resampler_destroy(rs);
    snprintf(why, why_size, "%s",
             room ? "out of memory" : "too short to resample");
    return room ? -ENOMEM : -ENODATA;
  }
  for (uint64_t done = 0; done < data->frames;) {
    uint64_t left = data->frames - done;
    uint32_t n = left > 65536 ? 65536 : (uint32_t)left;
    total += aipc_resampler_process(rs, data->samples + done * data->channels,
                                    n, out + total * data->channels,
                                    (uint32_t)(room - total));
    done += n;
  }
  uint64_t delay = (uint64_t)aipc_resampler_latency(rs) * rate / data->rate;
  aipc_resampler_destroy(rs);
  if (total <= delay) {
    free(out);
    snprintf(why, why_size, "too short to resample");
    return -ENODATA;
  }
  memmove(out, out + delay * data->channels,
          (total - delay) * data->channels * sizeof(float));
  free(data->samples);
  data->samples = out;
  data->frames = total - delay;
  data->rate = rate;
  return 0;
}

static void
device_free(struct device *dev)
{
  while (dev->streams) {
    struct cubeb_stream *stm = dev->streams;
    dev->streams = stm->next;
    stream_free(stm);
  }
  if (dev->out)
    sf_close(dev->out);
  aipc_sound_data_clear(&dev->input);
  aipc_virtual_options_clear(&dev->opts);
  free(dev->mix);
  free(dev->mix16);
  free(dev->key);
  pthread_cond_destroy(&dev->idle);
  pthread_cond_destroy(&dev->wake);
  pthread_mutex_destroy(&dev->lock);
  free(dev);
}

/* Returns 0, -EINVAL for options we refuse (after logging why), or
 * another -errno. */
static int
device_new(const char *key, struct device **out)
{
  struct device *dev = calloc(1, sizeof(*dev));
  if (!dev)
    return -ENOMEM;
  pthread_mutex_init(&dev->lock, NULL);
  pthread_cond_init(&dev->wake, NULL);
  pthread_cond_init(&dev->idle, NULL);
  atomic_init(&dev->quit, false);

  const struct aipc_virtual_options *o = &dev->opts;
  int r = aipc_virtual_options_parse(key, &dev->opts);
  if (r < 0)
    goto fail;
  size_t samples = (size_t)o->period * o->channels;
  dev->key = strdup(key);
  dev->mix = calloc(samples, sizeof(float));
  if (!o->is_float)
    dev->mix16 = calloc(samples, sizeof(int16_t));
  if (!dev->key || !dev->mix || (!o->is_float && !dev->mix16)) {
    r = -ENOMEM;
    goto fail;
  }
  char why[AIPC_SOUND_WHY_MAX];
  if (o->source == AIPC_VIRTUAL_SOURCE_FILE) {
    r = aipc_sound_load(o->in_path, INPUT_FILE_MAX_CHANNELS, &dev->input, why,
                        sizeof(why));
    if (r == 0 && dev->input.rate != o->rate)
      r = input_resample(&dev->input, o->rate, why, sizeof(why));
    if (r < 0) {
      aipc_error("virtual device: option 'in': %s: %s", o->in_path, why);
      r = -EINVAL;
      goto fail;
    }
  }
  if (o->out_path) {
    int format;
    r = aipc_sound_format_for(
        o->out_path, o->is_float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16,
        o->channels, o->rate, true, &format, why, sizeof(why));
    if (r == 0)
      r = aipc_sound_create(o->out_path, format, o->channels, o->rate,
                            &dev->out, why, sizeof(why));
    dev->out_max_frames = aipc_sound_max_frames(format, o->channels);
    if (r < 0) {
      aipc_error("virtual device: option 'out': %s: %s", o->out_path, why);
      r = -EINVAL;
      goto fail;
    }
  }
  r = aipc_thread_start(&dev->thread, "aipc-virtual", NULL, clock_main, dev);
  if (r < 0) {
    aipc_error("virtual device: starting the clock thread: %s", strerror(-r));
    goto fail;
  }
  *out = dev;
  return 0;

fail:
  device_free(dev);
  return r;
}

static int
device_acquire(const char *key, struct device **out)
{
  int r = 0;
  struct device *dev;
  pthread_mutex_lock(&registry.lock);
  for (;;) {
    for (dev = registry.devices; dev; dev = dev->next) {
      if (strcmp(dev->key, key) == 0)
        break;
    }
    if (!dev || !dev->closing)
      break;
    /* Its WAV file may be ours next: let it finish first. */
    pthread_cond_wait(&registry.closed, &registry.lock);
  }
  if (dev) {
    dev->refs++;
  } else {
    r = device_new(key, &dev);
    if (r == 0) {
      dev->refs = 1;
      dev->next = registry.devices;
      registry.devices = dev;
    }
  }
  pthread_mutex_unlock(&registry.lock);
  if (r == 0)
    *out = dev;
  return r;
}

static void
device_release(struct device *dev)
{
  pthread_mutex_lock(&registry.lock);
  bool last = --dev->refs == 0;
  if (last)
    dev->closing = true;
  pthread_mutex_unlock(&registry.lock);
  if (!last)
    return;

  /* Without registry.lock: a callback still running may need it. */
  pthread_mutex_lock(&dev->lock);
  atomic_store(&dev->quit, true);
  pthread_cond_signal(&dev->wake);
  pthread_mutex_unlock(&dev->lock);
  pthread_join(dev->thread, NULL);
  if (dev->out) {
    char why[AIPC_SOUND_WHY_MAX];
    int r = aipc_sound_close(dev->out, why, sizeof(why));
    dev->out = NULL;
    if (r < 0 && !dev->out_failed)
      aipc_error("virtual device: finishing %s: %s", dev->opts.out_path, why);
  }

  pthread_mutex_lock(&registry.lock);
  for (struct device **p = &registry.devices; *p; p = &(*p)->next) {
    if (*p == dev) {
      *p = dev->next;
      break;
    }
  }
  pthread_cond_broadcast(&registry.closed);
  pthread_mutex_unlock(&registry.lock);
  device_free(dev);
}

static int
virtual_init_default(cubeb **context, const char *context_name)
{
  return aipc_virtual_init(context, context_name, NULL);
}

static const char *
virtual_get_backend_id(cubeb *ctx)
{
  return "virtual";
}

static int
virtual_get_max_channel_count(cubeb *ctx, uint32_t *max_channels)
{
  if (!ctx || !max_channels)
    return CUBEB_ERROR_INVALID_PARAMETER;
  *max_channels = ctx->dev->opts.channels;
  return CUBEB_OK;
}

static int
virtual_get_min_latency(cubeb *ctx, cubeb_stream_params params,
                        uint32_t *latency_frames)
{
  if (!ctx || !latency_frames)
    return CUBEB_ERROR_INVALID_PARAMETER;
  *latency_frames = ctx->dev->opts.period;
  return CUBEB_OK;
}

static int
virtual_get_preferred_sample_rate(cubeb *ctx, uint32_t *rate)
{
  if (!ctx || !rate)
    return CUBEB_ERROR_INVALID_PARAMETER;
  *rate = ctx->dev->opts.rate;
  return CUBEB_OK;
}

#if AIPC_CUBEB_OPS_24
static int
virtual_get_supported_input_processing_params(
    cubeb *ctx, cubeb_input_processing_params *params)
{
  if (!ctx || !params)
    return CUBEB_ERROR_INVALID_PARAMETER;
  *params = CUBEB_INPUT_PROCESSING_PARAM_NONE;
  return CUBEB_OK;
}
#endif

static void
device_info_clear(cubeb_device_info *info)
{
  free((char *)info->device_id);
  free((char *)info->friendly_name);
  free((char *)info->group_id);
  free((char *)info->vendor_name);
}

static int
device_info_fill(cubeb *ctx, bool output, cubeb_device_info *info)
{
  const struct device *dev = ctx->dev;
  const struct aipc_virtual_options *o = &dev->opts;
  uint32_t channels = o->channels;
  if (!output && o->source == AIPC_VIRTUAL_SOURCE_FILE)
    channels = dev->input.channels;
  *info = (cubeb_device_info){
      .devid = output ? &ctx->output_devid : &ctx->input_devid,
      .device_id = strdup(output ? "virtual-out" : "virtual-in"),
      .friendly_name = strdup(output ? "Virtual Output" : "Virtual Input"),
      .group_id = strdup("virtual"),
      .vendor_name = strdup("audioipc"),
      .type = output ? CUBEB_DEVICE_TYPE_OUTPUT : CUBEB_DEVICE_TYPE_INPUT,
      .state = CUBEB_DEVICE_STATE_ENABLED,
      .preferred = CUBEB_DEVICE_PREF_ALL,
      /* What streams may have: the device converts (convert.h). */
      .format = CUBEB_DEVICE_FMT_ALL,
      .default_format =
          o->is_float ? CUBEB_DEVICE_FMT_F32NE : CUBEB_DEVICE_FMT_S16NE,
      .max_channels = channels,
      .default_rate = o->rate,
      .max_rate = STREAM_MAX_RATE,
      .min_rate = STREAM_MIN_RATE,
      .latency_lo = o->period,
      .latency_hi = o->period,
  };
  if (!info->device_id || !info->friendly_name || !info->group_id ||
      !info->vendor_name) {
    device_info_clear(info);
    return -ENOMEM;
  }
  return 0;
}

static int
virtual_enumerate_devices(cubeb *ctx, cubeb_device_type type,
                          cubeb_device_collection *collection)
{
  if (!ctx || !collection ||
      !(type & (CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT)))
    return CUBEB_ERROR_INVALID_PARAMETER;
  cubeb_device_info *infos = calloc(2, sizeof(*infos));
  if (!infos)
    return CUBEB_ERROR;
  size_t count = 0;
  int r = 0;
  if (type & CUBEB_DEVICE_TYPE_OUTPUT) {
    r = device_info_fill(ctx, true, &infos[count]);
    if (r == 0)
      count++;
  }
  if (r == 0 && (type & CUBEB_DEVICE_TYPE_INPUT)) {
    r = device_info_fill(ctx, false, &infos[count]);
    if (r == 0)
      count++;
  }
  if (r < 0) {
    for (size_t i = 0; i < count; i++)
      device_info_clear(&infos[i]);
    free(infos);
    return CUBEB_ERROR;
  }
  collection->device = infos;
  collection->count = count;
  return CUBEB_OK;
}

static int
virtual_device_collection_destroy(cubeb *ctx,
                                  cubeb_device_collection *collection)
{
  if (!collection)
    return CUBEB_ERROR_INVALID_PARAMETER;
  for (size_t i = 0; i < collection->count; i++)
    device_info_clear(&collection->device[i]);
  free(collection->device);
  collection->device = NULL;
  collection->count = 0;
  return CUBEB_OK;
}

static void virtual_stream_destroy(cubeb_stream *stm);

static void
virtual_destroy(cubeb *ctx)
{
  struct device *dev = ctx->dev;
  if (clock_device == dev) {
    /* Joining the clock thread from itself cannot work. */
    aipc_error("virtual device: cubeb_destroy called from a callback; "
               "the context is leaked");
    return;
  }
  for (;;) {
    pthread_mutex_lock(&dev->lock);
    struct cubeb_stream *stm = dev->streams;
    while (stm && (stm->context != ctx || stm->doomed))
      stm = stm->next;
    pthread_mutex_unlock(&dev->lock);
    if (!stm)
      break;
    aipc_warn("virtual device: context destroyed before its stream %p",
              (void *)stm);
    virtual_stream_destroy(stm);
  }

  quiesce_begin();
  pthread_mutex_lock(&registry.lock);
  for (struct cubeb **p = &registry.contexts; *p; p = &(*p)->next) {
    if (*p == ctx) {
      *p = ctx->next;
      break;
    }
  }
  pthread_mutex_unlock(&registry.lock);
  quiesce_end();
  device_release(dev);
  free(ctx->name);
  free(ctx);
}

static int
check_params(const struct device *dev, const cubeb_stream_params *params)
{
  if (params->format != CUBEB_SAMPLE_S16LE &&
      params->format != CUBEB_SAMPLE_S16BE &&
      params->format != CUBEB_SAMPLE_FLOAT32LE &&
      params->format != CUBEB_SAMPLE_FLOAT32BE)
    return CUBEB_ERROR_INVALID_FORMAT;
  if (params->rate < STREAM_MIN_RATE || params->rate > STREAM_MAX_RATE)
    return CUBEB_ERROR_INVALID_FORMAT;
  if (params->channels < 1 || params->channels > STREAM_MAX_CHANNELS)
    return CUBEB_ERROR_INVALID_FORMAT;
  if (params->prefs & CUBEB_STREAM_PREF_LOOPBACK)
    return CUBEB_ERROR_NOT_SUPPORTED;
  return CUBEB_OK;
}

/* Sets up one direction of a new stream: its conversion (*conv, unless
 * it has the device's format) and its callback buffer (*buf), for the
 * most frames a callback is asked for. Returns 0 or a negative errno. */
static int
stream_convert(struct device *dev, struct cubeb_stream *stm,
               const cubeb_stream_params *params, struct aipc_convert **conv,
               void **buf)
{
  if (!params)
    return 0;
  bool output = buf == &stm->out_buf;
  struct aipc_convert_params p = {
      .direction = output ? AIPC_CONVERT_OUTPUT : AIPC_CONVERT_INPUT,
      .format = params->format,
      .rate = params->rate,
      .channels = params->channels,
      .layout = params->layout,
      .device_rate = dev->opts.rate,
      .device_channels = output ? dev->opts.channels : input_channels(dev),
      .period = dev->opts.period,
  };
  if (aipc_convert_needed(&p)) {
    int r = aipc_convert_new(conv, &p);
    if (r < 0)
      return r;
    /* Both directions have the stream's rate: the same most. */
    stm->max_frames = aipc_convert_max_frames(*conv);
  }
  size_t frame_bytes = aipc_convert_sample_bytes(p.format) * p.channels;
  *(output ? &stm->out_frame_bytes : &stm->in_frame_bytes) = frame_bytes;
  *(output ? &stm->out_channels : &stm->in_channels) = p.channels;
  *buf = calloc(stm->max_frames, frame_bytes);
  return *buf ? 0 : -ENOMEM;
}

static int
virtual_stream_init(cubeb *ctx, cubeb_stream **stream, const char *stream_name,
                    cubeb_devid input_device, cubeb_stream_params *input_params,
                    cubeb_devid output_device,
                    cubeb_stream_params *output_params, unsigned latency,
                    cubeb_data_callback data_cb, cubeb_state_callback state_cb,
                    void *user_ptr)
{
  if (!ctx || !stream || !data_cb || !state_cb ||
      (!input_params && !output_params) || latency < 1 || latency > 96000)
    return CUBEB_ERROR_INVALID_PARAMETER;
  struct device *dev = ctx->dev;
  if (input_params && input_device && input_device != &ctx->input_devid)
    return CUBEB_ERROR_DEVICE_UNAVAILABLE;
  if (output_params && output_device && output_device != &ctx->output_devid)
    return CUBEB_ERROR_DEVICE_UNAVAILABLE;
  int r;
  if (input_params && (r = check_params(dev, input_params)) != CUBEB_OK)
    return r;
  if (output_params && (r = check_params(dev, output_params)) != CUBEB_OK)
    return r;
  if (input_params && output_params &&
      (input_params->format != output_params->format ||
       input_params->rate != output_params->rate))
    return CUBEB_ERROR_INVALID_FORMAT;
  if (dev->opts.init_delay_ms) {
    struct timespec delay = {.tv_sec = dev->opts.init_delay_ms / 1000,
                             .tv_nsec = (long)(dev->opts.init_delay_ms % 1000) *
                                        1000000};
    nanosleep(&delay, NULL);
  }

  struct cubeb_stream *stm = calloc(1, sizeof(*stm));
  if (!stm)
    return CUBEB_ERROR;
  stm->context = ctx;
  stm->user_ptr = user_ptr;
  stm->dev = dev;
  stm->data_cb = data_cb;
  stm->state_cb = state_cb;
  stm->format = (input_params ? input_params : output_params)->format;
  stm->volume = 1.0f;
  stm->state = STREAM_STOPPED;
  stm->max_frames = dev->opts.period;
  r = stream_convert(dev, stm, input_params, &stm->in_conv, &stm->in_buf);
  if (r == 0)
    r = stream_convert(dev, stm, output_params, &stm->out_conv, &stm->out_buf);
  if (r == 0 && stream_name && !(stm->name = strdup(stream_name)))
    r = -ENOMEM;
  if (r < 0) {
    stream_free(stm);
    return r == -ENOMEM ? CUBEB_ERROR : CUBEB_ERROR_INVALID_FORMAT;
  }

  pthread_mutex_lock(&dev->lock);
  stm->next = dev->streams;
  dev->streams = stm;
  pthread_mutex_unlock(&dev->lock);
  *stream = stm;
  return CUBEB_OK;
}

/* With dev->lock held. Waits out a callback of stm in progress, unless
 * we are the clock thread, which is then in that callback and calling
 * us from it (the callers only let that through for a state callback or
 * destroy). */
static void
halt_locked(struct device *dev, struct cubeb_stream *stm)
{
  if (stm->state == STREAM_STARTED)
    dev->active--;
  stm->state = STREAM_STOPPED;
  if (clock_device == dev)
    return;
  while (dev->busy == stm || stm->pending)
    pthread_cond_wait(&dev->idle, &dev->lock);
}

static void
virtual_stream_destroy(cubeb_stream *stm)
{
  struct device *dev = stm->dev;
  pthread_mutex_lock(&dev->lock);
  halt_locked(dev, stm);
  if (clock_device == dev && dev->busy == stm) {
    stm->doomed = true;
    pthread_mutex_unlock(&dev->lock);
    return;
  }
  pthread_mutex_unlock(&dev->lock);
  /* Halted first, without notify_lock: its holder never waits for the
   * clock thread, but the clock thread may take it (below, run_period). */
  quiesce_begin();
  pthread_mutex_lock(&dev->lock);
  unlink_stream(dev, stm);
  pthread_mutex_unlock(&dev->lock);
  quiesce_end();
  stream_free(stm);
}

static int
virtual_stream_start(cubeb_stream *stm)
{
  struct device *dev = stm->dev;
  pthread_mutex_lock(&dev->lock);
  if (stm->state != STREAM_STARTED) {
    stm->state = STREAM_STARTED;
    dev->active++;
    pthread_cond_signal(&dev->wake);
  }
  pthread_mutex_unlock(&dev->lock);
  stm->state_cb(stm, stm->user_ptr, CUBEB_STATE_STARTED);
  return CUBEB_OK;
}

static int
virtual_stream_stop(cubeb_stream *stm)
{
  struct device *dev = stm->dev;
  pthread_mutex_lock(&dev->lock);
  if (clock_device == dev && dev->busy == stm && dev->busy_in_data) {
    pthread_mutex_unlock(&dev->lock);
    aipc_error("virtual device: cubeb_stream_stop called from the stream's "
               "own data callback");
    return CUBEB_ERROR;
  }
  halt_locked(dev, stm);
  pthread_mutex_unlock(&dev->lock);
  stm->state_cb(stm, stm->user_ptr, CUBEB_STATE_STOPPED);
  return CUBEB_OK;
}

static int
virtual_stream_get_position(cubeb_stream *stm, uint64_t *position)
{
  if (!position)
    return CUBEB_ERROR_INVALID_PARAMETER;
  pthread_mutex_lock(&stm->dev->lock);
  *position = stm->position;
  pthread_mutex_unlock(&stm->dev->lock);
  return CUBEB_OK;
}

static int
virtual_stream_get_latency(cubeb_stream *stm, uint32_t *latency)
{
  if (!latency)
    return CUBEB_ERROR_INVALID_PARAMETER;
  *latency = stm->out_conv ? aipc_convert_latency(stm->out_conv)
                           : stm->dev->opts.period;
  return CUBEB_OK;
}

static int
virtual_stream_get_input_latency(cubeb_stream *stm, uint32_t *latency)
{
  if (!latency)
    return CUBEB_ERROR_INVALID_PARAMETER;
  if (!stm->in_channels)
    return CUBEB_ERROR;
  *latency =
      stm->in_conv ? aipc_convert_latency(stm->in_conv) : stm->dev->opts.period;
  return CUBEB_OK;
}

static int
virtual_stream_set_volume(cubeb_stream *stm, float volume)
{
  if (!(volume >= 0.0f && volume <= 1.0f))
    return CUBEB_ERROR_INVALID_PARAMETER;
  pthread_mutex_lock(&stm->dev->lock);
  stm->volume = volume;
  pthread_mutex_unlock(&stm->dev->lock);
  return CUBEB_OK;
}

static int
virtual_stream_set_name(cubeb_stream *stm, const char *name)
{
  if (!name)
    return CUBEB_ERROR_INVALID_PARAMETER;
  char *copy = strdup(name);
  if (!copy)
    return CUBEB_ERROR;
  pthread_mutex_lock(&stm->dev->lock);
  char *old = stm->name;
  stm->name = copy;
  pthread_mutex_unlock(&stm->dev->lock);
  free(old);
  return CUBEB_OK;
}

static int
virtual_stream_device_destroy(cubeb_stream *stm, cubeb_device *device)
{
  if (!device)
    return CUBEB_ERROR_INVALID_PARAMETER;
  free(device->output_name);
  free(device->input_name);
  free(device);
  return CUBEB_OK;
}

static int
virtual_stream_get_current_device(cubeb_stream *stm,
                                  cubeb_device **const device)
{
  if (!device)
    return CUBEB_ERROR_INVALID_PARAMETER;
  cubeb_device *d = calloc(1, sizeof(*d));
  if (!d)
    return CUBEB_ERROR;
  if (stm->out_channels)
    d->output_name = strdup("virtual-out");
  if (stm->in_channels)
    d->input_name = strdup("virtual-in");
  if ((stm->out_channels && !d->output_name) ||
      (stm->in_channels && !d->input_name)) {
    virtual_stream_device_destroy(stm, d);
    return CUBEB_ERROR;
  }
  *device = d;
  return CUBEB_OK;
}

#if AIPC_CUBEB_OPS_24
static int
virtual_stream_set_input_mute(cubeb_stream *stm, int mute)
{
  if (!stm->in_channels)
    return CUBEB_ERROR_INVALID_PARAMETER;
  pthread_mutex_lock(&stm->dev->lock);
  stm->input_muted = mute != 0;
  pthread_mutex_unlock(&stm->dev->lock);
  return CUBEB_OK;
}

static int
virtual_stream_set_input_processing_params(cubeb_stream *stm,
                                           cubeb_input_processing_params params)
{
  if (!stm->in_channels)
    return CUBEB_ERROR_INVALID_PARAMETER;
  return params == CUBEB_INPUT_PROCESSING_PARAM_NONE
             ? CUBEB_OK
             : CUBEB_ERROR_NOT_SUPPORTED;
}
#endif

static int
virtual_stream_register_device_changed_callback(
    cubeb_stream *stm, cubeb_device_changed_callback callback)
{
  quiesce_begin();
  pthread_mutex_lock(&stm->dev->lock);
  stm->changed_cb = callback;
  pthread_mutex_unlock(&stm->dev->lock);
  quiesce_end();
  return CUBEB_OK;
}

static int
virtual_register_device_collection_changed(
    cubeb *ctx, cubeb_device_type type,
    cubeb_device_collection_changed_callback callback, void *user_ptr)
{
  if (!ctx || !(type & (CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT)))
    return CUBEB_ERROR_INVALID_PARAMETER;
  quiesce_begin();
  pthread_mutex_lock(&registry.lock);
  ctx->collection_type = callback ? type : CUBEB_DEVICE_TYPE_UNKNOWN;
  ctx->collection_cb = callback;
  ctx->collection_user_ptr = callback ? user_ptr : NULL;
  pthread_mutex_unlock(&registry.lock);
  quiesce_end();
  return CUBEB_OK;
}

static const struct cubeb_ops virtual_ops = {
    .init = virtual_init_default,
    .get_backend_id = virtual_get_backend_id,
    .get_max_channel_count = virtual_get_max_channel_count,
    .get_min_latency = virtual_get_min_latency,
    .get_preferred_sample_rate = virtual_get_preferred_sample_rate,
#if AIPC_CUBEB_OPS_24
    .get_supported_input_processing_params =
        virtual_get_supported_input_processing_params,
#endif
    .enumerate_devices = virtual_enumerate_devices,
    .device_collection_destroy = virtual_device_collection_destroy,
    .destroy = virtual_destroy,
    .stream_init = virtual_stream_init,
    .stream_destroy = virtual_stream_destroy,
    .stream_start = virtual_stream_start,
    .stream_stop = virtual_stream_stop,
    .stream_get_position = virtual_stream_get_position,
    .stream_get_latency = virtual_stream_get_latency,
    .stream_get_input_latency = virtual_stream_get_input_latency,
    .stream_set_volume = virtual_stream_set_volume,
    .stream_set_name = virtual_stream_set_name,
    .stream_get_current_device = virtual_stream_get_current_device,
#if AIPC_CUBEB_OPS_24
    .stream_set_input_mute = virtual_stream_set_input_mute,
    .stream_set_input_processing_params =
        virtual_stream_set_input_processing_params,
#endif
    .stream_device_destroy = virtual_stream_device_destroy,
    .stream_register_device_changed_callback =
        virtual_stream_register_device_changed_callback,
    .register_device_collection_changed =
        virtual_register_device_collection_changed,
};

int
aipc_virtual_init(cubeb **context, const char *context_name,
                  const char *options)
{
  if (!context)
    return CUBEB_ERROR_INVALID_PARAMETER;
  cubeb *ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return CUBEB_ERROR;
  ctx->ops = &virtual_ops;
  if (context_name && !(ctx->name = strdup(context_name))) {
    free(ctx);
    return CUBEB_ERROR;
  }
  int r = device_acquire(options ? options : "", &ctx->dev);
  if (r < 0) {
    free(ctx->name);
    free(ctx);
    return r == -EINVAL ? CUBEB_ERROR_INVALID_PARAMETER : CUBEB_ERROR;
  }
  pthread_mutex_lock(&registry.lock);
  ctx->next = registry.contexts;
  registry.contexts = ctx;
  pthread_mutex_unlock(&registry.lock);
  *context = ctx;
  return CUBEB_OK;
}

struct changed_call {
  cubeb_device_changed_callback cb;
  void *user_ptr;
};

void
aipc_virtual_trigger_device_changed(void)
{
  struct changed_call *calls = NULL;
  size_t count = 0, cap = 0;
  bool oom = false;
  pthread_mutex_lock(&notify_lock);
  pthread_mutex_lock(&registry.lock);
  for (struct device *dev = registry.devices; dev && !oom; dev = dev->next) {
    pthread_mutex_lock(&dev->lock);
    for (struct cubeb_stream *stm = dev->streams; stm; stm = stm->next) {
      if (!stm->changed_cb || stm->doomed)
        continue;
      if (count == cap) {
        size_t n = cap ? 2 * cap : 8;
        struct changed_call *grown = realloc(calls, n * sizeof(*calls));
        if (!grown) {
          oom = true;
          break;
        }
        calls = grown;
        cap = n;
      }
      calls[count++] = (struct changed_call){stm->changed_cb, stm->user_ptr};
    }
    pthread_mutex_unlock(&dev->lock);
  }
  pthread_mutex_unlock(&registry.lock);
  if (oom)
    aipc_error("virtual device: out of memory; not every stream is told of "
               "the device change");
  in_notify = true;
  for (size_t i = 0; i < count; i++)
    calls[i].cb(calls[i].user_ptr);
  in_notify = false;
  pthread_mutex_unlock(&notify_lock);
  free(calls);
}

struct collection_call {
  cubeb_device_collection_changed_callback cb;
  cubeb *ctx;
  void *user_ptr;
};

void
aipc_virtual_trigger_collection_changed(cubeb_device_type type)
{
  struct collection_call *calls = NULL;
  size_t count = 0, cap = 0;
  bool oom = false;
  pthread_mutex_lock(&notify_lock);
  pthread_mutex_lock(&registry.lock);
  for (cubeb *ctx = registry.contexts; ctx; ctx = ctx->next) {
    if (!ctx->collection_cb || !(ctx->collection_type & type))
      continue;
    if (count == cap) {
      size_t n = cap ? 2 * cap : 8;
      struct collection_call *grown = realloc(calls, n * sizeof(*calls));
      if (!grown) {
        oom = true;
        break;
      }
      calls = grown;
      cap = n;
    }
    calls[count++] = (struct collection_call){ctx->collection_cb, ctx,
                                              ctx->collection_user_ptr};
  }
  pthread_mutex_unlock(&registry.lock);
  if (oom)
    aipc_error("virtual device: out of memory; not every context is told of "
               "the device collection change");
  in_notify = true;
  for (size_t i = 0; i < count; i++)
    calls[i].cb(calls[i].ctx, calls[i].user_ptr);
  in_notify = false;
  pthread_mutex_unlock(&notify_lock);
  free(calls);
}

bool
aipc_virtual_clock_is_fast(const char *options)
{
  struct aipc_virtual_options o;
  if (aipc_virtual_options_parse(options, &o) < 0)
    return false;
  bool fast = o.clock == AIPC_VIRTUAL_CLOCK_FAST;
  aipc_virtual_options_clear(&o);
  return fast;
}

bool
aipc_virtual_stream_set_split(cubeb_stream *stm,
                              const struct aipc_virtual_split *split,
                              void *user, uint32_t max_frames)
{
  struct device *dev = stm->dev;
  if (stm->max_frames > max_frames)
    return false;
  pthread_mutex_lock(&dev->lock);
  stm->split = split;
  stm->split_user = user;
  pthread_mutex_unlock(&dev->lock);
  return true;
}
