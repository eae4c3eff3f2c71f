/* SPDX-License-Identifier: ISC */
/*
 * Stateful fuzz target: one real server session per input.
 *
 * An audioipc server on the virtual device starts once per process (with
 * one idle client that keeps the device open). Each input gets a fresh
 * connection from audioipc_server_new_client; its messages are written
 * one at a time, and each must be answered (a reply or an ERROR with its
 * serial) or the connection dropped within a deadline: a hang is a
 * finding, like a crash. The shared memory of every stream the server
 * creates is mapped and a responder thread answers its requests, as a
 * client's callback thread would, so started streams really run. After
 * the input the connection closes and the target waits until the server
 * has destroyed every stream of it, so inputs do not pile up.
 *
 * Input: byte 0: bit 0 sends a valid HELLO first, bit 1 then a valid
 * CONTEXT_INIT. Then records, each: u16 opcode, u16 payload length, u8
 * mode, the payload (cut short at the end of the input). The header is
 * built to match unless the mode spoils it: 1 serial 0, 2 flags set,
 * 4 size one more than the payload, 8 an fd attached (and counted),
 * 16 nfds 1 and no fd, 32 the payload is sent as the whole packet.
 */
#include "audioipc/server.h"
#include "clock.h"
#include "protocol.h"
#include "shm.h"
#include "stream-shm.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BACKEND "virtual:clock=realtime,rate=48000,channels=2,period=256"
#define ANSWER_TIMEOUT_MS 5000
#define TEARDOWN_TIMEOUT_MS 10000
#define RECORDS_MAX 128
#define REGIONS_MAX 64

enum {
  MODE_SERIAL_0 = 1,
  MODE_FLAGS = 2,
  MODE_SIZE = 4,
  MODE_FD = 8,
  MODE_NFDS = 16,
  MODE_RAW = 32,
};

/* --- The responder: a client's callback threads, for every stream ------- */

struct region {
  struct aipc_shm shm;
  uint32_t frames_max;
  uint32_t last;
};

static struct {
  pthread_mutex_t lock;
  struct region regions[REGIONS_MAX];
  int count;
  atomic_bool quit;
  pthread_t thread;
} responder = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *
respond(void *data)
{
  (void)data;
  while (!atomic_load(&responder.quit)) {
    pthread_mutex_lock(&responder.lock);
    for (int i = 0; i < responder.count; i++) {
      struct region *r = &responder.regions[i];
      struct aipc_stream_ctl *ctl = r->shm.base;
      uint32_t seq = aipc_wake_load(&ctl->request);
      if (seq == r->last)
        continue;
      r->last = seq;
      uint32_t frames = atomic_load(&ctl->frames);
      atomic_store(&ctl->result,
                   (int32_t)(frames < r->frames_max ? frames : r->frames_max));
      aipc_wake_publish(&ctl->response, seq);
    }
    pthread_mutex_unlock(&responder.lock);
    struct timespec ts = {.tv_nsec = 200 * 1000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

/* Takes fd. */
static void
map_region(int fd, const struct aipc_stream_init_reply *reply)
{
  struct region r = {.frames_max = reply->frames_max};
  if (aipc_shm_import(fd, reply->shm_size, &r.shm) < 0)
    abort(); /* the server sent a region that is not what it says */
  aipc_shm_close_fd(&r.shm);
  pthread_mutex_lock(&responder.lock);
  if (responder.count < REGIONS_MAX)
    responder.regions[responder.count++] = r;
  else
    aipc_shm_release(&r.shm);
  pthread_mutex_unlock(&responder.lock);
}

static void
unmap_regions(void)
{
  pthread_mutex_lock(&responder.lock);
  for (int i = 0; i < responder.count; i++)
    aipc_shm_release(&responder.regions[i].shm);
  responder.count = 0;
  pthread_mutex_unlock(&responder.lock);
}

/* --- The server ---------------------------------------------------------- */

static void *server;
static int anchor = -1; /* an idle client holding the virtual device */

static int64_t
now_ms(void)
{
  return aipc_now_ns() / AIPC_NSEC_PER_MSEC;
}

static void
finish(void)
{
  atomic_store(&responder.quit, true);
  pthread_join(responder.thread, NULL);
  unmap_regions();
  if (anchor >= 0)
    close(anchor);
  audioipc_server_stop(server);
}

static int
send_packet(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    memset(&control, 0, sizeof(control));
    mh.msg_control = control.buf;
    mh.msg_controllen = sizeof(control.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), fds, sizeof(int));
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return -errno;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, ANSWER_TIMEOUT_MS) == 0) {
      fprintf(stderr, "fuzz-session: the server stopped reading\n");
      abort();
    }
  }
}

