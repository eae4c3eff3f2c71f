/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "protocol.h"
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* A protocol of our own, so every field type and bound gets exercised. */
struct item {
  uint16_t id;
  const char *label;
};

struct sample {
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  int32_t i32;
  int64_t i64;
  float f32;
  const char *required;
  const char *optional;
  struct aipc_array items;
};

static const struct aipc_field item_fields[] = {
    AIPC_U16(struct item, id, 1, 1000),
    AIPC_STRING(struct item, label, true, 8),
};
static const struct aipc_record item_record =
    AIPC_RECORD(struct item, item_fields);

static const struct aipc_field sample_fields[] = {
    AIPC_U8(struct sample, u8, 0, 200),
    AIPC_U16(struct sample, u16, 0, UINT16_MAX),
    AIPC_U32(struct sample, u32, 5, 10),
    AIPC_U64(struct sample, u64, 0, INT64_MAX),
    AIPC_I32(struct sample, i32, -3, 3),
    AIPC_I64(struct sample, i64, INT64_MIN, INT64_MAX),
    AIPC_F32(struct sample, f32, 0, 1),
    AIPC_STRING(struct sample, required, false, 16),
    AIPC_STRING(struct sample, optional, true, 16),
    AIPC_ARRAY(struct sample, items, &item_record, 4),
};
static const struct aipc_record sample_record =
    AIPC_RECORD(struct sample, sample_fields);

static const struct item good_items[] = {{1, "one"}, {2, NULL}, {1000, "x"}};

static struct sample
good_sample(void)
{
  return (struct sample){.u8 = 200,
                         .u16 = 65535,
                         .u32 = 7,
                         .u64 = UINT64_C(1) << 40,
                         .i32 = -3,
                         .i64 = INT64_MIN,
                         .f32 = 0.5f,
                         .required = "hello",
                         .optional = NULL,
                         .items = {.count = 3, .items = good_items}};
}

static int
encode(const struct sample *s, uint8_t *buf, size_t cap)
{
  return aipc_record_encode(&sample_record, s, buf, cap);
}

TEST(wire_roundtrip_every_type)
{
  struct sample in = good_sample();
  uint8_t buf[256];
  int len = encode(&in, buf, sizeof(buf));
  CHECK(len > 0);

  struct sample out;
  CHECK_INT(aipc_record_decode(&sample_record, buf, (size_t)len, &out), ==, 0);
  CHECK_INT(out.u8, ==, 200);
  CHECK_INT(out.u16, ==, 65535);
  CHECK_INT(out.u32, ==, 7);
  CHECK(out.u64 == UINT64_C(1) << 40);
  CHECK_INT(out.i32, ==, -3);
  CHECK(out.i64 == INT64_MIN);
  CHECK(out.f32 == 0.5f);
  CHECK(strcmp(out.required, "hello") == 0);
  CHECK(out.optional == NULL);
  CHECK_INT(out.items.count, ==, 3);

  struct aipc_array_iter it = {0};
  struct item item;
  for (unsigned i = 0; i < 3; i++) {
    CHECK(aipc_array_next(&out.items, &it, &item));
    CHECK_INT(item.id, ==, good_items[i].id);
    if (good_items[i].label)
      CHECK(strcmp(item.label, good_items[i].label) == 0);
    else
      CHECK(item.label == NULL);
  }
  CHECK(!aipc_array_next(&out.items, &it, &item));

  /* Re-encoding the decoded struct gives the same bytes. */
  uint8_t again[256];
  struct sample copy = out;
  struct item items[3];
  struct aipc_array_iter it2 = {0};
  for (unsigned i = 0; i < 3; i++)
    CHECK(aipc_array_next(&out.items, &it2, &items[i]));
  copy.items.items = items;
  CHECK_INT(encode(&copy, again, sizeof(again)), ==, len);
  CHECK(memcmp(buf, again, (size_t)len) == 0);
}

TEST(wire_encode_refuses_out_of_bounds)
{
  uint8_t buf[256];
  struct sample s = good_sample();
  s.u32 = 11;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.i32 = -4;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.f32 = NAN;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.f32 = 1.5f;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.required = NULL;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.optional = "seventeen chars!!";
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  s.items.count = 5;
  CHECK_INT(encode(&s, buf, sizeof(buf)), ==, -EINVAL);
  s = good_sample();
  CHECK_INT(encode(&s, buf, 10), ==, -EMSGSIZE);
}

TEST(wire_decode_refuses_every_truncation_and_trailing_bytes)
{
  struct sample in = good_sample();
  uint8_t buf[256];
  int len = encode(&in, buf, sizeof(buf));
  CHECK(len > 0);
  struct sample out;
  for (int n = 0; n < len; n++)
    CHECK_INT(aipc_record_decode(&sample_record, buf, (size_t)n, &out), ==,
              -EBADMSG);
  CHECK_INT(aipc_record_decode(&sample_record, buf, (size_t)len + 1, &out), ==,
            -EBADMSG);
}

