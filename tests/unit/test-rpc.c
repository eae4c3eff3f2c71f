/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "clock.h"
#include "protocol.h"
#include "rpc.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * A test server in a child process. PING echoes its value, except:
 * HOLD_BIT set: keep the request unanswered (and write a byte to the
 * notify pipe); RELEASE: answer every held request, then this one;
 * EVENTS_BIT set: first send as many numbered STREAM_STATE events as the
 * low byte says, then answer with the number of the last event sent;
 * HANGUP: send three events and hang up without answering;
 * BLOCK_BIT set: write to the notify pipe, then block the server's loop
 * until the test writes a byte to the go pipe, then echo.
 */
#define HOLD_BIT (UINT64_C(1) << 40)
#define RELEASE (UINT64_C(1) << 41)
#define EVENTS_BIT (UINT64_C(1) << 42)
#define HANGUP (UINT64_C(1) << 43)
#define BLOCK_BIT (UINT64_C(1) << 44)

struct test_server {
  int sock;
  int notify;        /* write end, or -1 */
  int go;            /* read end, or -1 */
  int client_fds[3]; /* the parent's ends, closed in the child; or -1 */
  uint32_t max_in_flight;
  bool owner_reads; /* the child's main thread reads, not its loop */
  struct aipc_loop *loop;
  struct aipc_session *session;
  struct aipc_request *held[256];
  int nheld;
  uint32_t last_event;
  atomic_int closed;
};

static void
reply_echo(struct aipc_request *req)
{
  struct aipc_ping reply = *(struct aipc_ping *)req->body;
  aipc_request_reply(req, &reply, NULL, 0);
}

static void
send_event(struct test_server *s)
{
  struct aipc_stream_state_event ev = {.stream = ++s->last_event};
  CHECK_INT(aipc_session_send_event(s->session, AIPC_OP_STREAM_STATE_EVENT, &ev,
                                    NULL, 0),
            ==, 0);
}

static void
server_request(void *data, struct aipc_request *req)
{
  struct test_server *s = data;
  CHECK_INT(req->opcode, ==, AIPC_OP_PING);
  const struct aipc_ping *ping = (const struct aipc_ping *)req->body;
  if (ping->value & EVENTS_BIT) {
    for (uint64_t i = 0; i < (ping->value & 0xff); i++)
      send_event(s);
    struct aipc_ping reply = {.value = s->last_event};
    aipc_request_reply(req, &reply, NULL, 0);
    return;
  }
  if (ping->value == HANGUP) {
    for (int i = 0; i < 3; i++)
      send_event(s);
    aipc_session_close(s->session, -ECONNRESET);
    aipc_request_fail(req, -ECANCELED); /* frees it; the send fails */
    return;
  }
  if (ping->value & BLOCK_BIT) {
    char byte;
    CHECK(write(s->notify, "b", 1) == 1);
    CHECK(read(s->go, &byte, 1) == 1);
  }
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
  static const struct aipc_session_handlers owner_handlers = {
      .request = server_request};
  struct aipc_session_params params = {.max_in_flight = s->max_in_flight,
                                       .owner_reads = s->owner_reads};
  CHECK_INT(aipc_session_new(s->loop, s->sock, &aipc_protocol, &params,
                             s->owner_reads ? &owner_handlers : &handlers, s,
                             &s->session),
            ==, 0);
}

static void
server_detach(void *data)
{
  struct test_server *s = data;
  aipc_session_destroy(s->session);
  s->session = NULL;
}

static void
run_server(void *arg)
{
  struct test_server *s = arg;
  for (int i = 0; i < 3; i++)
    if (s->client_fds[i] >= 0)
      close(s->client_fds[i]);
  CHECK_INT(aipc_loop_new("test-server", NULL, &s->loop), ==, 0);
  CHECK_INT(aipc_loop_invoke(s->loop, server_attach, s), ==, 0);
  if (s->owner_reads) {
    /* Requests are handled on this thread; a hang-up ends the reads. */
    int r;
    while ((r = aipc_session_read(s->session, -1)) == 0)
      ;
    CHECK_INT(r, ==, -ECONNRESET);
    CHECK_INT(aipc_session_read(s->session, 0), ==, -ECONNRESET);
    CHECK_INT(aipc_loop_invoke(s->loop, server_detach, s), ==, 0);
    atomic_store(&s->closed, 1);
  }
  while (!atomic_load(&s->closed))
    usleep(1000);
  aipc_loop_destroy(s->loop);
}