/*
 * Reads until the answer to `serial` (0: none expected, only a hang-up)
 * arrives or the server hangs up; maps the regions of STREAM_INIT
 * replies. Answers to other serials are a finding unless `lax` (after a
 * raw packet, which may hold any serial). Returns false once the
 * connection is gone.
 */
static bool
await_answer(int fd, uint32_t serial, bool lax)
{
  static uint8_t buf[AIPC_MSG_MAX_SIZE];
  int64_t deadline = now_ms() + ANSWER_TIMEOUT_MS;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t left = deadline - now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) == 0) {
      fprintf(stderr,
              "fuzz-session: no answer to #%u and no hang-up in %d ms\n",
              serial, ANSWER_TIMEOUT_MS);
      abort();
    }
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int) * AIPC_MSG_MAX_FDS)];
    } control;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof(control.buf)};
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0)
      return false;
    int fds[AIPC_MSG_MAX_FDS], nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count && nfds < AIPC_MSG_MAX_FDS; i++)
        memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    /* The server's own messages must be well-formed. */
    struct aipc_msg_header h;
    if ((size_t)n < sizeof(h))
      abort();
    memcpy(&h, buf, sizeof(h));
    const struct aipc_msg_desc *desc =
        aipc_protocol_msg(&aipc_protocol, h.opcode);
    _Alignas(max_align_t) uint8_t decoded[AIPC_MSG_DECODED_MAX];
    if (h.size != (size_t)n - sizeof(h) || h.nfds != nfds || !desc ||
        desc->kind == AIPC_MSG_REQUEST || desc->nfds != h.nfds ||
        aipc_record_decode(&desc->record, buf + sizeof(h), h.size, decoded))
      abort();
    if (desc->kind == AIPC_MSG_EVENT)
      continue;
    if (h.serial != serial && !lax)
      abort(); /* an answer to a request we did not make */
    if (h.opcode == AIPC_OP_STREAM_INIT_REPLY)
      map_region(fds[0], (const void *)decoded);
    else
      for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (h.serial == serial)
      return true;
  }
}

static uint32_t
send_body(int fd, uint16_t opcode, uint32_t serial, const void *body)
{
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  uint8_t packet[1024];
  struct aipc_msg_header h = {.opcode = opcode, .serial = serial};
  int len = aipc_record_encode(&desc->record, body, packet + sizeof(h),
                               sizeof(packet) - sizeof(h));
  if (len < 0)
    abort();
  h.size = (uint32_t)len;
  memcpy(packet, &h, sizeof(h));
  send_packet(fd, packet, sizeof(h) + (size_t)len, NULL, 0);
  return serial;
}

static void
start_server(void)
{
  server = audioipc_server_start("fuzz-session", BACKEND, NULL);
  if (!server)
    abort();
  if (pthread_create(&responder.thread, NULL, respond, NULL) != 0)
    abort();
  anchor = audioipc_server_new_client(server, 0);
  struct aipc_hello hello = {AIPC_PROTOCOL_VERSION, "fuzz", "anchor"};
  struct aipc_context_init init = {"anchor"};
  if (anchor < 0 ||
      !await_answer(anchor, send_body(anchor, AIPC_OP_HELLO, 1, &hello),
                    false) ||
      !await_answer(anchor, send_body(anchor, AIPC_OP_CONTEXT_INIT, 2, &init),
                    false))
    abort();
  atexit(finish);
}