/* Offset of the `required` string's length in the encoding above. */
#define REQUIRED_AT (1 + 2 + 4 + 8 + 4 + 8 + 4)

TEST(wire_decode_checks_strings)
{
  struct sample in = good_sample();
  uint8_t buf[256], bad[256];
  int len = encode(&in, buf, sizeof(buf));
  struct sample out;
  uint16_t n;
  memcpy(&n, buf + REQUIRED_AT, 2);
  CHECK_INT(n, ==, 6); /* "hello" and its NUL */

  /* Missing NUL. */
  memcpy(bad, buf, (size_t)len);
  bad[REQUIRED_AT + 2 + 5] = 'x';
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);
  /* Embedded NUL. */
  memcpy(bad, buf, (size_t)len);
  bad[REQUIRED_AT + 2 + 1] = '\0';
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);
  /* Length past the end of the message. */
  memcpy(bad, buf, (size_t)len);
  n = 0xffff;
  memcpy(bad + REQUIRED_AT, &n, 2);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);
  /* NULL where it is refused. */
  memcpy(bad, buf, (size_t)len);
  n = 0;
  memcpy(bad + REQUIRED_AT, &n, 2);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);
}

TEST(wire_decode_checks_number_bounds)
{
  struct sample in = good_sample();
  uint8_t buf[256], bad[256];
  int len = encode(&in, buf, sizeof(buf));
  struct sample out;

  memcpy(bad, buf, (size_t)len);
  bad[0] = 201; /* u8 above its max */
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);

  memcpy(bad, buf, (size_t)len);
  uint32_t u32 = 4; /* below its min */
  memcpy(bad + 3, &u32, 4);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);

  memcpy(bad, buf, (size_t)len);
  uint64_t u64 = UINT64_MAX; /* above INT64_MAX */
  memcpy(bad + 7, &u64, 8);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);

  memcpy(bad, buf, (size_t)len);
  float inf = INFINITY;
  memcpy(bad + 27, &inf, 4);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);
}

TEST(wire_decode_checks_array_count_and_elements)
{
  struct sample in = good_sample();
  in.required = "a";
  uint8_t buf[256], bad[256];
  int len = encode(&in, buf, sizeof(buf));
  struct sample out;
  size_t count_at = REQUIRED_AT + 2 + 2 + 2; /* "a", then NULL optional */

  memcpy(bad, buf, (size_t)len);
  uint32_t count = 5;
  memcpy(bad + count_at, &count, 4);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);

  memcpy(bad, buf, (size_t)len);
  uint16_t id = 0; /* first element's id below its min */
  memcpy(bad + count_at + 4, &id, 2);
  CHECK_INT(aipc_record_decode(&sample_record, bad, (size_t)len, &out), ==,
            -EBADMSG);

  CHECK_INT(aipc_record_decode(&sample_record, buf, (size_t)len, &out), ==, 0);
}

TEST(wire_protocol_table_is_consistent)
{
  const struct aipc_protocol *p = &aipc_protocol;
  CHECK(aipc_protocol_msg(p, p->count) == NULL);
  CHECK(aipc_protocol_msg(p, UINT16_MAX) == NULL);
  for (uint16_t op = 0; op < p->count; op++) {
    const struct aipc_msg_desc *d = aipc_protocol_msg(p, op);
    CHECK(d != NULL);
    CHECK(d->record.size <= AIPC_MSG_DECODED_MAX);
    CHECK(d->nfds <= AIPC_MSG_MAX_FDS);
    if (d->kind == AIPC_MSG_REQUEST) {
      const struct aipc_msg_desc *reply = aipc_protocol_msg(p, d->reply);
      CHECK(reply != NULL);
      CHECK(reply->kind == AIPC_MSG_REPLY);
    }
  }
  CHECK(aipc_protocol_msg(p, p->error_opcode)->kind == AIPC_MSG_REPLY);
}

TEST(wire_msg_decode_checks_fd_count)
{
  struct aipc_ping ping = {.value = 42};
  uint8_t payload[64];
  int len = aipc_record_encode(&aipc_protocol.msgs[AIPC_OP_PING].record, &ping,
                               payload, sizeof(payload));
  CHECK(len == 8);
  struct aipc_msg_header h = {
      .size = (uint32_t)len, .opcode = AIPC_OP_PING, .serial = 1};
  struct aipc_msg *msg = aipc_msg_new(&h, payload, NULL);
  struct aipc_ping out;
  CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &out), ==, 0);
  CHECK(out.value == 42);
  msg->header.nfds = 1; /* PING carries none */
  CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &out), ==, -EBADMSG);
  msg->header.nfds = 0;
  msg->header.opcode = AIPC_OP_COUNT;
  CHECK_INT(aipc_msg_decode(&aipc_protocol, msg, &out), ==, -EBADMSG);
  aipc_msg_free(msg);
}
