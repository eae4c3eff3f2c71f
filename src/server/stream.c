/* SPDX-License-Identifier: ISC */
/*
 * A server stream: the backend's cubeb stream, the shared memory that
 * carries each of its callbacks to the client's callback thread, and the
 * guard that keeps every request of the client within what libcubeb's
 * backends accept (docs/design-notes.md, "The backend guard").
 */
#include "server-private.h"

#include "clock.h"
#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"
#include "rt.h"
#include "utf8.h"
#include "virtual.h"

#include <stdlib.h>
#include <string.h>

struct aipc_sstream {
  struct aipc_client *client;
  uint32_t id;
  cubeb_stream *backend;
  struct aipc_shm shm;
  struct aipc_stream_layout layout;
  struct aipc_stream_ctl *ctl;
  uint8_t *input_area, *output_area;
  uint32_t in_frame_bytes, out_frame_bytes;
  int64_t deadline_ns; /* per callback */
  /* What the backend does beyond cubeb's contract. */
  bool stop_waits_for_drain; /* pulse: its destroy ends a drain instead */
  long error_return;         /* for a failed client callback */

  /* The client's thread only. */
  bool started; /* the backend was started and not stopped since */
  bool device_changed_registered;

  /* Shared with the backend's threads. */
  atomic_bool failed;    /* the backend reported CUBEB_STATE_ERROR */
  atomic_bool draining;  /* the audio thread began a drain; not DRAINED yet */
  atomic_bool starting;  /* the client's thread is in the backend's start */
  atomic_bool cancelled; /* the stream goes: ask the client nothing more */

  /* Audio thread only. */
  uint32_t seq;
  bool awaiting; /* the last request missed its deadline, still unanswered */
  bool drain_deferred; /* a drain met a start: drain at the next callback */
  int64_t asked_at;
  int64_t deadline; /* of the callback in progress */
  uint32_t asked_frames;
  bool split_asked; /* split_begin asked the client this period */

  struct aipc_stream_stats *stats;
  struct aipc_stats_registry *registry;
};

static uint32_t
frame_bytes(const cubeb_stream_params *p)
{
  if (!p)
    return 0;
  uint32_t sample =
      p->format == CUBEB_SAMPLE_S16LE || p->format == CUBEB_SAMPLE_S16BE ? 2
                                                                         : 4;
  return sample * p->channels;
}

/* --- The data path (the backend's audio thread) --------------------------- */

/* Waits for the client's answer to request `seq`, until the deadline. */
static bool
await_response(struct aipc_stream_ctl *ctl, uint32_t seq, int64_t deadline)
{
  /* An honest client changes the word once per request. One that keeps
   * changing it to other values would have us spin until the deadline
   * (each futex wait returns at once), so after a few such changes it
   * counts as not answering. */
  int changes = 0;
  uint32_t v;
  while ((v = aipc_wake_load(&ctl->response)) != seq) {
    if (changes++ > 4 || aipc_now_ns() >= deadline ||
        aipc_wake_wait(&ctl->response, v, deadline) < 0)
      return aipc_wake_load(&ctl->response) == seq;
  }
  return true;
}

/* Counts one wait (lock-free; clock_gettime is a vDSO call, not a
 * syscall). */
static void
count_wait(struct aipc_stream_stats *st, int64_t since)
{
  int64_t us = (aipc_now_ns() - since) / AIPC_NSEC_PER_USEC;
  uint32_t bucket = us < AIPC_WAIT_BUCKETS ? (uint32_t)us : AIPC_WAIT_BUCKETS;
  atomic_fetch_add_explicit(&st->wait_hist[bucket], 1, memory_order_relaxed);
  unsigned max = atomic_load_explicit(&st->wait_max_us, memory_order_relaxed);
  unsigned now = us > UINT32_MAX ? UINT32_MAX : (unsigned)us;
  while (now > max && !atomic_compare_exchange_weak_explicit(
                          &st->wait_max_us, &max, now, memory_order_relaxed,
                          memory_order_relaxed))
    ;
}

