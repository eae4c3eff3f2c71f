/* SPDX-License-Identifier: ISC */
/*
 * One client of the server: its connection, its cubeb context, its
 * streams and its device tokens, and the thread of its own that reads its
 * requests and handles them one at a time; everything below runs there
 * unless it says otherwise. A backend call that blocks (a pulse context
 * lock held by a stalled stream, a slow enumeration) holds up this client
 * alone.
 */
#include "server-private.h"

#include "clock.h"
#include "cubeb-errors.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHM_PAGE 4096u

struct aipc_client {
  struct aipc_server *server;
  struct aipc_loop *loop;
  struct aipc_session *session;
  pthread_t thread;
  unsigned number;
  pid_t pid;
  uid_t uid; /* that process's, or (uid_t)-1 */
  int pidfd; /* the process the embedder vouched for, or -1 */
  size_t shm_area_size;
  struct aipc_limits limits;    /* the server's when we were made */
  struct aipc_account *account; /* the process's, or the client's own */
  atomic_uint events_queued;    /* raised, not yet sent */
  atomic_bool collection_event_pending;
  atomic_uint collection_wanted;       /* device types the client registered */
  _Atomic int64_t collection_event_at; /* the backend's last, monotonic ns */
  atomic_uint_fast64_t events_dropped;
  uint64_t events_dropped_reported; /* loop thread */

  /* The client's thread only. */
  cubeb *ctx;
  struct aipc_sstream **streams;
  uint32_t nstreams;
  uint32_t next_stream_id;
  uint64_t shm_bytes;
  /* Bytes of the regions whose fds went out in replies the client may not
   * have read yet: an fd in flight keeps its region alive, stream or no
   * stream. Cleared whenever the client has read everything. */
  uint64_t unread_shm;
  struct aipc_devices *devices; /* made with the context */
  bool collection_registered;   /* at the backend, for both directions */
  pid_t *rt_threads;            /* promoted for the client, newest last */
  uint32_t nrt_threads;
  int64_t demote_at; /* when to check for promotions above the streams */
};

unsigned
aipc_client_number(const struct aipc_client *c)
{
  return c->number;
}

void
aipc_client_describe(const struct aipc_client *c, AudioIpcClientInfo *out)
{
  *out =
      (AudioIpcClientInfo){.client = c->number, .pid = c->pid, .uid = c->uid};
}

/* One client's share of the server's event queue: a client that makes
 * its streams change state faster than its events can be sent loses its
 * own events, never another client's. */
#define EVENTS_PER_CLIENT 256

void
aipc_client_raise_event(struct aipc_client *c, uint16_t opcode, uint32_t a,
                        uint32_t b)
{
  if (atomic_fetch_add(&c->events_queued, 1) >= EVENTS_PER_CLIENT ||
      !aipc_event_queue_push(aipc_server_events(c->server), c->number, opcode,
                             a, b)) {
    atomic_fetch_sub(&c->events_queued, 1);
    atomic_fetch_add_explicit(&c->events_dropped, 1, memory_order_relaxed);
  }
}

void
aipc_client_deliver_event(struct aipc_client *c, uint16_t opcode, uint32_t a,
                          uint32_t b)
{
  atomic_fetch_sub(&c->events_queued, 1);
  uint64_t dropped = atomic_load(&c->events_dropped);
  if (dropped != c->events_dropped_reported) {
    aipc_warn("client %u: %llu of its events dropped (%u were waiting to be "
              "sent)",
              c->number,
              (unsigned long long)(dropped - c->events_dropped_reported),
              EVENTS_PER_CLIENT);
    c->events_dropped_reported = dropped;
  }
  union {
    struct aipc_stream_state_event state;
    struct aipc_stream_ref ref;
    struct aipc_collection_changed_event collection;
  } body;
  switch (opcode) {
  case AIPC_OP_STREAM_STATE_EVENT:
    body.state = (struct aipc_stream_state_event){.stream = a, .state = b};
    break;
  case AIPC_OP_STREAM_DEVICE_CHANGED_EVENT:
    body.ref = (struct aipc_stream_ref){.stream = a};
    break;
  case AIPC_OP_COLLECTION_CHANGED_EVENT:
    atomic_store(&c->collection_event_pending, false);
    body.collection = (struct aipc_collection_changed_event){.type = a};
    break;
  default:
    return;
  }
  aipc_session_send_event(c->session, opcode, &body, NULL, 0);
}

