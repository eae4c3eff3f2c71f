/* SPDX-License-Identifier: ISC */
/*
 * A raw client for the hostile tests: it speaks the wire format by hand
 * on a connection fd, so it can send anything at all (bad headers, wrong
 * sizes, fds, garbage) and see exactly what comes back.
 *
 * Every wait has a deadline; a server that neither answers nor hangs up
 * within it fails the test. Each connection belongs to one thread at a
 * time; several threads may each drive their own. The buffers are on
 * the caller's stack (about 200 KiB deep), not thread-local: static TLS
 * this large would not fit the 256 KiB stacks libcubeb's ALSA backend
 * gives its threads, and their creation would fail.
 */
#ifndef AIPC_TEST_RAW_H
#define AIPC_TEST_RAW_H

#include "protocol.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long the server may take to answer one request or to hang up. */
#define RAW_TIMEOUT_MS 10000

struct raw {
  int fd;
  uint32_t serial;       /* the last one used */
  bool closed;           /* the server hung up */
  unsigned events;       /* events seen while waiting for replies */
  unsigned error_events; /* STREAM_STATE_EVENT with CUBEB_STATE_ERROR */
  bool lax;       /* answers to other serials are skipped, not a failure */
  unsigned stray; /* answers skipped so */
};

/* One received message. */
struct raw_msg {
  struct aipc_msg_header h;
  int fds[AIPC_MSG_MAX_FDS];
  unsigned nfds;
  size_t len; /* payload bytes */
  _Alignas(8) uint8_t payload[AIPC_MSG_MAX_SIZE];
};

/* What became of a request. */
enum raw_outcome {
  RAW_OK,      /* its reply came */
  RAW_ERROR,   /* an ERROR reply came */
  RAW_DROPPED, /* the server hung up */
};

/* Wraps a connection fd (taken). */
void raw_init(struct raw *r, int fd);
/* Closes the connection. */
void raw_close(struct raw *r);

/* Sends one packet of `len` bytes (header included, if any) with `nfds`
 * fds (borrowed). Returns 0 or a negative errno (-EPIPE once the server
 * hung up). Never blocks for long: waits for room up to the timeout. */
int raw_send_packet(struct raw *r, const void *packet, size_t len,
                    const int *fds, unsigned nfds);
/* Sends a well-formed header and `len` payload bytes; returns the serial
 * used (a fresh one unless `serial` is given, non-zero). */
uint32_t raw_send(struct raw *r, uint16_t opcode, uint32_t serial,
                  const void *payload, size_t len);
/* Encodes `body` with opcode's description and sends it. */
uint32_t raw_send_body(struct raw *r, uint16_t opcode, const void *body);

/*
 * Receives one message into *m, waiting up to `timeout_ms`. Returns 1,
 * 0 if the server hung up, or -ETIMEDOUT. The caller closes m's fds
 * (raw_msg_close_fds).
 */
int raw_recv(struct raw *r, struct raw_msg *m, int timeout_ms);
void raw_msg_close_fds(struct raw_msg *m);

/*
 * Waits for the answer to `serial`, skipping events (counted). Returns
 * the outcome; for RAW_ERROR *error (if not NULL) gets the errno (< 0).
 * On RAW_OK, *m holds the reply (fds still open). Fails the test if
 * neither an answer nor a hang-up comes in time, or if an answer comes
 * to another serial.
 */
enum raw_outcome raw_wait(struct raw *r, uint32_t serial, struct raw_msg *m,
                          int *error);

/*
 * Sends `body` as `opcode` and waits for the answer. Returns 0 and
 * decodes the reply into `reply` (may be NULL), a negative errno for an
 * ERROR reply, or -ECONNRESET if the server hung up. The reply's fd, if
 * any, goes to *fd (or is closed when fd is NULL).
 */
int raw_call(struct raw *r, uint16_t opcode, const void *body, void *reply,
             int *fd);

/* HELLO then CONTEXT_INIT; both must succeed. */
void raw_greet(struct raw *r);

/* Waits until the server hangs up, discarding what it still sends. */
void raw_expect_hangup(struct raw *r);

/* A valid output stream: stereo float at `rate`, latency in frames. */
struct aipc_stream_init raw_output_stream(uint32_t rate, uint32_t latency);

/* Creates a stream; returns its id (> 0) or a negative errno, and its
 * shm fd and reply in *fd / *reply if not NULL (else the fd is closed). */
int raw_stream_init(struct raw *r, const struct aipc_stream_init *q,
                    struct aipc_stream_init_reply *reply, int *fd);
/* A request naming just a stream (START, STOP, DESTROY, ...). */
int raw_stream_call(struct raw *r, uint16_t opcode, uint32_t stream);

/* A device of an enumeration, as the raw client keeps it. */
struct raw_device {
  uint64_t token;
  char id[AIPC_NAME_MAX + 1]; /* "" if the backend gave none */
  uint32_t type, preferred;
};

/* Enumerates input and output devices (the call must succeed); returns
 * how many, at most `max`. */
int raw_list_devices(struct raw *r, struct raw_device *out, int max);

/* A deterministic random number generator (xorshift64*). */
uint64_t raw_rand(uint64_t *state);

#endif
