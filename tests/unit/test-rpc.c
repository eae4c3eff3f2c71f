/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "clock.h"
#include "protocol.h"
#include "rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A test server in a child process. PING echoes its value, except:
 * HOLD_BIT set: keep the request unanswered (and write a byte to the
 * notify pipe); RELEASE: answer every held request, then this one.
 */
#define HOLD_BIT (UINT64_C(1) << 40)
#define RELEASE (UINT64_C(1) << 41)

struct test_server {
  int sock;
  int notify;        /* write end, or -1 */
  int client_fds[2]; /* the parent's ends, closed in the child; or -1 */
  uint32_t max_in_flight;
  struct aipc_loop *loop;
  struct aipc_session *session;
  struct aipc_request *held[256];
  int nheld;
  atomic_int closed;
};

static void
reply_echo(struct aipc_request *req)
{
  struct aipc_ping reply = *(struct aipc_ping *)req->body;
  aipc_request_reply(req, &reply, NULL, 0);
}

static void
server_request(void *data, struct aipc_request *req)
{
  struct test_server *s = data;
  CHECK_INT(req->opcode, ==, AIPC_OP_PING);
  const struct aipc_ping *ping = (const struct aipc_ping *)req->body;
  if (ping->value & HOLD_BIT) {
    CHECK(s->nheld < 256);
    s->held[s->nheld++] = req;
    if (s->notify >= 0)
      CHECK(write(s->notify, "h", 1) == 1);
    return;
  }
  if (ping->value == RELEASE) {
    for (int i = 0; i < s->nheld; i++)
      reply_echo(s->held[i]);
    s->nheld = 0;
  }
  reply_echo(req);
}

static void
server_closed(void *data, int error)
{
  struct test_server *s = data;
  (void)error;
  for (int i = 0; i < s->nheld; i++)
    aipc_request_fail(s->held[i], -ECANCELED);
  s->nheld = 0;
  aipc_session_destroy(s->session);
  s->session = NULL;
  atomic_store(&s->closed, 1);
}

static void
server_attach(void *data)
{
  struct test_server *s = data;
  static const struct aipc_session_handlers handlers = {
      .request = server_request, .closed = server_closed};
  struct aipc_session_params params = {.max_in_flight = s->max_in_flight};
  CHECK_INT(aipc_session_new(s->loop, s->sock, &aipc_protocol, &params,
                             &handlers, s, &s->session),
            ==, 0);
}

static void
run_server(void *arg)
{
  struct test_server *s = arg;
  for (int i = 0; i < 2; i++)
    if (s->client_fds[i] >= 0)
      close(s->client_fds[i]);
  CHECK_INT(aipc_loop_new("test-server", NULL, &s->loop), ==, 0);
  CHECK_INT(aipc_loop_invoke(s->loop, server_attach, s), ==, 0);
  while (!atomic_load(&s->closed))
    usleep(1000);
  aipc_loop_destroy(s->loop);
}

struct fixture {
  pid_t server;
  int notify; /* read end */
  struct aipc_loop *loop;
  struct aipc_rpc_client *client;
  atomic_int closed_calls;
  atomic_int events;
};

static void
client_closed(void *data, int error)
{
  struct fixture *f = data;
  CHECK_INT(error, ==, -ECONNRESET);
  atomic_fetch_add(&f->closed_calls, 1);
}

/* Starts a server child and a client connected to it. */
static void
start(struct fixture *f, uint32_t max_in_flight, bool hello)
{
  int sv[2], np[2];
  test_socketpair(sv);
  CHECK(pipe2(np, O_CLOEXEC) == 0);
  struct test_server server = {.sock = sv[1],
                               .notify = np[1],
                               .client_fds = {sv[0], np[0]},
                               .max_in_flight = max_in_flight};
  f->server = test_fork(run_server, &server);
  close(sv[1]);
  close(np[1]);
  f->notify = np[0];
  CHECK_INT(aipc_loop_new("test-client", NULL, &f->loop), ==, 0);
  static const struct aipc_rpc_client_events events = {.closed = client_closed};
  CHECK_INT(aipc_rpc_client_new(f->loop, sv[0], &aipc_protocol, &events, f,
                                &f->client),
            ==, 0);
  if (hello)
    CHECK_INT(aipc_rpc_hello(f->client, "test", -1), ==, 0);
}

static void
stop(struct fixture *f)
{
  aipc_rpc_client_destroy(f->client);
  aipc_loop_destroy(f->loop);
  test_wait_ok(f->server);
  close(f->notify);
}

static int
ping(struct fixture *f, uint64_t value, uint64_t *echo, int64_t timeout_ns)
{
  struct aipc_ping req = {.value = value}, reply = {.value = 0};
  int r =
      aipc_rpc_call(f->client, AIPC_OP_PING, &req, &reply, NULL, timeout_ns);
  if (echo)
    *echo = reply.value;
  return r;
}

