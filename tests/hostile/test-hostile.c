/* SPDX-License-Identifier: ISC */
/*
 * Hostile clients, on the wire: a raw connection in the test process
 * sends the server garbage, malformed and out-of-order messages, fds,
 * absurd parameters and floods, while an honest client process plays
 * through libcubeb on the same server. Every case checks that each
 * hostile message got an error reply or the connection was dropped, and
 * then (fixture_check) that the server still serves, the honest stream
 * missed nothing, and the server's fds and heap came back to baseline.
 *
 * Shared-memory tampering, faults and limits are in the other hostile-*.c
 * files of this program.
 */
#include "fixture.h"
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- Random bytes --------------------------------------------------------- */

static size_t
random_size(uint64_t *rng)
{
  switch (raw_rand(rng) % 4) {
  case 0:
    return raw_rand(rng) % 24;
  case 1:
    return raw_rand(rng) % 512;
  case 2:
    return raw_rand(rng) % 4096;
  default:
    return raw_rand(rng) % (AIPC_MSG_MAX_SIZE + 8192);
  }
}

static void
fill_random(uint64_t *rng, uint8_t *buf, size_t len)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)raw_rand(rng);
}

/* A PING after each random packet: the server either answers it (it
 * kept the connection and is responsive) or has hung up. */
static void
random_packets(struct fixture *f, struct tally *t, uint64_t seed, int count)
{
  static uint8_t packet[AIPC_MSG_MAX_SIZE + 8192];
  uint64_t rng = seed;
  struct raw r = {.fd = -1};
  for (int i = 0; i < count; i++) {
    if (r.fd < 0 || r.closed) {
      raw_close(&r);
      fixture_connect(f, &r, NULL);
      r.lax = true;
      if (raw_rand(&rng) % 2)
        raw_greet(&r);
    }
    size_t len = random_size(&rng);
    fill_random(&rng, packet, len);
    t->sent++;
    if (raw_send_packet(&r, packet, len, NULL, 0) < 0) {
      t->drops++;
      r.closed = true;
      continue;
    }
    struct aipc_ping ping = {.value = (uint64_t)i};
    uint32_t serial = raw_send_body(&r, AIPC_OP_PING, &ping);
    struct raw_msg m;
    enum raw_outcome o = raw_wait(&r, serial, &m, NULL);
    if (o == RAW_DROPPED)
      t->drops++;
    else
      t->ok++;
    if (o == RAW_OK)
      raw_msg_close_fds(&m);
  }
  raw_close(&r);
}

/* Well-formed headers (so they reach the dispatcher) with a random
 * opcode and payload, on a greeted connection. */
static void
random_messages(struct fixture *f, struct tally *t, uint64_t seed, int count)
{
  static uint8_t payload[1024];
  uint64_t rng = seed;
  struct raw r = {.fd = -1};
  for (int i = 0; i < count; i++) {
    if (r.fd < 0 || r.closed) {
      raw_close(&r);
      fixture_connect(f, &r, NULL);
      raw_greet(&r);
    }
    uint16_t opcode = (uint16_t)(raw_rand(&rng) % (AIPC_OP_COUNT + 4));
    size_t len = raw_rand(&rng) % 4 == 0 ? raw_rand(&rng) % 16
                                         : raw_rand(&rng) % sizeof(payload);
    fill_random(&rng, payload, len);
    uint32_t serial = raw_send(&r, opcode, 0, payload, len);
    struct raw_msg m;
    t->sent++;
    switch (raw_wait(&r, serial, &m, NULL)) {
    case RAW_OK:
      t->ok++;
      raw_msg_close_fds(&m);
      break;
    case RAW_ERROR:
      t->errors++;
      break;
    case RAW_DROPPED:
      t->drops++;
      break;
    }
  }
  raw_close(&r);
}

TEST(hostile_random_bytes_and_sizes)
{
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  random_packets(&f, &t, 1, 20);
  random_messages(&f, &t, 2, 50);
  fixture_baseline(&f);

  t = (struct tally){0};
  random_packets(&f, &t, 0x5eed0001, 300);
  tally_print(&t, "random packets");
  t = (struct tally){0};
  random_messages(&f, &t, 0x5eed0002, 2000);
  tally_print(&t, "random opcodes and payloads");
  fixture_check(&f, "random bytes and sizes");
  fixture_finish(&f);
}

/* --- Every opcode, malformed ---------------------------------------------- */

#define BAD_MAX 320
#define BAD_VARIANTS 8

struct bad {
  uint8_t bytes[BAD_MAX];
  size_t len;
};

static void
bad_number(struct bad *b, enum aipc_field_type type, uint64_t bits)
{
  switch (type) {
  case AIPC_FIELD_U8: {
    uint8_t v = (uint8_t)bits;
    memcpy(b->bytes, &v, b->len = sizeof(v));
    break;
  }
  case AIPC_FIELD_U16: {
    uint16_t v = (uint16_t)bits;
    memcpy(b->bytes, &v, b->len = sizeof(v));
    break;
  }
  case AIPC_FIELD_U32:
  case AIPC_FIELD_I32: {
    uint32_t v = (uint32_t)bits;
    memcpy(b->bytes, &v, b->len = sizeof(v));
    break;
  }
  default:
    memcpy(b->bytes, &bits, b->len = sizeof(bits));
    break;
  }
}

static void
bad_float(struct bad *b, float v)
{
  memcpy(b->bytes, &v, b->len = sizeof(v));
}