/* What collect() makes of a request. */
enum {
  ANSWER_MISSED = -1, /* late, or out of range: play silence */
  ANSWER_FAILED = -2, /* the client's callback failed: CUBEB_STATE_ERROR */
};

/*
 * Asks the client for `chunk` frames, with `in` (or NULL) as their input.
 * Returns false, asking nothing, while the client has not answered a
 * request that missed its deadline, or once the stream is going.
 */
static bool
ask(struct aipc_sstream *s, const uint8_t *in, uint32_t chunk)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  if (atomic_load_explicit(&s->cancelled, memory_order_relaxed))
    return false;
  if (s->awaiting) {
    if (aipc_wake_load(&ctl->response) != s->seq)
      return false;
    s->awaiting = false;
  }
  if (in)
    memcpy(s->input_area, in, (size_t)chunk * s->in_frame_bytes);
  atomic_store_explicit(&ctl->frames, chunk, memory_order_relaxed);
  s->seq++;
  s->asked_at = aipc_now_ns();
  s->asked_frames = chunk;
  aipc_wake_publish(&ctl->request, s->seq);
  return true;
}

/* Waits for the answer to the last request, until `deadline`, and copies
 * its frames to `out` (or NULL). Returns the frame count, or one of the
 * ANSWER_ values. */
static int32_t
collect(struct aipc_sstream *s, uint8_t *out, int64_t deadline)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  uint32_t chunk = s->asked_frames;
  if (aipc_wake_load(&ctl->response) != s->seq)
    atomic_fetch_add_explicit(&s->stats->sleeps, 1, memory_order_relaxed);
  bool answered = await_response(ctl, s->seq, deadline);
  count_wait(s->stats, s->asked_at);
  if (!answered) {
    s->awaiting = true;
    return ANSWER_MISSED;
  }
  /* Read the client's answer once; it may change under us. */
  int32_t got = atomic_load_explicit(&ctl->result, memory_order_acquire);
  if (got < 0)
    return ANSWER_FAILED;
  if ((uint32_t)got > chunk)
    return ANSWER_MISSED;
  if (out)
    memcpy(out, s->output_area, (size_t)got * s->out_frame_bytes);
  atomic_fetch_add_explicit(&s->stats->frames, (uint64_t)got,
                            memory_order_relaxed);
  return got;
}

static void
fill_silence(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  if (out)
    memset(out + (size_t)done * s->out_frame_bytes, 0,
           (size_t)(nframes - done) * s->out_frame_bytes);
}

/* Silence for the rest of a callback whose client missed. */
static long
play_silence(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  atomic_fetch_add_explicit(&s->stats->misses, 1, memory_order_relaxed);
  fill_silence(s, out, done, nframes);
  return nframes;
}

/*
 * The client answered `done` of `nframes` frames: the stream drains. A
 * backend with output then drains what it has (pulse arms a timer, and
 * asserts if a start lets another short answer in before it fired). So a
 * drain and the client thread's start must not cross: each side raises
 * its flag, then reads the other's. If a start is under way, the drain
 * waits for the next callback, and this one is padded with silence.
 */
static long
drain(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  if (!out)
    return done; /* input only: the backend just stops calling */
  atomic_store(&s->draining, true);
  if (atomic_load(&s->starting)) {
    atomic_store(&s->draining, false);
    s->drain_deferred = true;
    fill_silence(s, out, done, nframes);
    return nframes;
  }
  return done;
}

/*
 * The backend's data callback, on its audio thread: no allocation, no
 * lock, no syscall but the futex. Serves the backend's request in chunks
 * of at most frames_max, all before one deadline; a client that misses
 * it gets silence for the rest of the callback, and no new request until
 * it has answered.
 */
