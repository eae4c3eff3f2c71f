/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for the message decoder: the first two bytes pick the
 * opcode, the rest is the payload. Whatever decodes must describe without
 * trouble, iterate its arrays, and re-encode to the very same bytes.
 */
#include "protocol.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
has_arrays(const struct aipc_record *rec)
{
  for (uint32_t i = 0; i < rec->nfields; i++)
    if (rec->fields[i].type == AIPC_FIELD_ARRAY)
      return true;
  return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  struct aipc_msg_header h = {0};
  memcpy(&h.opcode, data, 2);
  const uint8_t *payload = data + 2;
  h.size = (uint32_t)(size - 2);
  if (h.size > AIPC_MSG_MAX_SIZE)
    return 0;

  char line[512];
  aipc_msg_describe(&aipc_protocol, &h, payload, line, sizeof(line));

  const struct aipc_msg_desc *desc =
      aipc_protocol_msg(&aipc_protocol, h.opcode);
  if (!desc)
    return 0;
  _Alignas(max_align_t) uint8_t decoded[AIPC_MSG_DECODED_MAX];
  if (aipc_record_decode(&desc->record, payload, h.size, decoded) != 0)
    return 0;
  if (has_arrays(&desc->record))
    return 0;

  static uint8_t again[AIPC_MSG_MAX_SIZE];
  int len = aipc_record_encode(&desc->record, decoded, again, sizeof(again));
  if (len != (int)h.size || memcmp(again, payload, h.size) != 0)
    abort(); /* what decodes must re-encode identically */
  return 0;
}