/* --- Validation ---------------------------------------------------------- */

static int
check_params(const struct aipc_limits *l, uint32_t format, uint32_t rate,
             uint32_t channels, uint32_t layout, uint32_t prefs,
             cubeb_stream_params *out)
{
  if (format > CUBEB_SAMPLE_FLOAT32BE)
    return -EMEDIUMTYPE;
  if (rate < 1000 || rate > 192000 || channels < 1 ||
      channels > l->channels_max)
    return -EINVAL;
  if (layout != CUBEB_LAYOUT_UNDEFINED &&
      (uint32_t)__builtin_popcount(layout) != channels)
    return -EINVAL;
  if (prefs & ~(uint32_t)0x3f)
    return -EINVAL;
  /* A loopback stream records what others play. */
  if ((prefs & CUBEB_STREAM_PREF_LOOPBACK) && !l->allow_monitors)
    return -EPERM;
  *out = (cubeb_stream_params){.format = (cubeb_sample_format)format,
                               .rate = rate,
                               .channels = channels,
                               .layout = layout,
                               .prefs = (cubeb_stream_prefs)prefs};
  return 0;
}

static int
reply_u32(struct aipc_request *req, uint32_t value)
{
  struct aipc_u32 reply = {.value = value};
  aipc_request_reply(req, &reply, NULL, 0);
  return 0;
}

static int
reply_empty(struct aipc_request *req)
{
  struct aipc_empty reply = {0};
  aipc_request_reply(req, &reply, NULL, 0);
  return 0;
}

/* --- Devices ------------------------------------------------------------ */

static int
handle_enumerate(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_enumerate_devices *q = (const void *)req->body;
  return aipc_devices_enumerate(c->devices, q->type, req);
}

static void
collection_changed(cubeb *ctx, void *user)
{
  (void)ctx;
  struct aipc_client *c = user;
  atomic_store(&c->collection_event_at, aipc_now_ns());
  /* cubeb does not say which direction changed; and one event still to
   * be sent says all there is to say, however many changes follow. */
  if (atomic_load(&c->collection_wanted) == 0 ||
      atomic_exchange(&c->collection_event_pending, true))
    return;
  aipc_client_raise_event(c, AIPC_OP_COLLECTION_CHANGED_EVENT,
                          CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT,
                          0);
}

/* Device events come in bursts (a sink, its monitor, the card), and some
 * reach the backend's thread only a while after the sound server sent
 * them (seen: over 100 ms after the last one before them). Before the
 * teardown clears the backend's collection callback, the last event must
 * be COLLECTION_QUIET_NS ago, and a round trip with the sound server (an
 * enumeration) must bring none: whatever it had sent before answering
 * has been dispatched by then. At most COLLECTION_SETTLE_MAX_NS, and a
 * few round trips. */
#define COLLECTION_QUIET_NS (100 * AIPC_NSEC_PER_MSEC)
#define COLLECTION_SETTLE_MAX_NS (500 * AIPC_NSEC_PER_MSEC)
#define COLLECTION_SETTLE_ROUNDS 4

static void
settle_device_events(struct aipc_client *c)
{
  int64_t start = aipc_now_ns();
  for (int round = 0; round < COLLECTION_SETTLE_ROUNDS; round++) {
    int64_t now;
    while ((now = aipc_now_ns()) - atomic_load(&c->collection_event_at) <
               COLLECTION_QUIET_NS &&
           now - start < COLLECTION_SETTLE_MAX_NS)
      usleep(10 * 1000);
    int64_t seen = atomic_load(&c->collection_event_at);
    cubeb_device_collection all;
    if (cubeb_enumerate_devices(
            c->ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, &all) ==
        CUBEB_OK)
      cubeb_device_collection_destroy(c->ctx, &all);
    if (atomic_load(&c->collection_event_at) == seen ||
        aipc_now_ns() - start >= COLLECTION_SETTLE_MAX_NS)
      return;
  }
}