/* A string field's wire form: a u16 length, then `n` bytes of `s`. */
static void
bad_string(struct bad *b, uint16_t length, const char *s, size_t n)
{
  memcpy(b->bytes, &length, 2);
  memcpy(b->bytes + 2, s, n);
  b->len = 2 + n;
}

/* Encodings of field `f` that its bounds refuse. Returns how many. */
static int
bad_variants(const struct aipc_field *f, struct bad out[BAD_VARIANTS])
{
  int n = 0;
  switch (f->type) {
  case AIPC_FIELD_U8:
  case AIPC_FIELD_U16:
  case AIPC_FIELD_U32:
  case AIPC_FIELD_U64: {
    int width = f->type == AIPC_FIELD_U8    ? 8
                : f->type == AIPC_FIELD_U16 ? 16
                : f->type == AIPC_FIELD_U32 ? 32
                                            : 64;
    uint64_t type_max = width == 64 ? UINT64_MAX : (UINT64_C(1) << width) - 1;
    if (f->min > 0)
      bad_number(&out[n++], f->type, (uint64_t)f->min - 1);
    if ((uint64_t)f->max < type_max)
      bad_number(&out[n++], f->type, (uint64_t)f->max + 1);
    if ((uint64_t)f->max < type_max)
      bad_number(&out[n++], f->type, type_max);
    break;
  }
  case AIPC_FIELD_I32:
    if (f->min > INT32_MIN)
      bad_number(&out[n++], f->type, (uint64_t)(uint32_t)(int32_t)(f->min - 1));
    if (f->max < INT32_MAX)
      bad_number(&out[n++], f->type, (uint64_t)(uint32_t)(int32_t)(f->max + 1));
    break;
  case AIPC_FIELD_I64:
    if (f->min > INT64_MIN)
      bad_number(&out[n++], f->type, (uint64_t)(f->min - 1));
    if (f->max < INT64_MAX)
      bad_number(&out[n++], f->type, (uint64_t)(f->max + 1));
    break;
  case AIPC_FIELD_F32:
    bad_float(&out[n++], NAN);
    bad_float(&out[n++], INFINITY);
    bad_float(&out[n++], -INFINITY);
    bad_float(&out[n++], (float)f->min - 1.0f);
    bad_float(&out[n++], (float)f->max + 1.0f);
    break;
  case AIPC_FIELD_STRING: {
    static char longer[BAD_MAX];
    memset(longer, 'x', sizeof(longer));
    if (f->min > 0)
      bad_string(&out[n++], 0, "", 0);        /* NULL where refused */
    bad_string(&out[n++], 200, "ab", 3);      /* runs past the end */
    bad_string(&out[n++], 3, "abc", 3);       /* no NUL */
    bad_string(&out[n++], 4, "a\0b", 4);      /* a NUL inside */
    bad_string(&out[n++], UINT16_MAX, "", 1); /* absurd length */
    size_t too_long = (size_t)f->max + 1;
    CHECK(too_long + 3 <= BAD_MAX);
    longer[too_long] = '\0';
    bad_string(&out[n++], (uint16_t)(too_long + 1), longer, too_long + 1);
    longer[too_long] = 'x';
    break;
  }
  case AIPC_FIELD_ARRAY: {
    uint32_t count = (uint32_t)f->max + 1;
    memcpy(out[n].bytes, &count, out[n].len = 4);
    n++;
    count = UINT32_MAX;
    memcpy(out[n].bytes, &count, out[n].len = 4);
    n++;
    break;
  }
  }
  CHECK(n <= BAD_VARIANTS);
  return n;
}

/* The payload of `body` with field `index` replaced by `bad`. */
static size_t
encode_with_bad_field(const struct aipc_record *rec, const void *body,
                      uint32_t index, const struct bad *bad, uint8_t *buf,
                      size_t cap)
{
  struct aipc_record head = *rec, tail = *rec;
  head.nfields = index;
  tail.fields = rec->fields + index + 1;
  tail.nfields = rec->nfields - index - 1;
  int a = aipc_record_encode(&head, body, buf, cap);
  CHECK(a >= 0 && (size_t)a + bad->len <= cap);
  memcpy(buf + a, bad->bytes, bad->len);
  size_t pos = (size_t)a + bad->len;
  int b = aipc_record_encode(&tail, body, buf + pos, cap - pos);
  CHECK(b >= 0);
  return pos + (size_t)b;
}

/* One opcode: every truncation, trailing bytes, a 64 KiB payload and
 * every out-of-range field get an error reply and the session goes on.
 * Returns a fresh stream id if the valid control destroyed ours. */
