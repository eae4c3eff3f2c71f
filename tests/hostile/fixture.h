/* SPDX-License-Identifier: ISC */
/*
 * The stage for a hostile case: a server in the test process on the
 * virtual device (real-time clock), an honest client process playing an
 * output stream through libcubeb on it the whole time, and the server's
 * resources (this process's open fds and heap: the server runs here)
 * measured once everything is warm.
 *
 * A case then runs its hostile connection(s) and calls fixture_check,
 * which asserts what every case must leave behind: the server answers a
 * fresh client, the honest stream missed no deadline and kept playing,
 * and the fds and heap came back to their baseline (polled: teardown is
 * asynchronous).
 */
#ifndef AIPC_TEST_FIXTURE_H
#define AIPC_TEST_FIXTURE_H

#include "../e2e/harness.h"
#include "raw.h"

#include <stddef.h>
#include <stdint.h>

#define FIXTURE_RATE 48000
#define FIXTURE_PERIOD 256
#define FIXTURE_BACKEND                                                        \
  "virtual:clock=realtime,rate=48000,channels=2,period=256"

struct fixture {
  struct e2e e;
  unsigned clients_made; /* connections made on the server so far */
  unsigned honest;       /* the honest client's number */
  pid_t honest_pid;
  int honest_ctl;         /* socket to the honest client */
  uint64_t honest_frames; /* at the last fixture_baseline */
  int fds;                /* baseline */
  size_t heap;            /* baseline */
  size_t heap_tolerance;  /* how far from it the heap may end a case */
};

/* Starts the server on `backend` (NULL: FIXTURE_BACKEND) and the honest
 * client, waits until it plays, and warms the server up. */
void fixture_start(struct fixture *f, const char *backend);
/* Measures the baseline. Call after the case's own rehearsal, with no
 * hostile connection open. */
void fixture_baseline(struct fixture *f);
/* Everything a case must leave behind (see above); `what` names the case
 * in the measurements printed. */
void fixture_check(struct fixture *f, const char *what);
/* Stops the honest client (it checks it saw no error) and the server. */
void fixture_finish(struct fixture *f);

/* A new raw connection on the server (counted, so stats can be matched
 * to it); `number` gets its client number if not NULL. */
void fixture_connect(struct fixture *f, struct raw *r, unsigned *number);
/* Starts a client process running `fn` with `fd` kept (see harness.h);
 * `number` gets its client number if not NULL. */
pid_t fixture_spawn(struct fixture *f, e2e_client_fn fn, int fd,
                    unsigned *number);

/* The statistics of one stream; fails the test if the server has none. */
AudioIpcStreamStats fixture_stats(struct fixture *f, unsigned client,
                                  uint32_t stream);
/* Frames the honest stream has played so far, checking it missed none. */
uint64_t fixture_honest_frames(struct fixture *f);
/* Live streams on the server. */
int fixture_live_streams(struct fixture *f);

/* The heap bytes in use in this process, and how far from its baseline
 * the heap may be once a case is over on the virtual device (more on a
 * real backend: fixture.heap_tolerance). */
size_t fixture_heap_bytes(void);
size_t fixture_heap_tolerance(void);
/* Waits until the fds and heap are back at the baseline; returns the
 * milliseconds it took (fails the test after a generous deadline). */
double fixture_wait_baseline(struct fixture *f, const char *what);

/* Milliseconds on the monotonic clock. */
double fixture_now_ms(void);

/*
 * Starts a client process that plays like the honest one, through
 * libcubeb, and returns once it plays. *ctl gets its control socket:
 * writing 'q' (or closing it) makes it stop, answer 'd' and exit 0 if
 * its stream reported no error.
 */
pid_t fixture_spawn_player(struct fixture *f, int *ctl, unsigned *number);

#endif
