/* SPDX-License-Identifier: ISC */
/*
 * End-to-end helpers: a server in the test process, clients in forked
 * children that use the remoted context through libcubeb's public API.
 */
#ifndef AIPC_TEST_HARNESS_H
#define AIPC_TEST_HARNESS_H

#include "../runner.h"

#include <stdbool.h>

#include <audioipc/client.h>
#include <audioipc/server.h>
#include <cubeb/cubeb.h>

struct e2e {
  void *server;
  bool clients_outlive_server; /* else clients die with their parent */
  char dir[64];
  char wav[128];
};

/* Starts a server on `backend`; "%s" in it is replaced by the path of a
 * WAV file in a fresh temporary directory. */
void e2e_start(struct e2e *e, const char *backend);
/* Stops the server (closing the WAV) but keeps the directory. */
void e2e_stop_server(struct e2e *e);
/* Stops the server if needed and removes the directory. */
void e2e_finish(struct e2e *e);

/* Forks a client process: it closes every fd but stdio, its connection
 * and `keep` (-1 for none), as a sandboxed client would, connects, runs
 * fn(ctx, arg), destroys the context and exits 0. */
pid_t e2e_spawn_keeping(struct e2e *e, void (*fn)(cubeb *ctx, void *arg),
                        void *arg, int keep);
pid_t e2e_spawn(struct e2e *e, void (*fn)(cubeb *ctx, void *arg), void *arg);

/* A sample value that is exact in float and differs between frames and
 * channels, so a WAV comparison catches any slip. */
static inline float
e2e_sample(uint64_t frame, uint32_t channel)
{
  int v = (int)((frame * 7 + channel * 3) % 2001) - 1000;
  return (float)v / 1024.0f;
}

#endif