static long
serve(struct aipc_sstream *s, const uint8_t *in, uint8_t *out, long nframes)
{
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  if (s->drain_deferred) {
    s->drain_deferred = false;
    return drain(s, out, 0, nframes);
  }
  long done = 0;
  /* Every chunk of the callback shares one deadline. */
  int64_t deadline = aipc_now_ns() + s->deadline_ns;
  while (done < nframes) {
    uint32_t chunk = (uint32_t)(nframes - done);
    if (chunk > s->layout.frames_max)
      chunk = s->layout.frames_max;
    if (!ask(s, in ? in + (size_t)done * s->in_frame_bytes : NULL, chunk))
      return play_silence(s, out, done, nframes);
    int32_t got = collect(
        s, out ? out + (size_t)done * s->out_frame_bytes : NULL, deadline);
    if (got == ANSWER_FAILED)
      return s->error_return;
    if (got == ANSWER_MISSED)
      return play_silence(s, out, done, nframes);
    done += got;
    if ((uint32_t)got < chunk)
      return drain(s, out, done, nframes);
  }
  return nframes;
}

static long
data_callback(cubeb_stream *backend, void *user, const void *input,
              void *output, long nframes)
{
  (void)backend;
  aipc_rt_enter();
  long r = serve(user, input, output, nframes);
  aipc_rt_leave();
  return r;
}

/*
 * Split-phase service for the virtual device, which asks every stream of
 * a period before it collects any answer, so that the clients run in
 * parallel and the device thread sleeps about once per period; every
 * stream of the period shares the device's deadline.
 */
static void
split_begin(void *user, const void *input, long frames)
{
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  s->split_asked = ask(s, input, (uint32_t)frames);
  aipc_rt_leave();
}

static long
split_end(void *user, void *output, long frames, int64_t device_deadline)
{
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  long r;
  int32_t got = ANSWER_MISSED;
  if (s->split_asked) {
    /* The device's deadline, shared by the period's streams, within
     * the server's of the ask. */
    int64_t deadline = s->asked_at + s->deadline_ns;
    if (device_deadline >= 0 && device_deadline < deadline)
      deadline = device_deadline;
    got = collect(s, output, deadline);
  }
  if (got == ANSWER_FAILED)
    r = s->error_return;
  else if (got == ANSWER_MISSED)
    r = play_silence(s, output, 0, frames);
  else
    r = got;
  aipc_rt_leave();
  return r;
}

static const struct aipc_virtual_split split_service = {
    .begin = split_begin,
    .end = split_end,
};

static void
state_callback(cubeb_stream *backend, void *user, cubeb_state state)
{
  (void)backend;
  struct aipc_sstream *s = user;
  /* Often on the backend's audio thread: real-time safe (see events.c). */
  aipc_rt_enter();
  if (state == CUBEB_STATE_DRAINED)
    atomic_store(&s->draining, false);
  else if (state == CUBEB_STATE_ERROR)
    atomic_store(&s->failed, true);
  /* The stop before a destroy is ours: libcubeb's destroy calls no
   * state callback, so the client hears none. */
  if (!atomic_load(&s->cancelled))
    aipc_client_raise_event(s->client, AIPC_OP_STREAM_STATE_EVENT, s->id,
                            (uint32_t)state);
  aipc_rt_leave();
}

/* --- Lifetime ------------------------------------------------------------- */