static uint32_t
malformed_opcode(struct raw *r, struct tally *t, uint16_t opcode,
                 uint32_t stream)
{
  static uint8_t buf[AIPC_MSG_MAX_SIZE];
  const struct aipc_msg_desc *desc = aipc_protocol_msg(&aipc_protocol, opcode);
  int want = is_request(opcode) ? -EBADMSG : -EOPNOTSUPP;
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
  template_body(opcode, stream, body);
  int len = template_encode_body(opcode, body, buf, sizeof(buf));

  for (int cut = 0; cut < len; cut++)
    expect_error(r, t, opcode, buf, (size_t)cut, want);
  memset(buf + len, 0xa5, 8);
  expect_error(r, t, opcode, buf, (size_t)len + 1, want);
  expect_error(r, t, opcode, buf, (size_t)len + 8, want);
  size_t biggest = AIPC_MSG_MAX_SIZE - sizeof(struct aipc_msg_header);
  memset(buf + len, 0, biggest - (size_t)len);
  expect_error(r, t, opcode, buf, biggest, want);

  for (uint32_t i = 0; i < desc->record.nfields; i++) {
    struct bad bad[BAD_VARIANTS];
    int n = bad_variants(&desc->record.fields[i], bad);
    for (int v = 0; v < n; v++) {
      size_t blen = encode_with_bad_field(&desc->record, body, i, &bad[v], buf,
                                          sizeof(buf));
      expect_error(r, t, opcode, buf, blen, want);
    }
  }

  /* The template itself is not refused as malformed. */
  if (is_request(opcode)) {
    len = template_encode_body(opcode, body, buf, sizeof(buf));
    uint32_t serial = raw_send(r, opcode, 0, buf, (size_t)len);
    struct raw_msg m;
    int e = 0;
    enum raw_outcome o = raw_wait(r, serial, &m, &e);
    CHECK(o != RAW_DROPPED);
    CHECK_INT(e, !=, -EBADMSG);
    if (o == RAW_OK)
      raw_msg_close_fds(&m);
    if (opcode == AIPC_OP_STREAM_DESTROY) {
      struct aipc_stream_init q =
          raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
      int id = raw_stream_init(r, &q, NULL, NULL);
      CHECK(id > 0);
      stream = (uint32_t)id;
    }
  }
  return stream;
}

/* A packet bigger than any message, with a header that agrees with it:
 * the server drops the connection. */
static void
oversized(struct fixture *f, struct tally *t, uint16_t opcode, size_t total)
{
  static uint8_t packet[2 * AIPC_MSG_MAX_SIZE];
  CHECK(total <= sizeof(packet));
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_msg_header h = {
      .size = (uint32_t)(total - sizeof(h)), .opcode = opcode, .serial = 99};
  memset(packet, 0, total);
  memcpy(packet, &h, sizeof(h));
  template_encode(opcode, 1, packet + sizeof(h), total - sizeof(h));
  t->sent++;
  CHECK_INT(raw_send_packet(&r, packet, total, NULL, 0), ==, 0);
  expect_hangup(&r, t);
  raw_close(&r);
}

static void
every_opcode_malformed(struct fixture *f, struct tally *t, bool all_sizes)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int id = raw_stream_init(&r, &q, NULL, NULL);
  CHECK(id > 0);
  uint32_t stream = (uint32_t)id;
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++) {
    stream = malformed_opcode(&r, t, op, stream);
    if (all_sizes || op == AIPC_OP_PING) {
      oversized(f, t, op, AIPC_MSG_MAX_SIZE + 1);
      oversized(f, t, op, 2 * AIPC_MSG_MAX_SIZE);
    }
  }
  raw_close(&r);
}

TEST(hostile_every_opcode_truncated_oversized_out_of_range)
{
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  every_opcode_malformed(&f, &t, false);
  fixture_baseline(&f);
  t = (struct tally){0};
  every_opcode_malformed(&f, &t, true);
  tally_print(&t, "every opcode malformed");
  fixture_check(&f, "every opcode malformed");
  fixture_finish(&f);
}

/* --- Unknown opcodes and messages in the wrong direction ------------------ */

static void
unknown_opcodes(struct fixture *f, struct tally *t)
{
  static const uint16_t unknown[] = {AIPC_OP_COUNT,
                                     AIPC_OP_COUNT + 1,
                                     AIPC_OP_COUNT + 7,
                                     100,
                                     255,
                                     256,
                                     1000,
                                     0x7fff,
                                     0x8000,
                                     0xfffe,
                                     0xffff};
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  uint8_t payload[64];
  memset(payload, 0x5a, sizeof(payload));
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    expect_error(&r, t, unknown[i], NULL, 0, -EOPNOTSUPP);
    expect_error(&r, t, unknown[i], payload, sizeof(payload), -EOPNOTSUPP);
  }
  /* Replies and events are not requests, however well-formed. */
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++) {
    if (is_request(op))
      continue;
    uint8_t buf[1024];
    int len = template_encode(op, 1, buf, sizeof(buf));
    expect_error(&r, t, op, buf, (size_t)len, -EOPNOTSUPP);
  }
  raw_close(&r);

  /* Before the hello, anything but HELLO ends the connection. */
  for (size_t i = 0; i < 3; i++) {
    fixture_connect(f, &r, NULL);
    expect_error(&r, t, unknown[i], NULL, 0, -EPROTO);
    expect_hangup(&r, t);
    raw_close(&r);
  }
}

TEST(hostile_unknown_opcodes_and_replies_sent_as_requests)
{
  hostile_case(NULL, unknown_opcodes, "unknown and misdirected opcodes");
}

/* --- Fds and control data ------------------------------------------------- */

/* Sends `nfds` fds (read ends of fresh pipes; `header_nfds` in the
 * header) with a PING, and checks the server dropped the connection and
 * closed every fd it got: each pipe's write end then sees EPIPE. */
static void
send_fds(struct fixture *f, struct tally *t, bool greet, unsigned nfds,
         unsigned header_nfds, uint16_t opcode)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  if (greet)
    raw_greet(&r);
  int readers[256], writers[256];
  CHECK(nfds <= 256);
  for (unsigned i = 0; i < nfds; i++) {
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    readers[i] = p[0];
    writers[i] = p[1];
  }
  uint8_t packet[256];
  struct aipc_msg_header h = {
      .opcode = opcode, .serial = 5, .nfds = (uint16_t)header_nfds};
  int len = template_encode(opcode, 1, packet + sizeof(h),
                            sizeof(packet) - sizeof(h));
  h.size = (uint32_t)len;
  memcpy(packet, &h, sizeof(h));
  t->sent++;
  int s = raw_send_packet(&r, packet, sizeof(h) + (size_t)len, readers, nfds);
  CHECK_INT(s, ==, 0);
  for (unsigned i = 0; i < nfds; i++)
    close(readers[i]);
  expect_hangup(&r, t);
  raw_close(&r);

  double start = fixture_now_ms();
  for (unsigned i = 0; i < nfds; i++) {
    while (write(writers[i], "x", 1) == 1 || errno != EPIPE) {
      if (fixture_now_ms() - start > 10000)
        test_fail(__FILE__, __LINE__,
                  "fd %u of %u sent with opcode %u is still open in the "
                  "server",
                  i, nfds, opcode);
      usleep(500);
    }
    close(writers[i]);
  }
}