/*
 * libcubeb keeps a callback and a user pointer per direction, and pulse
 * asserts at cubeb_destroy that every one of them is NULL. Worse, pulse
 * clears a direction's pointer before it takes its mainloop's lock and
 * changes what it subscribes to, and calls the pointer of whichever
 * direction an event names: an event of a device coming or going that is
 * under way while a direction is cleared (or still queued for a
 * direction no longer registered) calls NULL, in the server. So the
 * backend is registered once, for both directions, with one callback,
 * and stays so until the teardown clears both at once, once the device
 * events have settled (settle_device_events): what is left of pulse's
 * race is an event that starts in the microseconds of that clearing, as
 * it would be in-process. What the client registers and unregisters only
 * says which events it gets. A shared context has one registration for
 * every client, which one client could take from another: it is refused
 * there.
 */
static int
handle_register_collection(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_register_collection_changed *q = (const void *)req->body;
  if (q->type == 0)
    return -EINVAL;
  if (aipc_server_context_is_shared(c->server))
    return -EOPNOTSUPP;
  if (q->enable && !c->collection_registered) {
    int r = aipc_errno_from_cubeb(cubeb_register_device_collection_changed(
        c->ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT,
        collection_changed, c));
    if (r < 0)
      return r;
    c->collection_registered = true;
  }
  if (q->enable)
    atomic_fetch_or(&c->collection_wanted, q->type);
  else
    atomic_fetch_and(&c->collection_wanted, ~q->type);
  return reply_empty(req);
}

/* --- Context ------------------------------------------------------------ */

static int
handle_context_init(struct aipc_client *c, struct aipc_request *req)
{
  if (c->ctx)
    return -EALREADY;
  int r = aipc_server_cubeb_init(c->server, &c->ctx);
  if (r < 0)
    return r;
  r = aipc_devices_new(c->ctx, c->limits.device_tokens,
                       c->limits.allow_monitors, &c->devices);
  if (r < 0) {
    aipc_server_cubeb_release(c->server, c->ctx);
    c->ctx = NULL;
    return r;
  }
  struct aipc_context_init_reply reply = {.backend_id =
                                              cubeb_get_backend_id(c->ctx)};
  aipc_request_reply(req, &reply, NULL, 0);
  return 0;
}

static int
handle_max_channels(struct aipc_client *c, struct aipc_request *req)
{
  uint32_t n = 0;
  int r = aipc_errno_from_cubeb(cubeb_get_max_channel_count(c->ctx, &n));
  return r < 0 ? r : reply_u32(req, n);
}

static int
handle_min_latency(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_min_latency *q = (const void *)req->body;
  cubeb_stream_params params;
  int r = check_params(&c->limits, q->format, q->rate, q->channels, q->layout,
                       q->prefs, &params);
  if (r < 0)
    return r;
  uint32_t frames = 0;
  r = aipc_errno_from_cubeb(cubeb_get_min_latency(c->ctx, &params, &frames));
  return r < 0 ? r : reply_u32(req, frames);
}

static int
handle_preferred_rate(struct aipc_client *c, struct aipc_request *req)
{
  uint32_t rate = 0;
  int r = aipc_errno_from_cubeb(cubeb_get_preferred_sample_rate(c->ctx, &rate));
  return r < 0 ? r : reply_u32(req, rate);
}

static int
handle_ping(struct aipc_client *c, struct aipc_request *req)
{
  (void)c;
  struct aipc_ping reply = *(const struct aipc_ping *)req->body;
  aipc_request_reply(req, &reply, NULL, 0);
  return 0;
}

/* --- Streams ------------------------------------------------------------ */

static struct aipc_sstream *
find_stream(const struct aipc_client *c, uint32_t id, uint32_t *index)
{
  for (uint32_t i = 0; i < c->nstreams; i++) {
    if (aipc_sstream_id(c->streams[i]) == id) {
      if (index)
        *index = i;
      return c->streams[i];
    }
  }
  return NULL;
}

/* The stream a request names, or NULL (and the request answered). */
static struct aipc_sstream *
request_stream(struct aipc_client *c, struct aipc_request *req)
{
  uint32_t id;
  memcpy(&id, req->body, sizeof(id)); /* every stream request starts so */
  struct aipc_sstream *s = find_stream(c, id, NULL);
  if (!s)
    aipc_request_fail(req, -ENOENT);
  return s;
}

