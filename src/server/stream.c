/* SPDX-License-Identifier: ISC */
/*
 * A server stream: the backend's cubeb stream and the shared memory that
 * carries each of its callbacks to the client's callback thread.
 */
#include "server-private.h"

#include "clock.h"
#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"
#include "rt.h"
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
  int64_t ns_per_frame_x1024; /* for deadlines, fixed point */
  int64_t deadline_min_ns;

  /* Audio thread only. */
  uint32_t seq;
  bool awaiting; /* the last request missed its deadline, still unanswered */
  int64_t asked_at;
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

/* Audio thread: counts one wait (lock-free; clock_gettime is a vDSO
 * call, not a syscall). */
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
 * Audio thread (this and collect): asks the client for `chunk` frames,
 * with `in` (or NULL) as their input. Returns false, asking nothing, while
 * the client has not answered a request that missed its deadline.
 */
static bool
ask(struct aipc_sstream *s, const uint8_t *in, uint32_t chunk)
{
  struct aipc_stream_ctl *ctl = s->ctl;
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

/* Waits for the answer to the last request, until its deadline, and
 * copies its frames to `out` (or NULL). Returns the frame count, or one of
 * the ANSWER_ values. */
static int32_t
collect(struct aipc_sstream *s, uint8_t *out)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  uint32_t chunk = s->asked_frames;
  int64_t wait = ((int64_t)chunk * s->ns_per_frame_x1024) >> 10;
  if (wait < s->deadline_min_ns)
    wait = s->deadline_min_ns;
  if (aipc_wake_load(&ctl->response) != s->seq)
    atomic_fetch_add_explicit(&s->stats->sleeps, 1, memory_order_relaxed);
  bool answered = await_response(ctl, s->seq, s->asked_at + wait);
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

/* Silence for the rest of a callback whose client missed. */
static long
play_silence(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  atomic_fetch_add_explicit(&s->stats->misses, 1, memory_order_relaxed);
  if (out)
    memset(out + (size_t)done * s->out_frame_bytes, 0,
           (size_t)(nframes - done) * s->out_frame_bytes);
  return nframes;
}

/*
 * The backend's data callback, on its audio thread: no allocation, no
 * lock, no syscall but the futex. Serves the backend's request in chunks
 * of at most frames_max; a client that misses a deadline gets silence for
 * the rest of the callback, and no new request until it has answered.
 */
static long
serve(struct aipc_sstream *s, const uint8_t *in, uint8_t *out, long nframes)
{
  long done = 0;
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  while (done < nframes) {
    uint32_t chunk = (uint32_t)(nframes - done);
    if (chunk > s->layout.frames_max)
      chunk = s->layout.frames_max;
    if (!ask(s, in ? in + (size_t)done * s->in_frame_bytes : NULL, chunk))
      return play_silence(s, out, done, nframes);
    int32_t got =
        collect(s, out ? out + (size_t)done * s->out_frame_bytes : NULL);
    if (got == ANSWER_FAILED)
      return CUBEB_ERROR;
    if (got == ANSWER_MISSED)
      return play_silence(s, out, done, nframes);
    done += got;
    if ((uint32_t)got < chunk)
      return done; /* the client is draining */
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
 * parallel and the device thread sleeps about once per period.
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
split_end(void *user, void *output, long frames)
{
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  long r;
  int32_t got = s->split_asked ? collect(s, output) : ANSWER_MISSED;
  if (got == ANSWER_FAILED)
    r = CUBEB_ERROR;
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
  aipc_client_raise_event(s->client, AIPC_OP_STREAM_STATE_EVENT, s->id,
                          (uint32_t)state);
  aipc_rt_leave();
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
  uint32_t rate = p->output ? p->output->rate : p->input->rate;
  s->ns_per_frame_x1024 = (int64_t)1000000000 * 1024 / rate;
  s->deadline_min_ns = p->deadline_min_ns;
  int r;

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

  int cr = cubeb_stream_init(
      ctx, &s->backend, p->name, p->input_device, p->input, p->output_device,
      p->output, p->latency_frames, data_callback, state_callback, s);
  if (cr != CUBEB_OK) {
    r = aipc_errno_from_cubeb(cr);
    aipc_shm_release(&s->shm);
    goto fail;
  }
  /* No libcubeb backend is called "virtual": this is our own device. */
  if (strcmp(cubeb_get_backend_id(ctx), "virtual") == 0)
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
aipc_sstream_destroy(struct aipc_sstream *s)
{
  if (!s)
    return;
  /* cubeb_stream_destroy stops the stream: no callback runs after it. */
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

const struct aipc_shm *
aipc_sstream_shm(const struct aipc_sstream *s)
{
  return &s->shm;
}

const struct aipc_stream_layout *
aipc_sstream_layout(const struct aipc_sstream *s)
{
  return &s->layout;
}

static void
device_changed_callback(void *user)
{
  struct aipc_sstream *s = user;
  aipc_client_raise_event(s->client, AIPC_OP_STREAM_DEVICE_CHANGED_EVENT, s->id,
                          0);
}

int
aipc_sstream_register_device_changed(struct aipc_sstream *s, bool enable)
{
  return aipc_errno_from_cubeb(cubeb_stream_register_device_changed_callback(
      s->backend, enable ? device_changed_callback : NULL));
}
