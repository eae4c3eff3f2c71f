/* SPDX-License-Identifier: ISC */
#include "hostile.h"

#include "../bodies.h"
#include "../runner.h"

#include <stdio.h>

void
tally_print(const struct tally *t, const char *what)
{
  printf("  %-34s %u messages: %u error replies, %u hang-ups, %u answered\n",
         what, t->sent, t->errors, t->drops, t->ok);
  fflush(stdout);
}

void
hostile_case(const char *backend,
             void (*round)(struct fixture *f, struct tally *t),
             const char *what)
{
  struct fixture f;
  fixture_start(&f, backend);
  struct tally t = {0};
  round(&f, &t);
  fixture_baseline(&f);
  t = (struct tally){0};
  round(&f, &t);
  tally_print(&t, what);
  fixture_check(&f, what);
  fixture_finish(&f);
}

void
expect_error(struct raw *r, struct tally *t, uint16_t opcode,
             const void *payload, size_t len, int error)
{
  uint32_t serial = raw_send(r, opcode, 0, payload, len);
  struct raw_msg m;
  int e = 0;
  enum raw_outcome o = raw_wait(r, serial, &m, &e);
  t->sent++;
  if (o != RAW_ERROR || e != error)
    test_fail(__FILE__, __LINE__,
              "opcode %u with %zu bytes: outcome %d (error %d), wanted error "
              "%d",
              opcode, len, (int)o, e, error);
  t->errors++;
}

void
expect_body_error(struct raw *r, struct tally *t, uint16_t opcode,
                  const void *body, int error)
{
  uint8_t payload[AIPC_MSG_MAX_SIZE];
  int len = template_encode_body(opcode, body, payload, sizeof(payload));
  expect_error(r, t, opcode, payload, (size_t)len, error);
}

void
expect_hangup(struct raw *r, struct tally *t)
{
  raw_expect_hangup(r);
  t->drops++;
}

/* --- Templates: a valid body for every opcode ----------------------------- */

void
template_body(uint16_t opcode, uint32_t stream, void *out)
{
  test_body(opcode, stream, out);
}

int
template_encode_body(uint16_t opcode, const void *body, uint8_t *buf,
                     size_t cap)
{
  int len = test_body_encode(opcode, body, buf, cap);
  CHECK(len >= 0);
  return len;
}

int
template_encode(uint16_t opcode, uint32_t stream, uint8_t *buf, size_t cap)
{
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
  template_body(opcode, stream, body);
  return template_encode_body(opcode, body, buf, cap);
}

bool
is_request(uint16_t opcode)
{
  const struct aipc_msg_desc *d = aipc_protocol_msg(&aipc_protocol, opcode);
  return d && d->kind == AIPC_MSG_REQUEST;
}