static int
handle_stream_init(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_stream_init *q = (const void *)req->body;
  const struct aipc_limits *l = &c->limits;
  cubeb_stream_params in, out;
  int r;

  /* libcubeb asserts on a stream with no direction: refuse it here. */
  if (!q->has_input && !q->has_output)
    return -EINVAL;
  if (q->has_input &&
      (r = check_params(l, q->in_format, q->in_rate, q->in_channels,
                        q->in_layout, q->in_prefs, &in)) < 0)
    return r;
  if (q->has_output &&
      (r = check_params(l, q->out_format, q->out_rate, q->out_channels,
                        q->out_layout, q->out_prefs, &out)) < 0)
    return r;
  if (q->has_input && q->has_output &&
      (in.rate != out.rate || in.format != out.format))
    return -EMEDIUMTYPE;
  if (q->latency_frames < 1 || q->latency_frames > 96000)
    return -EINVAL;
  if ((r = aipc_sstream_check_params(c->ctx, q->has_input ? &in : NULL,
                                     q->has_output ? &out : NULL)) < 0)
    return r;
  if (c->nstreams >= l->streams_per_client)
    return -ENOSPC;
  struct aipc_accounts *accounts = aipc_server_accounts(c->server);
  if ((r = aipc_account_charge(accounts, c->account, AIPC_RES_STREAMS, 1, l,
                               c->number)) < 0)
    return r;
  /* At most a second: pulse drains for twice the latency, and a stop or
   * start of a draining stream waits for that. */
  uint32_t rate = q->has_output ? out.rate : in.rate;
  uint32_t latency = q->latency_frames < rate ? q->latency_frames : rate;

  /* Whole pages, so the region (rounded up to a page) stays within the
   * bound; and a region is at least one page. */
  uint64_t shm_max = l->shm_per_stream;
  if (c->shm_area_size && c->shm_area_size < shm_max)
    shm_max = c->shm_area_size;
  shm_max -= shm_max % SHM_PAGE;
  if (shm_max == 0)
    return -ENOMEM;

  struct aipc_sstream_params p = {.name = q->name,
                                  .input = q->has_input ? &in : NULL,
                                  .output = q->has_output ? &out : NULL,
                                  .latency_frames = latency,
                                  .shm_max = (uint32_t)shm_max,
                                  .deadline_ns =
                                      aipc_server_deadline(c->server),
                                  .render_ahead = l->render_ahead};
  if ((r = aipc_devices_resolve(c->devices, q->has_input ? q->input_device : 0,
                                &p.input_device)) < 0 ||
      (r = aipc_devices_resolve(c->devices,
                                q->has_output ? q->output_device : 0,
                                &p.output_device)) < 0)
    goto refund_stream;
  cubeb_device_collection hold = {0};
  if (q->has_input && q->input_device == 0 &&
      (r = aipc_devices_default_input(c->devices, &p.input_device, &hold)) <
          0) {
    aipc_warn("client %u: no input device to give a stream (the only ones "
              "are monitors)",
              c->number);
    goto refund_stream;
  }

  uint32_t id = ++c->next_stream_id;
  if (id == 0)
    id = ++c->next_stream_id;
  p.registry = aipc_server_stats(c->server);
  struct aipc_stream_shape shape = {
      .in_channels = q->has_input ? in.channels : 0,
      .out_channels = q->has_output ? out.channels : 0,
      .rate = rate,
      .format = q->has_output ? out.format : in.format,
      .latency_frames = latency};
  p.stats = aipc_stats_new(p.registry, c->number, c->pid, id, &shape);
  struct aipc_sstream *s;
  r = p.stats ? aipc_sstream_new(c, c->ctx, id, &p, &s) : -ENOMEM;
  cubeb_device_collection_destroy(c->ctx, &hold);
  if (r < 0)
    goto refund_stream;
  const struct aipc_stream_layout *layout = aipc_sstream_layout(s);
  if (aipc_session_peer_read_all(c->session))
    c->unread_shm = 0;
  if (c->shm_bytes + c->unread_shm + layout->size > l->shm_per_client) {
    aipc_warn("client %u: its streams, and the memory of those whose "
              "replies it has not read, would exceed shm_per_client",
              c->number);
    r = -ENOSPC;
  } else {
    r = aipc_account_charge(accounts, c->account, AIPC_RES_SHM, layout->size, l,
                            c->number);
  }
  if (r < 0) {
    aipc_sstream_destroy(s);
    goto refund_stream;
  }
  c->shm_bytes += layout->size;
  c->streams[c->nstreams++] = s;

  struct aipc_stream_init_reply reply = {.stream = id,
                                         .shm_size = layout->size,
                                         .frames_max = layout->frames_max,
                                         .input_offset = layout->input_offset,
                                         .output_offset = layout->output_offset,
                                         .buffered = aipc_sstream_buffered(s)};
  /* Sent, the fd is the client's (and the kernel's, until it reads it):
   * the server keeps only the mapping, not an fd per live stream. */
  int fd = aipc_sstream_take_fd(s);
  aipc_request_reply(req, &reply, &fd, 1);
  close(fd);
  c->unread_shm += layout->size;
  return 0;

refund_stream:
  aipc_account_refund(accounts, c->account, AIPC_RES_STREAMS, 1);
  return r;
}

