/* SPDX-License-Identifier: ISC */
/*
 * A small test runner, after libwayland's: every TEST runs in its own
 * forked process with a timeout, and fails if it leaves more fds open
 * than it found. CHECK is on in every build (it is not assert).
 */
#ifndef AIPC_TEST_RUNNER_H
#define AIPC_TEST_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct aipc_test {
  const char *name;
  void (*run)(void);
  unsigned timeout_s;
};

#define TEST_TIMEOUT(fn, seconds)                                              \
  static void fn(void);                                                        \
  static const struct aipc_test test_entry_##fn                                \
      __attribute__((used, section("aipc_tests"),                              \
                     aligned(sizeof(void *)))) = {#fn, fn, seconds};           \
  static void fn(void)

/* The default timeout only catches hangs; tests assert no timings. */
#define TEST(fn) TEST_TIMEOUT(fn, 60)

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                       \
  } while (0)

#define CHECK_INT(a, op, b)                                                    \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (!(a_ op b_))                                                           \
      test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, a_, \
                b_);                                                           \
  } while (0)

/* Runs fn(arg) in a child process, which exits 0 when fn returns. */
pid_t test_fork(void (*fn)(void *arg), void *arg);
/* Waits for a child and checks it exited with status 0. */
void test_wait_ok(pid_t pid);
/* Waits for a child and returns its wait status. */
int test_wait(pid_t pid);

/* Number of open fds in this process. */
int test_count_fds(void);

/* A test program may define this to act as a helper process when its
 * arguments say so; it returns -1 to let the tests run instead. */
int test_child_main(int argc, char **argv);

/* A fresh AF_UNIX SOCK_SEQPACKET pair, close-on-exec. */
void test_socketpair(int fds[2]);

#endif
