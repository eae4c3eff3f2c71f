/* SPDX-License-Identifier: ISC */
/*
 * The wire format and the tables that describe it.
 *
 * A message is a fixed header followed by a payload of fields in host byte
 * order, with no padding. Each message type is described once, by a
 * struct aipc_msg_desc in a protocol table indexed by opcode; the generic
 * encoder and decoder below, the dispatcher, the tracer and the fuzz
 * targets all read that table. Nothing parses a message by hand.
 *
 * Field encodings:
 *   U8..I64, F32  the value, fixed width, host byte order;
 *   STRING        u16 length including the NUL, then the bytes; length 0
 *                 encodes NULL. The NUL must be the last byte and the only
 *                 one, and the length without it at most the field's max;
 *   ARRAY         u32 count (at most the field's max), then each element's
 *                 fields in order.
 *
 * A decoded message is a C struct whose members match the field list:
 * uint8_t .. int64_t and float for numbers, const char * for strings
 * (pointing into the received buffer), struct aipc_array for arrays.
 */
#ifndef AIPC_WIRE_H
#define AIPC_WIRE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIPC_PROTOCOL_VERSION 2

/* Bounds on any one message, header included. */
#define AIPC_MSG_MAX_SIZE (64 * 1024)
#define AIPC_MSG_MAX_FDS 4

/* The largest decoded message struct any protocol table may use. */
#define AIPC_MSG_DECODED_MAX 512

struct aipc_msg_header {
  uint32_t size;   /* payload bytes after the header */
  uint16_t opcode; /* index into the protocol table */
  uint16_t flags;  /* must be 0; reserved */
  uint32_t serial; /* request serial, echoed by the reply; 0 for events */
  uint16_t nfds;   /* fds carried with SCM_RIGHTS */
  uint16_t reserved;
};
static_assert(sizeof(struct aipc_msg_header) == 16, "wire header size");

enum aipc_field_type {
  AIPC_FIELD_U8,
  AIPC_FIELD_U16,
  AIPC_FIELD_U32,
  AIPC_FIELD_U64,
  AIPC_FIELD_I32,
  AIPC_FIELD_I64,
  AIPC_FIELD_F32,
  AIPC_FIELD_STRING,
  AIPC_FIELD_ARRAY,
};

struct aipc_record;

struct aipc_field {
  const char *name;
  enum aipc_field_type type;
  uint32_t offset; /* of the member in the decoded struct */
  /* Inclusive bounds on numbers; for STRING, max is the longest length
   * without the NUL and min is 1 if NULL is refused; for ARRAY, the
   * largest count. F32 values must also be finite. */
  int64_t min, max;
  const struct aipc_record *record; /* ARRAY element */
};

/* A struct on the wire: the field list of a message or array element. */
struct aipc_record {
  const char *name;
  uint32_t size; /* sizeof the decoded struct */
  const struct aipc_field *fields;
  uint32_t nfields;
};

/* Decoded (or to-be-encoded) array member. To encode, set count and items
 * (count structs of the element type). A decoder fills count and the wire
 * bytes; read the elements with aipc_array_next(). */
struct aipc_array {
  uint32_t count;
  const void *items;
  const uint8_t *wire;
  uint32_t wire_len;
  const struct aipc_record *record;
};

enum aipc_msg_kind {
  AIPC_MSG_REQUEST, /* client to server; answered by `reply` or ERROR */
  AIPC_MSG_REPLY,   /* server to client, echoing the request's serial */
  AIPC_MSG_EVENT,   /* server to client, serial 0, no answer */
};

struct aipc_msg_desc {
  const char *name; /* for traces and errors, e.g. "PING" */
  struct aipc_record record;
  enum aipc_msg_kind kind;
  uint16_t reply; /* REQUEST: the opcode of its successful reply */
  uint16_t nfds;  /* exact number of fds the message carries */
};

struct aipc_protocol {
  const char *name;
  const struct aipc_msg_desc *msgs; /* indexed by opcode */
  uint16_t count;
  uint16_t error_opcode; /* the reply that carries a failure */
};

/*
 * Field description helpers. The _Generic check makes a field whose C
 * member has the wrong type a compile error.
 */
#define AIPC_FIELD_CHECK(type, member, ctype)                                  \
  (0 * sizeof(char[_Generic(((type *)0)->member, ctype : 1)]))
