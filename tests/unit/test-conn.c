/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "conn.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct aipc_conn *
conn_of(int fd)
{
  struct aipc_conn *conn;
  CHECK_INT(aipc_conn_new(fd, &aipc_protocol, "test", &conn), ==, 0);
  return conn;
}

static void
send_ping(struct aipc_conn *c, uint32_t serial, uint64_t value)
{
  struct aipc_ping ping = {.value = value};
  CHECK_INT(aipc_conn_send_msg(c, AIPC_OP_PING, serial, &ping, NULL, 0), ==, 0);
}

static struct aipc_msg *
recv_one(struct aipc_conn *c)
{
  struct aipc_msg *msg = NULL;
  int r;
  /* The socket is non-blocking; wait for the packet with poll-free
   * retries bounded by the test timeout. */
  while ((r = aipc_conn_recv(c, &msg)) == -EAGAIN)
    usleep(100);
  CHECK_INT(r, ==, 0);
  return msg;
}

TEST(conn_send_and_receive)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *a = conn_of(sv[0]), *b = conn_of(sv[1]);

  send_ping(a, 7, 1234);
  struct aipc_msg *msg = recv_one(b);
  CHECK_INT(msg->header.opcode, ==, AIPC_OP_PING);
  CHECK_INT(msg->header.serial, ==, 7);
  struct aipc_ping ping;
  CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &ping), ==, 0);
  CHECK(ping.value == 1234);
  aipc_msg_free(msg);

  CHECK_INT(aipc_conn_recv(b, &msg), ==, -EAGAIN);
  aipc_conn_destroy(a);
  CHECK_INT(aipc_conn_recv(b, &msg), ==, -ECONNRESET);
  aipc_conn_destroy(b);
}

struct fd_child {
  int sock;
  int pipe_read;
};

/* In the child: receive two fds, check they are close-on-exec, and read
 * a byte through the pipe end to prove it is the right file. */
static void
child_receives_fds(void *arg)
{
  struct fd_child *fc = arg;
  close(fc->pipe_read);
  struct aipc_conn *c = conn_of(fc->sock);
  struct aipc_msg *msg = recv_one(c);
  CHECK_INT(msg->header.nfds, ==, 2);
  for (unsigned i = 0; i < 2; i++)
    CHECK(fcntl(msg->fds[i], F_GETFD) & FD_CLOEXEC);
  int fd = aipc_msg_take_fd(msg, 0);
  char byte = 0;
  CHECK_INT(read(fd, &byte, 1), ==, 1);
  CHECK(byte == 'z');
  close(fd);
  aipc_msg_free(msg);
  aipc_conn_destroy(c);
}

TEST(conn_fds_cross_processes_close_on_exec)
{
  int sv[2], p[2];
  test_socketpair(sv);
  CHECK(pipe(p) == 0);
  CHECK(write(p[1], "z", 1) == 1);
  struct fd_child fc = {.sock = sv[1], .pipe_read = -1};
  pid_t pid = test_fork(child_receives_fds, &fc);
  close(sv[1]);

  struct aipc_conn *a = conn_of(sv[0]);
  int fds[2] = {p[0], p[1]};
  CHECK_INT(aipc_conn_send(a, AIPC_OP_PING, 1, (const uint8_t *)"01234567", 8,
                           fds, 2),
            ==, 0);
  test_wait_ok(pid);
  close(p[0]);
  close(p[1]);
  aipc_conn_destroy(a);
}

/* Sends a raw packet with `nfds` copies of fd in its control data. */
static void
raw_send(int sock, const void *data, size_t len, int fd, unsigned nfds)
{
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 16)];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    mh.msg_control = control.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    for (unsigned i = 0; i < nfds; i++)
      memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
  }
  CHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

TEST(conn_truncated_control_data_closes_every_fd)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *b = conn_of(sv[1]);
  int base = test_count_fds();

  struct aipc_msg_header h = {.opcode = AIPC_OP_PING, .nfds = 16};
  raw_send(sv[0], &h, sizeof(h), sv[0], 16); /* more than we accept */
  struct aipc_msg *msg;
  int r;
  while ((r = aipc_conn_recv(b, &msg)) == -EAGAIN)
    usleep(100);
  CHECK_INT(r, ==, -EBADMSG);
  CHECK_INT(test_count_fds(), ==, base);

  /* The connection still works afterwards. */
  h.nfds = 0;
  raw_send(sv[0], &h, sizeof(h), -1, 0);
  msg = recv_one(b);
  aipc_msg_free(msg);
  close(sv[0]);
  aipc_conn_destroy(b);
}

