/* SPDX-License-Identifier: ISC */
/*
 * End-to-end helpers: a server in the test process, clients in separate
 * processes that use the remoted context through libcubeb's public API.
 *
 * A client process is forked and re-executed (so it starts clean: no
 * server threads, no locks held by them at fork time), keeps only stdio,
 * its connection and one optional fd, and runs a function registered
 * with E2E_CLIENT.
 */
#ifndef AIPC_TEST_HARNESS_H
#define AIPC_TEST_HARNESS_H

#include "../runner.h"

#include <audioipc/client.h>
#include <audioipc/server.h>
#include <cubeb/cubeb.h>
#include <pthread.h>
#include <stdbool.h>

struct e2e {
  void *server;
  bool clients_outlive_server; /* else clients die with their parent */
  /* Connect clients with audioipc_server_new_client_for_pid, as an
   * embedder that knows its children does (the connection is made after
   * the fork and handed over with SCM_RIGHTS). */
  bool trusted_pids;
  /* AudioIpcInitParams.pool_size of the clients spawned from now on. */
  unsigned pool_size;
  char dir[64];
  char wav[128];
};

typedef void (*e2e_client_fn)(cubeb *ctx, int arg);

struct e2e_client {
  const char *name;
  e2e_client_fn fn;
};

/* Defines a client function, runnable with e2e_spawn. */
#define E2E_CLIENT(fn)                                                         \
  static void fn(cubeb *ctx, int arg);                                         \
  static const struct e2e_client e2e_client_##fn                               \
      __attribute__((used, section("aipc_e2e_clients"),                        \
                     aligned(sizeof(void *)))) = {#fn, fn};                    \
  static void fn(cubeb *ctx, int arg)

/* Starts a server on `backend`; "%s" in it is replaced by the path of a
 * WAV file in a fresh temporary directory. */
void e2e_start(struct e2e *e, const char *backend);
/* Stops the server (closing the WAV) but keeps the directory. */
void e2e_stop_server(struct e2e *e);
/* Stops the server if needed and removes the directory. */
void e2e_finish(struct e2e *e);

/* Starts a client process running fn(ctx, arg) on a fresh connection;
 * it destroys the context and exits 0 when fn returns. */
pid_t e2e_spawn(struct e2e *e, e2e_client_fn fn, int arg);
/* As e2e_spawn, and the client also keeps `fd`: fn's arg is its number. */
pid_t e2e_spawn_keeping(struct e2e *e, e2e_client_fn fn, int fd);

/* AudioIpcServerLimits.render_ahead of the clients spawned from now on. */
void e2e_set_render_ahead(struct e2e *e, unsigned mode);
/* Waits until the server has a live stream; returns what it is. */
AudioIpcStreamInfo e2e_wait_live_stream(struct e2e *e);

/* A stream's state callbacks, counted: a client waits on it. */
struct e2e_watch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int states[4];
};
void e2e_watch_init(struct e2e_watch *w);
/* Counts `state` (call it from the state callback). */
void e2e_watch_state(struct e2e_watch *w, cubeb_state state);
/* Waits until `state` was reported at least once (the runner's timeout
 * catches a hang). */
void e2e_watch_wait(struct e2e_watch *w, cubeb_state state);
int e2e_watch_count(struct e2e_watch *w, cubeb_state state);

/* The stream parameters most tests use: 48 kHz float, stereo out, mono
 * in (initializers, since libcubeb takes non-const pointers). */
#define E2E_STEREO_OUT                                                         \
  {                                                                            \
    .format = CUBEB_SAMPLE_FLOAT32NE, .rate = 48000, .channels = 2,            \
    .layout = CUBEB_LAYOUT_STEREO                                              \
  }
#define E2E_MONO_IN                                                            \
  {                                                                            \
    .format = CUBEB_SAMPLE_FLOAT32NE, .rate = 48000, .channels = 1,            \
    .layout = CUBEB_LAYOUT_MONO                                                \
  }

/* A sample value that is exact in float and differs between frames and
 * channels, so a WAV comparison catches any slip. */
static inline float
e2e_sample(uint64_t frame, uint32_t channel)
{
  int v = (int)((frame * 7 + channel * 3) % 2001) - 1000;
  return (float)v / 1024.0f;
}

#endif
