/* SPDX-License-Identifier: ISC */
#include "rpc.h"

#include "aipc-config.h"
#include "clock.h"
#include "log.h"
#include "protocol.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Messages read per wake-up, so one busy peer cannot starve the loop. */
#define READ_BATCH 64

/* --- Client ------------------------------------------------------------ */

/*
 * The reader token: only its holder calls aipc_conn_recv. A caller takes
 * it, when it is free, before it sends its request, and reads the socket
 * itself until its reply is in (it "leads"), which spares the hand-off
 * through the loop thread; meanwhile the loop does not watch for input,
 * so that the reply does not wake it. Whoever gives the token back hands
 * it to a caller waiting for its reply or, when there is none, lets the
 * loop read again, so the socket always has a reader.
 */
enum reader { READER_NONE, READER_LOOP, READER_CALLER };

struct pending {
  struct pending *next, *prev;
  uint32_t serial;
  bool sent; /* waiting for its reply: may be handed the token */
  bool lead; /* holds the token */
  bool done;
  int error;
  struct aipc_msg *reply;
  uint64_t events_before; /* events read before the reply */
  pthread_cond_t cond;
};

/* An event a leader read, for the loop thread. */
struct inbox_item {
  struct inbox_item *next;
  struct aipc_msg *msg;
};

struct aipc_rpc_client {
  struct aipc_loop *loop;
  struct aipc_conn *conn;
  int inbox_fd; /* eventfd: the inbox wants draining */
  const struct aipc_protocol *protocol;
  struct aipc_rpc_client_events events;
  void *data;

  /* Loop thread only. */
  struct aipc_source *source;
  struct aipc_source *inbox_source;
  bool closed;

  pthread_mutex_t lock;   /* guards everything below */
  struct pending pending; /* list head */
  uint32_t next_serial;
  bool dead;
  enum reader reader;
  bool loop_input; /* the source watches for input */
  struct inbox_item *inbox, **inbox_tail;
  int inbox_error;  /* a leader saw the connection fail */
  bool inbox_woken; /* inbox_fd written since the loop last drained */
  uint64_t events_queued, events_delivered; /* through the inbox */
  unsigned drain_waiters;
  pthread_cond_t drained; /* events_delivered moved */
};

static void
cond_init_monotonic(pthread_cond_t *cond)
{
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
}

static void
pending_unlink(struct pending *p)
{
  p->prev->next = p->next;
  p->next->prev = p->prev;
  p->next = p->prev = p;
}

/* Fails every pending call at once; later calls fail with -ENOTCONN.
 * Lock held. */
static void
fail_pending(struct aipc_rpc_client *c)
{
  c->dead = true;
  while (c->pending.next != &c->pending) {
    struct pending *p = c->pending.next;
    pending_unlink(p);
    p->error = -ECONNRESET;
    p->done = true;
    pthread_cond_signal(&p->cond);
  }
}

/* Lock held. */
static void
set_loop_input(struct aipc_rpc_client *c, bool on)
{
  if (c->loop_input != on) {
    c->loop_input = on;
    aipc_conn_watch_input(c->conn, on);
  }
}

/* Gives the reader token back: to a caller waiting for its reply, or to
 * the loop. Lock held. */
static void
release_reader(struct aipc_rpc_client *c)
{
  c->reader = READER_NONE;
  if (c->dead)
    return; /* nobody reads a failed connection again */
  for (struct pending *q = c->pending.next; q != &c->pending; q = q->next) {
    if (q->sent) {
      q->lead = true;
      c->reader = READER_CALLER;
      set_loop_input(c, false);
      pthread_cond_signal(&q->cond);
      return;
    }
  }
  set_loop_input(c, true);
}

/* Lock held. */
static void
wake_inbox(struct aipc_rpc_client *c)
{
  if (c->inbox_woken)
    return;
  c->inbox_woken = true;
  uint64_t one = 1;
  ssize_t unused = write(c->inbox_fd, &one, sizeof(one));
  (void)unused; /* fails only if the counter would overflow */
}

