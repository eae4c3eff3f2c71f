/* SPDX-License-Identifier: ISC */
/*
 * The client's streams: the requests that make, control and destroy
 * them, their shared memory, and their events. Their callbacks run on
 * the callback threads of callback.c.
 */
#include "client-private.h"

#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t
frame_bytes(const cubeb_stream_params *p)
{
  if (!p)
    return 0;
  bool s16 = p->format == CUBEB_SAMPLE_S16LE || p->format == CUBEB_SAMPLE_S16BE;
  return (s16 ? 2u : 4u) * p->channels;
}

/* Loop thread. */
static void
add_stream(void *data)
{
  cubeb_stream *s = data;
  cubeb *ctx = s->context;
  pthread_mutex_lock(&ctx->lock);
  s->next = ctx->streams;
  ctx->streams = s;
  ctx->nstreams++;
  pthread_mutex_unlock(&ctx->lock);
}

/* Loop thread: after this no event reaches the stream. */
static void
remove_stream(void *data)
{
  cubeb_stream *s = data;
  cubeb *ctx = s->context;
  pthread_mutex_lock(&ctx->lock);
  for (cubeb_stream **p = &ctx->streams; *p; p = &(*p)->next) {
    if (*p == s) {
      *p = s->next;
      ctx->nstreams--;
      break;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
}

static int
map_stream(cubeb_stream *s, struct aipc_msg *msg,
           const struct aipc_stream_init_reply *reply, uint32_t in_bytes,
           uint32_t out_bytes)
{
  /* The server lays regions out with aipc_stream_layout too: anything
   * else (misaligned, overlapping, out of bounds) is refused. */
  struct aipc_stream_layout need;
  /* A ring is a power of two frames. */
  if (reply->buffered && (reply->frames_max & (reply->frames_max - 1)))
    return -EBADMSG;
  if (aipc_stream_layout(reply->frames_max, in_bytes, out_bytes, &need) < 0 ||
      !aipc_stream_layout_matches(&need, reply->shm_size, reply->input_offset,
                                  reply->output_offset))
    return -EBADMSG;
  int r = aipc_shm_import(aipc_msg_take_fd(msg, 0), reply->shm_size, &s->shm);
  if (r < 0)
    return r;
  aipc_shm_close_fd(&s->shm);
  s->ctl = s->shm.base;
  s->frames_max = reply->frames_max;
  s->in_frame_bytes = in_bytes;
  s->out_frame_bytes = out_bytes;
  s->buffered = reply->buffered;
  s->input_area =
      in_bytes ? (uint8_t *)s->shm.base + reply->input_offset : NULL;
  s->output_area =
      out_bytes ? (uint8_t *)s->shm.base + reply->output_offset : NULL;
  return 0;
}

int
aipc_client_stream_init(cubeb *ctx, cubeb_stream **stream, char const *name,
                        cubeb_devid input_device, cubeb_stream_params *input,
                        cubeb_devid output_device, cubeb_stream_params *output,
                        unsigned latency, cubeb_data_callback data_cb,
                        cubeb_state_callback state_cb, void *user_ptr)
{
  if (aipc_client_reentry(ctx, "cubeb_stream_init", true))
    return CUBEB_ERROR;
  if (!input && !output)
    return CUBEB_ERROR_INVALID_PARAMETER;
  /* Pulse asserts on it for the output only (the input gets an error). */
  if (ctx->rules == AIPC_RULES_PULSE && output &&
      output->layout != CUBEB_LAYOUT_UNDEFINED &&
      (unsigned)__builtin_popcount(output->layout) != output->channels)
    aipc_client_breach(ctx, "cubeb_stream_init",
                       "the output's layout has another channel count than "
                       "its channels");

  struct aipc_stream_init q = {
      .name = name,
      .input_device = (uint64_t)(uintptr_t)input_device,
      .output_device = (uint64_t)(uintptr_t)output_device,
      .has_input = input != NULL,
      .has_output = output != NULL,
      .latency_frames = latency};
  if (input) {
    q.in_format = input->format;
    q.in_rate = input->rate;
    q.in_channels = input->channels;
    q.in_layout = input->layout;
    q.in_prefs = input->prefs;
  }
  if (output) {
    q.out_format = output->format;
    q.out_rate = output->rate;
    q.out_channels = output->channels;
    q.out_layout = output->layout;
    q.out_prefs = output->prefs;
  }

  cubeb_stream *s = calloc(1, sizeof(*s));
  if (!s)
    return CUBEB_ERROR;
  s->context = ctx;
  s->user_ptr = user_ptr;
  s->data_cb = data_cb;
  s->state_cb = state_cb;

  struct aipc_stream_init_reply reply;
  struct aipc_msg *msg;
  int r = aipc_client_call(ctx, AIPC_OP_STREAM_INIT, &q, &reply, &msg);
  if (r < 0) {
    free(s);
    return aipc_errno_to_cubeb(r);
  }
  s->id = reply.stream;
  r = map_stream(s, msg, &reply, frame_bytes(input), frame_bytes(output));
  aipc_msg_free(msg);
  if (r == 0) {
    r = aipc_callbacks_attach(ctx, s);
    if (r < 0)
      aipc_shm_release(&s->shm);
  }
  if (r == 0) {
    /* The caller's pointer is set before the loop can report on the
     * stream, so a state callback can compare against it. */
    *stream = s;
    r = aipc_loop_invoke(ctx->loop, add_stream, s);
    if (r < 0) {
      *stream = NULL;
      aipc_callbacks_detach(ctx, s);
      aipc_shm_release(&s->shm);
    }
  }
  if (r < 0) {
    aipc_warn("cannot set up stream %u: %s", s->id, strerror(-r));
    struct aipc_stream_ref ref = {.stream = s->id};
    struct aipc_empty empty;
    aipc_client_call(ctx, AIPC_OP_STREAM_DESTROY, &ref, &empty, NULL);
    free(s);
    return CUBEB_ERROR;
  }
  return CUBEB_OK;
}

void
aipc_client_stream_destroy(cubeb_stream *s)
{
  cubeb *ctx = s->context;
  struct aipc_stream_ref q = {.stream = s->id};
  struct aipc_empty reply;
  if (ctx->rules == AIPC_RULES_ALSA && aipc_client_in_callback())
    aipc_client_breach(ctx, "cubeb_stream_destroy",
                       "called from a callback (ALSA: of a stream in its "
                       "callback)");
  if (ctx->rules == AIPC_RULES_ALSA && atomic_load(&s->started) &&
      !atomic_load(&s->draining))
    aipc_client_breach(ctx, "cubeb_stream_destroy",
                       "the stream is running (stop it first)");
  /* From a callback this would deadlock on our own thread; libcubeb gives
   * destroy no way to fail, so the stream leaks rather than hangs. */
  if (aipc_client_reentry(ctx, "cubeb_stream_destroy", true)) {
    aipc_error("cubeb_stream_destroy called from a callback; ignored");
    return;
  }
  /* Once the server has destroyed its stream, no request comes; if the
   * server is gone, none comes either. */
  aipc_client_call(ctx, AIPC_OP_STREAM_DESTROY, &q, &reply, NULL);
  aipc_loop_invoke(ctx->loop, remove_stream, s);
  aipc_callbacks_detach(ctx, s);
  aipc_shm_release(&s->shm);
  free(s);
}

static int
stream_call(cubeb_stream *s, uint16_t opcode, void *reply)
{
  struct aipc_stream_ref q = {.stream = s->id};
  return aipc_errno_to_cubeb(
      aipc_client_call(s->context, opcode, &q, reply, NULL));
}

/* Waits until no data callback of `s` runs; none begins until `running`
 * is set again. */
static void
quiesce(cubeb_stream *s)
{
  atomic_store(&s->running, false);
  while (aipc_wake_load(&s->in_user) != 0)
    aipc_wake_wait(&s->in_user, 1, -1);
}

/* A buffered stream that was stopped or ended starts from the server's
 * position: what was rendered ahead of the stop is dropped, and the
 * callback's end forgotten (the server's position is a duplex stream's
 * input, its output `ahead` frames behind). */
static void
ring_restart(cubeb_stream *s)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  if (atomic_load(&s->running) &&
      atomic_load_explicit(&ctl->end, memory_order_acquire) ==
          AIPC_RING_END_NONE)
    return; /* it runs: nothing to drop */
  quiesce(s);
  atomic_store(&ctl->end, AIPC_RING_END_NONE);
  /* A duplex stream's first output, before the client has had input for
   * it, is this silence. */
  if (s->input_area && s->output_area)
    memset(s->output_area, 0, (size_t)s->frames_max * s->out_frame_bytes);
  aipc_wake_publish(&ctl->client_pos, aipc_wake_load(&ctl->server_pos));
}

int
aipc_client_stream_start(cubeb_stream *s)
{
  struct aipc_empty reply;
  if (aipc_client_reentry(s->context, "cubeb_stream_start", true))
    return CUBEB_ERROR;
  /* Pulse arms a drain timer at a short answer, and its start calls the
   * data callback at once: unless that answers in full, it meets the
   * timer, assert(!stm->drain_timer). */
  if (s->context->rules == AIPC_RULES_PULSE && atomic_load(&s->draining))
    aipc_client_breach(s->context, "cubeb_stream_start",
                       "the stream is draining (its data callback answered "
                       "short and DRAINED has not come)");
  if (s->buffered)
    ring_restart(s);
  atomic_store(&s->running, true);
  int r = stream_call(s, AIPC_OP_STREAM_START, &reply);
  if (r != CUBEB_OK)
    atomic_store(&s->running, false);
  else
    atomic_store(&s->started, true);
  return r;
}

int
aipc_client_stream_stop(cubeb_stream *s)
{
  struct aipc_empty reply;
  if (aipc_client_reentry(s->context, "cubeb_stream_stop", true))
    return CUBEB_ERROR;
  int r = stream_call(s, AIPC_OP_STREAM_STOP, &reply);
  atomic_store(&s->started, false);
  /* Whatever the server said: no data callback runs after we return. */
  quiesce(s);
  return r;
}

int
aipc_client_stream_get_position(cubeb_stream *s, uint64_t *position)
{
  struct aipc_u64 reply;
  int r = stream_call(s, AIPC_OP_STREAM_GET_POSITION, &reply);
  if (r == CUBEB_OK)
    *position = reply.value;
  return r;
}

int
aipc_client_stream_get_latency(cubeb_stream *s, uint32_t *latency)
{
  struct aipc_u32 reply;
  int r = stream_call(s, AIPC_OP_STREAM_GET_LATENCY, &reply);
  if (r == CUBEB_OK)
    *latency = reply.value;
  return r;
}

int
aipc_client_stream_get_input_latency(cubeb_stream *s, uint32_t *latency)
{
  struct aipc_u32 reply;
  int r = stream_call(s, AIPC_OP_STREAM_GET_INPUT_LATENCY, &reply);
  if (r == CUBEB_OK)
    *latency = reply.value;
  return r;
}

int
aipc_client_stream_set_volume(cubeb_stream *s, float volume)
{
  if (aipc_client_reentry(s->context, "cubeb_stream_set_volume", true))
    return CUBEB_ERROR;
  struct aipc_stream_volume q = {.stream = s->id, .volume = volume};
  struct aipc_empty reply;
  return aipc_errno_to_cubeb(aipc_client_call(
      s->context, AIPC_OP_STREAM_SET_VOLUME, &q, &reply, NULL));
}

int
aipc_client_stream_set_name(cubeb_stream *s, char const *name)
{
  if (aipc_client_reentry(s->context, "cubeb_stream_set_name", true))
    return CUBEB_ERROR;
  struct aipc_stream_name q = {.stream = s->id, .name = name};
  struct aipc_empty reply;
  return aipc_errno_to_cubeb(
      aipc_client_call(s->context, AIPC_OP_STREAM_SET_NAME, &q, &reply, NULL));
}

int
aipc_client_stream_get_current_device(cubeb_stream *s,
                                      cubeb_device **const device)
{
  struct aipc_stream_ref q = {.stream = s->id};
  struct aipc_current_device_reply reply;
  struct aipc_msg *msg;
  int r = aipc_client_call(s->context, AIPC_OP_STREAM_GET_CURRENT_DEVICE, &q,
                           &reply, &msg);
  if (r < 0)
    return aipc_errno_to_cubeb(r);
  cubeb_device *d = calloc(1, sizeof(*d));
  if (d) {
    d->output_name = reply.output_name ? strdup(reply.output_name) : NULL;
    d->input_name = reply.input_name ? strdup(reply.input_name) : NULL;
  }
  aipc_msg_free(msg);
  if (!d || (reply.output_name && !d->output_name) ||
      (reply.input_name && !d->input_name)) {
    aipc_client_stream_device_destroy(s, d);
    return CUBEB_ERROR;
  }
  *device = d;
  return CUBEB_OK;
}

int
aipc_client_stream_device_destroy(cubeb_stream *s, cubeb_device *device)
{
  (void)s;
  if (device) {
    free(device->output_name);
    free(device->input_name);
    free(device);
  }
  return CUBEB_OK;
}

int
aipc_client_stream_register_device_changed(
    cubeb_stream *s, cubeb_device_changed_callback callback)
{
  struct aipc_stream_register q = {.stream = s->id, .enable = callback != NULL};
  struct aipc_empty reply;
  int r = aipc_client_call(s->context, AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED,
                           &q, &reply, NULL);
  if (r == 0) {
    pthread_mutex_lock(&s->context->lock);
    s->device_changed_cb = callback;
    pthread_mutex_unlock(&s->context->lock);
  }
  return aipc_errno_to_cubeb(r);
}

static cubeb_stream *
find_stream(cubeb *ctx, uint32_t id)
{
  for (cubeb_stream *s = ctx->streams; s; s = s->next)
    if (s->id == id)
      return s;
  return NULL;
}

static void
report_state(cubeb_stream *s, cubeb_state state)
{
  if (state == CUBEB_STATE_ERROR) {
    if (s->error_reported)
      return;
    s->error_reported = true;
  }
  bool end = state == CUBEB_STATE_DRAINED || state == CUBEB_STATE_ERROR;
  if (end || state == CUBEB_STATE_STOPPED) {
    atomic_store(&s->started, false);
    atomic_store(&s->draining, false);
  }
  aipc_client_set_callback(end ? AIPC_CB_STATE_END : AIPC_CB_STATE_EDGE);
  s->state_cb(s, s->user_ptr, state);
  aipc_client_set_callback(AIPC_CB_NONE);
}

void
aipc_client_stream_event(cubeb *ctx, const struct aipc_msg *msg)
{
  if (msg->header.opcode == AIPC_OP_STREAM_STATE_EVENT) {
    struct aipc_stream_state_event ev;
    if (aipc_msg_decode(&aipc_protocol, msg, &ev) < 0)
      return;
    cubeb_stream *s = find_stream(ctx, ev.stream);
    if (s)
      report_state(s, (cubeb_state)ev.state);
  } else if (msg->header.opcode == AIPC_OP_STREAM_DEVICE_CHANGED_EVENT) {
    struct aipc_stream_ref ev;
    if (aipc_msg_decode(&aipc_protocol, msg, &ev) < 0)
      return;
    cubeb_stream *s = find_stream(ctx, ev.stream);
    pthread_mutex_lock(&ctx->lock);
    cubeb_device_changed_callback cb = s ? s->device_changed_cb : NULL;
    pthread_mutex_unlock(&ctx->lock);
    if (cb) {
      aipc_client_set_callback(AIPC_CB_DEVICE);
      cb(s->user_ptr);
      aipc_client_set_callback(AIPC_CB_NONE);
    }
  }
}

void
aipc_client_streams_lost(cubeb *ctx)
{
  for (cubeb_stream *s = ctx->streams; s; s = s->next)
    report_state(s, CUBEB_STATE_ERROR);
}