struct fixture {
  pid_t server;
  int notify; /* read end */
  int go;     /* write end */
  int sock;   /* the client's socket, owned by the client */
  struct aipc_loop *loop;
  struct aipc_rpc_client *client;
  atomic_int closed_calls;
  atomic_uint last_event; /* number of the last event delivered */
  unsigned events_at_close;
  pthread_mutex_t lock; /* for `closed` */
  pthread_cond_t cond;
};

/* Events arrive on the loop thread, each numbered one more than the last. */
static void
client_event(void *data, struct aipc_msg *msg)
{
  struct fixture *f = data;
  CHECK(aipc_loop_in_thread(f->loop));
  CHECK_INT(msg->header.opcode, ==, AIPC_OP_STREAM_STATE_EVENT);
  struct aipc_stream_state_event ev;
  CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &ev), ==, 0);
  CHECK_INT(ev.stream, ==, atomic_load(&f->last_event) + 1);
  atomic_store(&f->last_event, ev.stream);
  aipc_msg_free(msg);
}

static void
client_closed(void *data, int error)
{
  struct fixture *f = data;
  CHECK_INT(error, ==, -ECONNRESET);
  CHECK(aipc_loop_in_thread(f->loop));
  pthread_mutex_lock(&f->lock);
  f->events_at_close = atomic_load(&f->last_event);
  atomic_fetch_add(&f->closed_calls, 1);
  pthread_cond_broadcast(&f->cond);
  pthread_mutex_unlock(&f->lock);
}

static void
wait_closed(struct fixture *f)
{
  pthread_mutex_lock(&f->lock);
  while (atomic_load(&f->closed_calls) == 0)
    pthread_cond_wait(&f->cond, &f->lock);
  pthread_mutex_unlock(&f->lock);
}

static void start_server(struct fixture *f, uint32_t max_in_flight,
                         bool owner_reads, bool hello);

/* Starts a server child and a client connected to it. */
static void
start(struct fixture *f, uint32_t max_in_flight, bool hello)
{
  start_server(f, max_in_flight, false, hello);
}

static void
start_server(struct fixture *f, uint32_t max_in_flight, bool owner_reads,
             bool hello)
{
  int sv[2], np[2], gp[2];
  test_socketpair(sv);
  CHECK(pipe2(np, O_CLOEXEC) == 0);
  CHECK(pipe2(gp, O_CLOEXEC) == 0);
  struct test_server server = {.sock = sv[1],
                               .notify = np[1],
                               .go = gp[0],
                               .client_fds = {sv[0], np[0], gp[1]},
                               .max_in_flight = max_in_flight,
                               .owner_reads = owner_reads};
  f->server = test_fork(run_server, &server);
  close(sv[1]);
  close(np[1]);
  close(gp[0]);
  f->notify = np[0];
  f->go = gp[1];
  f->sock = sv[0];
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->cond, NULL);
  CHECK_INT(aipc_loop_new("test-client", NULL, &f->loop), ==, 0);
  static const struct aipc_rpc_client_events events = {.event = client_event,
                                                       .closed = client_closed};
  CHECK_INT(aipc_rpc_client_new(f->loop, sv[0], &aipc_protocol, &events, f,
                                &f->client),
            ==, 0);
  if (hello)
    CHECK_INT(aipc_rpc_hello(f->client, "test", -1), ==, 0);
}

static void
release_fixture(struct fixture *f)
{
  close(f->notify);
  close(f->go);
  pthread_cond_destroy(&f->cond);
  pthread_mutex_destroy(&f->lock);
}

static void
stop(struct fixture *f)
{
  aipc_rpc_client_destroy(f->client);
  aipc_loop_destroy(f->loop);
  test_wait_ok(f->server);
  release_fixture(f);
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
  int64_t timeout_ns;
  int result;
  uint64_t echo;
};

