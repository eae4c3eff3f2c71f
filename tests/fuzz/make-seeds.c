/* SPDX-License-Identifier: ISC */
/*
 * Writes the seed corpus for fuzz-decode: one valid encoding of every
 * message in the protocol table, in the target's input format (opcode,
 * then payload). Regenerate with:
 *   build/tests/fuzz/make-seeds tests/fuzz/corpus/decode
 */
#include "protocol.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

static int
write_seed(const char *dir, uint16_t opcode, const void *body)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  uint8_t buf[AIPC_MSG_MAX_SIZE];
  memcpy(buf, &opcode, 2);
  int len = aipc_record_encode(&desc->record, body, buf + 2, sizeof(buf) - 2);
  if (len < 0) {
    fprintf(stderr, "%s does not encode\n", desc->name);
    return -1;
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/seed-%s", dir, desc->name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, (size_t)len + 2, f) != (size_t)len + 2) {
    perror(path);
    return -1;
  }
  fclose(f);
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  struct aipc_hello hello = {AIPC_PROTOCOL_VERSION, "0.1.0", "firefox"};
  struct aipc_hello_reply hello_reply = {AIPC_PROTOCOL_VERSION, "0.1.0"};
  struct aipc_error error = {-22};
  struct aipc_ping ping = {123456789};
  int r = 0;
  r |= write_seed(dir, AIPC_OP_HELLO, &hello);
  r |= write_seed(dir, AIPC_OP_HELLO_REPLY, &hello_reply);
  r |= write_seed(dir, AIPC_OP_ERROR, &error);
  r |= write_seed(dir, AIPC_OP_PING, &ping);
  r |= write_seed(dir, AIPC_OP_PING_REPLY, &ping);
  return r ? 1 : 0;
}