/* How long a promoted thread may outlive the stream it served: the
 * client library ends it right after the stream's STREAM_DESTROY reply. */
#define DEMOTE_GRACE_NS (200 * AIPC_NSEC_PER_MSEC)

static void
remove_stream(struct aipc_client *c, uint32_t index)
{
  struct aipc_sstream *s = c->streams[index];
  c->streams[index] = c->streams[--c->nstreams];
  uint32_t size = aipc_sstream_layout(s)->size;
  c->shm_bytes -= size;
  aipc_sstream_destroy(s);
  struct aipc_accounts *accounts = aipc_server_accounts(c->server);
  aipc_account_refund(accounts, c->account, AIPC_RES_SHM, size);
  aipc_account_refund(accounts, c->account, AIPC_RES_STREAMS, 1);
  /* The stream's callback thread ends once the client has its answer:
   * look again a little later (client_main). */
  if (c->nrt_threads > 0 && !c->demote_at)
    c->demote_at = aipc_now_ns() + DEMOTE_GRACE_NS;
}

static int
handle_stream_destroy(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_stream_ref *q = (const void *)req->body;
  uint32_t index;
  if (!find_stream(c, q->stream, &index))
    return -ENOENT;
  remove_stream(c, index);
  return reply_empty(req);
}

/* A backend call on the stream a request names, if the stream is still
 * usable (aipc_sstream_usable); `s` is the stream from then on. */
#define STREAM_CALL(call)                                                      \
  struct aipc_sstream *s = request_stream(c, req);                             \
  if (!s)                                                                      \
    return 0;                                                                  \
  do {                                                                         \
    cubeb_stream *stm = aipc_sstream_backend(s);                               \
    int r = aipc_sstream_usable(s);                                            \
    if (r == 0)                                                                \
      r = aipc_errno_from_cubeb(call);                                         \
    if (r < 0)                                                                 \
      return r;                                                                \
  } while (0)

static int
handle_stream_start(struct aipc_client *c, struct aipc_request *req)
{
  struct aipc_sstream *s = request_stream(c, req);
  if (!s)
    return 0;
  int r = aipc_sstream_start(s);
  return r < 0 ? r : reply_empty(req);
}

static int
handle_stream_stop(struct aipc_client *c, struct aipc_request *req)
{
  struct aipc_sstream *s = request_stream(c, req);
  if (!s)
    return 0;
  int r = aipc_sstream_stop(s);
  return r < 0 ? r : reply_empty(req);
}

static int
handle_get_position(struct aipc_client *c, struct aipc_request *req)
{
  uint64_t position = 0;
  STREAM_CALL(cubeb_stream_get_position(stm, &position));
  position = aipc_sstream_position(s, position);
  struct aipc_u64 reply = {.value = position & INT64_MAX};
  aipc_request_reply(req, &reply, NULL, 0);
  return 0;
}

/* A latency the backend reported, plus what waits in the stream's ring. */
static uint32_t
with_ring(const struct aipc_sstream *s, uint32_t latency, bool output)
{
  uint32_t ring = aipc_sstream_ring_frames(s, output);
  return latency > UINT32_MAX - ring ? UINT32_MAX : latency + ring;
}

static int
handle_get_latency(struct aipc_client *c, struct aipc_request *req)
{
  uint32_t latency = 0;
  STREAM_CALL(cubeb_stream_get_latency(stm, &latency));
  return reply_u32(req, with_ring(s, latency, true));
}