int
aipc_sstream_new(struct aipc_client *client, cubeb *ctx, uint32_t id,
                 const struct aipc_sstream_params *p, struct aipc_sstream **out)
{
  struct aipc_sstream *s = calloc(1, sizeof(*s));
  if (!s) {
    aipc_stats_discard(p->registry, p->stats);
    return -ENOMEM;
  }
  s->client = client;
  s->id = id;
  s->stats = p->stats;
  s->registry = p->registry;
  s->in_frame_bytes = frame_bytes(p->input);
  s->out_frame_bytes = frame_bytes(p->output);
  s->deadline_ns = p->deadline_ns;
  const char *backend = cubeb_get_backend_id(ctx);
  s->stop_waits_for_drain = strcmp(backend, "pulse") == 0;
  /* JACK writes before its port buffers for a negative count: there a
   * failed callback ends the stream as a drain does. */
  s->error_return = strcmp(backend, "jack") == 0 ? 0 : CUBEB_ERROR;
  char name_buf[AIPC_STREAM_NAME_MAX + 1];
  const char *name;
  int r = aipc_sstream_backend_name(p->name, name_buf, &name);
  if (r < 0)
    goto fail;

  /* Room for one latency's worth of frames (at least 512) per request;
   * bigger backend callbacks are served in chunks. */
  uint32_t frames_max = p->latency_frames < 512 ? 512 : p->latency_frames;
  uint32_t per_frame = s->in_frame_bytes + s->out_frame_bytes;
  if (p->shm_max) {
    uint64_t room =
        p->shm_max > AIPC_STREAM_CTL_SIZE + 2 * 64
            ? (p->shm_max - AIPC_STREAM_CTL_SIZE - 2 * 64) / per_frame
            : 0;
    if (room == 0) {
      r = -ENOMEM;
      goto fail;
    }
    if (frames_max > room)
      frames_max = (uint32_t)room;
  }
  r = aipc_stream_layout(frames_max, s->in_frame_bytes, s->out_frame_bytes,
                         &s->layout);
  if (r < 0)
    goto fail;
  r = aipc_shm_create("audioipc-stream", s->layout.size, &s->shm);
  if (r < 0)
    goto fail;
  s->ctl = s->shm.base;
  atomic_store(&s->stats->shm_bytes, s->layout.size);
  s->input_area = (uint8_t *)s->shm.base + s->layout.input_offset;
  s->output_area = (uint8_t *)s->shm.base + s->layout.output_offset;

  int cr = cubeb_stream_init(ctx, &s->backend, name, p->input_device, p->input,
                             p->output_device, p->output, p->latency_frames,
                             data_callback, state_callback, s);
  if (cr != CUBEB_OK) {
    r = aipc_errno_from_cubeb(cr);
    aipc_shm_release(&s->shm);
    goto fail;
  }
  /* No libcubeb backend is called "virtual": this is our own device. */
  if (strcmp(backend, "virtual") == 0)
    aipc_virtual_stream_set_split(s->backend, &split_service, s,
                                  s->layout.frames_max);
  *out = s;
  return 0;

fail:
  aipc_stats_discard(s->registry, s->stats);
  free(s);
  return r;
}

void
aipc_sstream_cancel(struct aipc_sstream *s)
{
  atomic_store(&s->cancelled, true);
}

void
aipc_sstream_destroy(struct aipc_sstream *s)
{
  if (!s)
    return;
  /* A wait in progress ends by its deadline; no new one begins. */
  aipc_sstream_cancel(s);
  /* ALSA asserts that a stream it destroys is stopped (sndio frees it
   * under its running thread), so a stream that runs is stopped first;
   * but pulse's stop would wait out a drain, which its destroy ends. No
   * callback runs after cubeb_stream_destroy. */
  if (s->started && !(s->stop_waits_for_drain && atomic_load(&s->draining)))
    cubeb_stream_stop(s->backend);
  cubeb_stream_destroy(s->backend);
  aipc_stats_retire(s->registry, s->stats);
  aipc_shm_release(&s->shm);
  free(s);
}

uint32_t
aipc_sstream_id(const struct aipc_sstream *s)
{
  return s->id;
}

cubeb_stream *
aipc_sstream_backend(const struct aipc_sstream *s)
{
  return s->backend;
}

int
aipc_sstream_take_fd(struct aipc_sstream *s)
{
  int fd = s->shm.fd;
  s->shm.fd = -1;
  return fd;
}

const struct aipc_stream_layout *
aipc_sstream_layout(const struct aipc_sstream *s)
{
  return &s->layout;
}

/* --- The backend guard (the client's thread) ------------------------------ */

/* Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF): PulseAudio refuses a stream name that is
 * not. */
static bool
valid_utf8(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  uint32_t cp;
  unsigned n;
  while ((n = aipc_utf8_next(p, &cp)) > 0)
    p += n;
  return *p == '\0';
}

int
aipc_sstream_backend_name(const char *name, char *buf, const char **out)
{
  if (!name) {
    *out = NULL;
    return 0;
  }
  if (!valid_utf8(name))
    return -EINVAL;
  size_t n = strlen(name);
  if (n <= AIPC_STREAM_NAME_MAX) {
    *out = name;
    return 0;
  }
  /* Cut at a character boundary. */
  n = AIPC_STREAM_NAME_MAX;
  while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
    n--;
  memcpy(buf, name, n);
  buf[n] = '\0';
  *out = buf;
  return 0;
}

