/* SPDX-License-Identifier: ISC */
/*
 * The audioipc protocol: every message the client and server exchange,
 * its opcode, and its decoded C struct. The descriptions themselves are
 * in protocol.c, in one table.
 */
#ifndef AIPC_PROTOCOL_H
#define AIPC_PROTOCOL_H

#include "wire.h"

#define AIPC_NAME_MAX 255
#define AIPC_DEVICES_MAX 128

enum aipc_opcode {
  AIPC_OP_HELLO,
  AIPC_OP_HELLO_REPLY,
  AIPC_OP_ERROR,
  AIPC_OP_PING,
  AIPC_OP_PING_REPLY,
  /* Replies shared by several requests. */
  AIPC_OP_EMPTY_REPLY,
  AIPC_OP_U32_REPLY,
  AIPC_OP_U64_REPLY,
  /* Context requests. */
  AIPC_OP_CONTEXT_INIT,
  AIPC_OP_CONTEXT_INIT_REPLY,
  AIPC_OP_GET_MAX_CHANNEL_COUNT,
  AIPC_OP_GET_MIN_LATENCY,
  AIPC_OP_GET_PREFERRED_SAMPLE_RATE,
  AIPC_OP_ENUMERATE_DEVICES,
  AIPC_OP_DEVICES_REPLY,
  AIPC_OP_REGISTER_COLLECTION_CHANGED,
  /* Stream requests. */
  AIPC_OP_STREAM_INIT,
  AIPC_OP_STREAM_INIT_REPLY,
  AIPC_OP_STREAM_DESTROY,
  AIPC_OP_STREAM_START,
  AIPC_OP_STREAM_STOP,
  AIPC_OP_STREAM_GET_POSITION,
  AIPC_OP_STREAM_GET_LATENCY,
  AIPC_OP_STREAM_GET_INPUT_LATENCY,
  AIPC_OP_STREAM_SET_VOLUME,
  AIPC_OP_STREAM_SET_NAME,
  AIPC_OP_STREAM_GET_CURRENT_DEVICE,
  AIPC_OP_CURRENT_DEVICE_REPLY,
  AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED,
  /* Events. */
  AIPC_OP_STREAM_STATE_EVENT,
  AIPC_OP_STREAM_DEVICE_CHANGED_EVENT,
  AIPC_OP_COLLECTION_CHANGED_EVENT,
  /* Thread requests. */
  AIPC_OP_PROMOTE_THREAD,
  AIPC_OP_COUNT,
};

/* The first request on a connection. */
struct aipc_hello {
  uint32_t version; /* AIPC_PROTOCOL_VERSION */
  const char *library_version;
  const char *name; /* the client's context name, for logs */
};

struct aipc_hello_reply {
  uint32_t version;
  const char *library_version;
};

/* The reply to a request that failed: a negative errno. */
struct aipc_error {
  int32_t error;
};

/* Echoes `value`; used to measure round trips and check liveness. */
struct aipc_ping {
  uint64_t value;
};

struct aipc_empty {
  uint8_t unused;
};

struct aipc_u32 {
  uint32_t value;
};

struct aipc_u64 {
  uint64_t value;
};

struct aipc_context_init {
  const char *name;
};

struct aipc_context_init_reply {
  const char *backend_id;
};

/* cubeb_stream_params, field for field. */
struct aipc_stream_params {
  uint32_t format; /* cubeb_sample_format */
  uint32_t rate;
  uint32_t channels;
  uint32_t layout; /* cubeb_channel_layout */
  uint32_t prefs;  /* cubeb_stream_prefs */
};

/* The parameters of GET_MIN_LATENCY. */
struct aipc_min_latency {
  uint32_t format, rate, channels, layout, prefs;
};

struct aipc_enumerate_devices {
  uint32_t type; /* cubeb_device_type bits */
};

/* One cubeb_device_info. `token` stands for the devid: the server keeps
 * the map, per client. */
struct aipc_device {
  uint64_t token;
  const char *device_id;
  const char *friendly_name;
  const char *group_id;
  const char *vendor_name;
  uint32_t type, state, preferred, format, default_format;
  uint32_t max_channels, default_rate, max_rate, min_rate;
  uint32_t latency_lo, latency_hi;
};

struct aipc_devices_reply {
  struct aipc_array devices; /* of struct aipc_device */
};

struct aipc_register_collection_changed {
  uint32_t type;   /* cubeb_device_type bits */
  uint32_t enable; /* 0 or 1 */
};

struct aipc_stream_init {
  const char *name;
  uint64_t input_device; /* token, 0 for the default */
  uint64_t output_device;
  uint32_t has_input, has_output; /* 0 or 1 */
  uint32_t in_format, in_rate, in_channels, in_layout, in_prefs;
  uint32_t out_format, out_rate, out_channels, out_layout, out_prefs;
  uint32_t latency_frames;
};

/* Carries the stream's shared memory fd. */
struct aipc_stream_init_reply {
  uint32_t stream;
  uint32_t shm_size;
  uint32_t frames_max; /* frames per request at most, or the ring's */
  uint32_t input_offset, output_offset;
  uint32_t buffered; /* 1: render-ahead (a ring, see stream-shm.h) */
};

struct aipc_stream_ref {
  uint32_t stream;
};

struct aipc_stream_volume {
  uint32_t stream;
  float volume;
};

struct aipc_stream_name {
  uint32_t stream;
  const char *name;
};

struct aipc_current_device_reply {
  const char *output_name;
  const char *input_name;
};

struct aipc_stream_register {
  uint32_t stream;
  uint32_t enable;
};

struct aipc_stream_state_event {
  uint32_t stream;
  uint32_t state; /* cubeb_state */
};

struct aipc_collection_changed_event {
  uint32_t type;
};

/* Asks the server to give one of the client's threads real-time priority
 * (see audioipc_server_new_client_for_pid); answered with EMPTY_REPLY. */
struct aipc_promote_thread {
  uint32_t tid; /* a thread of the client's process, as gettid() names it */
};

extern const struct aipc_protocol aipc_protocol;

#endif