static int
handle_get_input_latency(struct aipc_client *c, struct aipc_request *req)
{
  uint32_t latency = 0;
  STREAM_CALL(cubeb_stream_get_input_latency(stm, &latency));
  return reply_u32(req, with_ring(s, latency, false));
}

static int
handle_set_volume(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_stream_volume *q = (const void *)req->body;
  STREAM_CALL(cubeb_stream_set_volume(stm, q->volume));
  return reply_empty(req);
}

static int
handle_set_name(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_stream_name *q = (const void *)req->body;
  struct aipc_sstream *s = request_stream(c, req);
  if (!s)
    return 0;
  int r = aipc_sstream_set_name(s, q->name);
  return r < 0 ? r : reply_empty(req);
}

static int
handle_current_device(struct aipc_client *c, struct aipc_request *req)
{
  struct aipc_sstream *s = request_stream(c, req);
  if (!s)
    return 0;
  cubeb_stream *stm = aipc_sstream_backend(s);
  cubeb_device *dev = NULL;
  int r = aipc_sstream_usable(s);
  if (r == 0)
    r = aipc_errno_from_cubeb(cubeb_stream_get_current_device(stm, &dev));
  if (r < 0)
    return r;
  char out_buf[AIPC_NAME_MAX + 1], in_buf[AIPC_NAME_MAX + 1];
  struct aipc_current_device_reply reply = {
      .output_name =
          dev ? aipc_bounded_string(dev->output_name, out_buf) : NULL,
      .input_name = dev ? aipc_bounded_string(dev->input_name, in_buf) : NULL};
  aipc_request_reply(req, &reply, NULL, 0);
  if (dev)
    cubeb_stream_device_destroy(stm, dev);
  return 0;
}

static int
handle_register_device_changed(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_stream_register *q = (const void *)req->body;
  struct aipc_sstream *s = request_stream(c, req);
  if (!s)
    return 0;
  int r = aipc_sstream_register_device_changed(s, q->enable != 0);
  return r < 0 ? r : reply_empty(req);
}

/* --- Real-time promotion ------------------------------------------------ */

/*
 * A process may hold a real-time thread through us per live stream (one
 * callback thread each), within promoted_per_process and the server's
 * promoted_max; threads that have ended no longer count. A promoted
 * thread is demoted again when the process has had fewer streams than
 * promoted threads for DEMOTE_GRACE_NS (the client's newest first: the
 * server cannot tell which thread serves which stream, so a pooled
 * thread left idle may stay promoted in place of a busy one, which the
 * client library then asks to promote again) and when its client goes.
 * Asking again for a thread already promoted is answered at once.
 */

/* Forgets the promoted threads that have ended. */
static void
prune_promoted(struct aipc_client *c)
{
  struct aipc_accounts *accounts = aipc_server_accounts(c->server);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < c->nrt_threads; i++) {
    if (aipc_thread_of(c->pid, c->rt_threads[i]))
      c->rt_threads[kept++] = c->rt_threads[i];
    else
      aipc_account_refund(accounts, c->account, AIPC_RES_PROMOTED, 1);
  }
  c->nrt_threads = kept;
}

static void
demote_newest(struct aipc_client *c)
{
  pid_t tid = c->rt_threads[--c->nrt_threads];
  aipc_demote_client_thread(c->pid, c->pidfd, tid);
  aipc_account_refund(aipc_server_accounts(c->server), c->account,
                      AIPC_RES_PROMOTED, 1);
}

static void
demote_extra(struct aipc_client *c)
{
  struct aipc_accounts *accounts = aipc_server_accounts(c->server);
  prune_promoted(c);
  while (c->nrt_threads > 0 &&
         aipc_account_held(accounts, c->account, AIPC_RES_PROMOTED) >
             aipc_account_held(accounts, c->account, AIPC_RES_STREAMS))
    demote_newest(c);
}

static int
promote(struct aipc_client *c, pid_t tid)
{
  int r = aipc_promote_directly(c->pid, c->pidfd, tid);
  if (r == -EPERM && aipc_account_rtkit_call(aipc_server_accounts(c->server),
                                             c->account, aipc_now_ns()) == 0)
    r = aipc_promote_through_rtkit(aipc_server_rtkit(c->server), c->pid,
                                   c->pidfd, tid);
  return r;
}

