/* SPDX-License-Identifier: ISC */
/*
 * libcubeb's preconditions, kept on the client's side: where libcubeb's
 * pulse (or ALSA) backend aborts an application that breaks its
 * contract, a client of a server on that backend dies the same way, in
 * its own process, with a line naming the breach, and the server, which
 * never sees the broken sequence, serves the next client as before.
 */
#include "../e2e/harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The client's stderr goes to the fd it was given; no core file. */
static void
breach_setup(int fd)
{
  CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
}

enum answer { FULL, SHORT, TOO_MANY, STOP_INSIDE };

struct player {
  enum answer answer;
  cubeb_stream *stream;
  atomic_int callbacks;
};

static long
play_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)in;
  struct player *p = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&p->callbacks, 1);
  switch (p->answer) {
  case SHORT:
    return n / 2;
  case TOO_MANY:
    return n + 1;
  case STOP_INSIDE:
    cubeb_stream_stop(stm);
    return n;
  case FULL:
    break;
  }
  return n;
}

static void
no_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  (void)user;
  (void)state;
}

static void
collection_cb(cubeb *ctx, void *user)
{
  (void)ctx;
  (void)user;
}

static cubeb_stream *
start_player(cubeb *ctx, struct player *p, unsigned latency)
{
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "contract", NULL, NULL, NULL, &out,
                              latency, play_cb, no_state, p),
            ==, CUBEB_OK);
  p->stream = stm;
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  return stm;
}

static void
wait_callbacks(struct player *p, int n)
{
  double start = now_s();
  while (atomic_load(&p->callbacks) < n) {
    CHECK(now_s() - start < 10);
    usleep(500);
  }
}

/* Each breach, by number. The client must not come back from it. */
E2E_CLIENT(breach)
{
  int which = atoi(getenv("AIPC_TEST_BREACH"));
  breach_setup(arg);
  static struct player p;
  static int user;
  switch (which) {
  case 0:
    CHECK_INT(cubeb_register_device_collection_changed(
                  ctx, CUBEB_DEVICE_TYPE_OUTPUT, collection_cb, NULL),
              ==, CUBEB_OK);
    cubeb_destroy(ctx);
    break;
  case 1:
    /* Unregistered, but with a user pointer: pulse still asserts. */
    CHECK_INT(cubeb_register_device_collection_changed(
                  ctx, CUBEB_DEVICE_TYPE_INPUT, NULL, &user),
              ==, CUBEB_OK);
    cubeb_destroy(ctx);
    break;
  case 2: {
    cubeb_stream_params out = E2E_STEREO_OUT;
    out.layout = CUBEB_LAYOUT_MONO;
    cubeb_stream *stm;
    cubeb_stream_init(ctx, &stm, "contract", NULL, NULL, NULL, &out, 1200,
                      play_cb, no_state, &p);
    break;
  }
  case 3:
    p.answer = TOO_MANY;
    start_player(ctx, &p, 1200);
    wait_callbacks(&p, 1000);
    break;
  case 4:
    p.answer = STOP_INSIDE;
    start_player(ctx, &p, 1200);
    wait_callbacks(&p, 1000);
    break;
  case 5:
    /* Short, then started again before DRAINED: the drain lasts about
     * twice the latency, but a loaded machine may take longer to get
     * here, so the start is tried on a few streams. */
    p.answer = SHORT;
    for (int i = 0; i < 5; i++) {
      atomic_store(&p.callbacks, 0);
      start_player(ctx, &p, 9600);
      wait_callbacks(&p, 1);
      usleep(5000); /* past the callback's return */
      cubeb_stream_start(p.stream);
      cubeb_stream_stop(p.stream);
      cubeb_stream_destroy(p.stream);
    }
    break;
  case 6:
    /* ALSA: destroying a running stream. */
    start_player(ctx, &p, 1200);
    wait_callbacks(&p, 2);
    cubeb_stream_destroy(p.stream);
    break;
  }
  /* Not reached when the client library kept the contract. */
  fprintf(stderr, "breach %d was let through\n", which);
  _exit(3);
}

