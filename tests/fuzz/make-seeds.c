/* SPDX-License-Identifier: ISC */
/*
 * Writes the seed corpus of a fuzz target, in that target's input
 * format. Regenerate with:
 *   build/tests/fuzz/make-seeds decode tests/fuzz/corpus/decode
 *   build/tests/fuzz/make-seeds client-decode tests/fuzz/corpus/client-decode
 *   build/tests/fuzz/make-seeds session tests/fuzz/corpus/session
 * (A single argument means decode, as before.)
 */
#include "../bodies.h"
#include "client-messages.h"
#include "protocol.h"
#include "stream-shm.h"
#include "wire.h"

#include <cubeb/cubeb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int
write_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
  char path[4096];
  snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len) {
    perror(path);
    if (f)
      fclose(f);
    return -1;
  }
  return fclose(f) == 0 ? 0 : -1;
}

static int
encode(uint16_t opcode, const void *body, uint8_t *buf, size_t cap)
{
  int len = test_body_encode(opcode, body, buf, cap);
  if (len < 0)
    fprintf(stderr, "%s does not encode\n",
            aipc_protocol_msg(&aipc_protocol, opcode)->name);
  return len;
}

/* --- decode: opcode, then payload ----------------------------------------- */

static int
decode_seeds(const char *dir)
{
  int r = 0;
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++) {
    _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
    uint8_t buf[AIPC_MSG_MAX_SIZE];
    test_body(op, 1, body);
    memcpy(buf, &op, 2);
    int len = encode(op, body, buf + 2, sizeof(buf) - 2);
    if (len < 0 || write_file(dir, aipc_protocol_msg(&aipc_protocol, op)->name,
                              buf, (size_t)len + 2) < 0)
      r = -1;
  }
  return r;
}

/* --- client-decode: message index, channels in and out, s16, payload ------ */

static int
client_seed(const char *dir, const char *name, uint8_t index, uint8_t in_ch,
            uint8_t out_ch, bool s16, const void *body)
{
  uint8_t buf[AIPC_MSG_MAX_SIZE];
  buf[0] = index;
  buf[1] = in_ch;
  buf[2] = out_ch;
  buf[3] = s16;
  int len = encode(client_message(index), body, buf + 4, sizeof(buf) - 4);
  return len < 0 ? -1 : write_file(dir, name, buf, (size_t)len + 4);
}

/* A region as the server lays it out for these channels. */
static int
layout_seed(const char *dir, const char *name, uint8_t index, uint8_t in_ch,
            uint8_t out_ch, bool s16, uint32_t frames)
{
  uint32_t sample = s16 ? 2 : 4;
  struct aipc_stream_layout l;
  if (aipc_stream_layout(frames, in_ch * sample, out_ch * sample, &l) < 0)
    return -1;
  struct aipc_stream_init_reply reply = {.stream = 1,
                                         .shm_size = l.size,
                                         .frames_max = l.frames_max,
                                         .input_offset = l.input_offset,
                                         .output_offset = l.output_offset};
  return client_seed(dir, name, index, in_ch, out_ch, s16, &reply);
}

static int
client_decode_seeds(const char *dir)
{
  int r = 0;
  for (uint8_t i = 0; i < client_message_count(); i++) {
    _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
    test_body(client_message(i), 1, body);
    if (client_message(i) == AIPC_OP_STREAM_INIT_REPLY) {
      r |= layout_seed(dir, "STREAM_INIT_REPLY-output", i, 0, 2, false, 512);
      r |= layout_seed(dir, "STREAM_INIT_REPLY-duplex", i, 1, 2, false, 2048);
      r |= layout_seed(dir, "STREAM_INIT_REPLY-input-s16", i, 8, 0, true, 96);
      continue;
    }
    r |= client_seed(dir,
                     aipc_protocol_msg(&aipc_protocol, client_message(i))->name,
                     i, 0, 2, false, body);
  }
  return r;
}