static int
handle_promote_thread(struct aipc_client *c, struct aipc_request *req)
{
  const struct aipc_promote_thread *q = (const void *)req->body;
  pid_t tid = (pid_t)q->tid;
  if (c->pidfd < 0)
    return -EPERM;
  if (!aipc_thread_of(c->pid, tid))
    return -ESRCH; /* not a thread of the process: never anyone else's */
  for (uint32_t i = 0; i < c->nrt_threads; i++)
    if (c->rt_threads[i] == tid)
      return reply_empty(req);
  struct aipc_accounts *accounts = aipc_server_accounts(c->server);
  prune_promoted(c);
  if (c->nrt_threads == c->limits.streams_per_client ||
      aipc_account_held(accounts, c->account, AIPC_RES_PROMOTED) >=
          aipc_account_held(accounts, c->account, AIPC_RES_STREAMS) ||
      aipc_account_charge(accounts, c->account, AIPC_RES_PROMOTED, 1,
                          &c->limits, c->number) < 0)
    return -EBUSY;
  int r = promote(c, tid);
  if (r < 0) {
    aipc_account_refund(accounts, c->account, AIPC_RES_PROMOTED, 1);
    aipc_debug("client %u: no real-time priority for thread %d: %s", c->number,
               (int)tid, strerror(-r));
    return r;
  }
  c->rt_threads[c->nrt_threads++] = tid;
  return reply_empty(req);
}

/* --- Dispatch ----------------------------------------------------------- */

typedef int (*handler_fn)(struct aipc_client *c, struct aipc_request *req);

/* Indexed by opcode. The session has checked everything the table says
 * (opcode, fds, field bounds) before a request gets here. */
static const handler_fn handlers[AIPC_OP_COUNT] = {
    [AIPC_OP_PING] = handle_ping,
    [AIPC_OP_CONTEXT_INIT] = handle_context_init,
    [AIPC_OP_GET_MAX_CHANNEL_COUNT] = handle_max_channels,
    [AIPC_OP_GET_MIN_LATENCY] = handle_min_latency,
    [AIPC_OP_GET_PREFERRED_SAMPLE_RATE] = handle_preferred_rate,
    [AIPC_OP_ENUMERATE_DEVICES] = handle_enumerate,
    [AIPC_OP_REGISTER_COLLECTION_CHANGED] = handle_register_collection,
    [AIPC_OP_STREAM_INIT] = handle_stream_init,
    [AIPC_OP_STREAM_DESTROY] = handle_stream_destroy,
    [AIPC_OP_STREAM_START] = handle_stream_start,
    [AIPC_OP_STREAM_STOP] = handle_stream_stop,
    [AIPC_OP_STREAM_GET_POSITION] = handle_get_position,
    [AIPC_OP_STREAM_GET_LATENCY] = handle_get_latency,
    [AIPC_OP_STREAM_GET_INPUT_LATENCY] = handle_get_input_latency,
    [AIPC_OP_STREAM_SET_VOLUME] = handle_set_volume,
    [AIPC_OP_STREAM_SET_NAME] = handle_set_name,
    [AIPC_OP_STREAM_GET_CURRENT_DEVICE] = handle_current_device,
    [AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED] = handle_register_device_changed,
    [AIPC_OP_PROMOTE_THREAD] = handle_promote_thread,
};

static void
handle_request(void *data, struct aipc_request *req)
{
  struct aipc_client *c = data;
  handler_fn fn = req->opcode < AIPC_OP_COUNT ? handlers[req->opcode] : NULL;
  int r;
  if (!fn)
    r = -EOPNOTSUPP;
  else if (!c->ctx && req->opcode != AIPC_OP_CONTEXT_INIT &&
           req->opcode != AIPC_OP_PING)
    r = -ENOTCONN; /* CONTEXT_INIT comes first */
  else
    r = fn(c, req);
  if (r < 0)
    aipc_request_fail(req, r);
}

/* --- Lifetime ----------------------------------------------------------- */

static void client_main(void *data);

static void
client_free_tables(struct aipc_client *c)
{
  free(c->streams);
  free(c->rt_threads);
  if (c->pidfd >= 0)
    close(c->pidfd);
  free(c);
}

