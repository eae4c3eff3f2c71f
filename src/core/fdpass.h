/* SPDX-License-Identifier: ISC */
/*
 * Handing one fd to another process over an AF_UNIX socket, the way an
 * embedder moves a client's connection into a child it has just forked
 * (the server can only make the connection once it knows the child's
 * pid). Used by the aipc tool and the tests.
 */
#ifndef AIPC_FDPASS_H
#define AIPC_FDPASS_H

/* Sends one byte and `fd` (borrowed; none if negative) over the socket
 * `sock` with SCM_RIGHTS. Returns 0 or -errno. */
int aipc_send_fd(int sock, int fd);
/* Receives one fd sent with aipc_send_fd. Returns it, or -EPIPE if the
 * peer closed, -ENOMSG if the message carried none, -EMSGSIZE if it
 * carried more than one (all closed), or another -errno. Async-signal-safe
 * (used between fork and exec). */
int aipc_recv_fd(int sock);

#endif