#define AIPC_FIELD_(type, member, ftype, ctype, lo, hi, rec)                   \
  {                                                                            \
#member, ftype,                                                            \
        offsetof(type, member) + AIPC_FIELD_CHECK(type, member, ctype), lo,    \
        hi, rec                                                                \
  }
#define AIPC_U8(type, m, lo, hi)                                               \
  AIPC_FIELD_(type, m, AIPC_FIELD_U8, uint8_t, lo, hi, NULL)
#define AIPC_U16(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_U16, uint16_t, lo, hi, NULL)
#define AIPC_U32(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_U32, uint32_t, lo, hi, NULL)
#define AIPC_U64(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_U64, uint64_t, lo, hi, NULL)
#define AIPC_I32(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_I32, int32_t, lo, hi, NULL)
#define AIPC_I64(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_I64, int64_t, lo, hi, NULL)
#define AIPC_F32(type, m, lo, hi)                                              \
  AIPC_FIELD_(type, m, AIPC_FIELD_F32, float, lo, hi, NULL)
/* A string of at most `maxlen` bytes; `nullable` false refuses NULL. */
#define AIPC_STRING(type, m, nullable, maxlen)                                 \
  AIPC_FIELD_(type, m, AIPC_FIELD_STRING, const char *, (nullable) ? 0 : 1,    \
              maxlen, NULL)
#define AIPC_ARRAY(type, m, rec, maxcount)                                     \
  AIPC_FIELD_(type, m, AIPC_FIELD_ARRAY, struct aipc_array, 0, maxcount, rec)

#define AIPC_RECORD(ctype, fieldlist)                                          \
  {                                                                            \
#ctype, sizeof(ctype), fieldlist, sizeof(fieldlist) / sizeof(fieldlist[0]) \
  }

/*
 * Encodes `src` (a struct described by `rec`) into buf. Returns the
 * number of bytes written, -EINVAL if a value is outside its field's
 * bounds, or -EMSGSIZE if it does not fit in `cap`.
 */
int aipc_record_encode(const struct aipc_record *rec, const void *src,
                       uint8_t *buf, size_t cap);

/*
 * Decodes and validates exactly `len` bytes into `dst` (rec->size bytes).
 * Strings and arrays in `dst` point into buf, which must outlive them.
 * Returns 0, or -EBADMSG for anything malformed or out of bounds
 * (trailing bytes included). `dst` is unspecified on failure.
 */
int aipc_record_decode(const struct aipc_record *rec, const uint8_t *buf,
                       size_t len, void *dst);

/* Iterates the elements of a decoded array into `item` (a struct of the
 * element type). Start with a zeroed iterator; returns false at the end.
 * The decoder has validated every element already. */
struct aipc_array_iter {
  uint32_t index;
  uint32_t offset;
};
bool aipc_array_next(const struct aipc_array *array,
                     struct aipc_array_iter *iter, void *item);

/* The description of `opcode`, or NULL if the protocol has none. */
const struct aipc_msg_desc *aipc_protocol_msg(const struct aipc_protocol *p,
                                              uint16_t opcode);

/*
 * A received message: its header, payload and fds. The fds are ours to
 * close: aipc_msg_free closes those not taken with aipc_msg_take_fd.
 */
struct aipc_msg {
  struct aipc_msg_header header;
  int fds[AIPC_MSG_MAX_FDS];
  uint8_t payload[];
};

/* Takes fds (all of header->nfds) on success and on failure. */
struct aipc_msg *aipc_msg_new(const struct aipc_msg_header *header,
                              const uint8_t *payload, const int *fds);
void aipc_msg_free(struct aipc_msg *msg);
/* Hands fd `index` to the caller; -1 if already taken or out of range. */
int aipc_msg_take_fd(struct aipc_msg *msg, unsigned index);

/* Decodes msg with its opcode's description, checking the fd count. */
int aipc_msg_decode(const struct aipc_protocol *p, const struct aipc_msg *msg,
                    void *dst);

/* Writes a one-line description of a message, decoded through the table,
 * into buf (always NUL-terminated, truncated to fit). Returns its length. */
size_t aipc_msg_describe(const struct aipc_protocol *p,
                         const struct aipc_msg_header *h,
                         const uint8_t *payload, char *buf, size_t cap);

/* Logs aipc_msg_describe's line, for AUDIOIPC_DEBUG=protocol. `who` and
 * `direction` (e.g. "client", "send") prefix it. */
void aipc_trace_msg(const struct aipc_protocol *p, const char *who,
                    const char *direction, const struct aipc_msg_header *h,
                    const uint8_t *payload);

#endif