int
aipc_client_new(struct aipc_server *server, struct aipc_loop *loop, int fd,
                unsigned number, pid_t pid, int pidfd, size_t shm_area_size,
                struct aipc_client **out)
{
  const struct aipc_limits *l = aipc_server_limits(server);
  struct aipc_client *c = calloc(1, sizeof(*c));
  if (c) {
    c->pidfd = pidfd;
    c->streams = calloc(l->streams_per_client, sizeof(*c->streams));
    c->rt_threads = calloc(l->streams_per_client, sizeof(*c->rt_threads));
  }
  if (!c || !c->streams || !c->rt_threads) {
    if (c)
      client_free_tables(c);
    else if (pidfd >= 0)
      close(pidfd);
    close(fd);
    return -ENOMEM;
  }
  c->server = server;
  c->loop = loop;
  c->number = number;
  c->pid = pid;
  c->uid = pidfd >= 0 ? aipc_process_uid(pid, pidfd) : (uid_t)-1;
  c->shm_area_size = shm_area_size;
  c->limits = *l;
  int r = aipc_account_open(aipc_server_accounts(server), pidfd >= 0 ? pid : 0,
                            l, number, &c->account);
  if (r < 0) {
    client_free_tables(c);
    close(fd);
    return r;
  }

  static const struct aipc_session_handlers session_handlers = {
      .request = handle_request};
  struct aipc_session_params params = {.max_in_flight = l->requests_in_flight,
                                       .owner_reads = true};
  r = aipc_session_new(loop, fd, &aipc_protocol, &params, &session_handlers, c,
                       &c->session);
  if (r == 0) {
    r = aipc_thread_start(&c->thread, "aipc-session",
                          aipc_server_thread_hooks(server), client_main, c);
    if (r < 0)
      aipc_session_destroy(c->session);
  }
  if (r < 0) {
    aipc_account_close(aipc_server_accounts(server), c->account);
    client_free_tables(c);
    return r;
  }
  *out = c;
  return 0;
}

void
aipc_client_disconnect(struct aipc_client *c)
{
  aipc_session_shutdown(c->session);
}

/* Loop thread: the client's thread has torn everything down and is
 * leaving. */
static void
client_free(void *data)
{
  struct aipc_client *c = data;
  pthread_join(c->thread, NULL);
  aipc_session_destroy(c->session);
  aipc_account_close(aipc_server_accounts(c->server), c->account);
  aipc_server_client_gone(c->server, c);
  client_free_tables(c);
}

static void
teardown(struct aipc_client *c)
{
  /* First no stream waits for the client any more, then they go one by
   * one: a client that hangs up with many stalled streams costs at most
   * one deadline per backend thread, not one per stream. */
  for (uint32_t i = 0; i < c->nstreams; i++)
    aipc_sstream_cancel(c->streams[i]);
  while (c->nstreams)
    remove_stream(c, c->nstreams - 1);
  /* Promotions do not outlive the client. */
  while (c->nrt_threads > 0)
    demote_newest(c);
  if (c->ctx) {
    aipc_devices_destroy(c->devices);
    c->devices = NULL;
    if (c->collection_registered) {
      settle_device_events(c);
      cubeb_register_device_collection_changed(
          c->ctx, CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, NULL,
          NULL);
    }
    aipc_server_cubeb_release(c->server, c->ctx);
    c->ctx = NULL;
  }
}

/* Reads and handles requests until the connection ends; in between,
 * demotes what remove_stream left above the process's streams. */
static void
serve_requests(struct aipc_client *c)
{
  for (;;) {
    int timeout = -1;
    if (c->demote_at) {
      int64_t left = c->demote_at - aipc_now_ns();
      timeout = left > 0 ? (int)(left / AIPC_NSEC_PER_MSEC) + 1 : 0;
    }
    int r = aipc_session_read(c->session, timeout);
    if (r < 0 && r != -ETIMEDOUT)
      return;
    if (c->demote_at && aipc_now_ns() >= c->demote_at) {
      c->demote_at = 0;
      demote_extra(c);
    }
  }
}

static void
client_main(void *data)
{
  struct aipc_client *c = data;
  serve_requests(c);
  teardown(c);
  /* The session belongs to the loop thread, which also joins us. The loop
   * outlives every client (audioipc_server_stop waits for them), so only
   * a lack of memory can refuse this, for a moment. */
  while (aipc_loop_post(c->loop, client_free, c) == -ENOMEM)
    usleep(1000);
}
