/* SPDX-License-Identifier: ISC */
#include "wire.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t
number_width(enum aipc_field_type type)
{
  switch (type) {
  case AIPC_FIELD_U8:
    return 1;
  case AIPC_FIELD_U16:
    return 2;
  case AIPC_FIELD_U32:
  case AIPC_FIELD_I32:
  case AIPC_FIELD_F32:
    return 4;
  case AIPC_FIELD_U64:
  case AIPC_FIELD_I64:
    return 8;
  default:
    return 0;
  }
}

/* Checks a number (`raw` holds its `width` bytes) against its bounds. */
static bool
number_in_bounds(const struct aipc_field *f, const void *raw)
{
  switch (f->type) {
  case AIPC_FIELD_U8: {
    uint8_t v;
    memcpy(&v, raw, sizeof(v));
    return v >= f->min && v <= f->max;
  }
  case AIPC_FIELD_U16: {
    uint16_t v;
    memcpy(&v, raw, sizeof(v));
    return v >= f->min && v <= f->max;
  }
  case AIPC_FIELD_U32: {
    uint32_t v;
    memcpy(&v, raw, sizeof(v));
    return v >= f->min && v <= f->max;
  }
  case AIPC_FIELD_U64: {
    uint64_t v;
    memcpy(&v, raw, sizeof(v));
    return f->max >= 0 && v >= (uint64_t)(f->min < 0 ? 0 : f->min) &&
           v <= (uint64_t)f->max;
  }
  case AIPC_FIELD_I32: {
    int32_t v;
    memcpy(&v, raw, sizeof(v));
    return v >= f->min && v <= f->max;
  }
  case AIPC_FIELD_I64: {
    int64_t v;
    memcpy(&v, raw, sizeof(v));
    return v >= f->min && v <= f->max;
  }
  case AIPC_FIELD_F32: {
    float v;
    memcpy(&v, raw, sizeof(v));
    return isfinite(v) && v >= (float)f->min && v <= (float)f->max;
  }
  default:
    return false;
  }
}

static int encode_fields(const struct aipc_record *rec, const uint8_t *src,
                         uint8_t *buf, size_t cap, size_t *pos);

static int
encode_field(const struct aipc_field *f, const uint8_t *src, uint8_t *buf,
             size_t cap, size_t *pos)
{
  const uint8_t *member = src + f->offset;
  size_t width = number_width(f->type);
  if (width) {
    if (!number_in_bounds(f, member))
      return -EINVAL;
    if (cap - *pos < width)
      return -EMSGSIZE;
    memcpy(buf + *pos, member, width);
    *pos += width;
    return 0;
  }

  if (f->type == AIPC_FIELD_STRING) {
    const char *s;
    memcpy(&s, member, sizeof(s));
    uint16_t n = 0;
    if (s) {
      size_t len = strnlen(s, (size_t)f->max + 1);
      if (len > (size_t)f->max || len + 1 > UINT16_MAX)
        return -EINVAL;
      n = (uint16_t)(len + 1);
    } else if (f->min > 0) {
      return -EINVAL;
    }
    if (cap - *pos < sizeof(n) + n)
      return -EMSGSIZE;
    memcpy(buf + *pos, &n, sizeof(n));
    if (n)
      memcpy(buf + *pos + sizeof(n), s, n);
    *pos += sizeof(n) + n;
    return 0;
  }

  assert(f->type == AIPC_FIELD_ARRAY);
  const struct aipc_array *a = (const struct aipc_array *)member;
  if (a->count > f->max || (a->count && !a->items))
    return -EINVAL;
  if (cap - *pos < sizeof(a->count))
    return -EMSGSIZE;
  memcpy(buf + *pos, &a->count, sizeof(a->count));
  *pos += sizeof(a->count);
  for (uint32_t i = 0; i < a->count; i++) {
    const uint8_t *item =
        (const uint8_t *)a->items + (size_t)i * f->record->size;
    int r = encode_fields(f->record, item, buf, cap, pos);
    if (r < 0)
      return r;
  }
  return 0;
}

static int
encode_fields(const struct aipc_record *rec, const uint8_t *src, uint8_t *buf,
              size_t cap, size_t *pos)
{
  for (uint32_t i = 0; i < rec->nfields; i++) {
    int r = encode_field(&rec->fields[i], src, buf, cap, pos);
    if (r < 0)
      return r;
  }
  return 0;
}