/* --- session: flags, then records (opcode, length, mode, payload) --------- */

struct script {
  uint8_t buf[16384];
  size_t len;
};

static void
script_start(struct script *s, uint8_t flags)
{
  s->buf[0] = flags;
  s->len = 1;
}

static void
script_raw(struct script *s, uint16_t opcode, uint8_t mode, const void *payload,
           size_t len)
{
  if (s->len + 5 + len > sizeof(s->buf))
    return;
  uint16_t len16 = (uint16_t)len;
  memcpy(s->buf + s->len, &opcode, 2);
  memcpy(s->buf + s->len + 2, &len16, 2);
  s->buf[s->len + 4] = mode;
  memcpy(s->buf + s->len + 5, payload, len);
  s->len += 5 + len;
}

static void
script_add(struct script *s, uint16_t opcode, uint8_t mode, const void *body)
{
  uint8_t payload[1024];
  int len = encode(opcode, body, payload, sizeof(payload));
  if (len >= 0)
    script_raw(s, opcode, mode, payload, (size_t)len);
}

/* A message with its template body, naming stream 1. */
static void
script_op(struct script *s, uint16_t opcode)
{
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
  test_body(opcode, 1, body);
  script_add(s, opcode, 0, body);
}

static int
script_write(const char *dir, const char *name, const struct script *s)
{
  return write_file(dir, name, s->buf, s->len);
}

