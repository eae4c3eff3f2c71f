/* SPDX-License-Identifier: ISC */
/*
 * The messages a client decodes (replies and events), in protocol table
 * order: fuzz-client-decode's first input byte picks one, modulo their
 * count, and make-seeds writes its seeds the same way. Derived from the
 * table, so a new message is fuzzed without anyone listing it.
 */
#ifndef AIPC_FUZZ_CLIENT_MESSAGES_H
#define AIPC_FUZZ_CLIENT_MESSAGES_H

#include "protocol.h"

static inline unsigned
client_message_count(void)
{
  unsigned n = 0;
  for (uint16_t op = 0; op < aipc_protocol.count; op++)
    n += aipc_protocol.msgs[op].kind != AIPC_MSG_REQUEST;
  return n;
}

/* The opcode of the index-th such message; index < client_message_count. */
static inline uint16_t
client_message(unsigned index)
{
  for (uint16_t op = 0; op < aipc_protocol.count; op++)
    if (aipc_protocol.msgs[op].kind != AIPC_MSG_REQUEST && index-- == 0)
      return op;
  return AIPC_OP_ERROR;
}

#endif
