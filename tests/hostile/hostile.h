/* SPDX-License-Identifier: ISC */
/* Helpers shared by the hostile test files. */
#ifndef AIPC_TEST_HOSTILE_H
#define AIPC_TEST_HOSTILE_H

#include "fixture.h"
#include "raw.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What became of the hostile messages of a case. */
struct tally {
  unsigned sent;   /* messages (or packets) sent */
  unsigned ok;     /* answered with a success */
  unsigned errors; /* answered with an ERROR */
  unsigned drops;  /* ended by a hang-up */
};

void tally_print(const struct tally *t, const char *what);

/* The usual case: a fixture on `backend` (NULL: the virtual device),
 * `round` once to rehearse (what is allocated once), then the measured
 * `round`: its tally printed and fixture_check run, under `what`. */
void hostile_case(const char *backend,
                  void (*round)(struct fixture *f, struct tally *t),
                  const char *what);

/* Sends `len` payload bytes as `opcode`; the answer must be an ERROR
 * carrying `error`, and the connection must stay. */
void expect_error(struct raw *r, struct tally *t, uint16_t opcode,
                  const void *payload, size_t len, int error);
/* The same with `body` encoded through opcode's description. */
void expect_body_error(struct raw *r, struct tally *t, uint16_t opcode,
                       const void *body, int error);
/* The server must hang up. */
void expect_hangup(struct raw *r, struct tally *t);

/* A valid body for any opcode (naming `stream` where it names one), in
 * `out` (AIPC_MSG_DECODED_MAX bytes). */
void template_body(uint16_t opcode, uint32_t stream, void *out);
/* Encodes a body; returns its length. */
int template_encode_body(uint16_t opcode, const void *body, uint8_t *buf,
                         size_t cap);
/* template_body, encoded. */
int template_encode(uint16_t opcode, uint32_t stream, uint8_t *buf, size_t cap);
bool is_request(uint16_t opcode);

#endif