/* Hands a reply to its caller. Lock held; takes `msg`. */
static void
deliver_reply(struct aipc_rpc_client *c, struct aipc_msg *msg)
{
  struct pending *p = c->pending.next;
  while (p != &c->pending && p->serial != msg->header.serial)
    p = p->next;
  if (p == &c->pending) {
    /* A reply nobody waits for answers a call that timed out. */
    aipc_msg_free(msg);
    return;
  }
  pending_unlink(p);
  p->reply = msg;
  p->events_before = c->events_queued;
  p->done = true;
  pthread_cond_signal(&p->cond);
}

/* AIPC_MSG_REPLY or AIPC_MSG_EVENT, or -EBADMSG for anything a server
 * may not send us. */
static int
incoming_kind(const struct aipc_rpc_client *c, const struct aipc_msg *msg)
{
  const struct aipc_msg_desc *desc =
      aipc_protocol_msg(c->protocol, msg->header.opcode);
  if (!desc || desc->kind == AIPC_MSG_REQUEST)
    return -EBADMSG;
  return (int)desc->kind;
}

/* Loop thread. Takes `msg`. */
static void
deliver_event(struct aipc_rpc_client *c, struct aipc_msg *msg)
{
  if (c->events.event && !c->closed)
    c->events.event(c->data, msg);
  else
    aipc_msg_free(msg);
}

/* Loop thread: ends the connection once, failing every pending call. */
static void
client_close(struct aipc_rpc_client *c, int error)
{
  if (c->closed)
    return;
  c->closed = true;
  if (c->source) {
    aipc_conn_set_source(c->conn, NULL);
    aipc_loop_remove(c->source);
    c->source = NULL;
  }
  if (error != -ECONNRESET)
    aipc_warn("connection to the server failed: %s", strerror(-error));
  pthread_mutex_lock(&c->lock);
  bool leading = c->reader == READER_CALLER;
  fail_pending(c);
  pthread_mutex_unlock(&c->lock);
  /* A leader may be in poll() for a reply that will never come; ending
   * our side of the socket wakes it. */
  if (leading)
    shutdown(aipc_conn_fd(c->conn), SHUT_RD);
  if (c->events.closed)
    c->events.closed(c->data, -ECONNRESET);
}

/* Loop thread: hands the owner the events leaders read, in order, then
 * closes the connection if a leader saw it fail. */
static void
drain_inbox(struct aipc_rpc_client *c)
{
  pthread_mutex_lock(&c->lock);
  struct inbox_item *list = c->inbox;
  c->inbox = NULL;
  c->inbox_tail = &c->inbox;
  c->inbox_woken = false;
  int error = c->inbox_error;
  c->inbox_error = 0;
  pthread_mutex_unlock(&c->lock);

  uint64_t n = 0;
  while (list) {
    struct inbox_item *item = list;
    list = item->next;
    deliver_event(c, item->msg);
    free(item);
    n++;
  }
  if (n) {
    pthread_mutex_lock(&c->lock);
    c->events_delivered += n;
    if (c->drain_waiters)
      pthread_cond_broadcast(&c->drained);
    pthread_mutex_unlock(&c->lock);
  }
  if (error)
    client_close(c, error);
}

static void
client_on_inbox(void *data, uint32_t events)
{
  struct aipc_rpc_client *c = data;
  uint64_t count;
  ssize_t unused = read(c->inbox_fd, &count, sizeof(count));
  (void)unused;
  drain_inbox(c);
}

/* Loop thread, holding the reader token: handles a message it read. */
static int
loop_handle(struct aipc_rpc_client *c, struct aipc_msg *msg)
{
  int kind = incoming_kind(c, msg);
  if (kind < 0) {
    aipc_msg_free(msg);
    return kind;
  }
  if (kind == AIPC_MSG_EVENT) {
    deliver_event(c, msg);
    return 0;
  }
  pthread_mutex_lock(&c->lock);
  deliver_reply(c, msg);
  pthread_mutex_unlock(&c->lock);
  return 0;
}