/* A control message that is not SCM_RIGHTS, or an SCM_RIGHTS one whose
 * length is cut short: answered (the kernel passed no fd) or dropped. */
static void
odd_control(struct fixture *f, struct tally *t, int type, size_t extra_len,
            bool short_len)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  r.lax = true;
  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  uint8_t packet[64];
  struct aipc_msg_header h = {.opcode = AIPC_OP_PING, .serial = 77};
  struct aipc_ping ping = {.value = 1};
  int len = template_encode_body(AIPC_OP_PING, &ping, packet + sizeof(h),
                                 sizeof(packet) - sizeof(h));
  h.size = (uint32_t)len;
  memcpy(packet, &h, sizeof(h));
  struct iovec iov = {.iov_base = packet, .iov_len = sizeof(h) + (size_t)len};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct ucred) + 64)];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = control.buf,
                      .msg_controllen = sizeof(control.buf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = type;
  if (type == SCM_CREDENTIALS) {
    struct ucred cred = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
    c->cmsg_len = CMSG_LEN(sizeof(cred));
    memcpy(CMSG_DATA(c), &cred, sizeof(cred));
  } else {
    c->cmsg_len = CMSG_LEN(sizeof(int)) + extra_len - (short_len ? 1 : 0);
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
  }
  mh.msg_controllen = CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
  t->sent++;
  ssize_t n = sendmsg(r.fd, &mh, MSG_NOSIGNAL);
  close(p[0]);
  if (n < 0) {
    /* The kernel refused it: nothing reached the server. */
    t->errors++;
  } else {
    struct raw_msg m;
    enum raw_outcome o = raw_wait(&r, 77, &m, NULL);
    if (o == RAW_DROPPED)
      t->drops++;
    else
      t->ok++;
  }
  raw_close(&r);
  /* Whatever happened, the server holds no copy of the pipe. */
  double start = fixture_now_ms();
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  while (write(p[1], "x", 1) == 1 || errno != EPIPE) {
    if (fixture_now_ms() - start > 10000)
      test_fail(__FILE__, __LINE__,
                "an fd sent in odd control data stayed "
                "open in the server");
    usleep(500);
  }
  close(p[1]);
}

static void
fds_and_control(struct fixture *f, struct tally *t)
{
  send_fds(f, t, true, 1, 1, AIPC_OP_PING);
  send_fds(f, t, true, 1, 0, AIPC_OP_PING); /* header says none */
  send_fds(f, t, true, 2, 3, AIPC_OP_PING); /* header says more */
  send_fds(f, t, true, 4, 4, AIPC_OP_STREAM_INIT);
  send_fds(f, t, true, 1, 1, AIPC_OP_STREAM_INIT_REPLY); /* carries one */
  send_fds(f, t, false, 1, 1, AIPC_OP_HELLO);            /* before the hello */
  /* More than fit the server's control buffer: truncated control data. */
  send_fds(f, t, true, 5, 5, AIPC_OP_PING);
  send_fds(f, t, true, 64, 4, AIPC_OP_PING);
  send_fds(f, t, true, 253, 0, AIPC_OP_PING);
  odd_control(f, t, SCM_CREDENTIALS, 0, false);
  odd_control(f, t, SCM_RIGHTS, 0, true);  /* length one byte short */
  odd_control(f, t, SCM_RIGHTS, 2, false); /* two stray bytes */
  odd_control(f, t, 77, 0, false);         /* an unknown type */
}

TEST(hostile_messages_carrying_fds_and_odd_control_data)
{
  hostile_case(NULL, fds_and_control, "fds and control data");
}

/* --- The handshake -------------------------------------------------------- */

static void
send_header(struct raw *r, struct aipc_msg_header h, size_t payload_len)
{
  uint8_t packet[256] = {0};
  CHECK(sizeof(h) + payload_len <= sizeof(packet));
  memcpy(packet, &h, sizeof(h));
  CHECK_INT(raw_send_packet(r, packet, sizeof(h) + payload_len, NULL, 0), ==,
            0);
}

