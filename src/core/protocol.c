/* SPDX-License-Identifier: ISC */
#include "protocol.h"

#include <errno.h>

static const struct aipc_field hello_fields[] = {
    AIPC_U32(struct aipc_hello, version, 0, UINT32_MAX),
    AIPC_STRING(struct aipc_hello, library_version, false, 32),
    AIPC_STRING(struct aipc_hello, name, true, AIPC_NAME_MAX),
};

static const struct aipc_field hello_reply_fields[] = {
    AIPC_U32(struct aipc_hello_reply, version, 0, UINT32_MAX),
    AIPC_STRING(struct aipc_hello_reply, library_version, false, 32),
};

static const struct aipc_field error_fields[] = {
    AIPC_I32(struct aipc_error, error, -4095, -1),
};

static const struct aipc_field ping_fields[] = {
    AIPC_U64(struct aipc_ping, value, 0, INT64_MAX),
};

/* A message without fields. */
#define EMPTY_RECORD                                                           \
  {                                                                            \
    "struct aipc_empty", sizeof(struct aipc_empty), NULL, 0                    \
  }

static const struct aipc_field u32_fields[] = {
    AIPC_U32(struct aipc_u32, value, 0, UINT32_MAX),
};

static const struct aipc_field u64_fields[] = {
    AIPC_U64(struct aipc_u64, value, 0, INT64_MAX),
};

static const struct aipc_field context_init_fields[] = {
    AIPC_STRING(struct aipc_context_init, name, true, AIPC_NAME_MAX),
};

static const struct aipc_field context_init_reply_fields[] = {
    AIPC_STRING(struct aipc_context_init_reply, backend_id, false,
                AIPC_NAME_MAX),
};

#define U32_ANY(type, m) AIPC_U32(type, m, 0, UINT32_MAX)

static const struct aipc_field min_latency_fields[] = {
    U32_ANY(struct aipc_min_latency, format),
    U32_ANY(struct aipc_min_latency, rate),
    U32_ANY(struct aipc_min_latency, channels),
    U32_ANY(struct aipc_min_latency, layout),
    U32_ANY(struct aipc_min_latency, prefs),
};

static const struct aipc_field enumerate_fields[] = {
    AIPC_U32(struct aipc_enumerate_devices, type, 0, 3),
};

static const struct aipc_field device_fields[] = {
    AIPC_U64(struct aipc_device, token, 1, INT64_MAX),
    AIPC_STRING(struct aipc_device, device_id, true, AIPC_NAME_MAX),
    AIPC_STRING(struct aipc_device, friendly_name, true, AIPC_NAME_MAX),
    AIPC_STRING(struct aipc_device, group_id, true, AIPC_NAME_MAX),
    AIPC_STRING(struct aipc_device, vendor_name, true, AIPC_NAME_MAX),
    U32_ANY(struct aipc_device, type),
    U32_ANY(struct aipc_device, state),
    U32_ANY(struct aipc_device, preferred),
    U32_ANY(struct aipc_device, format),
    U32_ANY(struct aipc_device, default_format),
    U32_ANY(struct aipc_device, max_channels),
    U32_ANY(struct aipc_device, default_rate),
    U32_ANY(struct aipc_device, max_rate),
    U32_ANY(struct aipc_device, min_rate),
    U32_ANY(struct aipc_device, latency_lo),
    U32_ANY(struct aipc_device, latency_hi),
};
static const struct aipc_record device_record =
    AIPC_RECORD(struct aipc_device, device_fields);

static const struct aipc_field devices_reply_fields[] = {
    AIPC_ARRAY(struct aipc_devices_reply, devices, &device_record,
               AIPC_DEVICES_MAX),
};

static const struct aipc_field register_collection_fields[] = {
    AIPC_U32(struct aipc_register_collection_changed, type, 0, 3),
    AIPC_U32(struct aipc_register_collection_changed, enable, 0, 1),
};

/* Bounds here are structural; the server checks the parameters' meaning
 * (and the unused direction's fields are zero). */