static int
session_seeds(const char *dir)
{
  struct script s;
  int r = 0;

  script_start(&s, 3);
  script_op(&s, AIPC_OP_PING);
  r |= script_write(dir, "ping", &s);

  /* A stream's life, every stream request on it. */
  script_start(&s, 3);
  script_op(&s, AIPC_OP_STREAM_INIT);
  script_op(&s, AIPC_OP_STREAM_START);
  script_op(&s, AIPC_OP_STREAM_GET_POSITION);
  script_op(&s, AIPC_OP_STREAM_GET_LATENCY);
  script_op(&s, AIPC_OP_STREAM_GET_INPUT_LATENCY);
  script_op(&s, AIPC_OP_STREAM_SET_VOLUME);
  script_op(&s, AIPC_OP_STREAM_SET_NAME);
  script_op(&s, AIPC_OP_STREAM_GET_CURRENT_DEVICE);
  struct aipc_stream_register reg = {.stream = 1, .enable = 1};
  script_add(&s, AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED, 0, &reg);
  script_op(&s, AIPC_OP_STREAM_STOP);
  script_op(&s, AIPC_OP_STREAM_DESTROY);
  script_op(&s, AIPC_OP_STREAM_DESTROY);
  r |= script_write(dir, "stream-life", &s);

  /* Context requests, devices and tokens. */
  script_start(&s, 3);
  script_op(&s, AIPC_OP_GET_MAX_CHANNEL_COUNT);
  script_op(&s, AIPC_OP_GET_MIN_LATENCY);
  script_op(&s, AIPC_OP_GET_PREFERRED_SAMPLE_RATE);
  struct aipc_enumerate_devices both = {.type = 3};
  script_add(&s, AIPC_OP_ENUMERATE_DEVICES, 0, &both);
  struct aipc_register_collection_changed coll = {.type = 3, .enable = 1};
  script_add(&s, AIPC_OP_REGISTER_COLLECTION_CHANGED, 0, &coll);
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
  test_body(AIPC_OP_STREAM_INIT, 1, body);
  struct aipc_stream_init *q = (struct aipc_stream_init *)body;
  q->output_device = 1;
  script_add(&s, AIPC_OP_STREAM_INIT, 0, q);
  q->output_device = 99;
  script_add(&s, AIPC_OP_STREAM_INIT, 0, q);
  r |= script_write(dir, "devices", &s);

  /* A duplex stream that starts, and a client that leaves it running. */
  script_start(&s, 3);
  test_body(AIPC_OP_STREAM_INIT, 1, body);
  q->has_input = 1;
  q->in_format = CUBEB_SAMPLE_FLOAT32NE;
  q->in_rate = 48000;
  q->in_channels = 1;
  q->in_layout = CUBEB_LAYOUT_MONO;
  script_add(&s, AIPC_OP_STREAM_INIT, 0, q);
  script_op(&s, AIPC_OP_STREAM_START);
  script_op(&s, AIPC_OP_STREAM_GET_INPUT_LATENCY);
  r |= script_write(dir, "duplex-left-running", &s);

  /* Every message, requests or not, as the second message. */
  script_start(&s, 3);
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++)
    script_op(&s, op);
  r |= script_write(dir, "every-opcode", &s);

  /* The handshake by hand, and its failures. */
  script_start(&s, 0);
  script_op(&s, AIPC_OP_HELLO);
  script_op(&s, AIPC_OP_CONTEXT_INIT);
  script_op(&s, AIPC_OP_CONTEXT_INIT);
  script_op(&s, AIPC_OP_HELLO);
  r |= script_write(dir, "handshake", &s);
  script_start(&s, 0);
  script_op(&s, AIPC_OP_PING);
  r |= script_write(dir, "no-hello", &s);
  script_start(&s, 0);
  struct aipc_hello old = {AIPC_PROTOCOL_VERSION + 1, "9.9.9", "future"};
  script_add(&s, AIPC_OP_HELLO, 0, &old);
  r |= script_write(dir, "wrong-version", &s);
  script_start(&s, 1);
  script_op(&s, AIPC_OP_STREAM_INIT);
  script_op(&s, AIPC_OP_CONTEXT_INIT);
  script_op(&s, AIPC_OP_STREAM_INIT);
  r |= script_write(dir, "before-context", &s);

  /* Spoiled headers, one way each. */
  static const struct {
    const char *name;
    uint8_t mode;
  } spoiled[] = {
      {"serial-0", 1}, {"flags", 2}, {"size", 4}, {"fd", 8}, {"nfds", 16}};
  for (size_t i = 0; i < sizeof(spoiled) / sizeof(spoiled[0]); i++) {
    char name[64];
    snprintf(name, sizeof(name), "spoiled-%s", spoiled[i].name);
    script_start(&s, 3);
    struct aipc_ping ping = {.value = 5};
    script_add(&s, AIPC_OP_PING, spoiled[i].mode, &ping);
    r |= script_write(dir, name, &s);
  }
  /* A raw packet: a header of our own making. */
  script_start(&s, 3);
  uint8_t packet[sizeof(struct aipc_msg_header) + 8] = {0};
  struct aipc_msg_header h = {.size = 8, .opcode = AIPC_OP_PING, .serial = 40};
  memcpy(packet, &h, sizeof(h));
  script_raw(&s, 0, 32, packet, sizeof(packet));
  script_op(&s, AIPC_OP_PING);
  r |= script_write(dir, "raw-packet", &s);

  /* Streams up to the limit of one client. */
  script_start(&s, 3);
  for (int i = 0; i < 66; i++)
    script_op(&s, AIPC_OP_STREAM_INIT);
  r |= script_write(dir, "many-streams", &s);
  return r;
}

int
main(int argc, char **argv)
{
  const char *target = argc == 3 ? argv[1] : "decode";
  const char *dir = argv[argc - 1];
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s [decode|client-decode|session] CORPUS-DIR\n",
            argv[0]);
    return 2;
  }
  int r;
  if (strcmp(target, "decode") == 0)
    r = decode_seeds(dir);
  else if (strcmp(target, "client-decode") == 0)
    r = client_decode_seeds(dir);
  else if (strcmp(target, "session") == 0)
    r = session_seeds(dir);
  else {
    fprintf(stderr, "unknown target %s\n", target);
    return 2;
  }
  return r ? 1 : 0;
}