int
aipc_record_encode(const struct aipc_record *rec, const void *src, uint8_t *buf,
                   size_t cap)
{
  size_t pos = 0;
  int r = encode_fields(rec, src, buf, cap, &pos);
  if (r < 0)
    return r;
  return (int)pos;
}

static int decode_fields(const struct aipc_record *rec, const uint8_t *buf,
                         size_t len, size_t *pos, uint8_t *dst);

static int
decode_field(const struct aipc_field *f, const uint8_t *buf, size_t len,
             size_t *pos, uint8_t *dst)
{
  uint8_t *member = dst + f->offset;
  size_t width = number_width(f->type);
  if (width) {
    if (len - *pos < width || !number_in_bounds(f, buf + *pos))
      return -EBADMSG;
    memcpy(member, buf + *pos, width);
    *pos += width;
    return 0;
  }

  if (f->type == AIPC_FIELD_STRING) {
    uint16_t n;
    if (len - *pos < sizeof(n))
      return -EBADMSG;
    memcpy(&n, buf + *pos, sizeof(n));
    *pos += sizeof(n);
    const char *s = NULL;
    if (n == 0) {
      if (f->min > 0)
        return -EBADMSG;
    } else {
      if (n - 1 > f->max || len - *pos < n)
        return -EBADMSG;
      s = (const char *)buf + *pos;
      if (s[n - 1] != '\0' || memchr(s, '\0', n - 1u))
        return -EBADMSG;
      *pos += n;
    }
    memcpy(member, &s, sizeof(s));
    return 0;
  }

  assert(f->type == AIPC_FIELD_ARRAY);
  struct aipc_array a = {.record = f->record};
  if (len - *pos < sizeof(a.count))
    return -EBADMSG;
  memcpy(&a.count, buf + *pos, sizeof(a.count));
  *pos += sizeof(a.count);
  if (a.count > f->max)
    return -EBADMSG;
  size_t start = *pos;
  _Alignas(max_align_t) uint8_t scratch[AIPC_MSG_DECODED_MAX];
  assert(f->record->size <= sizeof(scratch));
  for (uint32_t i = 0; i < a.count; i++) {
    int r = decode_fields(f->record, buf, len, pos, scratch);
    if (r < 0)
      return r;
  }
  a.wire = buf + start;
  a.wire_len = (uint32_t)(*pos - start);
  memcpy(member, &a, sizeof(a));
  return 0;
}

static int
decode_fields(const struct aipc_record *rec, const uint8_t *buf, size_t len,
              size_t *pos, uint8_t *dst)
{
  for (uint32_t i = 0; i < rec->nfields; i++) {
    int r = decode_field(&rec->fields[i], buf, len, pos, dst);
    if (r < 0)
      return r;
  }
  return 0;
}

int
aipc_record_decode(const struct aipc_record *rec, const uint8_t *buf,
                   size_t len, void *dst)
{
  size_t pos = 0;
  memset(dst, 0, rec->size);
  int r = decode_fields(rec, buf, len, &pos, dst);
  if (r < 0)
    return r;
  return pos == len ? 0 : -EBADMSG;
}

bool
aipc_array_next(const struct aipc_array *array, struct aipc_array_iter *iter,
                void *item)
{
  if (iter->index >= array->count)
    return false;
  size_t pos = iter->offset;
  memset(item, 0, array->record->size);
  int r =
      decode_fields(array->record, array->wire, array->wire_len, &pos, item);
  assert(r == 0);
  (void)r;
  iter->offset = (uint32_t)pos;
  iter->index++;
  return true;
}

const struct aipc_msg_desc *
aipc_protocol_msg(const struct aipc_protocol *p, uint16_t opcode)
{
  if (opcode >= p->count || !p->msgs[opcode].name)
    return NULL;
  return &p->msgs[opcode];
}

struct aipc_msg *
aipc_msg_new(const struct aipc_msg_header *header, const uint8_t *payload,
             const int *fds)
{
  assert(header->nfds <= AIPC_MSG_MAX_FDS);
  struct aipc_msg *msg = malloc(sizeof(*msg) + header->size);
  if (!msg) {
    for (unsigned i = 0; i < header->nfds; i++)
      close(fds[i]);
    return NULL;
  }
  msg->header = *header;
  for (unsigned i = 0; i < AIPC_MSG_MAX_FDS; i++)
    msg->fds[i] = i < header->nfds ? fds[i] : -1;
  if (header->size)
    memcpy(msg->payload, payload, header->size);
  return msg;
}