static const struct aipc_field stream_init_fields[] = {
    AIPC_STRING(struct aipc_stream_init, name, true, AIPC_NAME_MAX),
    AIPC_U64(struct aipc_stream_init, input_device, 0, INT64_MAX),
    AIPC_U64(struct aipc_stream_init, output_device, 0, INT64_MAX),
    AIPC_U32(struct aipc_stream_init, has_input, 0, 1),
    AIPC_U32(struct aipc_stream_init, has_output, 0, 1),
    U32_ANY(struct aipc_stream_init, in_format),
    U32_ANY(struct aipc_stream_init, in_rate),
    U32_ANY(struct aipc_stream_init, in_channels),
    U32_ANY(struct aipc_stream_init, in_layout),
    U32_ANY(struct aipc_stream_init, in_prefs),
    U32_ANY(struct aipc_stream_init, out_format),
    U32_ANY(struct aipc_stream_init, out_rate),
    U32_ANY(struct aipc_stream_init, out_channels),
    U32_ANY(struct aipc_stream_init, out_layout),
    U32_ANY(struct aipc_stream_init, out_prefs),
    U32_ANY(struct aipc_stream_init, latency_frames),
};

static const struct aipc_field stream_init_reply_fields[] = {
    AIPC_U32(struct aipc_stream_init_reply, stream, 1, UINT32_MAX),
    U32_ANY(struct aipc_stream_init_reply, shm_size),
    AIPC_U32(struct aipc_stream_init_reply, frames_max, 1, UINT32_MAX),
    U32_ANY(struct aipc_stream_init_reply, input_offset),
    U32_ANY(struct aipc_stream_init_reply, output_offset),
    AIPC_U32(struct aipc_stream_init_reply, buffered, 0, 1),
};

static const struct aipc_field stream_ref_fields[] = {
    AIPC_U32(struct aipc_stream_ref, stream, 1, UINT32_MAX),
};

static const struct aipc_field stream_volume_fields[] = {
    AIPC_U32(struct aipc_stream_volume, stream, 1, UINT32_MAX),
    AIPC_F32(struct aipc_stream_volume, volume, 0, 1),
};

static const struct aipc_field stream_name_fields[] = {
    AIPC_U32(struct aipc_stream_name, stream, 1, UINT32_MAX),
    AIPC_STRING(struct aipc_stream_name, name, false, AIPC_NAME_MAX),
};

static const struct aipc_field current_device_reply_fields[] = {
    AIPC_STRING(struct aipc_current_device_reply, output_name, true,
                AIPC_NAME_MAX),
    AIPC_STRING(struct aipc_current_device_reply, input_name, true,
                AIPC_NAME_MAX),
};

static const struct aipc_field stream_register_fields[] = {
    AIPC_U32(struct aipc_stream_register, stream, 1, UINT32_MAX),
    AIPC_U32(struct aipc_stream_register, enable, 0, 1),
};

static const struct aipc_field stream_state_fields[] = {
    AIPC_U32(struct aipc_stream_state_event, stream, 1, UINT32_MAX),
    AIPC_U32(struct aipc_stream_state_event, state, 0, 3),
};

static const struct aipc_field collection_changed_fields[] = {
    AIPC_U32(struct aipc_collection_changed_event, type, 0, 3),
};

static const struct aipc_field promote_thread_fields[] = {
    AIPC_U32(struct aipc_promote_thread, tid, 1, INT32_MAX),
};