static void
wait_held(struct fixture *f, int n)
{
  char buf[64];
  while (n > 0) {
    ssize_t r =
        read(f->notify, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf));
    CHECK(r > 0);
    n -= (int)r;
  }
}

TEST(rpc_hello_then_calls)
{
  struct fixture f = {0};
  start(&f, 0, true);
  uint64_t echo;
  CHECK_INT(ping(&f, 77, &echo, -1), ==, 0);
  CHECK(echo == 77);
  stop(&f);
  CHECK_INT(f.closed_calls, ==, 0);
}

TEST(rpc_request_before_hello_is_refused_and_dropped)
{
  struct fixture f = {0};
  start(&f, 0, false);
  CHECK_INT(ping(&f, 1, NULL, -1), ==, -EPROTO);
  /* The server hung up; the next call fails without waiting. */
  int r;
  while ((r = ping(&f, 2, NULL, -1)) == -ECONNRESET)
    ; /* a call racing the hang-up fails with -ECONNRESET */
  CHECK_INT(r, ==, -ENOTCONN);
  stop(&f);
  CHECK_INT(f.closed_calls, ==, 1);
}

TEST(rpc_wrong_protocol_version_is_a_clear_error)
{
  struct fixture f = {0};
  start(&f, 0, false);
  struct aipc_hello hello = {.version = AIPC_PROTOCOL_VERSION + 1,
                             .library_version = "9.9.9",
                             .name = "future"};
  struct aipc_hello_reply reply;
  CHECK_INT(aipc_rpc_call(f.client, AIPC_OP_HELLO, &hello, &reply, NULL, -1),
            ==, -EPROTONOSUPPORT);
  stop(&f);
}

struct caller {
  struct fixture *f;
  int id;
  int calls;
  int mismatches;
};

static void *
call_many(void *arg)
{
  struct caller *c = arg;
  for (int i = 0; i < c->calls; i++) {
    uint64_t value = ((uint64_t)c->id << 32) | (uint64_t)i, echo = 0;
    CHECK_INT(ping(c->f, value, &echo, -1), ==, 0);
    if (echo != value)
      c->mismatches++;
  }
  return NULL;
}

TEST_TIMEOUT(rpc_eight_threads_ten_thousand_calls_each, 300)
{
  struct fixture f = {0};
  start(&f, 0, true);
  pthread_t threads[8];
  struct caller callers[8];
  for (int i = 0; i < 8; i++) {
    callers[i] = (struct caller){.f = &f, .id = i + 1, .calls = 10000};
    CHECK(pthread_create(&threads[i], NULL, call_many, &callers[i]) == 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(threads[i], NULL);
    CHECK_INT(callers[i].mismatches, ==, 0);
  }
  stop(&f);
}

struct held_call {
  struct fixture *f;
  uint64_t value;
  int result;
};

static void *
call_held(void *arg)
{
  struct held_call *h = arg;
  h->result = ping(h->f, h->value, NULL, -1);
  return NULL;
}

TEST(rpc_connection_loss_fails_every_pending_call)
{
  struct fixture f = {0};
  start(&f, 0, true);
  pthread_t threads[6];
  struct held_call calls[6];
  for (int i = 0; i < 6; i++) {
    calls[i] = (struct held_call){&f, HOLD_BIT | (uint64_t)i, 1};
    CHECK(pthread_create(&threads[i], NULL, call_held, &calls[i]) == 0);
  }
  wait_held(&f, 6); /* all six are in the server, unanswered */
  kill(f.server, SIGKILL);
  for (int i = 0; i < 6; i++) {
    pthread_join(threads[i], NULL);
    CHECK_INT(calls[i].result, ==, -ECONNRESET);
  }
  CHECK_INT(ping(&f, 1, NULL, -1), ==, -ENOTCONN);
  /* `closed` runs on the loop thread after the calls have failed. */
  while (atomic_load(&f.closed_calls) == 0)
    usleep(1000);
  CHECK_INT(f.closed_calls, ==, 1);

  aipc_rpc_client_destroy(f.client);
  aipc_loop_destroy(f.loop);
  int status = test_wait(f.server);
  CHECK(WIFSIGNALED(status));
  close(f.notify);
}

TEST(rpc_deadline_expires_and_late_replies_are_dropped)
{
  struct fixture f = {0};
  start(&f, 0, true);
  int64_t t0 = aipc_now_ns();
  CHECK_INT(ping(&f, HOLD_BIT | 5, NULL, 20 * AIPC_NSEC_PER_MSEC), ==,
            -ETIMEDOUT);
  CHECK(aipc_now_ns() - t0 >= 20 * AIPC_NSEC_PER_MSEC);
  wait_held(&f, 1);
  /* RELEASE answers the held call first; its reply must not be taken for
   * this one. */
  uint64_t echo;
  CHECK_INT(ping(&f, RELEASE, &echo, -1), ==, 0);
  CHECK(echo == RELEASE);
  stop(&f);
}

TEST(rpc_requests_in_flight_are_bounded)
{
  struct fixture f = {0};
  start(&f, 4, true);
  pthread_t threads[4];
  struct held_call calls[4];
  for (int i = 0; i < 4; i++) {
    calls[i] = (struct held_call){&f, HOLD_BIT | (uint64_t)i, 1};
    CHECK(pthread_create(&threads[i], NULL, call_held, &calls[i]) == 0);
  }
  wait_held(&f, 4);
  CHECK_INT(ping(&f, 9, NULL, -1), ==, -EBUSY);
  /* RELEASE itself would be refused while four are held: end the server
   * instead, which fails the held calls. */
  kill(f.server, SIGKILL);
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    CHECK_INT(calls[i].result, ==, -ECONNRESET);
  }
  aipc_rpc_client_destroy(f.client);
  aipc_loop_destroy(f.loop);
  test_wait(f.server);
  close(f.notify);
}