static void *
call_held(void *arg)
{
  struct held_call *h = arg;
  h->result = ping(h->f, h->value, &h->echo, h->timeout_ns);
  return NULL;
}

TEST(rpc_connection_loss_fails_every_pending_call)
{
  struct fixture f = {0};
  start(&f, 0, true);
  pthread_t threads[6];
  struct held_call calls[6];
  for (int i = 0; i < 6; i++) {
    calls[i] = (struct held_call){
        .f = &f, .value = HOLD_BIT | (uint64_t)i, .timeout_ns = -1};
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
  wait_closed(&f);
  CHECK_INT(f.closed_calls, ==, 1);

  aipc_rpc_client_destroy(f.client);
  aipc_loop_destroy(f.loop);
  int status = test_wait(f.server);
  CHECK(WIFSIGNALED(status));
  release_fixture(&f);
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
    calls[i] = (struct held_call){
        .f = &f, .value = HOLD_BIT | (uint64_t)i, .timeout_ns = -1};
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
  release_fixture(&f);
}

/* --- The reader token: callers read their own replies --------------- */

struct event_caller {
  struct fixture *f;
  int calls;
};

/* Each call asks for 0-3 events before its reply. Events sent before a
 * reply reach the owner before the call returns, as when the loop thread
 * reads everything. */
static void *
call_with_events(void *arg)
{
  struct event_caller *c = arg;
  for (int i = 0; i < c->calls; i++) {
    uint64_t last = 0;
    CHECK_INT(ping(c->f, EVENTS_BIT | (uint64_t)(i % 4), &last, -1), ==, 0);
    CHECK(atomic_load(&c->f->last_event) >= last);
  }
  return NULL;
}

static void
run_event_callers(struct fixture *f, int nthreads, int calls)
{
  pthread_t threads[16];
  struct event_caller caller = {.f = f, .calls = calls};
  CHECK(nthreads <= 16);
  for (int i = 0; i < nthreads; i++)
    CHECK(pthread_create(&threads[i], NULL, call_with_events, &caller) == 0);
  for (int i = 0; i < nthreads; i++)
    pthread_join(threads[i], NULL);
  /* Every event arrived, once and in order (client_event checks). */
  uint64_t last = 0;
  CHECK_INT(ping(f, EVENTS_BIT, &last, -1), ==, 0);
  CHECK_INT(atomic_load(&f->last_event), ==, last);
  CHECK_INT(last, ==, (uint64_t)nthreads * (uint64_t)(calls / 4) * 6);
}

TEST_TIMEOUT(rpc_events_keep_their_order_while_callers_lead, 300)
{
  struct fixture f = {0};
  start(&f, 0, true);
  /* A lone caller always leads: the events it reads go to the loop. */
  run_event_callers(&f, 1, 2000);
  stop(&f);
}

TEST_TIMEOUT(rpc_sixteen_threads_hand_the_reader_on, 300)
{
  struct fixture f = {0};
  start(&f, 0, true);
  run_event_callers(&f, 16, 2000);
  stop(&f);
}

TEST(rpc_leader_times_out_and_hands_the_reader_on)
{
  struct fixture f = {0};
  start(&f, 0, true);
  /* Alone, the first caller takes the reader token. */
  struct held_call calls[3] = {
      {.f = &f, .value = HOLD_BIT | 1, .timeout_ns = 50 * AIPC_NSEC_PER_MSEC},
      {.f = &f, .value = HOLD_BIT | 2, .timeout_ns = -1},
      {.f = &f, .value = HOLD_BIT | 3, .timeout_ns = -1},
  };
  pthread_t threads[3];
  CHECK(pthread_create(&threads[0], NULL, call_held, &calls[0]) == 0);
  wait_held(&f, 1);
  for (int i = 1; i < 3; i++)
    CHECK(pthread_create(&threads[i], NULL, call_held, &calls[i]) == 0);
  wait_held(&f, 2);
  pthread_join(threads[0], NULL);
  CHECK_INT(calls[0].result, ==, -ETIMEDOUT);
  /* One of the others reads now: the held replies (the first one late,
   * dropped) and RELEASE's all reach their callers. */
  uint64_t echo;
  CHECK_INT(ping(&f, RELEASE, &echo, -1), ==, 0);
  CHECK(echo == RELEASE);
  for (int i = 1; i < 3; i++) {
    pthread_join(threads[i], NULL);
    CHECK_INT(calls[i].result, ==, 0);
    CHECK(calls[i].echo == calls[i].value);
  }
  stop(&f);
}

TEST(rpc_hang_up_while_a_caller_leads_fails_every_call_once)
{
  struct fixture f = {0};
  start(&f, 0, true);
  struct held_call leader = {.f = &f, .value = HOLD_BIT | 1, .timeout_ns = -1};
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, call_held, &leader) == 0);
  wait_held(&f, 1);
  /* The server sends three events, then hangs up on both calls. */
  CHECK_INT(ping(&f, HANGUP, NULL, -1), ==, -ECONNRESET);
  pthread_join(thread, NULL);
  CHECK_INT(leader.result, ==, -ECONNRESET);
  CHECK_INT(ping(&f, 1, NULL, -1), ==, -ENOTCONN);
  wait_closed(&f);
  /* The events read before the hang-up came first, then `closed`, once. */
  CHECK_INT(f.events_at_close, ==, 3);
  aipc_rpc_client_destroy(f.client);
  aipc_loop_destroy(f.loop);
  CHECK_INT(f.closed_calls, ==, 1);
  test_wait_ok(f.server);
  release_fixture(&f);
}

