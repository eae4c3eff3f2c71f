/* SPDX-License-Identifier: ISC */
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const struct aipc_test __start_aipc_tests[];
extern const struct aipc_test __stop_aipc_tests[];

static bool
same_file(int a, int b)
{
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

static void __attribute__((format(printf, 4, 0)))
print_failure(FILE *out, const char *file, int line, const char *fmt,
              va_list ap)
{
  fprintf(out, "%s:%d: ", file, line);
  vfprintf(out, fmt, ap);
  fputc('\n', out);
  fflush(out);
}

/* The message goes to stderr, among the logs, and to stdout too, next
 * to the FAIL line, where scripts/test.sh finds it for its summary. */
void
test_fail(const char *file, int line, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  print_failure(stderr, file, line, fmt, ap);
  va_end(ap);
  if (!same_file(STDOUT_FILENO, STDERR_FILENO)) {
    va_start(ap, fmt);
    print_failure(stdout, file, line, fmt, ap);
    va_end(ap);
  }
  abort();
}

int
test_count_fds(void)
{
  DIR *dir = opendir("/proc/self/fd");
  if (!dir)
    test_fail(__FILE__, __LINE__, "opendir /proc/self/fd: %s", strerror(errno));
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)))
    if (e->d_name[0] != '.')
      n++;
  closedir(dir);
  return n - 1; /* the directory's own fd */
}

pid_t
test_fork(void (*fn)(void *arg), void *arg)
{
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
    fn(arg);
    exit(0);
  }
  return pid;
}

int
test_wait(pid_t pid)
{
  int status;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  CHECK(r == pid);
  return status;
}

void
test_wait_ok(pid_t pid)
{
  int status = test_wait(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    test_fail(__FILE__, __LINE__, "child %d ended with status 0x%x", (int)pid,
              status);
}

void
test_socketpair(int fds[2])
{
  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
}

static void
run_in_child(const struct aipc_test *t)
{
  alarm(t->timeout_s);
  int before = test_count_fds();
  t->run();
  int after = test_count_fds();
  if (after != before)
    test_fail(__FILE__, __LINE__, "%s leaked %d fd(s)", t->name,
              after - before);
  exit(0); /* not _exit: LeakSanitizer checks at exit */
}

static double
elapsed_ms(const struct timespec *start)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - start->tv_sec) * 1e3 +
         (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* A name, or a prefix ending in '*'. */
static bool
matches(const char *name, const char *pattern)
{
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '*')
    return strncmp(name, pattern, n - 1) == 0;
  return strcmp(name, pattern) == 0;
}

/* Arguments name the tests to run; one that begins with '-' excludes
 * the tests it matches (alone, it runs all others). */
static bool
wanted(const char *name, int argc, char **argv)
{
  bool included = false, any_include = false;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') {
      if (matches(name, argv[i] + 1))
        return false;
    } else {
      any_include = true;
      included |= matches(name, argv[i]);
    }
  }
  return included || !any_include;
}

#pragma weak test_child_main

int
main(int argc, char **argv)
{
  if (test_child_main) {
    int r = test_child_main(argc, argv);
    if (r >= 0)
      return r;
  }
  int passed = 0, failed = 0;
  signal(SIGPIPE, SIG_IGN);
  for (const struct aipc_test *t = __start_aipc_tests; t < __stop_aipc_tests;
       t++) {
    if (argc > 1 && !wanted(t->name, argc, argv))
      continue;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      run_in_child(t);
    }
    int status = test_wait(pid);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
      passed++;
      printf("ok      %-40s %8.1f ms\n", t->name, elapsed_ms(&start));
    } else {
      failed++;
      if (WIFSIGNALED(status))
        printf("FAIL    %-40s signal %d%s\n", t->name, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
      else
        printf("FAIL    %-40s exit status %d\n", t->name, WEXITSTATUS(status));
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