static void
handshake(struct fixture *f, struct tally *t)
{
  struct raw r;
  uint8_t buf[1024];

  /* Every request before the hello: -EPROTO, then the hang-up. */
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++) {
    if (op == AIPC_OP_HELLO)
      continue;
    fixture_connect(f, &r, NULL);
    int len = template_encode(op, 1, buf, sizeof(buf));
    expect_error(&r, t, op, buf, (size_t)len, -EPROTO);
    expect_hangup(&r, t);
    raw_close(&r);
  }

  /* A protocol version we do not speak. */
  static const uint32_t versions[] = {0, AIPC_PROTOCOL_VERSION + 1, UINT32_MAX};
  for (size_t i = 0; i < 3; i++) {
    fixture_connect(f, &r, NULL);
    struct aipc_hello hello = {versions[i], "hostile", "old"};
    expect_body_error(&r, t, AIPC_OP_HELLO, &hello, -EPROTONOSUPPORT);
    expect_hangup(&r, t);
    raw_close(&r);
  }

  /* A malformed hello is refused, then a good one works; a second hello
   * is an error but the session goes on. */
  fixture_connect(f, &r, NULL);
  int len = template_encode(AIPC_OP_HELLO, 0, buf, sizeof(buf));
  expect_error(&r, t, AIPC_OP_HELLO, buf, (size_t)len - 1, -EBADMSG);
  expect_error(&r, t, AIPC_OP_HELLO, buf, 0, -EBADMSG);
  raw_greet(&r);
  struct aipc_hello again = {AIPC_PROTOCOL_VERSION, "hostile", "again"};
  expect_body_error(&r, t, AIPC_OP_HELLO, &again, -EPROTO);
  struct aipc_ping ping = {.value = 3};
  CHECK_INT(raw_call(&r, AIPC_OP_PING, &ping, NULL, NULL), ==, 0);
  raw_close(&r);

  /* Headers the connection refuses: serial 0, flags, reserved, sizes
   * that disagree with the packet, packets shorter than a header, an
   * empty packet. Each ends the connection without an answer. */
  struct aipc_msg_header good = {
      .size = 8, .opcode = AIPC_OP_PING, .serial = 9};
  struct aipc_msg_header bad[] = {
      {.size = 8, .opcode = AIPC_OP_PING, .serial = 0},
      {.size = 8, .opcode = AIPC_OP_PING, .serial = 9, .flags = 1},
      {.size = 8, .opcode = AIPC_OP_PING, .serial = 9, .reserved = 0x8000},
      {.size = 7, .opcode = AIPC_OP_PING, .serial = 9},
      {.size = 9, .opcode = AIPC_OP_PING, .serial = 9},
      {.size = UINT32_MAX, .opcode = AIPC_OP_PING, .serial = 9},
      {.size = 8, .opcode = AIPC_OP_PING, .serial = 9, .nfds = 1},
  };
  for (int greeted = 0; greeted < 2; greeted++) {
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      fixture_connect(f, &r, NULL);
      if (greeted)
        raw_greet(&r);
      t->sent++;
      send_header(&r, bad[i], 8);
      expect_hangup(&r, t);
      raw_close(&r);
    }
    for (size_t cut = 0; cut < sizeof(good); cut++) {
      fixture_connect(f, &r, NULL);
      if (greeted)
        raw_greet(&r);
      t->sent++;
      CHECK_INT(raw_send_packet(&r, &good, cut, NULL, 0), ==, 0);
      expect_hangup(&r, t);
      raw_close(&r);
    }
  }
}

TEST(hostile_requests_before_hello_and_wrong_versions)
{
  hostile_case(NULL, handshake, "handshake");
}

/* --- Order of requests ---------------------------------------------------- */

static void
before_context_init(struct fixture *f, struct tally *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  struct aipc_hello hello = {AIPC_PROTOCOL_VERSION, "hostile", "hostile"};
  CHECK_INT(raw_call(&r, AIPC_OP_HELLO, &hello, NULL, NULL), ==, 0);
  uint8_t buf[1024];
  for (uint16_t op = 0; op < AIPC_OP_COUNT; op++) {
    if (!is_request(op) || op == AIPC_OP_HELLO || op == AIPC_OP_PING ||
        op == AIPC_OP_CONTEXT_INIT)
      continue;
    int len = template_encode(op, 1, buf, sizeof(buf));
    expect_error(&r, t, op, buf, (size_t)len, -ENOTCONN);
  }
  struct aipc_context_init init = {.name = NULL};
  CHECK_INT(raw_call(&r, AIPC_OP_CONTEXT_INIT, &init, NULL, NULL), ==, 0);
  expect_body_error(&r, t, AIPC_OP_CONTEXT_INIT, &init, -EALREADY);
  raw_close(&r);
}

TEST(hostile_requests_before_context_init)
{
  hostile_case(NULL, before_context_init, "before CONTEXT_INIT");
}

/* --- Stream ids and device tokens ----------------------------------------- */

static const uint16_t stream_ops[] = {
    AIPC_OP_STREAM_START,
    AIPC_OP_STREAM_STOP,
    AIPC_OP_STREAM_GET_POSITION,
    AIPC_OP_STREAM_GET_LATENCY,
    AIPC_OP_STREAM_GET_INPUT_LATENCY,
    AIPC_OP_STREAM_SET_VOLUME,
    AIPC_OP_STREAM_SET_NAME,
    AIPC_OP_STREAM_GET_CURRENT_DEVICE,
    AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED,
    AIPC_OP_STREAM_DESTROY,
};
#define STREAM_OPS (sizeof(stream_ops) / sizeof(stream_ops[0]))

/* Every stream request naming `id` fails with `error`. */
static void
all_stream_ops_fail(struct raw *r, struct tally *t, uint32_t id, int error)
{
  uint8_t buf[1024];
  for (size_t i = 0; i < STREAM_OPS; i++) {
    int len = template_encode(stream_ops[i], id, buf, sizeof(buf));
    expect_error(r, t, stream_ops[i], buf, (size_t)len, error);
  }
}

/* Tokens of the devices an enumeration returned. */
static int
enumerate_tokens(struct raw *r, uint64_t *tokens, int max)
{
  static struct raw_device devices[AIPC_DEVICES_MAX];
  int n = raw_list_devices(r, devices,
                           max < AIPC_DEVICES_MAX ? max : AIPC_DEVICES_MAX);
  for (int i = 0; i < n; i++)
    tokens[i] = devices[i].token;
  return n;
}

