/* SPDX-License-Identifier: ISC */
#include "bodies.h"

#include <cubeb/cubeb.h>
#include <errno.h>
#include <string.h>

static const struct aipc_device device = {.token = 1,
                                          .device_id = "id",
                                          .friendly_name = "name",
                                          .group_id = NULL,
                                          .vendor_name = "vendor",
                                          .type = CUBEB_DEVICE_TYPE_OUTPUT,
                                          .max_channels = 2};

void
test_body(uint16_t opcode, uint32_t stream, void *out)
{
  memset(out, 0, AIPC_MSG_DECODED_MAX);
  switch (opcode) {
  case AIPC_OP_HELLO:
    *(struct aipc_hello *)out =
        (struct aipc_hello){AIPC_PROTOCOL_VERSION, "test", "test"};
    break;
  case AIPC_OP_HELLO_REPLY:
    *(struct aipc_hello_reply *)out =
        (struct aipc_hello_reply){AIPC_PROTOCOL_VERSION, "test"};
    break;
  case AIPC_OP_ERROR:
    *(struct aipc_error *)out = (struct aipc_error){-EINVAL};
    break;
  case AIPC_OP_PING:
  case AIPC_OP_PING_REPLY:
    *(struct aipc_ping *)out = (struct aipc_ping){7};
    break;
  case AIPC_OP_U32_REPLY:
    *(struct aipc_u32 *)out = (struct aipc_u32){1};
    break;
  case AIPC_OP_U64_REPLY:
    *(struct aipc_u64 *)out = (struct aipc_u64){1};
    break;
  case AIPC_OP_CONTEXT_INIT:
    *(struct aipc_context_init *)out = (struct aipc_context_init){"test"};
    break;
  case AIPC_OP_CONTEXT_INIT_REPLY:
    *(struct aipc_context_init_reply *)out =
        (struct aipc_context_init_reply){"virtual"};
    break;
  case AIPC_OP_GET_MIN_LATENCY:
    *(struct aipc_min_latency *)out = (struct aipc_min_latency){
        CUBEB_SAMPLE_FLOAT32NE, 48000, 2, CUBEB_LAYOUT_STEREO, 0};
    break;
  case AIPC_OP_ENUMERATE_DEVICES:
    *(struct aipc_enumerate_devices *)out =
        (struct aipc_enumerate_devices){CUBEB_DEVICE_TYPE_OUTPUT};
    break;
  case AIPC_OP_DEVICES_REPLY:
    *(struct aipc_devices_reply *)out =
        (struct aipc_devices_reply){.devices = {.count = 1, .items = &device}};
    break;
  case AIPC_OP_REGISTER_COLLECTION_CHANGED:
    *(struct aipc_register_collection_changed *)out =
        (struct aipc_register_collection_changed){CUBEB_DEVICE_TYPE_OUTPUT, 0};
    break;
  case AIPC_OP_STREAM_INIT:
    *(struct aipc_stream_init *)out =
        (struct aipc_stream_init){.name = "raw",
                                  .has_output = 1,
                                  .out_format = CUBEB_SAMPLE_FLOAT32NE,
                                  .out_rate = 48000,
                                  .out_channels = 2,
                                  .out_layout = CUBEB_LAYOUT_STEREO,
                                  .latency_frames = 256};
    break;
  case AIPC_OP_STREAM_INIT_REPLY:
    *(struct aipc_stream_init_reply *)out =
        (struct aipc_stream_init_reply){1, 8192, 512, 64, 64, 0};
    break;
  case AIPC_OP_STREAM_SET_VOLUME:
    *(struct aipc_stream_volume *)out =
        (struct aipc_stream_volume){stream, 0.5f};
    break;
  case AIPC_OP_STREAM_SET_NAME:
    *(struct aipc_stream_name *)out =
        (struct aipc_stream_name){stream, "renamed"};
    break;
  case AIPC_OP_CURRENT_DEVICE_REPLY:
    *(struct aipc_current_device_reply *)out =
        (struct aipc_current_device_reply){"out", NULL};
    break;
  case AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED:
    *(struct aipc_stream_register *)out =
        (struct aipc_stream_register){stream, 0};
    break;
  case AIPC_OP_STREAM_STATE_EVENT:
    *(struct aipc_stream_state_event *)out =
        (struct aipc_stream_state_event){1, CUBEB_STATE_STARTED};
    break;
  case AIPC_OP_COLLECTION_CHANGED_EVENT:
    *(struct aipc_collection_changed_event *)out =
        (struct aipc_collection_changed_event){CUBEB_DEVICE_TYPE_OUTPUT};
    break;
  case AIPC_OP_PROMOTE_THREAD:
    /* init: never a thread of a test's client */
    *(struct aipc_promote_thread *)out = (struct aipc_promote_thread){1};
    break;
  case AIPC_OP_STREAM_DESTROY:
  case AIPC_OP_STREAM_START:
  case AIPC_OP_STREAM_STOP:
  case AIPC_OP_STREAM_GET_POSITION:
  case AIPC_OP_STREAM_GET_LATENCY:
  case AIPC_OP_STREAM_GET_INPUT_LATENCY:
  case AIPC_OP_STREAM_GET_CURRENT_DEVICE:
  case AIPC_OP_STREAM_DEVICE_CHANGED_EVENT:
    *(struct aipc_stream_ref *)out = (struct aipc_stream_ref){stream};
    break;
  default:
    break; /* messages without fields */
  }
}

int
test_body_encode(uint16_t opcode, const void *body, uint8_t *buf, size_t cap)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  if (!desc)
    return -EINVAL;
  return aipc_record_encode(&desc->record, body, buf, cap);
}