void
aipc_msg_free(struct aipc_msg *msg)
{
  if (!msg)
    return;
  for (unsigned i = 0; i < AIPC_MSG_MAX_FDS; i++) {
    if (msg->fds[i] >= 0)
      close(msg->fds[i]);
  }
  free(msg);
}

int
aipc_msg_take_fd(struct aipc_msg *msg, unsigned index)
{
  if (index >= AIPC_MSG_MAX_FDS)
    return -1;
  int fd = msg->fds[index];
  msg->fds[index] = -1;
  return fd;
}

int
aipc_msg_decode(const struct aipc_protocol *p, const struct aipc_msg *msg,
                void *dst)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(p, msg->header.opcode);
  if (!desc || msg->header.nfds != desc->nfds)
    return -EBADMSG;
  return aipc_record_decode(&desc->record, msg->payload, msg->header.size, dst);
}

/* A bounded string builder for the tracer. */
struct text {
  char *buf;
  size_t cap, len;
};

static void __attribute__((format(printf, 2, 3)))
text_add(struct text *t, const char *fmt, ...)
{
  if (t->len + 1 >= t->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    t->len += (size_t)n;
  if (t->len > t->cap - 1)
    t->len = t->cap - 1;
}

static void
describe_record(struct text *t, const struct aipc_record *rec,
                const uint8_t *src)
{
  text_add(t, "{");
  for (uint32_t i = 0; i < rec->nfields; i++) {
    const struct aipc_field *f = &rec->fields[i];
    const uint8_t *m = src + f->offset;
    text_add(t, "%s%s=", i ? ", " : "", f->name);
    switch (f->type) {
    case AIPC_FIELD_U8:
      text_add(t, "%" PRIu8, *(const uint8_t *)m);
      break;
    case AIPC_FIELD_U16:
      text_add(t, "%" PRIu16, *(const uint16_t *)m);
      break;
    case AIPC_FIELD_U32:
      text_add(t, "%" PRIu32, *(const uint32_t *)m);
      break;
    case AIPC_FIELD_U64:
      text_add(t, "%" PRIu64, *(const uint64_t *)m);
      break;
    case AIPC_FIELD_I32:
      text_add(t, "%" PRId32, *(const int32_t *)m);
      break;
    case AIPC_FIELD_I64:
      text_add(t, "%" PRId64, *(const int64_t *)m);
      break;
    case AIPC_FIELD_F32:
      text_add(t, "%g", (double)*(const float *)m);
      break;
    case AIPC_FIELD_STRING: {
      const char *s = *(const char *const *)m;
      if (s)
        text_add(t, "\"%s\"", s);
      else
        text_add(t, "null");
      break;
    }
    case AIPC_FIELD_ARRAY: {
      const struct aipc_array *a = (const struct aipc_array *)m;
      _Alignas(max_align_t) uint8_t item[AIPC_MSG_DECODED_MAX];
      struct aipc_array_iter it = {0};
      text_add(t, "[");
      while (aipc_array_next(a, &it, item)) {
        if (it.index > 1)
          text_add(t, ", ");
        describe_record(t, a->record, item);
      }
      text_add(t, "]");
      break;
    }
    }
  }
  text_add(t, "}");
}

size_t
aipc_msg_describe(const struct aipc_protocol *p,
                  const struct aipc_msg_header *h, const uint8_t *payload,
                  char *buf, size_t cap)
{
  struct text t = {.buf = buf, .cap = cap, .len = 0};
  if (cap == 0)
    return 0;
  buf[0] = '\0';
  const struct aipc_msg_desc *desc = aipc_protocol_msg(p, h->opcode);
  text_add(&t, "%s#%" PRIu32 " ", desc ? desc->name : "unknown", h->serial);
  _Alignas(max_align_t) uint8_t decoded[AIPC_MSG_DECODED_MAX];
  if (desc && desc->record.size <= sizeof(decoded) &&
      aipc_record_decode(&desc->record, payload, h->size, decoded) == 0)
    describe_record(&t, &desc->record, decoded);
  else
    text_add(&t, "(undecodable, opcode %" PRIu16 ", %" PRIu32 " bytes)",
             h->opcode, h->size);
  if (h->nfds)
    text_add(&t, " fds=%" PRIu16, h->nfds);
  return t.len;
}

void
aipc_trace_msg(const struct aipc_protocol *p, const char *who,
               const char *direction, const struct aipc_msg_header *h,
               const uint8_t *payload)
{
  char line[2048];
  aipc_msg_describe(p, h, payload, line, sizeof(line));
  aipc_log(AIPC_LOG_INFO, "protocol %s %s %s", who, direction, line);
}
