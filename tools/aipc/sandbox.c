/* SPDX-License-Identifier: ISC */
/*
 * The demo clients' sandbox: a seccomp filter that lets the process do
 * everything the audioipc client needs (threads, futexes, mmap of fds it
 * was sent, sendmsg/recvmsg on its connection) but kills it the moment
 * it tries to reach anything new: a file, a socket, a memfd, a program.
 * Like a browser's content process, it may not change any thread's
 * scheduling either (EPERM), so its callback threads get real-time
 * priority only through the server.
 *
 * Sanitizers (ASan, UBSan, LSan), decided after trying each case:
 *  - LeakSanitizer's exit-time check runs a tracer that lists
 *    /proc/self/task; under the filter the tracer is killed and exit()
 *    hangs. So the demo's clients end with _exit() after their checks,
 *    and are not leak-checked (the e2e suite leak-checks the client
 *    library in unsandboxed children).
 *  - A sanitizer report prints its first line (for UBSan, the source
 *    location and the error) and the process then dies of SIGSYS when
 *    the runtime reads /proc/self/maps or starts a symbolizer for the
 *    stack. The demo shows "killed by SIGSYS (seccomp)" and fails, so
 *    an error cannot pass unnoticed; rerun the client's scenario outside
 *    the sandbox (aipc play) for the full report.
 *  - We still call __sanitizer_sandbox_on_notify, the runtimes' hook for
 *    this, so they cache what they can before the filter goes on.
 */
#include "aipc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* The layout of __sanitizer_sandbox_arguments. */
struct sanitizer_sandbox_arguments {
  int coverage_sandboxed;
  intptr_t coverage_fd;
  unsigned int coverage_max_block_size;
};

/* Defined by a sanitizer runtime, when one is linked in. */
extern void
__sanitizer_sandbox_on_notify(struct sanitizer_sandbox_arguments *args)
    __attribute__((weak));

static const char *const forbidden[] = {
    "open",       "openat",  "openat2",      "creat",  "socket",
    "socketpair", "connect", "memfd_create", "execve", "execveat",
};

/* Refused with EPERM rather than fatal: libraries try these and cope. */
static const char *const refused[] = {
    "sched_setscheduler",
    "sched_setattr",
    "sched_setparam",
};

static int
add_rules(scmp_filter_ctx filter, const char *const *names, size_t count,
          uint32_t action)
{
  for (size_t i = 0; i < count; i++) {
    int nr = seccomp_syscall_resolve_name(names[i]);
    if (nr == __NR_SCMP_ERROR)
      return -ENOSYS;
    int r = seccomp_rule_add(filter, action, nr, 0);
    if (r < 0)
      return r;
  }
  return 0;
}

int
aipc_sandbox_enter(void)
{
  if (__sanitizer_sandbox_on_notify) {
    struct sanitizer_sandbox_arguments args = {0};
    __sanitizer_sandbox_on_notify(&args);
  }

  scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
  if (!filter)
    return -ENOMEM;
  int r =
      seccomp_attr_set(filter, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (r == 0)
    r = seccomp_attr_set(filter, SCMP_FLTATR_CTL_NNP, 1);
  /* Every thread, should a library have started one already. */
  if (r == 0)
    r = seccomp_attr_set(filter, SCMP_FLTATR_CTL_TSYNC, 1);
  if (r == 0)
    r = add_rules(filter, forbidden, sizeof(forbidden) / sizeof(forbidden[0]),
                  SCMP_ACT_KILL_PROCESS);
  if (r == 0)
    r = add_rules(filter, refused, sizeof(refused) / sizeof(refused[0]),
                  SCMP_ACT_ERRNO(EPERM));
  if (r == 0)
    r = seccomp_load(filter);
  seccomp_release(filter);
  return r > 0 ? -r : r;
}

bool
aipc_sandbox_try_known(const char *what)
{
  for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
    if (strcmp(forbidden[i], what) == 0)
      return true;
  return false;
}

int
aipc_sandbox_try_prepare(const char *what)
{
  if (strcmp(what, "connect") == 0)
    return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  return -1;
}

long
aipc_sandbox_try(const char *what, int prepared)
{
  static char *const argv[] = {"/bin/true", NULL};
  static char *const envp[] = {NULL};
  int fds[2];

  if (strcmp(what, "open") == 0)
    return syscall(SYS_open, "/dev/null", O_RDONLY | O_CLOEXEC);
  if (strcmp(what, "openat") == 0)
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (strcmp(what, "openat2") == 0) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};
    return syscall(SYS_openat2, AT_FDCWD, "/dev/null", &how, sizeof(how));
  }
  if (strcmp(what, "creat") == 0)
    return syscall(SYS_creat, "/dev/null", 0600);
  if (strcmp(what, "socket") == 0)
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strcmp(what, "socketpair") == 0)
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
  if (strcmp(what, "connect") == 0) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX,
                               .sun_path = "\0aipc-sandbox-test"};
    return connect(prepared, (struct sockaddr *)&addr, sizeof(addr));
  }
  if (strcmp(what, "memfd_create") == 0)
    return memfd_create("aipc-sandbox-test", MFD_CLOEXEC);
  if (strcmp(what, "execve") == 0)
    return execve(argv[0], argv, envp);
  if (strcmp(what, "execveat") == 0)
    return syscall(SYS_execveat, AT_FDCWD, argv[0], argv, envp, 0);
  return -1;
}
