/* SPDX-License-Identifier: ISC */
/*
 * A server stream: the backend's cubeb stream, the shared memory that
 * carries each of its callbacks to the client's callback thread (the data
 * path itself is datapath.c), and the guard that keeps every request of
 * the client within what libcubeb's backends accept (docs/design-notes.md,
 * "The backend guard").
 */
#include "sstream.h"

#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

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

/* --- Lifetime ------------------------------------------------------------- */

static uint32_t
pow2_floor(uint32_t n)
{
  return n ? UINT32_C(1) << (31 - __builtin_clz(n)) : 0;
}

/*
 * The ring of a buffered stream (render-ahead, docs/design-notes.md), in
 * frames, and in *ahead the frames its output renders ahead; 0 to keep
 * the stream synchronous: duplex streams unless the embedder opted in,
 * and output whose latency leaves too little to share. Output renders a
 * quarter of the latency ahead (the largest power of two not above it,
 * at least 64: pulse splits what it buffers in quarters, so its steady
 * callbacks ask less than that), and at least the virtual device's
 * callback. Input holds twice the latency, at least four callbacks and a
 * quarter of a second. A duplex ring holds four times what it renders
 * ahead (the rest of the latency, which pulse's first callback asks for
 * at once, besides). Within `room`, the frames the stream's memory may
 * hold.
 */
static uint32_t
ring_frames(cubeb *ctx, const struct aipc_sstream_params *p, bool is_virtual,
            uint32_t room, uint32_t *ahead)
{
  bool duplex = p->input && p->output;
  *ahead = 0;
  if (p->render_ahead == 0 || (duplex && p->render_ahead < 2))
    return 0;
  cubeb_stream_params *params = p->output ? p->output : p->input;
  uint32_t latency = p->latency_frames;
  uint32_t callback = 0; /* where the backend fixes its callbacks' size */
  uint32_t period, rate;
  if (is_virtual && cubeb_get_min_latency(ctx, params, &period) == CUBEB_OK &&
      cubeb_get_preferred_sample_rate(ctx, &rate) == CUBEB_OK && rate > 0)
    callback = (uint32_t)(((uint64_t)period * params->rate + rate - 1) / rate);
  uint32_t want;
  if (p->output) {
    if (latency < 256 && !is_virtual)
      return 0;
    want = latency / 4 < 64 ? 64 : pow2_floor(latency / 4);
    while (want < callback)
      want *= 2;
    if (want > 16384)
      want = 16384;
  } else {
    /* Room for the client to fall a quarter of a second behind. */
    uint32_t least = 2 * latency > 4 * callback ? 2 * latency : 4 * callback;
    if (least < params->rate / 4)
      least = params->rate / 4;
    want = 1024;
    while (want < least && want < 65536)
      want *= 2;
  }
  uint32_t frames = duplex ? 4 * want : want;
  while (frames > room)
    frames /= 2;
  if (frames < 64 || (duplex && frames / 4 < callback))
    return 0;
  if (p->output)
    *ahead = duplex ? frames / 4 : frames;
  return frames;
}

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

  bool is_virtual = strcmp(backend, "virtual") == 0;
  uint32_t per_frame = s->in_frame_bytes + s->out_frame_bytes;
  uint32_t room = UINT32_MAX; /* frames the stream's memory may hold */
  if (p->shm_max) {
    room = p->shm_max > AIPC_STREAM_CTL_SIZE + 2 * 64
               ? (p->shm_max - AIPC_STREAM_CTL_SIZE - 2 * 64) / per_frame
               : 0;
    if (room == 0) {
      r = -ENOMEM;
      goto fail;
    }
  }
  uint32_t ahead;
  uint32_t frames_max = ring_frames(ctx, p, is_virtual, room, &ahead);
  uint32_t latency = p->latency_frames;
  if (frames_max > 0) {
    s->buffered = true;
    s->ahead = ahead;
    /* The frames rendered ahead come out of the backend's latency (the
     * virtual device's is its period, whatever a stream asks). */
    if (!is_virtual)
      latency -= ahead;
  } else {
    /* Room for one latency's worth of frames (at least 512) per request;
     * bigger backend callbacks are served in chunks. */
    frames_max = latency < 512 ? 512 : latency;
    if (frames_max > room)
      frames_max = room;
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
  if (s->buffered) {
    atomic_store(&s->stats->ring_frames, s->layout.frames_max);
    atomic_store(&s->stats->ahead_frames, s->ahead);
  }
  s->input_area = (uint8_t *)s->shm.base + s->layout.input_offset;
  s->output_area = (uint8_t *)s->shm.base + s->layout.output_offset;
  s->ring = p->output ? s->output_area : s->input_area;
  s->duplex = s->buffered && p->input && p->output;

  int cr = cubeb_stream_init(ctx, &s->backend, name, p->input_device, p->input,
                             p->output_device, p->output, latency,
                             aipc_sstream_data_callback,
                             aipc_sstream_state_callback, s);
  if (cr != CUBEB_OK) {
    r = aipc_errno_from_cubeb(cr);
    aipc_shm_release(&s->shm);
    goto fail;
  }
  /* No libcubeb backend is called "virtual": this is our own device. A
   * buffered stream serves callbacks of any size. */
  if (is_virtual)
    aipc_virtual_stream_set_split(s->backend, &aipc_sstream_split, s,
                                  s->buffered ? UINT32_MAX
                                              : s->layout.frames_max);
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

bool
aipc_sstream_buffered(const struct aipc_sstream *s)
{
  return s->buffered;
}

uint64_t
aipc_sstream_position(struct aipc_sstream *s, uint64_t backend)
{
  uint64_t made = backend > s->silence_played ? backend - s->silence_played : 0;
  if (made > s->last_position)
    s->last_position = made;
  return s->last_position;
}

uint32_t
aipc_sstream_ring_frames(const struct aipc_sstream *s, bool output)
{
  if (!s->buffered)
    return 0;
  /* A duplex stream's output is always `ahead` frames behind its input. */
  if (s->duplex)
    return output ? s->ahead : 0;
  /* Both words may hold anything the client wrote: only its own stream's
   * latency is at stake, within the ring. */
  uint32_t server = aipc_wake_load(&s->ctl->server_pos);
  uint32_t client = aipc_wake_load(&s->ctl->client_pos);
  uint32_t n = s->out_frame_bytes ? client - server : server - client;
  return n <= s->layout.frames_max ? n : s->layout.frames_max;
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
  /* A duplex stream's output starts `ahead` frames behind its input, the
   * client having cleared them (no callback runs while it is stopped or
   * has drained). */
  if (r == 0 && s->duplex && (!s->started || atomic_load(&s->drained))) {
    s->ring_pos = s->in_pos - s->ahead;
    s->silence_played += s->ahead;
  }
  atomic_store(&s->drained, false);
  if (r == 0 && s->buffered)
    aipc_sstream_poke(s); /* render ahead before the first callback */
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
    aipc_sstream_raise_state(s, CUBEB_STATE_STOPPED);
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
