/* SPDX-License-Identifier: ISC */
/*
 * Real-time promotion (PROMOTE_THREAD) asked by a hostile client: the
 * server promotes only threads of the process the embedder vouched for,
 * only while that process lives, at most as many as the client may have
 * streams, and never another process's thread, whatever tid it is named.
 */
#include "fixture.h"
#include "hostile.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { HELD_THREADS = 3 };

struct held {
  atomic_int tid;
  atomic_bool quit;
};

static void *
held_thread(void *data)
{
  struct held *h = data;
  atomic_store(&h->tid, (int)gettid());
  while (!atomic_load(&h->quit))
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  return NULL;
}

/* A process with a few idle threads. Sends their tids over `arg` (its
 * main thread's first); on 'k' ends the first one and answers 'k'; exits
 * when the socket closes. */
E2E_CLIENT(thread_holder)
{
  (void)ctx;
  int ctl = arg;
  struct held held[HELD_THREADS];
  pthread_t threads[HELD_THREADS];
  int tids[HELD_THREADS + 1] = {(int)gettid()};
  for (int i = 0; i < HELD_THREADS; i++) {
    atomic_init(&held[i].tid, 0);
    atomic_init(&held[i].quit, false);
    CHECK_INT(pthread_create(&threads[i], NULL, held_thread, &held[i]), ==, 0);
    while (atomic_load(&held[i].tid) == 0)
      sched_yield();
    tids[i + 1] = atomic_load(&held[i].tid);
  }
  CHECK(write(ctl, tids, sizeof(tids)) == (ssize_t)sizeof(tids));
  char c;
  bool ended = false;
  while (read(ctl, &c, 1) == 1 && c == 'k' && !ended) {
    atomic_store(&held[0].quit, true);
    pthread_join(threads[0], NULL);
    ended = true;
    CHECK(write(ctl, "k", 1) == 1);
  }
  for (int i = ended ? 1 : 0; i < HELD_THREADS; i++) {
    atomic_store(&held[i].quit, true);
    pthread_join(threads[i], NULL);
  }
}

static int
policy_of(int tid)
{
  return sched_getscheduler(tid);
}

static int
promote(struct raw *r, struct tally *t, uint32_t tid)
{
  struct aipc_promote_thread q = {.tid = tid};
  struct aipc_empty empty;
  int e = raw_call(r, AIPC_OP_PROMOTE_THREAD, &q, &empty, NULL);
  t->sent++;
  if (e == 0)
    t->ok++;
  else if (e != -ECONNRESET)
    t->errors++;
  return e;
}

/* Refused, and the thread's policy is what it was. */
static void
expect_refused(struct raw *r, struct tally *t, int tid, int error)
{
  int before = policy_of(tid);
  CHECK_INT(promote(r, t, (uint32_t)tid), ==, error);
  CHECK_INT(policy_of(tid), ==, before);
}

