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
  uint32_t v;
  while ((v = aipc_wake_load(&ctl->response)) != seq) {
    if (aipc_wake_wait(&ctl->response, v, deadline) < 0)
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

/*
 * The backend's data callback, on its audio thread: no allocation, no
 * lock, no syscall but the futex. Serves the backend's request in chunks
 * of at most frames_max; a client that misses a deadline gets silence for
 * the rest of the callback, and no new request until it has answered.
 */
static long
serve(struct aipc_sstream *s, const void *input, void *output, long nframes)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  const uint8_t *in = input;
  uint8_t *out = output;
  long done = 0;

  struct aipc_stream_stats *st = s->stats;
  atomic_fetch_add_explicit(&st->callbacks, 1, memory_order_relaxed);
  while (done < nframes) {
    if (s->awaiting) {
      if (aipc_wake_load(&ctl->response) != s->seq)
        goto silence;
      s->awaiting = false;
    }
    uint32_t chunk = (uint32_t)(nframes - done);
    if (chunk > s->layout.frames_max)
      chunk = s->layout.frames_max;
    if (in)
      memcpy(s->input_area, in + (size_t)done * s->in_frame_bytes,
             (size_t)chunk * s->in_frame_bytes);
    atomic_store_explicit(&ctl->frames, chunk, memory_order_relaxed);
    s->seq++;
    int64_t start = aipc_now_ns();
    aipc_wake_publish(&ctl->request, s->seq);

    int64_t wait = ((int64_t)chunk * s->ns_per_frame_x1024) >> 10;
    if (wait < s->deadline_min_ns)
      wait = s->deadline_min_ns;
    bool answered = await_response(ctl, s->seq, start + wait);
    count_wait(st, start);
    if (!answered) {
      s->awaiting = true;
      goto silence;
    }

    /* Read the client's answer once; it may change under us. */
    int32_t got = atomic_load_explicit(&ctl->result, memory_order_acquire);
    if (got < 0)
      return CUBEB_ERROR;
    if ((uint32_t)got > chunk)
      goto silence;
    if (out)
      memcpy(out + (size_t)done * s->out_frame_bytes, s->output_area,
             (size_t)got * s->out_frame_bytes);
    done += got;
    atomic_fetch_add_explicit(&st->frames, (uint64_t)got, memory_order_relaxed);
    if ((uint32_t)got < chunk)
      return done; /* the client is draining */
  }
  return nframes;

silence:
  atomic_fetch_add_explicit(&st->misses, 1, memory_order_relaxed);
  if (out)
    memset(out + (size_t)done * s->out_frame_bytes, 0,
           (size_t)(nframes - done) * s->out_frame_bytes);
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

static void
state_callback(cubeb_stream *backend, void *user, cubeb_state state)
{
  (void)backend;
  struct aipc_sstream *s = user;
  struct aipc_stream_state_event ev = {.stream = s->id, .state = state};
  aipc_client_send_event(s->client, AIPC_OP_STREAM_STATE_EVENT, &ev);
}

int
aipc_sstream_new(struct aipc_client *client, cubeb *ctx, uint32_t id,
                 const struct aipc_sstream_params *p, struct aipc_sstream **out)
{
  struct aipc_sstream *s = calloc(1, sizeof(*s));
  if (!s) {
    aipc_stats_retire(p->registry, p->stats);
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
      free(s);
      return -ENOMEM;
    }
    if (frames_max > room)
      frames_max = (uint32_t)room;
  }
  int r = aipc_stream_layout(frames_max, s->in_frame_bytes, s->out_frame_bytes,
                             &s->layout);
  if (r < 0)
    goto fail;
  r = aipc_shm_create("audioipc-stream", s->layout.size, &s->shm);
  if (r < 0)
    goto fail;
  s->ctl = s->shm.base;
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
  *out = s;
  return 0;

fail:
  aipc_stats_retire(s->registry, s->stats);
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
  struct aipc_stream_ref ev = {.stream = s->id};
  aipc_client_send_event(s->client, AIPC_OP_STREAM_DEVICE_CHANGED_EVENT, &ev);
}

int
aipc_sstream_register_device_changed(struct aipc_sstream *s, bool enable)
{
  return aipc_errno_from_cubeb(cubeb_stream_register_device_changed_callback(
      s->backend, enable ? device_changed_callback : NULL));
}
