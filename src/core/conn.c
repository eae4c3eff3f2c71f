/* SPDX-License-Identifier: ISC */
#include "conn.h"

#include "log.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct queued {
  struct queued *next;
  unsigned nfds;
  int fds[AIPC_MSG_MAX_FDS];
  struct aipc_msg_header header;
  uint8_t payload[];
};

struct aipc_conn {
  int fd;
  const struct aipc_protocol *protocol;
  const char *who;
  bool trace;

  pthread_mutex_t lock; /* guards the queue, `source` and `watch_input` */
  struct queued *head, **tail;
  size_t queued_bytes;
  unsigned queued_fds;
  struct aipc_source *source;
  bool watch_input;

  /* Receiving happens on one thread at a time (the owner serialises it);
   * nothing here is shared with the sending side. */
  _Alignas(8) uint8_t recv_buf[AIPC_MSG_MAX_SIZE];
};

union control {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * AIPC_MSG_MAX_FDS)];
};

int
aipc_conn_new(int fd, const struct aipc_protocol *protocol, const char *who,
              struct aipc_conn **out)
{
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int r = -errno;
    close(fd);
    return r;
  }
  struct aipc_conn *conn = calloc(1, sizeof(*conn));
  if (!conn) {
    close(fd);
    return -ENOMEM;
  }
  conn->fd = fd;
  conn->protocol = protocol;
  conn->who = who;
  conn->trace = aipc_debug_enabled(AIPC_DEBUG_PROTOCOL);
  conn->tail = &conn->head;
  conn->watch_input = true;
  pthread_mutex_init(&conn->lock, NULL);
  *out = conn;
  return 0;
}

static void
free_queued(struct queued *q)
{
  for (unsigned i = 0; i < q->nfds; i++)
    close(q->fds[i]);
  free(q);
}

void
aipc_conn_destroy(struct aipc_conn *conn)
{
  if (!conn)
    return;
  while (conn->head) {
    struct queued *q = conn->head;
    conn->head = q->next;
    free_queued(q);
  }
  close(conn->fd);
  pthread_mutex_destroy(&conn->lock);
  free(conn);
}

int
aipc_conn_fd(const struct aipc_conn *conn)
{
  return conn->fd;
}

/* Tells the source what to wait for. Called with the lock held. Without
 * input the registration is one-shot: epoll reports a hang-up or an error
 * whatever we ask for, and level-triggered it would wake the loop again
 * and again while another thread reads. */
static void
update_watch(struct aipc_conn *conn)
{
  if (!conn->source)
    return;
  uint32_t events = conn->watch_input ? EPOLLIN : EPOLLONESHOT;
  if (conn->head)
    events |= EPOLLOUT;
  aipc_loop_update_fd(conn->source, events);
}

void
aipc_conn_set_source(struct aipc_conn *conn, struct aipc_source *source)
{
  pthread_mutex_lock(&conn->lock);
  conn->source = source;
  if (conn->head || !conn->watch_input)
    update_watch(conn);
  pthread_mutex_unlock(&conn->lock);
}

void
aipc_conn_watch_input(struct aipc_conn *conn, bool on)
{
  pthread_mutex_lock(&conn->lock);
  if (conn->watch_input != on) {
    conn->watch_input = on;
    update_watch(conn);
  }
  pthread_mutex_unlock(&conn->lock);
}

/* Sends one packet (the header, then `len` payload bytes) without
 * blocking. Returns 0, -EAGAIN, or another -errno. */
static int
send_packet(int fd, const struct aipc_msg_header *h, const uint8_t *payload,
            size_t len, const int *fds, unsigned nfds)
{
  struct iovec iov[2] = {{.iov_base = (void *)h, .iov_len = sizeof(*h)},
                         {.iov_base = (void *)payload, .iov_len = len}};
  union control control;
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  if (nfds) {
    memset(&control, 0, sizeof(control));
    mh.msg_control = control.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&mh);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK)
      return -EAGAIN;
    return -errno;
  }
}

/* Queues a copy of the message and its fds. Called with the lock held. */
static int
enqueue(struct aipc_conn *conn, const struct aipc_msg_header *h,
        const uint8_t *payload, const int *fds, unsigned nfds)
{
  size_t total = sizeof(*h) + h->size;
  if (conn->queued_bytes + total > AIPC_CONN_QUEUE_MAX ||
      conn->queued_fds + nfds > AIPC_CONN_QUEUE_FDS_MAX)
    return -ENOBUFS;
  struct queued *q = malloc(sizeof(*q) + h->size);
  if (!q)
    return -ENOMEM;
  q->next = NULL;
  q->header = *h;
  q->nfds = 0;
  if (h->size)
    memcpy(q->payload, payload, h->size);
  for (unsigned i = 0; i < nfds; i++) {
    int dup = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      int r = -errno;
      free_queued(q);
      return r;
    }
    q->fds[q->nfds++] = dup;
  }
  *conn->tail = q;
  conn->tail = &q->next;
  conn->queued_bytes += total;
  conn->queued_fds += q->nfds;
  update_watch(conn);
  return 0;
}