/* The message's name is its opcode's, without the AIPC_OP_ prefix. */
#define REQUEST(op, ctype, fields, reply_op)                                   \
  [op] = {&(#op)[8], AIPC_RECORD(ctype, fields), AIPC_MSG_REQUEST, reply_op, 0}
#define REPLY(op, ctype, fields, nfds)                                         \
  [op] = {&(#op)[8], AIPC_RECORD(ctype, fields), AIPC_MSG_REPLY, 0, nfds}
#define EVENT(op, ctype, fields)                                               \
  [op] = {&(#op)[8], AIPC_RECORD(ctype, fields), AIPC_MSG_EVENT, 0, 0}
#define EMPTY_REQUEST(op, reply_op)                                            \
  [op] = {&(#op)[8], EMPTY_RECORD, AIPC_MSG_REQUEST, reply_op, 0}

static const struct aipc_msg_desc messages[AIPC_OP_COUNT] = {
    REQUEST(AIPC_OP_HELLO, struct aipc_hello, hello_fields,
            AIPC_OP_HELLO_REPLY),
    REPLY(AIPC_OP_HELLO_REPLY, struct aipc_hello_reply, hello_reply_fields, 0),
    REPLY(AIPC_OP_ERROR, struct aipc_error, error_fields, 0),
    REQUEST(AIPC_OP_PING, struct aipc_ping, ping_fields, AIPC_OP_PING_REPLY),
    REPLY(AIPC_OP_PING_REPLY, struct aipc_ping, ping_fields, 0),
    [AIPC_OP_EMPTY_REPLY] = {"EMPTY_REPLY", EMPTY_RECORD, AIPC_MSG_REPLY, 0, 0},
    REPLY(AIPC_OP_U32_REPLY, struct aipc_u32, u32_fields, 0),
    REPLY(AIPC_OP_U64_REPLY, struct aipc_u64, u64_fields, 0),
    REQUEST(AIPC_OP_CONTEXT_INIT, struct aipc_context_init, context_init_fields,
            AIPC_OP_CONTEXT_INIT_REPLY),
    REPLY(AIPC_OP_CONTEXT_INIT_REPLY, struct aipc_context_init_reply,
          context_init_reply_fields, 0),
    EMPTY_REQUEST(AIPC_OP_GET_MAX_CHANNEL_COUNT, AIPC_OP_U32_REPLY),
    REQUEST(AIPC_OP_GET_MIN_LATENCY, struct aipc_min_latency,
            min_latency_fields, AIPC_OP_U32_REPLY),
    EMPTY_REQUEST(AIPC_OP_GET_PREFERRED_SAMPLE_RATE, AIPC_OP_U32_REPLY),
    REQUEST(AIPC_OP_ENUMERATE_DEVICES, struct aipc_enumerate_devices,
            enumerate_fields, AIPC_OP_DEVICES_REPLY),
    REPLY(AIPC_OP_DEVICES_REPLY, struct aipc_devices_reply,
          devices_reply_fields, 0),
    REQUEST(AIPC_OP_REGISTER_COLLECTION_CHANGED,
            struct aipc_register_collection_changed, register_collection_fields,
            AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_INIT, struct aipc_stream_init, stream_init_fields,
            AIPC_OP_STREAM_INIT_REPLY),
    REPLY(AIPC_OP_STREAM_INIT_REPLY, struct aipc_stream_init_reply,
          stream_init_reply_fields, 1),
    REQUEST(AIPC_OP_STREAM_DESTROY, struct aipc_stream_ref, stream_ref_fields,
            AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_START, struct aipc_stream_ref, stream_ref_fields,
            AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_STOP, struct aipc_stream_ref, stream_ref_fields,
            AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_GET_POSITION, struct aipc_stream_ref,
            stream_ref_fields, AIPC_OP_U64_REPLY),
    REQUEST(AIPC_OP_STREAM_GET_LATENCY, struct aipc_stream_ref,
            stream_ref_fields, AIPC_OP_U32_REPLY),
    REQUEST(AIPC_OP_STREAM_GET_INPUT_LATENCY, struct aipc_stream_ref,
            stream_ref_fields, AIPC_OP_U32_REPLY),
    REQUEST(AIPC_OP_STREAM_SET_VOLUME, struct aipc_stream_volume,
            stream_volume_fields, AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_SET_NAME, struct aipc_stream_name,
            stream_name_fields, AIPC_OP_EMPTY_REPLY),
    REQUEST(AIPC_OP_STREAM_GET_CURRENT_DEVICE, struct aipc_stream_ref,
            stream_ref_fields, AIPC_OP_CURRENT_DEVICE_REPLY),
    REPLY(AIPC_OP_CURRENT_DEVICE_REPLY, struct aipc_current_device_reply,
          current_device_reply_fields, 0),
    REQUEST(AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED, struct aipc_stream_register,
            stream_register_fields, AIPC_OP_EMPTY_REPLY),
    EVENT(AIPC_OP_STREAM_STATE_EVENT, struct aipc_stream_state_event,
          stream_state_fields),
    EVENT(AIPC_OP_STREAM_DEVICE_CHANGED_EVENT, struct aipc_stream_ref,
          stream_ref_fields),
    EVENT(AIPC_OP_COLLECTION_CHANGED_EVENT,
          struct aipc_collection_changed_event, collection_changed_fields),
    REQUEST(AIPC_OP_PROMOTE_THREAD, struct aipc_promote_thread,
            promote_thread_fields, AIPC_OP_EMPTY_REPLY),
};

const struct aipc_protocol aipc_protocol = {
    .name = "audioipc",
    .msgs = messages,
    .count = AIPC_OP_COUNT,
    .error_opcode = AIPC_OP_ERROR,
};