TEST(conn_rejects_malformed_packets)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *b = conn_of(sv[1]);
  int base = test_count_fds();
  struct aipc_msg *msg;

  /* Each of these is refused, and any fd it carried is closed. */
  struct aipc_msg_header h = {.size = 4, .opcode = AIPC_OP_PING};
  raw_send(sv[0], &h, sizeof(h), -1, 0); /* size says 4, has 0 */
  h.size = 0;
  h.nfds = 1;
  raw_send(sv[0], &h, sizeof(h), sv[0], 2); /* nfds says 1, has 2 */
  h.nfds = 0;
  h.flags = 1;
  raw_send(sv[0], &h, sizeof(h), -1, 0); /* reserved flags */
  raw_send(sv[0], "abc", 3, sv[0], 1);   /* shorter than a header */
  static uint8_t big[AIPC_MSG_MAX_SIZE + 100];
  struct aipc_msg_header hb = {.size = sizeof(big) - sizeof(h)};
  memcpy(big, &hb, sizeof(hb));
  raw_send(sv[0], big, sizeof(big), -1, 0); /* truncated payload */

  for (int i = 0; i < 5; i++) {
    int r;
    while ((r = aipc_conn_recv(b, &msg)) == -EAGAIN)
      usleep(100);
    CHECK_INT(r, ==, -EBADMSG);
  }
  CHECK_INT(test_count_fds(), ==, base);
  close(sv[0]);
  aipc_conn_destroy(b);
}

TEST(conn_queues_when_full_and_bounds_the_queue)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *a = conn_of(sv[0]), *b = conn_of(sv[1]);

  /* Nobody reads b: sends fill the socket, then the queue, then fail. */
  static uint8_t payload[8192];
  int r = 0;
  unsigned sent = 0;
  while ((r = aipc_conn_send(a, AIPC_OP_PING, sent + 1, payload,
                             sizeof(payload), NULL, 0)) == 0)
    sent++;
  CHECK_INT(r, ==, -ENOBUFS);
  CHECK(sent > AIPC_CONN_QUEUE_MAX / sizeof(payload));
  CHECK_INT(aipc_conn_flush(a), ==, -EAGAIN);

  /* Draining b lets the queue flush; every message arrives, in order. */
  unsigned got = 0;
  while (got < sent) {
    struct aipc_msg *msg;
    r = aipc_conn_recv(b, &msg);
    if (r == -EAGAIN) {
      r = aipc_conn_flush(a);
      CHECK(r == 0 || r == -EAGAIN);
      continue;
    }
    CHECK_INT(r, ==, 0);
    CHECK_INT(msg->header.serial, ==, got + 1);
    aipc_msg_free(msg);
    got++;
  }
  CHECK_INT(aipc_conn_flush(a), ==, 0);
  aipc_conn_destroy(a);
  aipc_conn_destroy(b);
}

TEST(conn_queued_fds_are_delivered)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *a = conn_of(sv[0]), *b = conn_of(sv[1]);
  static uint8_t payload[8192];
  while (aipc_conn_send(a, AIPC_OP_PING, 1, payload, sizeof(payload), NULL,
                        0) == 0) {
    /* Stop once a message has had to be queued. */
    if (aipc_conn_flush(a) == -EAGAIN)
      break;
  }
  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  CHECK_INT(aipc_conn_send(a, AIPC_OP_PING, 99, NULL, 0, p, 1), ==, 0);
  close(p[0]); /* the queue holds its own copy */

  for (;;) {
    struct aipc_msg *msg;
    int r = aipc_conn_recv(b, &msg);
    if (r == -EAGAIN) {
      aipc_conn_flush(a);
      continue;
    }
    CHECK_INT(r, ==, 0);
    if (msg->header.serial == 99) {
      CHECK_INT(msg->header.nfds, ==, 1);
      CHECK(write(p[1], "q", 1) == 1);
      char c;
      CHECK(read(msg->fds[0], &c, 1) == 1 && c == 'q');
      aipc_msg_free(msg);
      break;
    }
    aipc_msg_free(msg);
  }
  close(p[1]);
  aipc_conn_destroy(a);
  aipc_conn_destroy(b);
}

TEST(conn_send_to_closed_peer_fails)
{
  int sv[2];
  test_socketpair(sv);
  struct aipc_conn *a = conn_of(sv[0]);
  close(sv[1]);
  struct aipc_ping ping = {.value = 1};
  CHECK_INT(aipc_conn_send_msg(a, AIPC_OP_PING, 1, &ping, NULL, 0), ==, -EPIPE);
  aipc_conn_destroy(a);
}

TEST(conn_protocol_trace_decodes_messages)
{
  setenv("AUDIOIPC_DEBUG", "protocol", 1);
  int err[2], sv[2];
  CHECK(pipe2(err, O_CLOEXEC) == 0);
  int saved = dup(STDERR_FILENO);
  CHECK(dup2(err[1], STDERR_FILENO) == STDERR_FILENO);

  test_socketpair(sv);
  struct aipc_conn *a = conn_of(sv[0]), *b = conn_of(sv[1]);
  send_ping(a, 5, 31337);
  aipc_msg_free(recv_one(b));
  aipc_conn_destroy(a);
  aipc_conn_destroy(b);

  CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
  close(saved);
  close(err[1]);
  char text[4096] = "";
  ssize_t n = read(err[0], text, sizeof(text) - 1);
  close(err[0]);
  CHECK(n > 0);
  CHECK(strstr(text, "protocol test send PING#5 {value=31337}"));
  CHECK(strstr(text, "protocol test recv PING#5 {value=31337}"));
}
