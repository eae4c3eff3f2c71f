/* SPDX-License-Identifier: ISC */
/*
 * The audioipc protocol: every message the client and server exchange,
 * its opcode, and its decoded C struct. The descriptions themselves are
 * in protocol.c, in one table.
 */
#ifndef AIPC_PROTOCOL_H
#define AIPC_PROTOCOL_H

#include "wire.h"

#define AIPC_NAME_MAX 255

enum aipc_opcode {
  AIPC_OP_HELLO,
  AIPC_OP_HELLO_REPLY,
  AIPC_OP_ERROR,
  AIPC_OP_PING,
  AIPC_OP_PING_REPLY,
  AIPC_OP_COUNT,
};

/* The first request on a connection. */
struct aipc_hello {
  uint32_t version; /* AIPC_PROTOCOL_VERSION */
  const char *library_version;
  const char *name; /* the client's context name, for logs */
};

struct aipc_hello_reply {
  uint32_t version;
  const char *library_version;
};

/* The reply to a request that failed: a negative errno. */
struct aipc_error {
  int32_t error;
};

/* Echoes `value`; used to measure round trips and check liveness. */
struct aipc_ping {
  uint64_t value;
};

extern const struct aipc_protocol aipc_protocol;

#endif
