/* SPDX-License-Identifier: ISC */
/*
 * The client's cubeb context: the ops table libcubeb dispatches into, and
 * the context-level operations, each carried to the server as one request.
 */
#include "audioipc/client.h"

#include "client-private.h"
#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
aipc_client_call(cubeb *ctx, uint16_t opcode, const void *request, void *reply,
                 struct aipc_msg **reply_msg)
{
  if (aipc_client_in_callback())
    return -EDEADLK; /* called from one of our own callbacks */
  return aipc_rpc_call(ctx->rpc, opcode, request, reply, reply_msg,
                       AIPC_CALL_TIMEOUT_NS);
}

/* Context operations with a u32 answer. */
static int
call_u32(cubeb *ctx, uint16_t opcode, const void *request, uint32_t *out)
{
  struct aipc_u32 reply;
  struct aipc_empty empty = {0};
  int r =
      aipc_client_call(ctx, opcode, request ? request : &empty, &reply, NULL);
  if (r == 0)
    *out = reply.value;
  return aipc_errno_to_cubeb(r);
}

static char const *
get_backend_id(cubeb *ctx)
{
  return ctx->backend_id;
}

static int
get_max_channel_count(cubeb *ctx, uint32_t *max_channels)
{
  return call_u32(ctx, AIPC_OP_GET_MAX_CHANNEL_COUNT, NULL, max_channels);
}

static int
get_min_latency(cubeb *ctx, cubeb_stream_params params, uint32_t *frames)
{
  struct aipc_min_latency q = {.format = params.format,
                               .rate = params.rate,
                               .channels = params.channels,
                               .layout = params.layout,
                               .prefs = params.prefs};
  return call_u32(ctx, AIPC_OP_GET_MIN_LATENCY, &q, frames);
}

static int
get_preferred_sample_rate(cubeb *ctx, uint32_t *rate)
{
  return call_u32(ctx, AIPC_OP_GET_PREFERRED_SAMPLE_RATE, NULL, rate);
}

static void
free_device_info(cubeb_device_info *d)
{
  free((char *)d->device_id);
  free((char *)d->friendly_name);
  free((char *)d->group_id);
  free((char *)d->vendor_name);
}

static int
device_collection_destroy(cubeb *ctx, cubeb_device_collection *collection)
{
  (void)ctx;
  for (size_t i = 0; i < collection->count; i++)
    free_device_info(&collection->device[i]);
  free(collection->device);
  collection->device = NULL;
  collection->count = 0;
  return CUBEB_OK;
}

static char *
dup_or_null(const char *s, bool *failed)
{
  if (!s)
    return NULL;
  char *d = strdup(s);
  *failed |= d == NULL;
  return d;
}

static int
enumerate_devices(cubeb *ctx, cubeb_device_type type,
                  cubeb_device_collection *collection)
{
  if (aipc_client_reentry(ctx, "cubeb_enumerate_devices", true))
    return CUBEB_ERROR;
  struct aipc_enumerate_devices q = {.type = type};
  struct aipc_devices_reply reply;
  struct aipc_msg *msg;
  int r = aipc_client_call(ctx, AIPC_OP_ENUMERATE_DEVICES, &q, &reply, &msg);
  if (r < 0)
    return aipc_errno_to_cubeb(r);

  cubeb_device_info *devices =
      calloc(reply.devices.count ? reply.devices.count : 1, sizeof(*devices));
  bool failed = devices == NULL;
  struct aipc_array_iter it = {0};
  struct aipc_device d;
  size_t n = 0;
  while (!failed && aipc_array_next(&reply.devices, &it, &d)) {
    devices[n++] = (cubeb_device_info){
        /* The devid is the server's token: it only means something to
         * the server, which checks it. */
        .devid = (cubeb_devid)(uintptr_t)d.token,
        .device_id = dup_or_null(d.device_id, &failed),
        .friendly_name = dup_or_null(d.friendly_name, &failed),
        .group_id = dup_or_null(d.group_id, &failed),
        .vendor_name = dup_or_null(d.vendor_name, &failed),
        .type = (cubeb_device_type)d.type,
        .state = (cubeb_device_state)d.state,
        .preferred = (cubeb_device_pref)d.preferred,
        .format = (cubeb_device_fmt)d.format,
        .default_format = (cubeb_device_fmt)d.default_format,
        .max_channels = d.max_channels,
        .default_rate = d.default_rate,
        .max_rate = d.max_rate,
        .min_rate = d.min_rate,
        .latency_lo = d.latency_lo,
        .latency_hi = d.latency_hi};
  }
  aipc_msg_free(msg);
  collection->device = devices;
  collection->count = n;
  if (failed) {
    device_collection_destroy(ctx, collection);
    return CUBEB_ERROR;
  }
  return CUBEB_OK;
}