/* The events the client loop's epoll waits for on `fd`, from fdinfo. */
static uint32_t
epoll_events_for(int fd)
{
  uint32_t events = 0;
  DIR *dir = opendir("/proc/self/fdinfo");
  CHECK(dir != NULL);
  struct dirent *e;
  while ((e = readdir(dir))) {
    char path[300], line[256];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
    FILE *file = fopen(path, "re");
    if (!file)
      continue;
    while (fgets(line, sizeof(line), file)) {
      int tfd;
      unsigned ev;
      if (sscanf(line, "tfd: %d events: %x", &tfd, &ev) == 2 && tfd == fd)
        events = ev;
    }
    fclose(file);
  }
  closedir(dir);
  return events;
}

TEST(rpc_requests_queued_while_a_caller_leads_are_flushed)
{
  struct fixture f = {0};
  start(&f, 0, true);
  /* The blocker leads (it is alone) and stops the server's loop. */
  struct held_call blocker = {.f = &f, .value = BLOCK_BIT, .timeout_ns = -1};
  pthread_t blocker_thread, threads[8];
  CHECK(pthread_create(&blocker_thread, NULL, call_held, &blocker) == 0);
  wait_held(&f, 1);
  /* Fill the socket with requests the server will refuse, under serials
   * no call uses, so the next requests wait in the connection's queue. */
  for (uint32_t serial = 0x80000000;; serial++) {
    struct aipc_msg_header h = {.opcode = 999, .serial = serial};
    ssize_t n = send(f.sock, &h, sizeof(h), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      CHECK(errno == EAGAIN);
      break;
    }
  }
  struct caller callers[8];
  for (int i = 0; i < 8; i++) {
    callers[i] = (struct caller){.f = &f, .id = i + 1, .calls = 50};
    CHECK(pthread_create(&threads[i], NULL, call_many, &callers[i]) == 0);
  }
  /* A request is queued: the loop waits to flush it, not for input. */
  uint32_t events;
  while (!((events = epoll_events_for(f.sock)) & EPOLLOUT))
    sched_yield();
  CHECK(!(events & EPOLLIN));
  CHECK(write(f.go, "g", 1) == 1);
  pthread_join(blocker_thread, NULL);
  CHECK_INT(blocker.result, ==, 0);
  for (int i = 0; i < 8; i++) {
    pthread_join(threads[i], NULL);
    CHECK_INT(callers[i].mismatches, ==, 0);
  }
  /* Everything read, the loop watches for input again. */
  CHECK_INT(epoll_events_for(f.sock) & (EPOLLIN | EPOLLOUT), ==, EPOLLIN);
  stop(&f);
}

