/* SPDX-License-Identifier: ISC */
/*
 * Real-time priority for sandboxed clients, granted by the server.
 *
 * The client processes here are sandboxed like a browser's content
 * process: a seccomp filter answers every attempt to change scheduling
 * with EPERM, so their callback threads can become real-time only
 * through the server. Each client reads the policy its callback thread
 * really runs with, from inside the data callback.
 *
 * The server promotes directly when it may (here: it runs as root), and
 * otherwise asks RTKit over the system bus; the last two tests sandbox
 * the server as well to take that path (scripts/system-bus.sh starts a
 * bus, and D-Bus activation starts rtkit-daemon). The hostile_ one runs
 * in suite `hostile`.
 */
#include "../e2e/harness.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BACKEND "virtual:clock=fast,rate=48000,channels=2,period=256,out=%s"
#define SYSTEM_BUS "/run/dbus/system_bus_socket"

/* Makes every thread of this process (and of its children, across exec)
 * unable to change any thread's scheduling: EPERM, as a sandbox says. */
static void
deny_rescheduling(void)
{
  scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
  CHECK(f != NULL);
  CHECK_INT(seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1), ==, 0);
  static const int calls[] = {SCMP_SYS(sched_setscheduler),
                              SCMP_SYS(sched_setattr),
                              SCMP_SYS(sched_setparam)};
  for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
    CHECK_INT(seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), calls[i], 0), ==, 0);
  CHECK_INT(seccomp_load(f), ==, 0);
  seccomp_release(f);

  struct sched_param param = {.sched_priority = 1};
  CHECK_INT(sched_setscheduler(0, SCHED_FIFO, &param), ==, -1);
  CHECK_INT(errno, ==, EPERM);
}

static atomic_int seen_policy = -1;
static atomic_int callbacks;

static long
data_cb(cubeb_stream *stream, void *user, const void *in, void *out,
        long frames)
{
  (void)stream, (void)user, (void)in;
  atomic_store(&seen_policy, sched_getscheduler(0));
  atomic_fetch_add(&callbacks, 1);
  memset(out, 0, (size_t)frames * 2 * sizeof(float));
  return frames;
}

static void
state_cb(cubeb_stream *stream, void *user, cubeb_state state)
{
  (void)stream, (void)user, (void)state;
}

/* Plays a few callbacks in a sandbox and checks the callback thread's
 * policy is `arg` (SCHED_OTHER: not promoted). */
E2E_CLIENT(sandboxed_player)
{
  deny_rescheduling();
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *s;
  CHECK_INT(cubeb_stream_init(ctx, &s, "rt", NULL, NULL, NULL, &out, 256,
                              data_cb, state_cb, NULL),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(s), ==, CUBEB_OK);
  for (int i = 0; i < 10000 && atomic_load(&callbacks) < 20; i++)
    nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  CHECK_INT(cubeb_stream_stop(s), ==, CUBEB_OK);
  cubeb_stream_destroy(s);
  CHECK_INT(atomic_load(&callbacks), >=, 20);
  int policy = atomic_load(&seen_policy);
  printf("client %d: callback thread policy %d (reset on fork: %s)\n",
         (int)getpid(), policy & ~SCHED_RESET_ON_FORK,
         policy & SCHED_RESET_ON_FORK ? "yes" : "no");
  CHECK_INT(policy & ~SCHED_RESET_ON_FORK, ==, arg);
  if (arg != SCHED_OTHER)
    CHECK(policy & SCHED_RESET_ON_FORK);
}

enum { MANY_STREAMS = 6, RTKIT_CALLS_PER_PROCESS = 4 };

struct seen {
  atomic_int policy;
  atomic_int callbacks;
};

static long
many_data_cb(cubeb_stream *stream, void *user, const void *in, void *out,
             long frames)
{
  (void)stream, (void)in;
  struct seen *seen = user;
  atomic_store(&seen->policy, sched_getscheduler(0) & ~SCHED_RESET_ON_FORK);
  atomic_fetch_add(&seen->callbacks, 1);
  memset(out, 0, (size_t)frames * 2 * sizeof(float));
  return frames;
}