static void
promotion_cases(struct fixture *f, struct tally *t)
{
  AudioIpcServerLimits defaults;
  CHECK_INT(audioipc_server_get_limits(f->e.server, &defaults), ==, 0);
  AudioIpcServerLimits two = defaults;
  two.streams_per_client = 2;
  CHECK_INT(audioipc_server_set_limits(f->e.server, &two), ==, 0);

  int sv[2];
  test_socketpair(sv);
  pid_t holder = fixture_spawn(f, thread_holder, sv[1], NULL);
  close(sv[1]);
  int tids[HELD_THREADS + 1];
  CHECK(read(sv[0], tids, sizeof(tids)) == (ssize_t)sizeof(tids));

  /* Nobody vouched for this client: nothing is promoted. */
  struct raw untrusted;
  fixture_connect(f, &untrusted, NULL);
  raw_greet(&untrusted);
  expect_refused(&untrusted, t, tids[1], -EPERM);
  raw_close(&untrusted);

  /* The embedder vouched for `holder`; the hostile client speaks for it. */
  int fd = audioipc_server_new_client_for_pid(f->e.server, holder, 0);
  CHECK(fd >= 0);
  f->clients_made++;
  struct raw r;
  raw_init(&r, fd);
  raw_greet(&r);

  /* Threads of other processes: every one of the server's own (its
   * loop, workers, device clock), the honest client's, init's, and tids
   * nobody has. */
  DIR *tasks = opendir("/proc/self/task");
  CHECK(tasks != NULL);
  int own = 0;
  struct dirent *task;
  while ((task = readdir(tasks)))
    if (task->d_name[0] != '.') {
      expect_refused(&r, t, atoi(task->d_name), -ESRCH);
      own++;
    }
  closedir(tasks);
  CHECK(own >= 5); /* main, loop, device clock, clients' sessions */
  expect_refused(&r, t, (int)f->honest_pid, -ESRCH);
  expect_refused(&r, t, 1, -ESRCH);
  CHECK_INT(promote(&r, t, INT32_MAX), ==, -ESRCH);
  /* Out of the field's range (1..INT32_MAX), so never decoded. */
  static const uint8_t zero[4] = {0}, all_ones[4] = {0xff, 0xff, 0xff, 0xff};
  expect_error(&r, t, AIPC_OP_PROMOTE_THREAD, zero, 4, -EBADMSG);
  expect_error(&r, t, AIPC_OP_PROMOTE_THREAD, all_ones, 4, -EBADMSG);

  /* Its own threads: one per live stream of the process, asking twice
   * is fine. */
  expect_refused(&r, t, tids[1], -EBUSY);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int streams[2];
  for (int i = 0; i < 2; i++) {
    streams[i] = raw_stream_init(&r, &q, NULL, NULL);
    CHECK(streams[i] > 0);
  }
  for (int i = 1; i <= 2; i++) {
    CHECK_INT(promote(&r, t, (uint32_t)tids[i]), ==, 0);
    CHECK_INT(policy_of(tids[i]), ==, SCHED_FIFO | SCHED_RESET_ON_FORK);
    CHECK_INT(promote(&r, t, (uint32_t)tids[i]), ==, 0);
  }
  expect_refused(&r, t, tids[3], -EBUSY);
  /* Promoting it directly, the server bounded the process's real-time
   * CPU as RTKit would have demanded. */
  struct rlimit rttime;
  CHECK(prlimit(holder, RLIMIT_RTTIME, NULL, &rttime) == 0);
  CHECK(rttime.rlim_cur <= 200000 && rttime.rlim_max <= 200000);
  /* A promoted thread that ends frees its place. */
  CHECK(write(sv[0], "k", 1) == 1);
  char c;
  CHECK(read(sv[0], &c, 1) == 1 && c == 'k');
  CHECK_INT(promote(&r, t, (uint32_t)tids[3]), ==, 0);
  CHECK_INT(policy_of(tids[3]), ==, SCHED_FIFO | SCHED_RESET_ON_FORK);

  /* A second connection of the same process counts with the first: no
   * more threads than the process's streams. */
  fd = audioipc_server_new_client_for_pid(f->e.server, holder, 0);
  CHECK(fd >= 0);
  f->clients_made++;
  struct raw second;
  raw_init(&second, fd);
  raw_greet(&second);
  expect_refused(&second, t, tids[0], -EBUSY);
  CHECK(raw_stream_init(&second, &q, NULL, NULL) > 0);
  CHECK_INT(promote(&second, t, (uint32_t)tids[0]), ==, 0);
  CHECK_INT(policy_of(tids[0]), ==, SCHED_FIFO | SCHED_RESET_ON_FORK);
  /* A stream goes while its thread lives on: soon the newest promoted
   * thread of that client is demoted (not at once: a client's callback
   * thread ends after its stream's STREAM_DESTROY reply); a client that
   * goes demotes its own. */
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, (uint32_t)streams[0]),
            ==, 0);
  double start = fixture_now_ms();
  while (policy_of(tids[3]) != SCHED_OTHER)
    CHECK(fixture_now_ms() - start < 10000);
  CHECK_INT(policy_of(tids[2]), ==, SCHED_FIFO | SCHED_RESET_ON_FORK);
  raw_close(&second);
  start = fixture_now_ms();
  while (policy_of(tids[0]) != SCHED_OTHER) /* its teardown is its own */
    CHECK(fixture_now_ms() - start < 10000);

  /* Once the process is gone, nothing of the client's is promoted, even
   * should its pid or tids come back as another process's. */
  close(sv[0]);
  test_wait_ok(holder);
  CHECK_INT(promote(&r, t, (uint32_t)tids[2]), ==, -ESRCH);
  CHECK_INT(promote(&r, t, (uint32_t)tids[0]), ==, -ESRCH);
  raw_close(&r);

  /* The embedder's mistakes are refused at once. */
  CHECK_INT(audioipc_server_new_client_for_pid(f->e.server, 0, 0), ==, -1);
  CHECK_INT(errno, ==, EINVAL);
  CHECK_INT(audioipc_server_new_client_for_pid(f->e.server, holder, 0), ==, -1);
  CHECK_INT(errno, ==, ESRCH);

  CHECK_INT(audioipc_server_set_limits(f->e.server, &defaults), ==, 0);
}

TEST(hostile_real_time_promotion_only_for_the_trusted_process)
{
  /* As root, the server could promote any thread: only its checks stop
   * it, which is what this case is about. */
  if (geteuid() != 0)
    test_fail(__FILE__, __LINE__, "needs root, as CI runs it");
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  promotion_cases(&f, &t);
  fixture_baseline(&f);
  t = (struct tally){0};
  promotion_cases(&f, &t);
  tally_print(&t, "real-time promotion");
  fixture_check(&f, "real-time promotion");
  fixture_finish(&f);
}