/* An honest client, after the breaches: the server serves it. */
E2E_CLIENT(play_a_little)
{
  (void)arg;
  struct player p = {.answer = FULL};
  cubeb_stream *stm = start_player(ctx, &p, 1200);
  wait_callbacks(&p, 20);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
}

static const struct {
  const char *backend;
  const char *message;
} breaches[] = {
    {"pulse", "cubeb_destroy: the output device collection callback"},
    {"pulse", "cubeb_destroy: the input device collection callback"},
    {"pulse", "cubeb_stream_init: the output's layout"},
    {"pulse", "data callback: returned more frames than it was asked for"},
    {"pulse", "cubeb_stream_stop: called from a data"},
    {"pulse", "cubeb_stream_start: the stream is draining"},
    {"alsa", "cubeb_stream_destroy: the stream is running"},
};

/* Runs breach `which` in a client and checks how it ended. */
static void
expect_breach(struct e2e *e, int which)
{
  int err[2];
  CHECK(pipe(err) == 0);
  char number[16];
  snprintf(number, sizeof(number), "%d", which);
  CHECK(setenv("AIPC_TEST_BREACH", number, 1) == 0);
  pid_t pid = e2e_spawn_keeping(e, breach, err[1]);
  close(err[1]);
  char text[4096] = "";
  size_t len = 0;
  ssize_t n;
  while ((n = read(err[0], text + len, sizeof(text) - 1 - len)) > 0)
    len += (size_t)n;
  text[len] = '\0';
  close(err[0]);
  int status = test_wait(pid);
  printf("breach %d on %s: %s", which, breaches[which].backend, text);
  fflush(stdout);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  CHECK(strstr(text, breaches[which].message) != NULL);
  CHECK(strstr(text, "and so does audioipc") != NULL);
}

static void
start_server(struct e2e *e, const char *backend)
{
  if (!getenv("PULSE_SERVER"))
    test_fail(__FILE__, __LINE__,
              "PULSE_SERVER is not set: run scripts/pulse.sh start and "
              "eval \"$(scripts/pulse.sh env)\"");
  e2e_start(e, backend);
}

/* Every breach of `backend`'s, each followed by an honest client. */
static void
run_breaches(const char *backend)
{
  struct e2e e;
  start_server(&e, backend);
  for (int i = 0; i < (int)(sizeof(breaches) / sizeof(breaches[0])); i++) {
    if (strcmp(breaches[i].backend, backend) != 0)
      continue;
    expect_breach(&e, i);
    test_wait_ok(e2e_spawn(&e, play_a_little, 0));
  }
  e2e_finish(&e);
}

TEST(pulse_client_breaches_end_the_client_not_the_server)
{
  run_breaches("pulse");
}

/* ALSA through the pulse plugin, as the hostile suite runs it. */
TEST(alsa_client_breaches_end_the_client_not_the_server)
{
  run_breaches("alsa");
}

/* The same sequences on the virtual device, which asserts on none of
 * them: libcubeb would not abort there, so neither do we. */
E2E_CLIENT(no_breach_on_virtual)
{
  (void)arg;
  CHECK_INT(cubeb_register_device_collection_changed(
                ctx, CUBEB_DEVICE_TYPE_OUTPUT, collection_cb, NULL),
            ==, CUBEB_OK);
  struct player p = {.answer = TOO_MANY};
  cubeb_stream *stm = start_player(ctx, &p, 256);
  wait_callbacks(&p, 1);
  cubeb_stream_destroy(stm);
  /* The harness destroys the context, still registered. */
}

TEST(virtual_client_keeps_no_pulse_rule)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast");
  test_wait_ok(e2e_spawn(&e, no_breach_on_virtual, 0));
  e2e_finish(&e);
}