static void
record_tid(void *data)
{
  *(pid_t *)data = gettid();
}

static long
voluntary_switches(pid_t tid)
{
  char path[64], line[128];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
  FILE *file = fopen(path, "re");
  CHECK(file != NULL);
  long n = -1;
  while (fgets(line, sizeof(line), file))
    if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
      break;
  fclose(file);
  CHECK(n >= 0);
  return n;
}

/* The point of the token: a lone caller reads its replies itself, and
 * the loop thread is not woken for them. */
TEST(rpc_loop_thread_sleeps_while_a_caller_reads)
{
  struct fixture f = {0};
  start(&f, 0, true);
  pid_t tid = 0;
  CHECK_INT(aipc_loop_invoke(f.loop, record_tid, &tid), ==, 0);
  long before = voluntary_switches(tid);
  for (int i = 0; i < 2000; i++)
    CHECK_INT(ping(&f, (uint64_t)i, NULL, -1), ==, 0);
  CHECK_INT(voluntary_switches(tid) - before, <, 200);
  stop(&f);
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

/* --- A session whose owner reads ------------------------------------------ */

/* The server child's main thread reads and answers; events sent from it
 * arrive in order; the client's hang-up ends the reads with -ECONNRESET
 * (checked in the child, which exits 0 only then). */
TEST(rpc_owner_reads_calls_events_and_hangup)
{
  struct fixture f = {0};
  start_server(&f, 0, true, true);
  for (uint64_t i = 0; i < 200; i++) {
    uint64_t echo;
    CHECK_INT(ping(&f, i, &echo, -1), ==, 0);
    CHECK(echo == i);
  }
  uint64_t last;
  CHECK_INT(ping(&f, EVENTS_BIT | 5, &last, -1), ==, 0);
  CHECK_INT(last, ==, 5);
  CHECK_INT(atomic_load(&f.last_event), ==, 5);
  stop(&f);
}

struct owned_session {
  struct aipc_loop *loop;
  int fd; /* taken by the session */
  struct aipc_session *session;
};

static void
session_attach(void *data)
{
  struct owned_session *o = data;
  static const struct aipc_session_handlers handlers = {.request = NULL};
  struct aipc_session_params params = {.owner_reads = true};
  CHECK_INT(aipc_session_new(o->loop, o->fd, &aipc_protocol, &params, &handlers,
                             NULL, &o->session),
            ==, 0);
}

static void
session_detach(void *data)
{
  aipc_session_destroy(data);
}

struct shutter {
  struct aipc_session *session;
  int delay_ms;
};

static void *
shut_later(void *data)
{
  struct shutter *sh = data;
  usleep((useconds_t)sh->delay_ms * 1000);
  aipc_session_shutdown(sh->session);
  return NULL;
}

/* A read waits no longer than asked; another thread's shutdown wakes a
 * reader that waits without end, and from then on every read fails. */
TEST(rpc_owner_reads_timeout_and_shutdown_from_another_thread)
{
  struct aipc_loop *loop;
  CHECK_INT(aipc_loop_new("test-owner", NULL, &loop), ==, 0);
  int sv[2];
  test_socketpair(sv);
  struct owned_session o = {.loop = loop, .fd = sv[1]};
  CHECK_INT(aipc_loop_invoke(loop, session_attach, &o), ==, 0);
  struct aipc_session *s = o.session;
  CHECK_INT(aipc_session_read(s, 20), ==, -ETIMEDOUT);
  struct shutter sh = {.session = s, .delay_ms = 50};
  pthread_t thread;
  CHECK_INT(pthread_create(&thread, NULL, shut_later, &sh), ==, 0);
  CHECK_INT(aipc_session_read(s, -1), ==, -ECONNRESET);
  pthread_join(thread, NULL);
  CHECK_INT(aipc_session_read(s, -1), ==, -ECONNRESET);
  CHECK_INT(aipc_loop_invoke(loop, session_detach, s), ==, 0);
  close(sv[0]);
  aipc_loop_destroy(loop);
}
