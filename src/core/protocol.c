/* SPDX-License-Identifier: ISC */
#include "protocol.h"

#include <errno.h>

static const struct aipc_field hello_fields[] = {
    AIPC_U32(struct aipc_hello, version, 0, UINT32_MAX),
    AIPC_STRING(struct aipc_hello, library_version, false, 32),
    AIPC_STRING(struct aipc_hello, name, true, AIPC_NAME_MAX),
};

static const struct aipc_field hello_reply_fields[] = {
    AIPC_U32(struct aipc_hello_reply, version, 0, UINT32_MAX),
    AIPC_STRING(struct aipc_hello_reply, library_version, false, 32),
};

static const struct aipc_field error_fields[] = {
    AIPC_I32(struct aipc_error, error, -4095, -1),
};

static const struct aipc_field ping_fields[] = {
    AIPC_U64(struct aipc_ping, value, 0, INT64_MAX),
};

/* The message's name is its opcode's, without the AIPC_OP_ prefix. */
#define REQUEST(op, ctype, fields, reply_op)                                   \
  [op] = {&(#op)[8], AIPC_RECORD(ctype, fields), AIPC_MSG_REQUEST, reply_op, 0}
#define REPLY(op, ctype, fields, nfds)                                         \
  [op] = {&(#op)[8], AIPC_RECORD(ctype, fields), AIPC_MSG_REPLY, 0, nfds}

static const struct aipc_msg_desc messages[AIPC_OP_COUNT] = {
    REQUEST(AIPC_OP_HELLO, struct aipc_hello, hello_fields,
            AIPC_OP_HELLO_REPLY),
    REPLY(AIPC_OP_HELLO_REPLY, struct aipc_hello_reply, hello_reply_fields, 0),
    REPLY(AIPC_OP_ERROR, struct aipc_error, error_fields, 0),
    REQUEST(AIPC_OP_PING, struct aipc_ping, ping_fields, AIPC_OP_PING_REPLY),
    REPLY(AIPC_OP_PING_REPLY, struct aipc_ping, ping_fields, 0),
};

const struct aipc_protocol aipc_protocol = {
    .name = "audioipc",
    .msgs = messages,
    .count = AIPC_OP_COUNT,
    .error_opcode = AIPC_OP_ERROR,
};