static int
register_device_collection_changed(
    cubeb *ctx, cubeb_device_type type,
    cubeb_device_collection_changed_callback callback, void *user_ptr)
{
  if (aipc_client_reentry(ctx, "cubeb_register_device_collection_changed",
                          true))
    return CUBEB_ERROR;
  struct aipc_register_collection_changed q = {.type = type,
                                               .enable = callback != NULL};
  struct aipc_empty reply;
  int r = aipc_client_call(ctx, AIPC_OP_REGISTER_COLLECTION_CHANGED, &q, &reply,
                           NULL);
  if (r < 0)
    return aipc_errno_to_cubeb(r);
  pthread_mutex_lock(&ctx->lock);
  for (int i = 0; i < 2; i++) {
    if (type & (i == 0 ? CUBEB_DEVICE_TYPE_INPUT : CUBEB_DEVICE_TYPE_OUTPUT)) {
      ctx->collection_cb[i] = callback;
      ctx->collection_user[i] = user_ptr;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  return CUBEB_OK;
}

static void destroy(cubeb *ctx);

static const struct cubeb_ops client_ops = {
    .init = NULL, /* contexts come from audioipc_client_init */
    .get_backend_id = get_backend_id,
    .get_max_channel_count = get_max_channel_count,
    .get_min_latency = get_min_latency,
    .get_preferred_sample_rate = get_preferred_sample_rate,
    .enumerate_devices = enumerate_devices,
    .device_collection_destroy = device_collection_destroy,
    .destroy = destroy,
    .stream_init = aipc_client_stream_init,
    .stream_destroy = aipc_client_stream_destroy,
    .stream_start = aipc_client_stream_start,
    .stream_stop = aipc_client_stream_stop,
    .stream_get_position = aipc_client_stream_get_position,
    .stream_get_latency = aipc_client_stream_get_latency,
    .stream_get_input_latency = aipc_client_stream_get_input_latency,
    .stream_set_volume = aipc_client_stream_set_volume,
    .stream_set_name = aipc_client_stream_set_name,
    .stream_get_current_device = aipc_client_stream_get_current_device,
    .stream_device_destroy = aipc_client_stream_device_destroy,
    .stream_register_device_changed_callback =
        aipc_client_stream_register_device_changed,
    .register_device_collection_changed = register_device_collection_changed,
};

/* Loop thread: events from the server. */
static void
on_event(void *data, struct aipc_msg *msg)
{
  cubeb *ctx = data;
  if (msg->header.opcode == AIPC_OP_COLLECTION_CHANGED_EVENT) {
    struct aipc_collection_changed_event ev;
    if (aipc_msg_decode(&aipc_protocol, msg, &ev) == 0) {
      pthread_mutex_lock(&ctx->lock);
      cubeb_device_collection_changed_callback cb[2] = {ctx->collection_cb[0],
                                                        ctx->collection_cb[1]};
      void *user[2] = {ctx->collection_user[0], ctx->collection_user[1]};
      pthread_mutex_unlock(&ctx->lock);
      aipc_client_set_callback(AIPC_CB_COLLECTION);
      for (int i = 0; i < 2; i++) {
        /* One call per registration, even if both share a callback. */
        if (cb[i] && (i == 0 || cb[1] != cb[0] || user[1] != user[0]))
          cb[i](ctx, user[i]);
      }
      aipc_client_set_callback(AIPC_CB_NONE);
    }
  } else {
    aipc_client_stream_event(ctx, msg);
  }
  aipc_msg_free(msg);
}

static void
on_closed(void *data, int error)
{
  cubeb *ctx = data;
  (void)error;
  pthread_mutex_lock(&ctx->lock);
  ctx->dead = true;
  pthread_mutex_unlock(&ctx->lock);
  aipc_client_streams_lost(ctx);
}

static void
destroy(cubeb *ctx)
{
  /* ALSA joins its own thread from its data callback and asserts that
   * this worked. */
  if (ctx->rules == AIPC_RULES_ALSA && aipc_client_in_callback())
    aipc_client_breach(ctx, "cubeb_destroy", "called from a data callback");
  if (aipc_client_reentry(ctx, "cubeb_destroy", true)) {
    aipc_error("cubeb_destroy called from a callback; the context is leaked");
    return;
  }
  if (ctx->rules == AIPC_RULES_PULSE) {
    for (int i = 0; i < 2; i++)
      if (ctx->collection_cb[i] || ctx->collection_user[i])
        aipc_client_breach(
            ctx, "cubeb_destroy",
            i == 0 ? "the input device collection callback (or its user "
                     "pointer) is still registered"
                   : "the output device collection callback (or its user "
                     "pointer) is still registered");
  }
  while (ctx->streams)
    aipc_client_stream_destroy(ctx->streams);
  aipc_callbacks_shutdown(ctx);
  aipc_rpc_client_destroy(ctx->rpc);
  aipc_loop_destroy(ctx->loop);
  pthread_mutex_destroy(&ctx->pool_lock);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx->backend_id);
  free(ctx);
}

int
audioipc_client_init(cubeb **context, const char *context_name,
                     const AudioIpcInitParams *params)
{
  if (!params)
    return CUBEB_ERROR_INVALID_PARAMETER;
  int fd = params->server_connection;
  if (!context || fd < 0) {
    if (fd >= 0)
      close(fd);
    return CUBEB_ERROR_INVALID_PARAMETER;
  }
  if (aipc_client_in_callback()) {
    close(fd);
    return CUBEB_ERROR;
  }
  cubeb *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    close(fd);
    return CUBEB_ERROR;
  }
  ctx->ops = &client_ops;
  ctx->pool_size = params->pool_size;
  ctx->hooks =
      (struct aipc_thread_hooks){.stack_size = params->stack_size,
                                 .create = params->thread_create_callback,
                                 .destroy = params->thread_destroy_callback};
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_mutex_init(&ctx->pool_lock, NULL);

  int r = aipc_loop_new("aipc-client", &ctx->hooks, &ctx->loop);
  if (r < 0) {
    close(fd);
    goto fail;
  }
  static const struct aipc_rpc_client_events events = {.event = on_event,
                                                       .closed = on_closed};
  r = aipc_rpc_client_new(ctx->loop, fd, &aipc_protocol, &events, ctx,
                          &ctx->rpc);
  if (r < 0)
    goto fail;
  r = aipc_rpc_hello(ctx->rpc, context_name, AIPC_CALL_TIMEOUT_NS);
  if (r < 0)
    goto fail;
  struct aipc_context_init q = {.name = context_name};
  struct aipc_context_init_reply reply;
  struct aipc_msg *msg;
  r = aipc_client_call(ctx, AIPC_OP_CONTEXT_INIT, &q, &reply, &msg);
  if (r < 0)
    goto fail;
  ctx->backend_id = strdup(reply.backend_id);
  aipc_msg_free(msg);
  if (!ctx->backend_id)
    goto fail;
  ctx->rules = aipc_backend_rules_of(ctx->backend_id);
  *context = ctx;
  return CUBEB_OK;

fail:
  if (r < 0 && r != -EPROTO)
    aipc_warn("cannot set up the audio context: %s", strerror(-r));
  aipc_rpc_client_destroy(ctx->rpc);
  aipc_loop_destroy(ctx->loop);
  pthread_mutex_destroy(&ctx->pool_lock);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
  return CUBEB_ERROR;
}