static void
client_on_fd(void *data, uint32_t events)
{
  struct aipc_rpc_client *c = data;
  if (events & EPOLLOUT) {
    int r = aipc_conn_flush(c->conn);
    if (r < 0 && r != -EAGAIN) {
      client_close(c, r);
      return;
    }
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;

  pthread_mutex_lock(&c->lock);
  bool ours = c->reader == READER_NONE && !c->dead;
  if (ours)
    c->reader = READER_LOOP;
  pthread_mutex_unlock(&c->lock);
  if (!ours)
    return; /* a caller reads: this arrived before we stopped watching */

  /* Events a leader read came before anything still in the socket. */
  drain_inbox(c);
  int r = 0;
  for (int i = 0; i < READ_BATCH; i++) {
    struct aipc_msg *msg;
    r = aipc_conn_recv(c->conn, &msg);
    if (r == -EAGAIN) {
      r = 0;
      break;
    }
    if (r == 0)
      r = loop_handle(c, msg);
    if (r < 0)
      break;
  }
  if (r < 0)
    client_close(c, r);
  pthread_mutex_lock(&c->lock);
  release_reader(c);
  pthread_mutex_unlock(&c->lock);
}

struct client_start {
  struct aipc_rpc_client *client;
  int result;
};

static void
client_attach(void *data)
{
  struct client_start *s = data;
  struct aipc_rpc_client *c = s->client;
  s->result = aipc_loop_add_fd(c->loop, c->inbox_fd, EPOLLIN, client_on_inbox,
                               c, &c->inbox_source);
  if (s->result < 0)
    return;
  s->result = aipc_loop_add_fd(c->loop, aipc_conn_fd(c->conn), EPOLLIN,
                               client_on_fd, c, &c->source);
  if (s->result < 0) {
    aipc_loop_remove(c->inbox_source);
    c->inbox_source = NULL;
    return;
  }
  aipc_conn_set_source(c->conn, c->source);
}

static void
client_detach(void *data)
{
  struct aipc_rpc_client *c = data;
  if (c->source) {
    aipc_conn_set_source(c->conn, NULL);
    aipc_loop_remove(c->source);
    c->source = NULL;
  }
  if (c->inbox_source) {
    aipc_loop_remove(c->inbox_source);
    c->inbox_source = NULL;
  }
}

int
aipc_rpc_client_new(struct aipc_loop *loop, int fd,
                    const struct aipc_protocol *protocol,
                    const struct aipc_rpc_client_events *events, void *data,
                    struct aipc_rpc_client **out)
{
  struct aipc_rpc_client *c = calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    return -ENOMEM;
  }
  c->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->inbox_fd < 0) {
    int r = -errno;
    close(fd);
    free(c);
    return r;
  }
  int r = aipc_conn_new(fd, protocol, "client", &c->conn);
  if (r < 0) {
    close(c->inbox_fd);
    free(c);
    return r;
  }
  c->loop = loop;
  c->protocol = protocol;
  if (events)
    c->events = *events;
  c->data = data;
  c->pending.next = c->pending.prev = &c->pending;
  c->next_serial = 1;
  c->loop_input = true;
  c->inbox_tail = &c->inbox;
  pthread_mutex_init(&c->lock, NULL);
  cond_init_monotonic(&c->drained);

  struct client_start start = {.client = c};
  r = aipc_loop_invoke(loop, client_attach, &start);
  if (r == 0)
    r = start.result;
  if (r < 0) {
    aipc_conn_destroy(c->conn);
    close(c->inbox_fd);
    pthread_cond_destroy(&c->drained);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return r;
  }
  *out = c;
  return 0;
}

