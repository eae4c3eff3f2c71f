/* SPDX-License-Identifier: ISC */
/*
 * A valid body for every message of the protocol, for tests that start
 * from a good message (and spoil it) and for the fuzz seed generator.
 */
#ifndef AIPC_TEST_BODIES_H
#define AIPC_TEST_BODIES_H

#include "protocol.h"

#include <stddef.h>
#include <stdint.h>

/* Fills `out` (AIPC_MSG_DECODED_MAX bytes) with a valid body of
 * `opcode`, naming `stream` where the message names one. Strings and
 * arrays point to static data. */
void test_body(uint16_t opcode, uint32_t stream, void *out);

/* Encodes `body` with opcode's description; returns the payload length
 * or a negative errno. */
int test_body_encode(uint16_t opcode, const void *body, uint8_t *buf,
                     size_t cap);

#endif