static void
stream_ids_and_tokens(struct fixture *f, struct tally *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);

  /* No stream yet: every id is unknown, ours or another client's (the
   * honest client's stream is its number 1). */
  static const uint32_t ids[] = {1, 2, 7, 1000, 0x7fffffff, UINT32_MAX};
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
    all_stream_ops_fail(&r, t, ids[i], -ENOENT);

  /* Use after destroy, double destroy. */
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int id = raw_stream_init(&r, &q, NULL, NULL);
  CHECK(id > 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_STOP, (uint32_t)id), ==, 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_START, (uint32_t)id), ==, 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_START, (uint32_t)id), ==, 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, (uint32_t)id), ==, 0);
  all_stream_ops_fail(&r, t, (uint32_t)id, -ENOENT);
  all_stream_ops_fail(&r, t, (uint32_t)id + 1, -ENOENT);

  /* Device tokens nobody handed out. */
  static const uint64_t bogus[] = {1, 2, 3, 12345, INT64_MAX};
  for (size_t i = 0; i < sizeof(bogus) / sizeof(bogus[0]); i++) {
    struct aipc_stream_init dq = q;
    dq.output_device = bogus[i];
    expect_body_error(&r, t, AIPC_OP_STREAM_INIT, &dq, -ENODEV);
  }
  /* A token for a direction the stream does not have is ignored. */
  struct aipc_stream_init unused = q;
  unused.input_device = 12345;
  id = raw_stream_init(&r, &unused, NULL, NULL);
  CHECK(id > 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, (uint32_t)id), ==, 0);

  /* A device keeps its token, however many enumerations later; a
   * token names only its own device's direction. */
  uint64_t first[4], latest[4];
  int nfirst = enumerate_tokens(&r, first, 4);
  CHECK(nfirst == 2);
  CHECK(first[0] != first[1]);
  for (int i = 0; i < 6; i++) {
    CHECK_INT(enumerate_tokens(&r, latest, 4), ==, 2);
    CHECK(latest[0] == first[0] && latest[1] == first[1]);
  }
  int opened = 0;
  for (int i = 0; i < nfirst; i++) {
    struct aipc_stream_init dq = q;
    dq.output_device = first[i];
    /* One of the two is the input device: not an output. */
    struct raw_msg m;
    uint32_t serial = raw_send_body(&r, AIPC_OP_STREAM_INIT, &dq);
    int e = 0;
    enum raw_outcome o = raw_wait(&r, serial, &m, &e);
    CHECK(o != RAW_DROPPED);
    if (o == RAW_OK) {
      struct aipc_stream_init_reply reply;
      const struct aipc_msg_desc *d =
          aipc_protocol_msg(&aipc_protocol, AIPC_OP_STREAM_INIT_REPLY);
      CHECK_INT(aipc_record_decode(&d->record, m.payload, m.len, &reply), ==,
                0);
      raw_msg_close_fds(&m);
      CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, reply.stream), ==,
                0);
      t->ok++;
      opened++;
    } else {
      CHECK_INT(e, ==, -ENODEV);
      t->errors++;
    }
    t->sent++;
  }
  CHECK_INT(opened, ==, 1);
  struct aipc_enumerate_devices none = {.type = 0};
  expect_body_error(&r, t, AIPC_OP_ENUMERATE_DEVICES, &none, -EINVAL);
  struct aipc_register_collection_changed none2 = {.type = 0, .enable = 1};
  expect_body_error(&r, t, AIPC_OP_REGISTER_COLLECTION_CHANGED, &none2,
                    -EINVAL);

  /* Registrations left behind when the client goes must not outlive it:
   * the server's teardown drops them, so the events below find nobody. */
  struct aipc_register_collection_changed reg = {.type = 3, .enable = 1};
  CHECK_INT(raw_call(&r, AIPC_OP_REGISTER_COLLECTION_CHANGED, &reg, NULL, NULL),
            ==, 0);
  id = raw_stream_init(&r, &q, NULL, NULL);
  CHECK(id > 0);
  struct aipc_stream_register sreg = {.stream = (uint32_t)id, .enable = 1};
  CHECK_INT(
      raw_call(&r, AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED, &sreg, NULL, NULL),
      ==, 0);
  raw_close(&r);
  fixture_wait_baseline(f, "registrations");
  audioipc_server_virtual_collection_changed();
  audioipc_server_virtual_device_changed();
}

TEST(hostile_bad_stream_ids_device_tokens_and_double_destroy)
{
  hostile_case(NULL, stream_ids_and_tokens, "stream ids and device tokens");
}

/* --- Stream parameters ---------------------------------------------------- */

struct params_case {
  const char *what;
  struct aipc_stream_init q;
  int error;
};

#define OUT(fmt, rate, ch, layout, prefs)                                      \
  .has_output = 1, .out_format = (fmt), .out_rate = (rate),                    \
  .out_channels = (ch), .out_layout = (layout), .out_prefs = (prefs)
#define IN(fmt, rate, ch, layout, prefs)                                       \
  .has_input = 1, .in_format = (fmt), .in_rate = (rate), .in_channels = (ch),  \
  .in_layout = (layout), .in_prefs = (prefs)
#define F32 CUBEB_SAMPLE_FLOAT32NE
#define STEREO CUBEB_LAYOUT_STEREO
#define R FIXTURE_RATE