void
aipc_rpc_client_destroy(struct aipc_rpc_client *c)
{
  if (!c)
    return;
  aipc_loop_invoke(c->loop, client_detach, c);
  pthread_mutex_lock(&c->lock);
  c->dead = true;
  pthread_mutex_unlock(&c->lock);
  /* Events a leader read that the loop never got to go with the ones
   * still in the socket. */
  while (c->inbox) {
    struct inbox_item *item = c->inbox;
    c->inbox = item->next;
    aipc_msg_free(item->msg);
    free(item);
  }
  aipc_conn_destroy(c->conn);
  close(c->inbox_fd);
  pthread_cond_destroy(&c->drained);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* A message the leader read: a reply goes to its caller, an event to the
 * loop thread through the inbox. Lock held; takes `msg`. */
static int
leader_take(struct aipc_rpc_client *c, struct aipc_msg *msg)
{
  int kind = incoming_kind(c, msg);
  if (kind < 0) {
    aipc_msg_free(msg);
    return kind;
  }
  if (kind == AIPC_MSG_REPLY) {
    deliver_reply(c, msg);
    return 0;
  }
  if (c->dead) {
    aipc_msg_free(msg); /* closed: no more events */
    return 0;
  }
  struct inbox_item *item = malloc(sizeof(*item));
  if (!item) {
    aipc_msg_free(msg);
    return -ENOMEM;
  }
  item->next = NULL;
  item->msg = msg;
  *c->inbox_tail = item;
  c->inbox_tail = &item->next;
  c->events_queued++;
  wake_inbox(c);
  return 0;
}

/*
 * Reads the socket, holding the reader token, until `p` is done, its
 * deadline (if not negative) passes or the connection fails. Lock held;
 * dropped while waiting and reading.
 */
static int
lead(struct aipc_rpc_client *c, struct pending *p, int64_t deadline)
{
  struct pollfd pfd = {.fd = aipc_conn_fd(c->conn), .events = POLLIN};
  while (!p->done) {
    struct timespec left, *timeout = NULL;
    if (deadline >= 0) {
      int64_t ns = deadline - aipc_now_ns();
      if (ns <= 0) {
        pending_unlink(p);
        return -ETIMEDOUT;
      }
      left = aipc_timespec_from_ns(ns);
      timeout = &left;
    }
    pthread_mutex_unlock(&c->lock);
    struct aipc_msg *msg = NULL;
    int r = ppoll(&pfd, 1, timeout, NULL);
    if (r > 0)
      r = aipc_conn_recv(c->conn, &msg);
    else
      r = r == 0 || errno == EINTR ? -EAGAIN : -errno;
    pthread_mutex_lock(&c->lock);
    if (r == 0)
      r = leader_take(c, msg);
    if (r < 0 && r != -EAGAIN && !c->dead) {
      /* Fail everyone now; the loop thread closes, as if it had read. */
      fail_pending(c);
      c->inbox_error = r;
      wake_inbox(c);
    }
  }
  return 0;
}

/* Takes the reader token if it is free. Lock held. */
static void
try_lead(struct aipc_rpc_client *c, struct pending *p)
{
  if (p->lead || c->reader != READER_NONE)
    return;
  p->lead = true;
  c->reader = READER_CALLER;
  set_loop_input(c, false);
}

/* Waits for `p` (sent) to be answered, leading when the token is free.
 * Returns -ETIMEDOUT, or 0 once done: p->error or p->reply is then set. */
static int
wait_reply(struct aipc_rpc_client *c, struct pending *p, int64_t timeout_ns)
{
  int64_t deadline = timeout_ns >= 0 ? aipc_now_ns() + timeout_ns : -1;
  struct timespec ts = aipc_timespec_from_ns(deadline);
  int r = 0;
  pthread_mutex_lock(&c->lock);
  p->sent = true;
  while (!p->done) {
    try_lead(c, p);
    if (p->lead) {
      r = lead(c, p, deadline);
      break;
    }
    if (deadline < 0) {
      pthread_cond_wait(&p->cond, &c->lock);
    } else if (pthread_cond_timedwait(&p->cond, &c->lock, &ts) == ETIMEDOUT &&
               !p->done && !p->lead) {
      pending_unlink(p);
      r = -ETIMEDOUT;
      break;
    }
  }
  if (p->lead) {
    p->lead = false;
    release_reader(c);
  }
  /* Events sent before the reply reach the owner before the caller sees
   * the reply, as when the loop thread reads them all. */
  if (r == 0 && p->reply && c->events_delivered < p->events_before) {
    c->drain_waiters++;
    while (r == 0 && c->events_delivered < p->events_before) {
      if (deadline < 0)
        pthread_cond_wait(&c->drained, &c->lock);
      else if (pthread_cond_timedwait(&c->drained, &c->lock, &ts) ==
                   ETIMEDOUT &&
               c->events_delivered < p->events_before)
        r = -ETIMEDOUT;
    }
    c->drain_waiters--;
  }
  pthread_mutex_unlock(&c->lock);
  return r;
}

int
aipc_rpc_call(struct aipc_rpc_client *c, uint16_t opcode, const void *request,
              void *reply, struct aipc_msg **reply_msg, int64_t timeout_ns)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(c->protocol, opcode);
  if (!desc || desc->kind != AIPC_MSG_REQUEST)
    return -EINVAL;

  struct pending p = {.error = 0};
  cond_init_monotonic(&p.cond);

  pthread_mutex_lock(&c->lock);
  if (c->dead) {
    pthread_mutex_unlock(&c->lock);
    pthread_cond_destroy(&p.cond);
    return -ENOTCONN;
  }
  p.serial = c->next_serial++;
  if (c->next_serial == 0)
    c->next_serial = 1;
  p.next = &c->pending;
  p.prev = c->pending.prev;
  p.prev->next = &p;
  c->pending.prev = &p;
  /* Before sending, so a quick reply cannot wake the loop thread. */
  try_lead(c, &p);
  pthread_mutex_unlock(&c->lock);

  int r = aipc_conn_send_msg(c->conn, opcode, p.serial, request, NULL, 0);
  if (r < 0) {
    pthread_mutex_lock(&c->lock);
    if (!p.done)
      pending_unlink(&p);
    if (p.lead) {
      p.lead = false;
      release_reader(c);
    }
    pthread_mutex_unlock(&c->lock);
    aipc_msg_free(p.reply);
    pthread_cond_destroy(&p.cond);
    return r == -EPIPE ? -ECONNRESET : r;
  }

  r = wait_reply(c, &p, timeout_ns);
  pthread_cond_destroy(&p.cond);
  if (r == 0)
    r = p.error;
  if (r < 0) {
    aipc_msg_free(p.reply);
    return r;
  }

  struct aipc_msg *msg = p.reply;
  if (msg->header.opcode == c->protocol->error_opcode) {
    struct aipc_error e;
    r = aipc_msg_decode(c->protocol, msg, &e);
    aipc_msg_free(msg);
    return r < 0 ? r : e.error;
  }
  if (msg->header.opcode != desc->reply)
    r = -EBADMSG;
  else
    r = aipc_msg_decode(c->protocol, msg, reply);
  if (r == 0 && reply_msg)
    *reply_msg = msg;
  else
    aipc_msg_free(msg);
  return r;
}