int
aipc_conn_send(struct aipc_conn *conn, uint16_t opcode, uint32_t serial,
               const uint8_t *payload, size_t len, const int *fds,
               unsigned nfds)
{
  struct aipc_msg_header h = {.size = (uint32_t)len,
                              .opcode = opcode,
                              .serial = serial,
                              .nfds = (uint16_t)nfds};
  if (len > AIPC_MSG_MAX_SIZE - sizeof(h) || nfds > AIPC_MSG_MAX_FDS)
    return -EMSGSIZE;

  if (conn->trace)
    aipc_trace_msg(conn->protocol, conn->who, "send", &h, payload);

  pthread_mutex_lock(&conn->lock);
  int r;
  if (conn->head) {
    r = enqueue(conn, &h, payload, fds, nfds);
  } else {
    r = send_packet(conn->fd, &h, payload, len, fds, nfds);
    if (r == -EAGAIN)
      r = enqueue(conn, &h, payload, fds, nfds);
  }
  pthread_mutex_unlock(&conn->lock);
  return r;
}

int
aipc_conn_send_msg(struct aipc_conn *conn, uint16_t opcode, uint32_t serial,
                   const void *body, const int *fds, unsigned nfds)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(conn->protocol, opcode);
  if (!desc || desc->nfds != nfds)
    return -EINVAL;

  /* Most messages are small: encode on the stack, and only fall back to
   * the heap for big ones, so callers on small stacks stay safe. */
  uint8_t small[1024];
  int len = aipc_record_encode(&desc->record, body, small, sizeof(small));
  if (len >= 0)
    return aipc_conn_send(conn, opcode, serial, small, (size_t)len, fds, nfds);
  if (len != -EMSGSIZE)
    return len;

  size_t cap = AIPC_MSG_MAX_SIZE - sizeof(struct aipc_msg_header);
  uint8_t *big = malloc(cap);
  if (!big)
    return -ENOMEM;
  len = aipc_record_encode(&desc->record, body, big, cap);
  int r = len < 0 ? len
                  : aipc_conn_send(conn, opcode, serial, big, (size_t)len, fds,
                                   nfds);
  free(big);
  return r;
}

int
aipc_conn_flush(struct aipc_conn *conn)
{
  int r = 0;
  pthread_mutex_lock(&conn->lock);
  while (conn->head) {
    struct queued *q = conn->head;
    r = send_packet(conn->fd, &q->header, q->payload, q->header.size, q->fds,
                    q->nfds);
    if (r < 0)
      break;
    conn->head = q->next;
    if (!conn->head)
      conn->tail = &conn->head;
    conn->queued_bytes -= sizeof(q->header) + q->header.size;
    conn->queued_fds -= q->nfds;
    free_queued(q);
  }
  /* Drop EPOLLOUT once empty; re-arm a one-shot registration. */
  if (!conn->head || !conn->watch_input)
    update_watch(conn);
  pthread_mutex_unlock(&conn->lock);
  return r;
}

bool
aipc_conn_peer_read_all(struct aipc_conn *conn)
{
  pthread_mutex_lock(&conn->lock);
  bool queued = conn->head != NULL;
  pthread_mutex_unlock(&conn->lock);
  int unread = 0;
  /* For AF_UNIX, what the peer has not received yet, in bytes. */
  if (!queued && ioctl(conn->fd, SIOCOUTQ, &unread) < 0)
    return false;
  return !queued && unread == 0;
}

static void
close_fds(const int *fds, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    close(fds[i]);
}

int
aipc_conn_recv(struct aipc_conn *conn, struct aipc_msg **out)
{
  struct iovec iov = {.iov_base = conn->recv_buf,
                      .iov_len = sizeof(conn->recv_buf)};
  union control control;
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t n;
  do {
    n = recvmsg(conn->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EWOULDBLOCK)
      return -EAGAIN;
    return errno == EPIPE ? -ECONNRESET : -errno;
  }

  /* Collect every fd the kernel installed, whatever else is wrong. */
  int fds[AIPC_MSG_MAX_FDS];
  unsigned nfds = 0;
  bool bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      bad = true;
      continue;
    }
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const uint8_t *data = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof(int));
      if (nfds < AIPC_MSG_MAX_FDS)
        fds[nfds++] = fd;
      else {
        close(fd);
        bad = true;
      }
    }
  }
  if (n == 0 && nfds == 0 && !bad)
    return -ECONNRESET;

  struct aipc_msg_header h;
  if (bad || (size_t)n < sizeof(h))
    goto malformed;
  memcpy(&h, conn->recv_buf, sizeof(h));
  if (h.size != (size_t)n - sizeof(h) || h.nfds != nfds || h.flags != 0 ||
      h.reserved != 0)
    goto malformed;

  if (conn->trace)
    aipc_trace_msg(conn->protocol, conn->who, "recv", &h,
                   conn->recv_buf + sizeof(h));
  struct aipc_msg *msg = aipc_msg_new(&h, conn->recv_buf + sizeof(h), fds);
  if (!msg)
    return -ENOMEM;
  *out = msg;
  return 0;

malformed:
  close_fds(fds, nfds);
  return -EBADMSG;
}