static struct aipc_msg *
raw_recv(struct aipc_conn *c, int *result)
{
  struct aipc_msg *msg = NULL;
  struct pollfd pfd = {.fd = aipc_conn_fd(c), .events = POLLIN};
  int r;
  while ((r = aipc_conn_recv(c, &msg)) == -EAGAIN)
    poll(&pfd, 1, -1);
  *result = r;
  return msg;
}

/* Sends raw bytes as a request and returns the error the server answers
 * with (0 for a successful reply). */
static int
raw_request(struct aipc_conn *c, uint16_t opcode, uint32_t serial,
            const void *payload, size_t len)
{
  CHECK_INT(aipc_conn_send(c, opcode, serial, payload, len, NULL, 0), ==, 0);
  int r;
  struct aipc_msg *msg = raw_recv(c, &r);
  CHECK_INT(r, ==, 0);
  CHECK_INT(msg->header.serial, ==, serial);
  int error = 0;
  if (msg->header.opcode == AIPC_OP_ERROR) {
    struct aipc_error e;
    CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &e), ==, 0);
    error = e.error;
  }
  aipc_msg_free(msg);
  return error;
}

/* Raw bytes on a server session: bad requests get an error reply and the
 * session goes on; a request carrying an fd ends it. */
TEST(rpc_server_checks_raw_requests)
{
  int sv[2];
  test_socketpair(sv);
  struct test_server server = {
      .sock = sv[1], .notify = -1, .client_fds = {sv[0], -1}};
  pid_t pid = test_fork(run_server, &server);
  close(sv[1]);
  struct aipc_conn *c;
  CHECK_INT(aipc_conn_new(sv[0], &aipc_protocol, "raw", &c), ==, 0);

  struct aipc_hello hello = {.version = AIPC_PROTOCOL_VERSION,
                             .library_version = "x"};
  CHECK_INT(aipc_conn_send_msg(c, AIPC_OP_HELLO, 1, &hello, NULL, 0), ==, 0);
  int r;
  struct aipc_msg *msg = raw_recv(c, &r);
  CHECK_INT(r, ==, 0);
  CHECK_INT(msg->header.opcode, ==, AIPC_OP_HELLO_REPLY);
  aipc_msg_free(msg);

  uint64_t value = 5, big[2] = {5, 0};
  CHECK_INT(raw_request(c, 999, 2, &value, 8), ==, -EOPNOTSUPP);
  CHECK_INT(raw_request(c, AIPC_OP_PING_REPLY, 3, &value, 8), ==, -EOPNOTSUPP);
  CHECK_INT(raw_request(c, AIPC_OP_PING, 4, &value, 3), ==, -EBADMSG);
  CHECK_INT(raw_request(c, AIPC_OP_PING, 5, big, 9), ==, -EBADMSG);
  CHECK_INT(raw_request(c, AIPC_OP_HELLO, 6, NULL, 0), ==, -EBADMSG);
  uint8_t hello_again[64];
  int len = aipc_record_encode(&aipc_protocol.msgs[AIPC_OP_HELLO].record,
                               &hello, hello_again, sizeof(hello_again));
  CHECK_INT(raw_request(c, AIPC_OP_HELLO, 7, hello_again, (size_t)len), ==,
            -EPROTO);
  CHECK_INT(raw_request(c, AIPC_OP_PING, 8, &value, 8), ==, 0);

  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  CHECK_INT(aipc_conn_send(c, AIPC_OP_PING, 9, (uint8_t *)&value, 8, p, 1), ==,
            0);
  close(p[0]);
  close(p[1]);
  msg = raw_recv(c, &r);
  CHECK_INT(r, ==, -ECONNRESET);
  aipc_conn_destroy(c);
  test_wait_ok(pid);
}