int
aipc_rpc_hello(struct aipc_rpc_client *c, const char *name, int64_t timeout_ns)
{
  struct aipc_hello hello = {.version = AIPC_PROTOCOL_VERSION,
                             .library_version = AIPC_VERSION_STRING,
                             .name = name};
  struct aipc_hello_reply reply;
  struct aipc_msg *msg = NULL;
  int r = aipc_rpc_call(c, AIPC_OP_HELLO, &hello, &reply, &msg, timeout_ns);
  if (r == -EPROTONOSUPPORT) {
    aipc_error("the server does not speak protocol version %u (library %s)",
               AIPC_PROTOCOL_VERSION, AIPC_VERSION_STRING);
    return -EPROTO;
  }
  if (r < 0)
    return r;
  if (reply.version != AIPC_PROTOCOL_VERSION) {
    aipc_error("protocol mismatch: server %s speaks version %u, we speak %u",
               reply.library_version, reply.version, AIPC_PROTOCOL_VERSION);
    r = -EPROTO;
  }
  aipc_msg_free(msg);
  return r;
}

/* --- Server ------------------------------------------------------------ */

struct aipc_session {
  atomic_int refs; /* the owner's, plus one per outstanding request */
  atomic_uint in_flight;
  uint32_t max_in_flight;
  struct aipc_loop *loop;
  struct aipc_conn *conn;
  struct aipc_source *source;
  const struct aipc_protocol *protocol;
  struct aipc_session_handlers handlers;
  void *data;
  bool owner_reads;
  /* The reading thread's (the loop's, or the owner's). */
  bool greeted;
  bool closed;
  int close_error;
};

static void
session_unref(struct aipc_session *s)
{
  if (atomic_fetch_sub(&s->refs, 1) == 1) {
    aipc_conn_destroy(s->conn);
    free(s);
  }
}

static void
stop_reading(struct aipc_session *s)
{
  if (s->source) {
    aipc_conn_set_source(s->conn, NULL);
    aipc_loop_remove(s->source);
    s->source = NULL;
  }
}

