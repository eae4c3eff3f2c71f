/* SPDX-License-Identifier: ISC */
/*
 * Request/response on a connection, both sides.
 *
 * Client: aipc_rpc_call() is a blocking call usable from any number of
 * threads at once (not from the loop thread). Each request carries a
 * serial that its reply echoes. One thread at a time reads the socket,
 * the holder of a "reader token": a caller that finds the token free
 * takes it before it sends, and reads (poll, then receive) until its own
 * reply is in, so a lone call costs one round trip and no wake-up of the
 * loop thread, which stops watching the socket for input meanwhile.
 * Replies it reads for other callers are handed to them; callers that
 * find the token taken wait, and when the leader is done it hands the
 * token to one of them or, if none is waiting, lets the loop thread read
 * again. When no call is in progress the loop thread reads. When the
 * connection dies every pending call fails at once with -ECONNRESET and
 * later calls fail with -ENOTCONN; `closed` is called once, on the loop
 * thread. Events (messages without a request) go to a callback on the
 * loop thread, in order, whoever read them; events the server sent
 * before a reply have reached the callback before that call returns.
 *
 * Server: a session reads requests, on the loop thread or (`owner_reads`)
 * on a thread of its owner's that calls aipc_session_read, and checks
 * each in a fixed order (header, size, opcode, fd count, field decode)
 * before it reaches the handler; the first request must be a HELLO with
 * our protocol version. The handler answers, on any thread and at any
 * later time, with aipc_request_reply() or aipc_request_fail(). Either
 * way the loop thread writes what the socket could not take at once.
 */
#ifndef AIPC_RPC_H
#define AIPC_RPC_H

#include "conn.h"
#include "loop.h"
#include "wire.h"

#include <stddef.h>

/* --- Client ------------------------------------------------------------ */

struct aipc_rpc_client;

struct aipc_rpc_client_events {
  /* An event arrived. Loop thread; takes `msg`. May be NULL. */
  void (*event)(void *data, struct aipc_msg *msg);
  /* The connection is gone; called once, on the loop thread, after every
   * pending call has been failed. May be NULL. */
  void (*closed)(void *data, int error);
};

/* Takes `fd` (a connected SOCK_SEQPACKET socket), also on failure, and
 * starts reading it on `loop`. Not from the loop thread. */
int aipc_rpc_client_new(struct aipc_loop *loop, int fd,
                        const struct aipc_protocol *protocol,
                        const struct aipc_rpc_client_events *events, void *data,
                        struct aipc_rpc_client **out);

/* Closes the connection and frees the client. No call may still be in
 * progress. Not from the loop thread. */
void aipc_rpc_client_destroy(struct aipc_rpc_client *client);

/*
 * Sends request `opcode` with `request` (its decoded struct) and waits for
 * the reply, at most `timeout_ns` (negative: no deadline). On success
 * decodes the reply into `reply` (the struct of the request's reply type)
 * and returns 0; if `reply_msg` is not NULL it receives the message, which
 * owns the reply's strings and fds (free it with aipc_msg_free), otherwise
 * the message is freed at once. Fails with the server's error (a negative
 * errno), -ETIMEDOUT, -ECONNRESET or -ENOTCONN, -EINVAL if the request
 * does not encode, -EBADMSG if the reply does not decode.
 */
int aipc_rpc_call(struct aipc_rpc_client *client, uint16_t opcode,
                  const void *request, void *reply, struct aipc_msg **reply_msg,
                  int64_t timeout_ns);

/* Sends the HELLO and checks the server's protocol version: -EPROTO (and
 * a clear log line) on a mismatch. */
int aipc_rpc_hello(struct aipc_rpc_client *client, const char *name,
                   int64_t timeout_ns);

/* --- Server ------------------------------------------------------------ */

struct aipc_session;

/* A decoded request, handed to the session's handler. */
struct aipc_request {
  struct aipc_session *session;
  uint16_t opcode;
  uint32_t serial;
  struct aipc_msg *msg;      /* owns the strings `body` points to */
  struct aipc_request *next; /* free for the handler's queues */
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
};

struct aipc_session_handlers {
  /* A valid request (never HELLO), on the thread that reads; takes
   * `req`, which must be answered exactly once with
   * aipc_request_reply/_fail. */
  void (*request)(void *data, struct aipc_request *req);
  /* The connection ended (hang-up or protocol error), once, on the thread
   * that reads; the owner then calls aipc_session_destroy (on the loop
   * thread). May be NULL when the owner reads. */
  void (*closed)(void *data, int error);
};

struct aipc_session_params {
  uint32_t max_in_flight; /* requests awaiting an answer; 0 = 64 */
  /* The owner's thread reads (aipc_session_read), not the loop thread. */
  bool owner_reads;
};

/* Takes `fd`, also on failure. Loop thread only. */
int aipc_session_new(struct aipc_loop *loop, int fd,
                     const struct aipc_protocol *protocol,
                     const struct aipc_session_params *params,
                     const struct aipc_session_handlers *handlers, void *data,
                     struct aipc_session **out);

/* Stops reading and drops the owner's reference; the connection closes
 * once every outstanding request has been answered. Loop thread only. */
void aipc_session_destroy(struct aipc_session *session);

/* Ends the connection now, as for a protocol error: the peer sees a
 * hang-up and `closed` is called. On the thread that reads. */
void aipc_session_close(struct aipc_session *session, int error);

/* Hangs up on the peer; the thread that reads then sees the connection
 * end. Any thread. */
void aipc_session_shutdown(struct aipc_session *session);

/* Whether the peer has received every reply and event sent so far (and
 * so every fd they carried). Any thread. */
bool aipc_session_peer_read_all(struct aipc_session *session);

/*
 * For a session whose owner reads: waits up to `timeout_ms` (negative:
 * without end) for requests and handles those that arrived (the handler
 * runs on this thread). Returns 0, -ETIMEDOUT if nothing came, or, once
 * the connection has ended, the error it ended with (-ECONNRESET for a
 * hang-up). One thread at a time.
 */
int aipc_session_read(struct aipc_session *session, int timeout_ms);

/* Answers `req` and frees it. Any thread. A failure to send (the client
 * is gone or not reading) is returned; the session notices on its own. */
int aipc_request_reply(struct aipc_request *req, const void *reply,
                       const int *fds, unsigned nfds);
int aipc_request_fail(struct aipc_request *req, int error);

/* Sends an event (serial 0) to the client. Any thread. */
int aipc_session_send_event(struct aipc_session *session, uint16_t opcode,
                            const void *body, const int *fds, unsigned nfds);

#endif
