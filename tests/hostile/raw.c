/* SPDX-License-Identifier: ISC */
#include "raw.h"

#include "../runner.h"

#include <cubeb/cubeb.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

union control {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int) * AIPC_MSG_MAX_FDS)];
};

void
raw_init(struct raw *r, int fd)
{
  CHECK(fd >= 0);
  *r = (struct raw){.fd = fd};
}

void
raw_close(struct raw *r)
{
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
}

int
raw_send_packet(struct raw *r, const void *packet, size_t len, const int *fds,
                unsigned nfds)
{
  struct iovec iov = {.iov_base = (void *)packet, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  char control[CMSG_SPACE(sizeof(int) * 256)];
  if (nfds) {
    CHECK(nfds <= 256);
    memset(control, 0, sizeof(control));
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = sendmsg(r->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return -errno;
    struct pollfd p = {.fd = r->fd, .events = POLLOUT};
    int ready = poll(&p, 1, RAW_TIMEOUT_MS);
    if (ready == 0)
      test_fail(__FILE__, __LINE__, "the server stopped reading for %d ms",
                RAW_TIMEOUT_MS);
  }
}

uint32_t
raw_send(struct raw *r, uint16_t opcode, uint32_t serial, const void *payload,
         size_t len)
{
  uint8_t packet[AIPC_MSG_MAX_SIZE + 64];
  CHECK(len + sizeof(struct aipc_msg_header) <= sizeof(packet));
  if (!serial) {
    serial = ++r->serial;
    if (!serial)
      serial = ++r->serial;
  }
  struct aipc_msg_header h = {
      .size = (uint32_t)len, .opcode = opcode, .serial = serial};
  memcpy(packet, &h, sizeof(h));
  if (len)
    memcpy(packet + sizeof(h), payload, len);
  raw_send_packet(r, packet, sizeof(h) + len, NULL, 0);
  return serial;
}

uint32_t
raw_send_body(struct raw *r, uint16_t opcode, const void *body)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  CHECK(desc != NULL);
  uint8_t payload[AIPC_MSG_MAX_SIZE];
  int len = aipc_record_encode(&desc->record, body, payload, sizeof(payload));
  CHECK(len >= 0);
  return raw_send(r, opcode, 0, payload, (size_t)len);
}

void
raw_msg_close_fds(struct raw_msg *m)
{
  for (unsigned i = 0; i < m->nfds; i++)
    if (m->fds[i] >= 0)
      close(m->fds[i]);
  m->nfds = 0;
}

int
raw_recv(struct raw *r, struct raw_msg *m, int timeout_ms)
{
  struct pollfd p = {.fd = r->fd, .events = POLLIN};
  int ready;
  do {
    ready = poll(&p, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  CHECK(ready >= 0);
  if (ready == 0)
    return -ETIMEDOUT;

  uint8_t buf[AIPC_MSG_MAX_SIZE];
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
  union control control;
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  ssize_t n;
  do {
    n = recvmsg(r->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN)
    return raw_recv(r, m, timeout_ms);
  if (n <= 0) {
    /* A hang-up; ECONNRESET counts as one too. */
    CHECK(n == 0 || errno == ECONNRESET);
    r->closed = true;
    return 0;
  }
  m->nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    CHECK(c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS);
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      CHECK(m->nfds < AIPC_MSG_MAX_FDS);
      memcpy(&m->fds[m->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
  }
  /* The server's messages are well-formed: that is checked here too. */
  CHECK(!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));
  CHECK((size_t)n >= sizeof(m->h));
  memcpy(&m->h, buf, sizeof(m->h));
  m->len = (size_t)n - sizeof(m->h);
  CHECK_INT(m->h.size, ==, m->len);
  CHECK_INT(m->h.nfds, ==, m->nfds);
  memcpy(m->payload, buf + sizeof(m->h), m->len);
  return 1;
}

enum raw_outcome
raw_wait(struct raw *r, uint32_t serial, struct raw_msg *m, int *error)
{
  for (;;) {
    int got = raw_recv(r, m, RAW_TIMEOUT_MS);
    if (got == -ETIMEDOUT)
      test_fail(__FILE__, __LINE__,
                "no answer to request #%u and no hang-up in %d ms", serial,
                RAW_TIMEOUT_MS);
    if (got == 0)
      return RAW_DROPPED;
    const struct aipc_msg_desc *desc =
        aipc_protocol_msg(&aipc_protocol, m->h.opcode);
    CHECK(desc != NULL && desc->kind != AIPC_MSG_REQUEST);
    if (desc->kind == AIPC_MSG_EVENT) {
      CHECK_INT(m->h.serial, ==, 0);
      r->events++;
      struct aipc_stream_state_event ev;
      if (m->h.opcode == AIPC_OP_STREAM_STATE_EVENT &&
          aipc_record_decode(&desc->record, m->payload, m->len, &ev) == 0 &&
          ev.state == CUBEB_STATE_ERROR)
        r->error_events++;
      raw_msg_close_fds(m);
      continue;
    }
    if (m->h.serial != serial && r->lax) {
      r->stray++;
      raw_msg_close_fds(m);
      continue;
    }
    if (m->h.serial != serial)
      test_fail(__FILE__, __LINE__, "answer to #%u while waiting for #%u",
                m->h.serial, serial);
    if (m->h.opcode == AIPC_OP_ERROR) {
      struct aipc_error e;
      CHECK_INT(aipc_record_decode(&desc->record, m->payload, m->len, &e), ==,
                0);
      raw_msg_close_fds(m);
      if (error)
        *error = e.error;
      return RAW_ERROR;
    }
    return RAW_OK;
  }
}

int
raw_call(struct raw *r, uint16_t opcode, const void *body, void *reply, int *fd)
{
  struct raw_msg m;
  uint32_t serial = raw_send_body(r, opcode, body);
  int error = 0;
  switch (raw_wait(r, serial, &m, &error)) {
  case RAW_ERROR:
    return error;
  case RAW_DROPPED:
    return -ECONNRESET;
  case RAW_OK:
    break;
  }
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  CHECK_INT(m.h.opcode, ==, desc->reply);
  const struct aipc_msg_desc *reply_desc =
      aipc_protocol_msg(&aipc_protocol, desc->reply);
  _Alignas(max_align_t) uint8_t scratch[AIPC_MSG_DECODED_MAX];
  CHECK_INT(aipc_record_decode(&reply_desc->record, m.payload, m.len,
                               reply ? reply : scratch),
            ==, 0);
  CHECK_INT(m.nfds, ==, reply_desc->nfds);
  if (fd && m.nfds) {
    *fd = m.fds[0];
    m.fds[0] = -1;
  }
  raw_msg_close_fds(&m);
  return 0;
}

void
raw_greet(struct raw *r)
{
  struct aipc_hello hello = {.version = AIPC_PROTOCOL_VERSION,
                             .library_version = "hostile",
                             .name = "hostile"};
  struct aipc_hello_reply reply;
  CHECK_INT(raw_call(r, AIPC_OP_HELLO, &hello, &reply, NULL), ==, 0);
  CHECK_INT(reply.version, ==, AIPC_PROTOCOL_VERSION);
  struct aipc_context_init init = {.name = "hostile"};
  CHECK_INT(raw_call(r, AIPC_OP_CONTEXT_INIT, &init, NULL, NULL), ==, 0);
}

void
raw_expect_hangup(struct raw *r)
{
  struct raw_msg m;
  for (;;) {
    int got = raw_recv(r, &m, RAW_TIMEOUT_MS);
    if (got == -ETIMEDOUT)
      test_fail(__FILE__, __LINE__, "the server did not hang up in %d ms",
                RAW_TIMEOUT_MS);
    if (got == 0)
      return;
    raw_msg_close_fds(&m);
  }
}

struct aipc_stream_init
raw_output_stream(uint32_t rate, uint32_t latency)
{
  return (struct aipc_stream_init){.name = "raw",
                                   .has_output = 1,
                                   .out_format = CUBEB_SAMPLE_FLOAT32NE,
                                   .out_rate = rate,
                                   .out_channels = 2,
                                   .out_layout = CUBEB_LAYOUT_STEREO,
                                   .latency_frames = latency};
}

int
raw_stream_init(struct raw *r, const struct aipc_stream_init *q,
                struct aipc_stream_init_reply *reply, int *fd)
{
  struct aipc_stream_init_reply local;
  int shm = -1;
  int e = raw_call(r, AIPC_OP_STREAM_INIT, q, reply ? reply : &local, &shm);
  if (e < 0)
    return e;
  CHECK(shm >= 0);
  if (fd)
    *fd = shm;
  else
    close(shm);
  return (int)(reply ? reply : &local)->stream;
}

int
raw_stream_call(struct raw *r, uint16_t opcode, uint32_t stream)
{
  struct aipc_stream_ref ref = {.stream = stream};
  return raw_call(r, opcode, &ref, NULL, NULL);
}

int
raw_list_devices(struct raw *r, struct raw_device *out, int max)
{
  struct aipc_enumerate_devices e = {.type = CUBEB_DEVICE_TYPE_OUTPUT |
                                             CUBEB_DEVICE_TYPE_INPUT};
  uint32_t serial = raw_send_body(r, AIPC_OP_ENUMERATE_DEVICES, &e);
  struct raw_msg m;
  CHECK(raw_wait(r, serial, &m, NULL) == RAW_OK);
  struct aipc_devices_reply reply;
  const struct aipc_msg_desc *d =
      aipc_protocol_msg(&aipc_protocol, AIPC_OP_DEVICES_REPLY);
  CHECK_INT(aipc_record_decode(&d->record, m.payload, m.len, &reply), ==, 0);
  struct aipc_array_iter it = {0};
  struct aipc_device dev;
  int n = 0;
  while (aipc_array_next(&reply.devices, &it, &dev) && n < max) {
    out[n] = (struct raw_device){
        .token = dev.token, .type = dev.type, .preferred = dev.preferred};
    snprintf(out[n].id, sizeof(out[n].id), "%s",
             dev.device_id ? dev.device_id : "");
    n++;
  }
  return n;
}

uint64_t
raw_rand(uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * UINT64_C(2685821657736338717);
}
