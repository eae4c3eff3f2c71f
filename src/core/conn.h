/* SPDX-License-Identifier: ISC */
/*
 * A message connection over an AF_UNIX SOCK_SEQPACKET socket: one message
 * per packet, fds passed with SCM_RIGHTS and received close-on-exec.
 *
 * Sending is safe from any thread. When the socket is full, messages wait
 * in a bounded queue that the owner's loop flushes (aipc_conn_flush on
 * EPOLLOUT); a peer that stops reading eventually gets -ENOBUFS, so it
 * can never make a sender block or grow memory without bound.
 */
#ifndef AIPC_CONN_H
#define AIPC_CONN_H

#include "wire.h"

#include <stdbool.h>

struct aipc_conn;
struct aipc_source;

/* Bytes of queued outgoing messages allowed before sends fail; and fds
 * (each may hold a stream's shared memory alive, whatever its message's
 * size). */
#define AIPC_CONN_QUEUE_MAX (1024 * 1024)
#define AIPC_CONN_QUEUE_FDS_MAX 4

/*
 * Wraps `fd` (taken, also on failure) and makes it non-blocking.
 * `protocol` names the messages for the tracer; `who` ("client",
 * "server") prefixes trace lines.
 */
int aipc_conn_new(int fd, const struct aipc_protocol *protocol, const char *who,
                  struct aipc_conn **out);
/* Closes the socket and drops queued messages. */
void aipc_conn_destroy(struct aipc_conn *conn);

int aipc_conn_fd(const struct aipc_conn *conn);

/* The loop source watching this connection's fd, so the connection can
 * ask for EPOLLOUT when its queue is not empty. Set by the owner, and
 * cleared (NULL) by it before it removes the source. */
void aipc_conn_set_source(struct aipc_conn *conn, struct aipc_source *source);

/*
 * Whether the source waits for input (EPOLLIN, the default). An owner
 * that reads the socket from another thread for a while turns it off so
 * its loop is not woken for messages it must not read; the source still
 * waits for EPOLLOUT while messages are queued, and reports a hang-up or
 * an error at most once (EPOLLONESHOT) until input is turned back on or
 * the queue changes. Any thread.
 */
void aipc_conn_watch_input(struct aipc_conn *conn, bool on);

/*
 * Sends one message: header fields, `len` payload bytes and `nfds` fds
 * (borrowed; the kernel or the queue keeps its own copies). Returns 0 once
 * sent or queued, -ENOBUFS if the queue is full, -EMSGSIZE if too big, or
 * -EPIPE/-ECONNRESET if the peer is gone.
 */
int aipc_conn_send(struct aipc_conn *conn, uint16_t opcode, uint32_t serial,
                   const uint8_t *payload, size_t len, const int *fds,
                   unsigned nfds);

/* Encodes `body` with opcode's description and sends it. */
int aipc_conn_send_msg(struct aipc_conn *conn, uint16_t opcode, uint32_t serial,
                       const void *body, const int *fds, unsigned nfds);

/* Whether the peer has received everything sent so far: nothing queued
 * here, nothing unread in the socket. Any thread. */
bool aipc_conn_peer_read_all(struct aipc_conn *conn);

/* Writes queued messages. Returns 0 when the queue is empty, -EAGAIN if
 * the socket is full again, or another negative errno. */
int aipc_conn_flush(struct aipc_conn *conn);

/*
 * Receives one message. One thread at a time (the owner decides which);
 * it may run alongside senders. Returns 0 with *out set; -EAGAIN if none is
 * waiting; -ECONNRESET when the peer hung up; -EBADMSG if the packet is
 * malformed (short header, sizes that disagree, truncated payload or
 * control data, more fds than AIPC_MSG_MAX_FDS). Every fd received with a
 * bad message is closed.
 */
int aipc_conn_recv(struct aipc_conn *conn, struct aipc_msg **out);

#endif
