/* SPDX-License-Identifier: ISC */
/*
 * Fuzz target for what a client decodes: every reply and event the
 * server may send, taken apart the way the client library does (arrays
 * walked, strings copied, errors and states range-checked), and the
 * checks a client makes on a STREAM_INIT_REPLY's layout before it maps
 * the region.
 *
 * Input: byte 0 picks the message among those a client receives; bytes 1
 * and 2 are the input and output channels the client asked for (for the
 * layout checks, with byte 3's low bit choosing s16 over float); the
 * rest is the payload.
 *
 * The layout check is the client's own (aipc_stream_layout_matches, as
 * map_stream() in src/client/stream.c uses it); the target asserts what
 * it must guarantee: every byte the client touches lies inside the
 * region.
 */
#include "client-messages.h"
#include "protocol.h"
#include "stream-shm.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A copy as the client keeps it (strdup), checked against its bound. */
static void
copy_string(const char *s, size_t max)
{
  if (!s)
    return;
  size_t len = strlen(s);
  if (len > max)
    abort();
  char *copy = strdup(s);
  if (!copy || memcmp(copy, s, len + 1) != 0)
    abort();
  free(copy);
}

static void
walk_devices(const struct aipc_devices_reply *reply)
{
  if (reply->devices.count > AIPC_DEVICES_MAX)
    abort();
  struct aipc_array_iter it = {0};
  struct aipc_device d;
  uint32_t n = 0;
  while (aipc_array_next(&reply->devices, &it, &d)) {
    if (d.token == 0 || d.token > INT64_MAX)
      abort();
    copy_string(d.device_id, AIPC_NAME_MAX);
    copy_string(d.friendly_name, AIPC_NAME_MAX);
    copy_string(d.group_id, AIPC_NAME_MAX);
    copy_string(d.vendor_name, AIPC_NAME_MAX);
    n++;
  }
  if (n != reply->devices.count || it.offset != reply->devices.wire_len)
    abort();
}

/* The client's check of a STREAM_INIT_REPLY (see the file comment).
 * Returns 0 if the client would map the region. */
static int
check_layout(const struct aipc_stream_init_reply *r, uint32_t in_bytes,
             uint32_t out_bytes)
{
  struct aipc_stream_layout need;
  if (aipc_stream_layout(r->frames_max, in_bytes, out_bytes, &need) < 0 ||
      !aipc_stream_layout_matches(&need, r->shm_size, r->input_offset,
                                  r->output_offset))
    return -1;
  return 0;
}

/* What the client touches in an accepted region: the control block and
 * frames_max frames of each area. A buffer of exactly shm_size bytes
 * stands for the mapping, so ASan sees any byte outside it. */
static void
touch_region(const struct aipc_stream_init_reply *r, uint32_t in_bytes,
             uint32_t out_bytes)
{
  uint64_t in_len = (uint64_t)r->frames_max * in_bytes;
  uint64_t out_len = (uint64_t)r->frames_max * out_bytes;
  if ((in_len && r->input_offset + in_len > r->shm_size) ||
      (out_len && r->output_offset + out_len > r->shm_size))
    abort();
  if (r->shm_size > (1u << 20))
    return; /* checked arithmetically above; too big to allocate here */
  uint8_t *region = malloc(r->shm_size);
  if (!region)
    return;
  memset(region, 0, AIPC_STREAM_CTL_SIZE);
  if (in_len)
    memset(region + r->input_offset, 1, (size_t)in_len);
  if (out_len)
    memset(region + r->output_offset, 2, (size_t)out_len);
  free(region);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 4)
    return 0;
  uint16_t opcode = client_message(data[0] % client_message_count());
  uint32_t sample = data[3] & 1 ? 2 : 4;
  uint32_t in_bytes = (data[1] % 33) * sample;
  uint32_t out_bytes = (data[2] % 33) * sample;
  const uint8_t *payload = data + 4;
  size_t len = size - 4;
  if (len > AIPC_MSG_MAX_SIZE - sizeof(struct aipc_msg_header))
    return 0;

  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  struct aipc_msg_header h = {
      .size = (uint32_t)len, .opcode = opcode, .nfds = desc->nfds};
  char line[2048];
  aipc_msg_describe(&aipc_protocol, &h, payload, line, sizeof(line));

  _Alignas(max_align_t) uint8_t decoded[AIPC_MSG_DECODED_MAX];
  if (aipc_record_decode(&desc->record, payload, len, decoded) != 0)
    return 0;

  switch (opcode) {
  case AIPC_OP_HELLO_REPLY: {
    const struct aipc_hello_reply *r = (const void *)decoded;
    if (!r->library_version)
      abort();
    copy_string(r->library_version, 32);
    break;
  }
  case AIPC_OP_ERROR: {
    /* aipc_rpc_call returns it as the call's result: it must read as a
     * failure, never as success or a count. */
    const struct aipc_error *e = (const void *)decoded;
    if (e->error >= 0 || e->error < -4095)
      abort();
    break;
  }
  case AIPC_OP_CONTEXT_INIT_REPLY: {
    const struct aipc_context_init_reply *r = (const void *)decoded;
    if (!r->backend_id)
      abort(); /* the client strdups it unchecked */
    copy_string(r->backend_id, AIPC_NAME_MAX);
    break;
  }
  case AIPC_OP_DEVICES_REPLY:
    walk_devices((const void *)decoded);
    return 0; /* arrays do not re-encode from the decoded struct */
  case AIPC_OP_STREAM_INIT_REPLY: {
    const struct aipc_stream_init_reply *r = (const void *)decoded;
    if (r->stream == 0 || r->frames_max == 0)
      abort();
    if (check_layout(r, in_bytes, out_bytes) == 0)
      touch_region(r, in_bytes, out_bytes);
    break;
  }
  case AIPC_OP_CURRENT_DEVICE_REPLY: {
    const struct aipc_current_device_reply *r = (const void *)decoded;
    copy_string(r->output_name, AIPC_NAME_MAX);
    copy_string(r->input_name, AIPC_NAME_MAX);
    break;
  }
  case AIPC_OP_STREAM_STATE_EVENT: {
    /* Handed to the user's state callback as a cubeb_state. */
    const struct aipc_stream_state_event *ev = (const void *)decoded;
    if (ev->stream == 0 || ev->state > 3)
      abort();
    break;
  }
  case AIPC_OP_COLLECTION_CHANGED_EVENT: {
    const struct aipc_collection_changed_event *ev = (const void *)decoded;
    if (ev->type > 3)
      abort();
    break;
  }
  default:
    break;
  }

  /* What decodes re-encodes to the very same bytes. */
  static uint8_t again[AIPC_MSG_MAX_SIZE];
  int n = aipc_record_encode(&desc->record, decoded, again, sizeof(again));
  if (n != (int)len || memcmp(again, payload, len) != 0)
    abort();
  return 0;
}
