/* SPDX-License-Identifier: ISC */
/*
 * What clients send reaches the server's log: the name and library
 * version of a hello in a version the server does not speak, and, with
 * AUDIOIPC_DEBUG=protocol, every string of every message. A client must
 * not be able to forge a log line or drive the terminal reading it: the
 * server's stderr is captured while a client sends names full of line
 * breaks, escape sequences and bytes that are not UTF-8.
 */
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The server's stderr, drained by a thread so a full pipe never blocks
 * a log call. */
struct capture {
  int saved, pipe_read;
  pthread_t thread;
  char buf[1 << 20];
  size_t len;
};

static void *
drain(void *data)
{
  struct capture *c = data;
  for (;;) {
    ssize_t n =
        read(c->pipe_read, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (n <= 0)
      break;
    c->len += (size_t)n;
    if (c->len == sizeof(c->buf) - 1)
      c->len = 0; /* keep the newest, the test only needs some */
  }
  return NULL;
}

static void
capture_begin(struct capture *c)
{
  int p[2];
  CHECK(pipe2(p, O_CLOEXEC) == 0);
  c->len = 0;
  c->pipe_read = p[0];
  c->saved = dup(STDERR_FILENO);
  CHECK(c->saved >= 0);
  CHECK(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
  close(p[1]);
  CHECK_INT(pthread_create(&c->thread, NULL, drain, c), ==, 0);
}

static void
capture_end(struct capture *c)
{
  CHECK(dup2(c->saved, STDERR_FILENO) == STDERR_FILENO);
  close(c->saved);
  pthread_join(c->thread, NULL);
  close(c->pipe_read);
  c->buf[c->len] = '\0';
}

static const char *const evil[] = {
    "a\nforged: error: the server is compromised", "b\r\x1b[2J\x1b]0;title\x07",
    "c\xc2\x9b\x33\x31m", /* C1 CSI "31m", in UTF-8 */
    "d\xff\xfe\x80",      /* not UTF-8 */
};
#define EVIL (sizeof(evil) / sizeof(evil[0]))

static void
send_evil(struct fixture *f, struct tally *t)
{
  for (size_t i = 0; i < EVIL; i++) {
    struct raw r;
    /* A version we do not speak: the server logs the client's name. */
    fixture_connect(f, &r, NULL);
    struct aipc_hello hello = {AIPC_PROTOCOL_VERSION + 1, "1\n2", evil[i]};
    expect_body_error(&r, t, AIPC_OP_HELLO, &hello, -EPROTONOSUPPORT);
    expect_hangup(&r, t);
    raw_close(&r);
    /* Names the protocol trace prints. */
    fixture_connect(f, &r, NULL);
    struct aipc_hello good = {AIPC_PROTOCOL_VERSION, "x", evil[i]};
    CHECK_INT(raw_call(&r, AIPC_OP_HELLO, &good, NULL, NULL), ==, 0);
    struct aipc_context_init init = {.name = evil[i]};
    CHECK_INT(raw_call(&r, AIPC_OP_CONTEXT_INIT, &init, NULL, NULL), ==, 0);
    t->sent += 3;
    t->ok += 2;
    raw_close(&r);
  }
}

/* Every line the server wrote is one of its own: it starts with its
 * prefix, and holds no control byte or byte outside UTF-8. */
static void
check_lines(const struct capture *c)
{
  const char *p = c->buf;
  unsigned lines = 0;
  while (*p) {
    const char *end = strchr(p, '\n');
    CHECK(end != NULL);
    if (strncmp(p, "audioipc[", 9) != 0)
      test_fail(__FILE__, __LINE__, "a log line not of the server's: %.*s",
                (int)(end - p), p);
    for (const char *q = p; q < end; q++) {
      unsigned char b = (unsigned char)*q;
      if (b < 0x20 || b == 0x7f || b >= 0xf8 || b == 0xc0 || b == 0xc1)
        test_fail(__FILE__, __LINE__, "byte 0x%02x in a log line", b);
      if (b == 0xc2 && (unsigned char)q[1] >= 0x80 &&
          (unsigned char)q[1] <= 0x9f)
        test_fail(__FILE__, __LINE__, "a C1 control in a log line");
    }
    lines++;
    p = end + 1;
  }
  printf("  %u log lines, every one the server's own, no control byte\n",
         lines);
  CHECK(lines >= EVIL);
}

TEST(hostile_client_strings_cannot_forge_log_lines)
{
  /* Before anything reads it: the trace prints every string. */
  setenv("AUDIOIPC_DEBUG", "protocol", 1);
  struct fixture f;
  fixture_start(&f, NULL);
  struct tally t = {0};
  static struct capture c;
  capture_begin(&c);
  send_evil(&f, &t);
  /* The capture's own fds are not the server's: the baseline after. */
  capture_end(&c);
  fixture_wait_baseline(&f, "forged log lines");
  tally_print(&t, "names with line breaks and escapes");
  check_lines(&c);
  fixture_check(&f, "forged log lines");
  fixture_finish(&f);
}