/*
 * What a backend takes beyond cubeb's own checks. JACK keeps 8 ports per
 * stream, and overflows into its next stream with more; and it resamples
 * a stream not at its rate, asserting that the resampler's latency times
 * the channels stays within 8192 samples, which a low-rate input with a
 * few channels exceeds (its latency grows with the ratio of the rates:
 * about 40 frames times it; twice that is required here).
 */
int
aipc_sstream_check_params(cubeb *ctx, const cubeb_stream_params *in,
                          const cubeb_stream_params *out)
{
  if (strcmp(cubeb_get_backend_id(ctx), "jack") != 0)
    return 0;
  if ((in && in->channels > 8) || (out && out->channels > 8))
    return -EINVAL;
  uint32_t rate = 0;
  if (in && cubeb_get_preferred_sample_rate(ctx, &rate) == CUBEB_OK &&
      rate > in->rate && (uint64_t)in->channels * 80 * rate / in->rate > 8192)
    return -EINVAL;
  return 0;
}

int
aipc_sstream_usable(const struct aipc_sstream *s)
{
  return atomic_load(&s->failed) ? -EIO : 0;
}

static void
raise_state(struct aipc_sstream *s, cubeb_state state)
{
  aipc_client_raise_event(s->client, AIPC_OP_STREAM_STATE_EVENT, s->id,
                          (uint32_t)state);
}

static int
backend_stop(struct aipc_sstream *s)
{
  int r = aipc_errno_from_cubeb(cubeb_stream_stop(s->backend));
  if (r == 0) {
    s->started = false;
    atomic_store(&s->draining, false);
  }
  return r;
}

/*
 * A stream that reported an error is never started again (pulse would
 * write to a dead stream and assert). One that drains is stopped first,
 * which waits for the drain to end (at most twice the stream's latency
 * on pulse, and only this client's thread waits); starting it while the
 * backend drains is what pulse asserts on.
 */
int
aipc_sstream_start(struct aipc_sstream *s)
{
  if (atomic_load(&s->failed))
    return -EIO;
  atomic_store(&s->starting, true);
  int r = 0;
  if (atomic_load(&s->draining))
    r = backend_stop(s);
  if (r == 0)
    r = aipc_errno_from_cubeb(cubeb_stream_start(s->backend));
  atomic_store(&s->starting, false);
  if (r == 0)
    s->started = true;
  return r;
}

/* A stop of a stream that does not run, or that failed, never reaches
 * the backend (it tells the client STOPPED, as a backend would: pulse
 * does after an error too). */
int
aipc_sstream_stop(struct aipc_sstream *s)
{
  if (atomic_load(&s->failed) || !s->started) {
    raise_state(s, CUBEB_STATE_STOPPED);
    return 0;
  }
  return backend_stop(s);
}

int
aipc_sstream_set_name(struct aipc_sstream *s, const char *name)
{
  char buf[AIPC_STREAM_NAME_MAX + 1];
  int r = aipc_sstream_usable(s);
  if (r == 0)
    r = aipc_sstream_backend_name(name, buf, &name);
  if (r == 0)
    r = aipc_errno_from_cubeb(cubeb_stream_set_name(s->backend, name));
  return r;
}

static void
device_changed_callback(void *user)
{
  struct aipc_sstream *s = user;
  aipc_client_raise_event(s->client, AIPC_OP_STREAM_DEVICE_CHANGED_EVENT, s->id,
                          0);
}

/* Registering twice changes nothing and never reaches the backend. An
 * unregistration does, registered or not: a backend without the call
 * (pulse, ALSA) answers CUBEB_ERROR_NOT_SUPPORTED to it, as in-process. */
int
aipc_sstream_register_device_changed(struct aipc_sstream *s, bool enable)
{
  int r = aipc_sstream_usable(s);
  if (r < 0 || (enable && s->device_changed_registered))
    return r;
  r = aipc_errno_from_cubeb(cubeb_stream_register_device_changed_callback(
      s->backend, enable ? device_changed_callback : NULL));
  if (r == 0)
    s->device_changed_registered = enable;
  return r;
}