void
aipc_session_close(struct aipc_session *s, int error)
{
  if (s->closed)
    return;
  s->closed = true;
  s->close_error = error;
  /* The loop's source stays for an owner that reads: it still writes
   * what is queued until aipc_session_destroy. */
  if (!s->owner_reads)
    stop_reading(s);
  shutdown(aipc_conn_fd(s->conn), SHUT_RDWR);
  if (s->handlers.closed)
    s->handlers.closed(s->data, error);
}

void
aipc_session_shutdown(struct aipc_session *s)
{
  shutdown(aipc_conn_fd(s->conn), SHUT_RDWR);
}

bool
aipc_session_peer_read_all(struct aipc_session *s)
{
  return aipc_conn_peer_read_all(s->conn);
}

void
aipc_session_destroy(struct aipc_session *s)
{
  if (!s)
    return;
  s->closed = true;
  stop_reading(s);
  session_unref(s);
}

static int
send_error(struct aipc_session *s, uint32_t serial, int error)
{
  struct aipc_error e = {.error = error};
  return aipc_conn_send_msg(s->conn, s->protocol->error_opcode, serial, &e,
                            NULL, 0);
}

/* After a failed send: if the client stopped reading, hang up on it. The
 * loop then sees the hang-up and closes the session. */
static void
check_send(struct aipc_session *s, int r)
{
  if (r == -ENOBUFS) {
    aipc_warn("client is not reading its replies; dropping it");
    shutdown(aipc_conn_fd(s->conn), SHUT_RDWR);
  }
}

static void
handle_hello(struct aipc_session *s, struct aipc_request *req)
{
  const struct aipc_hello *hello = (const struct aipc_hello *)req->body;
  int r;
  if (s->greeted) {
    r = send_error(s, req->serial, -EPROTO);
  } else if (hello->version != AIPC_PROTOCOL_VERSION) {
    aipc_warn("client \"%s\" (library %s) speaks protocol %u, not %u",
              hello->name ? hello->name : "", hello->library_version,
              hello->version, AIPC_PROTOCOL_VERSION);
    send_error(s, req->serial, -EPROTONOSUPPORT);
    aipc_session_close(s, -EPROTONOSUPPORT);
    r = 0;
  } else {
    struct aipc_hello_reply reply = {.version = AIPC_PROTOCOL_VERSION,
                                     .library_version = AIPC_VERSION_STRING};
    s->greeted = true;
    r = aipc_conn_send_msg(s->conn, AIPC_OP_HELLO_REPLY, req->serial, &reply,
                           NULL, 0);
  }
  check_send(s, r);
  aipc_msg_free(req->msg);
  free(req);
}

/* Checks one message in the documented order and hands it on. */
static void
session_dispatch(struct aipc_session *s, struct aipc_msg *msg)
{
  const struct aipc_msg_header *h = &msg->header;
  const struct aipc_msg_desc *desc = aipc_protocol_msg(s->protocol, h->opcode);
  int error = 0;

  if (h->nfds != 0 || h->serial == 0) {
    /* We never accept fds, and a request without a serial cannot be
     * answered: both are protocol errors. */
    aipc_session_close(s, -EBADMSG);
    goto out;
  }
  if (!s->greeted && h->opcode != AIPC_OP_HELLO) {
    send_error(s, h->serial, -EPROTO);
    aipc_session_close(s, -EPROTO);
    goto out;
  }
  if (!desc || desc->kind != AIPC_MSG_REQUEST) {
    error = -EOPNOTSUPP;
    goto reply_error;
  }
  if (atomic_load(&s->in_flight) >= s->max_in_flight) {
    error = -EBUSY;
    goto reply_error;
  }

  struct aipc_request *req = malloc(sizeof(*req));
  if (!req) {
    error = -ENOMEM;
    goto reply_error;
  }
  req->session = s;
  req->opcode = h->opcode;
  req->serial = h->serial;
  req->msg = msg;
  if (desc->record.size > sizeof(req->body) ||
      aipc_msg_decode(s->protocol, msg, req->body) < 0) {
    free(req);
    error = -EBADMSG;
    goto reply_error;
  }
  if (h->opcode == AIPC_OP_HELLO) {
    handle_hello(s, req);
    return;
  }
  atomic_fetch_add(&s->in_flight, 1);
  atomic_fetch_add(&s->refs, 1);
  s->handlers.request(s->data, req);
  return;

reply_error:
  check_send(s, send_error(s, h->serial, error));
out:
  aipc_msg_free(msg);
}