static const struct params_case params_cases[] = {
    {"no direction at all", {.latency_frames = 256}, -EINVAL},
    {"no direction, fields set",
     {.out_format = F32,
      .out_rate = R,
      .out_channels = 2,
      .latency_frames = 256},
     -EINVAL},
    {"rate 0", {OUT(F32, 0, 2, STEREO, 0), .latency_frames = 256}, -EINVAL},
    {"rate 999", {OUT(F32, 999, 2, STEREO, 0), .latency_frames = 256}, -EINVAL},
    {"rate 192001",
     {OUT(F32, 192001, 2, STEREO, 0), .latency_frames = 256},
     -EINVAL},
    {"rate max",
     {OUT(F32, UINT32_MAX, 2, STEREO, 0), .latency_frames = 256},
     -EINVAL},
    {"input rate 0", {IN(F32, 0, 1, 0, 0), .latency_frames = 256}, -EINVAL},
    {"0 channels", {OUT(F32, R, 0, 0, 0), .latency_frames = 256}, -EINVAL},
    {"9 channels", {OUT(F32, R, 9, 0, 0), .latency_frames = 256}, -EINVAL},
    {"256 channels", {OUT(F32, R, 256, 0, 0), .latency_frames = 256}, -EINVAL},
    {"channels max",
     {OUT(F32, R, UINT32_MAX, 0, 0), .latency_frames = 256},
     -EINVAL},
    {"input 0 channels", {IN(F32, R, 0, 0, 0), .latency_frames = 256}, -EINVAL},
    {"format 4",
     {OUT(4, R, 2, STEREO, 0), .latency_frames = 256},
     -EMEDIUMTYPE},
    {"format max",
     {OUT(UINT32_MAX, R, 2, STEREO, 0), .latency_frames = 256},
     -EMEDIUMTYPE},
    {"input format 77",
     {IN(77, R, 1, 0, 0), .latency_frames = 256},
     -EMEDIUMTYPE},
    {"stereo layout, 1 channel",
     {OUT(F32, R, 1, STEREO, 0), .latency_frames = 256},
     -EINVAL},
    {"layout of 3, 2 channels",
     {OUT(F32, R, 2, CUBEB_LAYOUT_3F, 0), .latency_frames = 256},
     -EINVAL},
    {"layout all bits",
     {OUT(F32, R, 2, UINT32_MAX, 0), .latency_frames = 256},
     -EINVAL},
    {"unknown prefs",
     {OUT(F32, R, 2, STEREO, 0x40), .latency_frames = 256},
     -EINVAL},
    {"all prefs",
     {OUT(F32, R, 2, STEREO, UINT32_MAX), .latency_frames = 256},
     -EINVAL},
    /* It would record what others play (unless the embedder allows
     * monitors). */
    {"loopback",
     {IN(F32, R, 2, STEREO, CUBEB_STREAM_PREF_LOOPBACK), .latency_frames = 256},
     -EPERM},
    {"latency 0", {OUT(F32, R, 2, STEREO, 0), .latency_frames = 0}, -EINVAL},
    {"latency 96001",
     {OUT(F32, R, 2, STEREO, 0), .latency_frames = 96001},
     -EINVAL},
    {"latency max",
     {OUT(F32, R, 2, STEREO, 0), .latency_frames = UINT32_MAX},
     -EINVAL},
    {"duplex, rates differ",
     {IN(F32, R, 1, 0, 0), OUT(F32, 44100, 2, STEREO, 0),
      .latency_frames = 256},
     -EMEDIUMTYPE},
    {"duplex, formats differ",
     {IN(CUBEB_SAMPLE_S16NE, R, 1, 0, 0), OUT(F32, R, 2, STEREO, 0),
      .latency_frames = 256},
     -EMEDIUMTYPE},
    {"duplex, bad input",
     {IN(F32, R, 99, 0, 0), OUT(F32, R, 2, STEREO, 0), .latency_frames = 256},
     -EINVAL},
};

static void
stream_parameters(struct fixture *f, struct tally *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  for (size_t i = 0; i < sizeof(params_cases) / sizeof(params_cases[0]); i++) {
    const struct params_case *c = &params_cases[i];
    struct aipc_stream_init q = c->q;
    q.name = c->what;
    uint32_t serial = raw_send_body(&r, AIPC_OP_STREAM_INIT, &q);
    struct raw_msg m;
    int e = 0;
    t->sent++;
    if (raw_wait(&r, serial, &m, &e) != RAW_ERROR || e != c->error)
      test_fail(__FILE__, __LINE__, "stream with %s: error %d, wanted %d",
                c->what, e, c->error);
    t->errors++;
    /* The same parameters, where GET_MIN_LATENCY takes them. */
    if (q.has_output && !q.has_input && c->error != -EMEDIUMTYPE &&
        q.latency_frames == 256) {
      struct aipc_min_latency ml = {q.out_format, q.out_rate, q.out_channels,
                                    q.out_layout, q.out_prefs};
      serial = raw_send_body(&r, AIPC_OP_GET_MIN_LATENCY, &ml);
      t->sent++;
      CHECK(raw_wait(&r, serial, &m, &e) == RAW_ERROR);
      t->errors++;
    }
  }
  /* The largest stream the limits allow is fine, and goes. */
  struct aipc_stream_init big = {.name = "big",
                                 IN(F32, R, 8, 0, 0),
                                 OUT(F32, R, 8, 0, 0),
                                 .latency_frames = 96000};
  int id = raw_stream_init(&r, &big, NULL, NULL);
  CHECK(id > 0);
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_START, (uint32_t)id), ==, 0);
  raw_close(&r);
}

TEST(hostile_stream_parameters_libcubeb_would_abort_on)
{
  hostile_case(NULL, stream_parameters, "stream parameters");
}

