/* SPDX-License-Identifier: ISC */
/*
 * Events for clients (stream state, device changes), raised on backend
 * threads and sent from the loop thread.
 *
 * A backend raises them on whatever thread it likes, often its audio
 * thread (a stream drains or fails inside a period). Sending there would
 * take the connection's lock and make a syscall that can block on a full
 * socket; instead the event goes into a bounded lock-free queue (after
 * Vyukov's bounded MPMC queue: a sequence number per slot) and the loop
 * thread, woken through an eventfd, sends it. Raising one is real-time
 * safe: no lock, no allocation, and a write() to the eventfd only when
 * the loop thread is not already on its way.
 *
 * One queue for the server keeps every client's events in the order they
 * were raised. Entries name clients and streams by number, so an event
 * for a client or stream that has gone since is simply dropped.
 */
#include "server-private.h"

#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Events waiting at most; a power of two. Each client may hold a share
 * of them (client.c), so that one cannot fill it for all. */
#define QUEUE_SLOTS 16384

struct slot {
  _Atomic uint64_t seq; /* == position: free; == position + 1: filled */
  unsigned client;
  uint16_t opcode;
  uint32_t a, b;
};

struct aipc_event_queue {
  struct aipc_server *server;
  struct aipc_loop *loop;
  struct aipc_source *source; /* loop thread */
  int fd;                     /* eventfd */
  atomic_bool signaled;       /* the loop thread has been told */
  _Atomic uint64_t head;      /* next position to fill */
  uint64_t tail;              /* next position to send; loop thread */
  atomic_uint_fast64_t dropped;
  uint64_t dropped_reported; /* loop thread */
  int attached;              /* aipc_loop_add_fd's result */
  struct slot slots[QUEUE_SLOTS];
};

bool
aipc_event_queue_push(struct aipc_event_queue *q, unsigned client,
                      uint16_t opcode, uint32_t a, uint32_t b)
{
  uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
  struct slot *slot;
  for (;;) {
    slot = &q->slots[pos % QUEUE_SLOTS];
    uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
    int64_t diff = (int64_t)(seq - pos);
    if (diff == 0) {
      if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                memory_order_relaxed,
                                                memory_order_relaxed))
        break;
    } else if (diff < 0) {
      atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
      return false; /* full: the loop thread is far behind */
    } else {
      pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    }
  }
  slot->client = client;
  slot->opcode = opcode;
  slot->a = a;
  slot->b = b;
  atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
  if (!atomic_exchange(&q->signaled, true)) {
    uint64_t one = 1;
    ssize_t n = write(q->fd, &one, sizeof(one));
    (void)n; /* an eventfd write fails only when the counter would overflow */
  }
  return true;
}

/* Loop thread: sends everything queued. */
static void
drain(void *data, uint32_t events)
{
  struct aipc_event_queue *q = data;
  (void)events;
  uint64_t count;
  ssize_t n = read(q->fd, &count, sizeof(count));
  (void)n;
  /* Cleared before draining: a push after this point signals again. */
  atomic_store(&q->signaled, false);
  for (;;) {
    struct slot *slot = &q->slots[q->tail % QUEUE_SLOTS];
    if (atomic_load_explicit(&slot->seq, memory_order_acquire) != q->tail + 1)
      break;
    struct aipc_client *c = aipc_server_find_client(q->server, slot->client);
    if (c)
      aipc_client_deliver_event(c, slot->opcode, slot->a, slot->b);
    atomic_store_explicit(&slot->seq, q->tail + QUEUE_SLOTS,
                          memory_order_release);
    q->tail++;
  }
  uint64_t dropped = atomic_load(&q->dropped);
  if (dropped != q->dropped_reported) {
    aipc_warn("%llu client events dropped: the event queue was full",
              (unsigned long long)(dropped - q->dropped_reported));
    q->dropped_reported = dropped;
  }
}

static void
attach(void *data)
{
  struct aipc_event_queue *q = data;
  q->attached = aipc_loop_add_fd(q->loop, q->fd, EPOLLIN, drain, q, &q->source);
}

static void
detach(void *data)
{
  struct aipc_event_queue *q = data;
  aipc_loop_remove(q->source);
}

int
aipc_event_queue_new(struct aipc_server *server, struct aipc_loop *loop,
                     struct aipc_event_queue **out)
{
  struct aipc_event_queue *q = calloc(1, sizeof(*q));
  if (!q)
    return -ENOMEM;
  q->server = server;
  q->loop = loop;
  for (uint64_t i = 0; i < QUEUE_SLOTS; i++)
    atomic_init(&q->slots[i].seq, i);
  q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int r = q->fd < 0 ? -errno : aipc_loop_invoke(loop, attach, q);
  if (r == 0)
    r = q->attached;
  if (r < 0) {
    if (q->fd >= 0)
      close(q->fd);
    free(q);
    return r;
  }
  *out = q;
  return 0;
}

void
aipc_event_queue_destroy(struct aipc_event_queue *q)
{
  if (!q)
    return;
  aipc_loop_invoke(q->loop, detach, q);
  close(q->fd);
  free(q);
}