/* Waits until the server has destroyed every stream (the anchor has
 * none), so one input's teardown does not overlap the next's work. */
static void
await_teardown(void)
{
  int64_t deadline = now_ms() + TEARDOWN_TIMEOUT_MS;
  for (;;) {
    AudioIpcStreamStats first;
    int n = audioipc_server_get_stream_stats(server, &first, 1);
    if (n <= 0 || !first.active)
      return;
    if (now_ms() > deadline) {
      fprintf(stderr,
              "fuzz-session: streams still live %d ms after the "
              "client left\n",
              TEARDOWN_TIMEOUT_MS);
      abort();
    }
    struct timespec ts = {.tv_nsec = 100 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* --- One input ------------------------------------------------------------ */

/* Sends one record and waits for its answer. After a raw packet (which
 * may carry any serial, ours included) answers are matched laxly. */
static bool
send_record(int fd, uint32_t *serial, bool *lax, uint16_t opcode, uint8_t mode,
            const uint8_t *payload, size_t len)
{
  static uint8_t packet[AIPC_MSG_MAX_SIZE + 64];
  uint32_t s = ++*serial;
  if (mode & MODE_RAW) {
    *lax = true;
    if (send_packet(fd, payload, len, NULL, 0) < 0)
      return false;
    /* Whatever the server made of it, a PING tells where we stand. */
    struct aipc_ping ping = {.value = 1};
    return await_answer(fd, send_body(fd, AIPC_OP_PING, ++*serial, &ping),
                        true);
  }
  struct aipc_msg_header h = {.size =
                                  (uint32_t)len + (mode & MODE_SIZE ? 1 : 0),
                              .opcode = opcode,
                              .flags = mode & MODE_FLAGS ? 1 : 0,
                              .serial = mode & MODE_SERIAL_0 ? 0 : s,
                              .nfds = mode & (MODE_FD | MODE_NFDS) ? 1 : 0};
  memcpy(packet, &h, sizeof(h));
  memcpy(packet + sizeof(h), payload, len);
  int pipe_fds[2] = {-1, -1};
  if ((mode & MODE_FD) && pipe2(pipe_fds, O_CLOEXEC) < 0)
    abort();
  int r = send_packet(fd, packet, sizeof(h) + len, pipe_fds,
                      mode & MODE_FD ? 1 : 0);
  if (pipe_fds[0] >= 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
  }
  if (r < 0)
    return false;
  return await_answer(fd, h.serial, *lax);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!server)
    start_server();
  if (size < 1)
    return 0;
  int fd = audioipc_server_new_client(server, 0);
  if (fd < 0)
    abort();
  uint32_t serial = 0;
  bool alive = true, lax = false;
  if (data[0] & 1) {
    struct aipc_hello hello = {AIPC_PROTOCOL_VERSION, "fuzz", "fuzz"};
    alive =
        await_answer(fd, send_body(fd, AIPC_OP_HELLO, ++serial, &hello), false);
    if (alive && (data[0] & 2)) {
      struct aipc_context_init init = {"fuzz"};
      alive = await_answer(
          fd, send_body(fd, AIPC_OP_CONTEXT_INIT, ++serial, &init), false);
    }
  }
  size_t pos = 1;
  for (int i = 0; alive && i < RECORDS_MAX && size - pos >= 5; i++) {
    uint16_t opcode, len;
    memcpy(&opcode, data + pos, 2);
    memcpy(&len, data + pos + 2, 2);
    uint8_t mode = data[pos + 4];
    pos += 5;
    size_t n = len < size - pos ? len : size - pos;
    alive = send_record(fd, &serial, &lax, opcode, mode, data + pos, n);
    pos += n;
  }
  close(fd);
  await_teardown();
  unmap_regions();
  return 0;
}