/* --- Ten thousand streams ------------------------------------------------- */

#define BATCH 32

/* Creates and destroys `total` streams, BATCH requests in flight. */
static void
create_destroy(struct raw *r, int total)
{
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  for (int done = 0; done < total; done += BATCH) {
    uint32_t serials[BATCH], ids[BATCH];
    int n = total - done < BATCH ? total - done : BATCH;
    for (int i = 0; i < n; i++)
      serials[i] = raw_send_body(r, AIPC_OP_STREAM_INIT, &q);
    for (int i = 0; i < n; i++) {
      struct raw_msg m;
      CHECK(raw_wait(r, serials[i], &m, NULL) == RAW_OK);
      CHECK_INT(m.nfds, ==, 1);
      struct aipc_stream_init_reply reply;
      const struct aipc_msg_desc *d =
          aipc_protocol_msg(&aipc_protocol, AIPC_OP_STREAM_INIT_REPLY);
      CHECK_INT(aipc_record_decode(&d->record, m.payload, m.len, &reply), ==,
                0);
      raw_msg_close_fds(&m);
      ids[i] = reply.stream;
    }
    for (int i = 0; i < n; i++) {
      struct aipc_stream_ref ref = {ids[i]};
      serials[i] = raw_send_body(r, AIPC_OP_STREAM_DESTROY, &ref);
    }
    for (int i = 0; i < n; i++) {
      struct raw_msg m;
      CHECK(raw_wait(r, serials[i], &m, NULL) == RAW_OK);
    }
  }
}

/* Creates streams until the server says no; returns how many it made. */
static int
create_until_refused(struct raw *r, struct tally *t, uint32_t *ids, int max,
                     int *error)
{
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  for (int n = 0; n < max; n++) {
    int id = raw_stream_init(r, &q, NULL, NULL);
    t->sent++;
    if (id < 0) {
      t->errors++;
      *error = id;
      return n;
    }
    t->ok++;
    ids[n] = (uint32_t)id;
  }
  test_fail(__FILE__, __LINE__, "the server made %d streams for one client",
            max);
}

static void
many_streams(struct fixture *f, struct tally *t, int total)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  double start = fixture_now_ms();
  create_destroy(&r, total);
  t->sent += 2 * (unsigned)total;
  t->ok += 2 * (unsigned)total;
  if (total >= 1000)
    printf("  %d streams created and destroyed in %.0f ms\n", total,
           fixture_now_ms() - start);

  /* Up to the per-client limit, then -ENOSPC; twice, so destroying
   * really gives the slots back. */
  static uint32_t ids[1024];
  for (int round = 0; round < 2; round++) {
    int error = 0;
    int made = create_until_refused(&r, t, ids, 1024, &error);
    CHECK_INT(made, ==, 64);
    CHECK_INT(error, ==, -ENOSPC);
    for (int i = 0; i < made; i++)
      CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, ids[i]), ==, 0);
  }
  /* And a full client leaves without destroying anything. */
  int error = 0;
  CHECK_INT(create_until_refused(&r, t, ids, 1024, &error), ==, 64);
  for (int i = 0; i < 64; i += 7)
    CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_START, ids[i]), ==, 0);
  raw_close(&r);

  /* Another hangs up with creations and starts still in flight: the
   * server makes those streams after the hang-up, then reclaims them. */
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  for (uint32_t i = 1; i <= 40; i++) {
    raw_send_body(&r, AIPC_OP_STREAM_INIT, &q);
    struct aipc_stream_ref ref = {i};
    raw_send_body(&r, AIPC_OP_STREAM_START, &ref);
    t->sent += 2;
  }
  t->drops++;
  raw_close(&r);
}

TEST_TIMEOUT(hostile_ten_thousand_streams, 120)
{
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  many_streams(&f, &t, 64);
  fixture_baseline(&f);
  t = (struct tally){0};
  many_streams(&f, &t, 10000);
  tally_print(&t, "ten thousand streams");
  fixture_check(&f, "ten thousand streams");
  fixture_finish(&f);
}

/* --- A flood without reading ---------------------------------------------- */

/* Sends PINGs and never reads: the server's queue for us fills and it
 * hangs up rather than grow or block. Returns the messages sent. */
static unsigned
flood(struct fixture *f, struct tally *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  uint8_t packet[sizeof(struct aipc_msg_header) + 8];
  unsigned sent = 0;
  double start = fixture_now_ms();
  for (;;) {
    struct aipc_msg_header h = {.size = 8,
                                .opcode = AIPC_OP_PING,
                                .serial = ++r.serial ? r.serial : ++r.serial};
    uint64_t value = sent;
    memcpy(packet, &h, sizeof(h));
    memcpy(packet + sizeof(h), &value, 8);
    if (raw_send_packet(&r, packet, sizeof(packet), NULL, 0) < 0)
      break;
    sent++;
    if (fixture_now_ms() - start > 60000)
      test_fail(__FILE__, __LINE__,
                "the server took %u requests without reading a reply and "
                "did not hang up",
                sent);
  }
  t->sent += sent;
  t->drops++;
  raw_close(&r);
  return sent;
}

TEST(hostile_request_flood_without_reading_replies)
{
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  flood(&f, &t);
  fixture_baseline(&f);
  t = (struct tally){0};
  double start = fixture_now_ms();
  unsigned sent = flood(&f, &t);
  printf("  flood: hung up on after %u requests (%.0f ms)\n", sent,
         fixture_now_ms() - start);
  tally_print(&t, "flood");
  fixture_check(&f, "flood");
  fixture_finish(&f);
}