/* Reads and handles up to READ_BATCH messages. The reading thread. */
static void
read_batch(struct aipc_session *s)
{
  for (int i = 0; i < READ_BATCH && !s->closed; i++) {
    struct aipc_msg *msg;
    int r = aipc_conn_recv(s->conn, &msg);
    if (r == -EAGAIN)
      break;
    if (r < 0)
      aipc_session_close(s, r);
    else
      session_dispatch(s, msg);
  }
}

static void
session_on_fd(void *data, uint32_t events)
{
  struct aipc_session *s = data;
  /* The closed handler may drop the owner's reference. */
  atomic_fetch_add(&s->refs, 1);
  if (events & EPOLLOUT) {
    int r = aipc_conn_flush(s->conn);
    /* The owner's reader sees the hang-up and closes the session. */
    if (r < 0 && r != -EAGAIN && s->owner_reads)
      aipc_session_shutdown(s);
    else if (r < 0 && r != -EAGAIN)
      aipc_session_close(s, r);
  }
  if (!s->owner_reads && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    read_batch(s);
  session_unref(s);
}

int
aipc_session_read(struct aipc_session *s, int timeout_ms)
{
  if (!s->closed) {
    struct pollfd p = {.fd = aipc_conn_fd(s->conn), .events = POLLIN};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR)
      aipc_session_close(s, -errno);
    else if (ready == 0)
      return -ETIMEDOUT;
    else if (ready > 0)
      read_batch(s);
  }
  if (!s->closed)
    return 0;
  return s->close_error < 0 ? s->close_error : -ECONNRESET;
}

int
aipc_session_new(struct aipc_loop *loop, int fd,
                 const struct aipc_protocol *protocol,
                 const struct aipc_session_params *params,
                 const struct aipc_session_handlers *handlers, void *data,
                 struct aipc_session **out)
{
  struct aipc_session *s = calloc(1, sizeof(*s));
  if (!s) {
    close(fd);
    return -ENOMEM;
  }
  int r = aipc_conn_new(fd, protocol, "server", &s->conn);
  if (r < 0) {
    free(s);
    return r;
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->in_flight, 0);
  s->max_in_flight =
      params && params->max_in_flight ? params->max_in_flight : 64;
  s->loop = loop;
  s->protocol = protocol;
  s->handlers = *handlers;
  s->data = data;
  s->owner_reads = params && params->owner_reads;
  if (s->owner_reads)
    aipc_conn_watch_input(s->conn, false);
  r = aipc_loop_add_fd(loop, aipc_conn_fd(s->conn),
                       s->owner_reads ? EPOLLONESHOT : EPOLLIN, session_on_fd,
                       s, &s->source);
  if (r < 0) {
    aipc_conn_destroy(s->conn);
    free(s);
    return r;
  }
  aipc_conn_set_source(s->conn, s->source);
  *out = s;
  return 0;
}

static void
request_done(struct aipc_request *req, int r)
{
  struct aipc_session *s = req->session;
  check_send(s, r);
  atomic_fetch_sub(&s->in_flight, 1);
  aipc_msg_free(req->msg);
  free(req);
  session_unref(s);
}

int
aipc_request_reply(struct aipc_request *req, const void *reply, const int *fds,
                   unsigned nfds)
{
  struct aipc_session *s = req->session;
  const struct aipc_msg_desc *desc =
      aipc_protocol_msg(s->protocol, req->opcode);
  int r =
      aipc_conn_send_msg(s->conn, desc->reply, req->serial, reply, fds, nfds);
  if (r == -EINVAL || r == -EMSGSIZE) {
    aipc_error("reply to %s does not encode", desc->name);
    r = send_error(s, req->serial, r);
  }
  request_done(req, r);
  return r;
}

int
aipc_request_fail(struct aipc_request *req, int error)
{
  int r = send_error(req->session, req->serial, error);
  request_done(req, r);
  return r;
}

int
aipc_session_send_event(struct aipc_session *s, uint16_t opcode,
                        const void *body, const int *fds, unsigned nfds)
{
  int r = aipc_conn_send_msg(s->conn, opcode, 0, body, fds, nfds);
  check_send(s, r);
  return r;
}
