/* SPDX-License-Identifier: ISC */
/*
 * A raw client's stream: created over a raw connection, its shared
 * memory mapped in the test process, so a case can answer the server's
 * audio requests however it likes (or not at all).
 */
#ifndef AIPC_TEST_TAMPER_H
#define AIPC_TEST_TAMPER_H

#include "fixture.h"
#include "shm.h"
#include "stream-shm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* How a tamper stream's answering thread answers (tamper_serve). */
enum tamper_policy {
  TAMPER_FULL,   /* every frame asked for */
  TAMPER_SHORT,  /* half of them: the stream drains */
  TAMPER_ZERO,   /* none */
  TAMPER_ERROR,  /* an error: the client's callback failed */
  TAMPER_SILENT, /* no answer at all */
  TAMPER_POLICIES,
};

struct tamper {
  struct raw r;
  unsigned client;
  uint32_t stream;
  struct aipc_stream_init_reply reply;
  struct aipc_shm shm;
  struct aipc_stream_ctl *ctl;
  uint64_t rng;
  uint32_t answered; /* the last request answered */
  uint32_t seen;     /* the last request tamper_next returned */
  int mode;
  bool misbehaved; /* the case's misbehaviour ran */
  char name[32];   /* the stream's, if the case named it */

  /* The answering thread, if tamper_serve started it. */
  pthread_t thread;
  bool serving;
  atomic_int policy;
  atomic_bool quit;
  atomic_uint requests; /* seen by the thread */
};

/* Connects, creates the stream `q` (NULL: stereo float output at the
 * fixture's rate and period) and maps its memory; `start` starts it.
 * `mode` is the case's, for it to read back. */
void tamper_open(struct fixture *f, struct tamper *t, int mode,
                 const struct aipc_stream_init *q, bool start);
/* tamper_open in two steps: connect (and greet), then make the stream. */
void tamper_connect(struct fixture *f, struct tamper *t, int mode);
void tamper_stream(struct tamper *t, const struct aipc_stream_init *q,
                   bool start);
/* Unmaps and hangs up. */
void tamper_close(struct tamper *t);

/* Answers request `seq` with `result` frames (or an error, < 0). */
void tamper_answer(struct tamper *t, uint32_t seq, int32_t result);

/* Waits up to `timeout_ms` for a request newer than the last one seen;
 * returns its sequence number (its frame count in *frames), or 0. */
uint32_t tamper_next(struct tamper *t, int timeout_ms, uint32_t *frames);

/* Answers every request in full for `ms` milliseconds; returns how many. */
unsigned tamper_play(struct tamper *t, double ms);

/* Starts a thread that answers every request by `policy` until
 * tamper_close; the case may change t->policy meanwhile. */
void tamper_serve(struct tamper *t, enum tamper_policy policy);

#endif