/* Plays MANY_STREAMS streams at once in a sandbox (one callback thread
 * each) and checks that exactly `arg` of their threads are real-time. */
E2E_CLIENT(sandboxed_many_player)
{
  deny_rescheduling();
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *s[MANY_STREAMS];
  static struct seen seen[MANY_STREAMS];
  for (int i = 0; i < MANY_STREAMS; i++) {
    atomic_init(&seen[i].policy, -1);
    CHECK_INT(cubeb_stream_init(ctx, &s[i], "rt", NULL, NULL, NULL, &out, 256,
                                many_data_cb, state_cb, &seen[i]),
              ==, CUBEB_OK);
    CHECK_INT(cubeb_stream_start(s[i]), ==, CUBEB_OK);
  }
  for (int i = 0; i < MANY_STREAMS; i++)
    for (int ms = 0; ms < 10000 && atomic_load(&seen[i].callbacks) < 20; ms++)
      nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  int promoted = 0;
  for (int i = 0; i < MANY_STREAMS; i++) {
    CHECK_INT(atomic_load(&seen[i].callbacks), >=, 20);
    promoted += atomic_load(&seen[i].policy) == SCHED_RR;
  }
  for (int i = 0; i < MANY_STREAMS; i++) {
    CHECK_INT(cubeb_stream_stop(s[i]), ==, CUBEB_OK);
    cubeb_stream_destroy(s[i]);
  }
  printf("client %d: %d of %d callback threads real-time through RTKit\n",
         (int)getpid(), promoted, MANY_STREAMS);
  CHECK_INT(promoted, ==, arg);
}

static void
need_system_bus(void)
{
  struct stat st;
  if (stat(SYSTEM_BUS, &st) != 0)
    test_fail(__FILE__, __LINE__,
              "no system bus at " SYSTEM_BUS
              ": start one with `bash scripts/system-bus.sh start`");
}

static void
run_player(bool trusted, int expected_policy)
{
  struct e2e e;
  e2e_start(&e, BACKEND);
  e.trusted_pids = trusted;
  test_wait_ok(e2e_spawn(&e, sandboxed_player, expected_policy));
  e2e_finish(&e);
}

TEST(rt_a_sandboxed_client_is_promoted_by_the_server)
{
  /* As root the server may reschedule the client's thread itself. */
  if (geteuid() != 0)
    test_fail(__FILE__, __LINE__,
              "needs root, as CI runs it: the server "
              "promotes directly only with CAP_SYS_NICE");
  run_player(true, SCHED_FIFO);
}

TEST(rt_a_client_nobody_vouched_for_is_not_promoted)
{
  /* audioipc_server_new_client: no trusted pid, so no promotion. */
  run_player(false, SCHED_OTHER);
}

TEST(rt_a_sandboxed_server_promotes_through_rtkit)
{
  need_system_bus();
  /* The server cannot reschedule anything itself now (its threads,
   * started after this, and the clients inherit the filter); RTKit
   * hands out SCHED_RR. */
  deny_rescheduling();
  run_player(true, SCHED_RR);
}

TEST(hostile_one_process_cannot_spend_the_rtkit_budget_of_all)
{
  /* RTKit grants a user so many threads in a burst, whoever asks: the
   * server asks for one process at most RTKIT_CALLS_PER_PROCESS times in
   * 20 s, so that one process's threads leave the others theirs. */
  need_system_bus();
  deny_rescheduling();
  struct e2e e;
  e2e_start(&e, BACKEND);
  e.trusted_pids = true;
  test_wait_ok(e2e_spawn(&e, sandboxed_many_player, RTKIT_CALLS_PER_PROCESS));
  test_wait_ok(e2e_spawn(&e, sandboxed_player, SCHED_RR));
  e2e_finish(&e);
}
