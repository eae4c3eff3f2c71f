/* SPDX-License-Identifier: ISC */
/*
 * Real-time priority for a client's thread, granted by the server on the
 * client's behalf. A sandboxed client can neither raise its own priority
 * nor reach RTKit over D-Bus; it names one of its threads and we promote
 * it, but only a thread of the process the embedder vouched for
 * (audioipc_server_new_client_for_pid), only while that very process is
 * alive (a pidfd, so a recycled pid cannot stand in for it), and at our
 * priority, never the client's.
 *
 * We first try directly (sched_setscheduler on the thread works when the
 * server may reschedule it: CAP_SYS_NICE, or the client's own
 * RLIMIT_RTPRIO and the same user), then ask RTKit, which checks the
 * thread's owner and its RLIMIT_RTTIME itself, and grants SCHED_RR up to
 * its own maximum priority (20 unless configured otherwise). We do not
 * read that maximum: rtkit-daemon 0.13 exits when a property read is the
 * message that starts it (D-Bus activation).
 */
#include "server-private.h"

#include "aipc-config.h"
#include "clock.h"
#include "log.h"
#include "thread.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if AIPC_HAVE_DBUS
#include <dbus/dbus.h>
#endif

/* How long an RTKit call may take: it runs on a worker thread, so a slow
 * bus holds up only the asking client's queue. */
#define RTKIT_TIMEOUT_MS 2000

int
aipc_pidfd_open(pid_t pid)
{
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* True while the process behind `pidfd` has not exited (a pidfd becomes
 * readable when it does; unlike a signal, this needs no permission). */
static bool
process_alive(int pidfd)
{
  struct pollfd p = {.fd = pidfd, .events = POLLIN};
  return poll(&p, 1, 0) == 0;
}

uid_t
aipc_process_uid(pid_t pid, int pidfd)
{
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return (uid_t)-1;
  unsigned long real, effective;
  bool found = false;
  while (!found && fgets(line, sizeof(line), f))
    found = sscanf(line, "Uid: %lu %lu", &real, &effective) == 2;
  fclose(f);
  /* Read before this check, the file was the process's own. */
  if (!found || !process_alive(pidfd))
    return (uid_t)-1;
  return (uid_t)effective;
}

bool
aipc_thread_of(pid_t pid, pid_t tid)
{
  char path[64];
  struct stat st;
  snprintf(path, sizeof(path), "/proc/%d/task/%d", (int)pid, (int)tid);
  return tid > 0 && stat(path, &st) == 0;
}

/* --- RTKit ---------------------------------------------------------------- */

struct aipc_rtkit {
  pthread_mutex_t lock; /* guards all below: one call at a time */
  int64_t calls[16];    /* when the last RTKIT_CALLS_MAX calls were made */
  unsigned next_call;
#if AIPC_HAVE_DBUS
  DBusConnection *bus; /* opened on first use */
#endif
  bool warned;
};

struct aipc_rtkit *
aipc_rtkit_new(void)
{
  struct aipc_rtkit *rtkit = calloc(1, sizeof(*rtkit));
  if (rtkit)
    pthread_mutex_init(&rtkit->lock, NULL);
  return rtkit;
}

#if AIPC_HAVE_DBUS

static void
rtkit_disconnect(struct aipc_rtkit *rtkit)
{
  if (rtkit->bus) {
    dbus_connection_close(rtkit->bus);
    dbus_connection_unref(rtkit->bus);
    rtkit->bus = NULL;
  }
}

/* rtkit->lock held. Logs the first failure. */
static int
rtkit_call(struct aipc_rtkit *rtkit, pid_t pid, pid_t tid, int priority)
{
  DBusError error;
  dbus_error_init(&error);
  if (!rtkit->bus) {
    rtkit->bus = dbus_bus_get_private(DBUS_BUS_SYSTEM, &error);
    if (!rtkit->bus) {
      if (!rtkit->warned)
        aipc_warn("real-time promotion: no system bus for RTKit (%s)",
                  error.message);
      rtkit->warned = true;
      dbus_error_free(&error);
      return -EHOSTUNREACH;
    }
    dbus_connection_set_exit_on_disconnect(rtkit->bus, FALSE);
  }

  int r = -ENOMEM;
  DBusMessage *m = dbus_message_new_method_call(
      "org.freedesktop.RealtimeKit1", "/org/freedesktop/RealtimeKit1",
      "org.freedesktop.RealtimeKit1", "MakeThreadRealtimeWithPID");
  dbus_uint64_t upid = (dbus_uint64_t)pid, utid = (dbus_uint64_t)tid;
  dbus_uint32_t upriority = (dbus_uint32_t)priority;
  if (m && dbus_message_append_args(m, DBUS_TYPE_UINT64, &upid,
                                    DBUS_TYPE_UINT64, &utid, DBUS_TYPE_UINT32,
                                    &upriority, DBUS_TYPE_INVALID)) {
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(
        rtkit->bus, m, RTKIT_TIMEOUT_MS, &error);
    if (reply) {
      dbus_message_unref(reply);
      r = 0;
    } else {
      r = -EPERM;
      if (!rtkit->warned)
        aipc_warn("real-time promotion: RTKit refused (%s: %s)", error.name,
                  error.message);
      rtkit->warned = true;
    }
  }
  if (m)
    dbus_message_unref(m);
  dbus_error_free(&error);
  if (!dbus_connection_get_is_connected(rtkit->bus))
    rtkit_disconnect(rtkit); /* reconnect next time */
  return r;
}

#else

static void
rtkit_disconnect(struct aipc_rtkit *rtkit)
{
  (void)rtkit;
}

static int
rtkit_call(struct aipc_rtkit *rtkit, pid_t pid, pid_t tid, int priority)
{
  (void)pid, (void)tid, (void)priority;
  if (!rtkit->warned)
    aipc_warn("real-time promotion: built without D-Bus, cannot ask RTKit");
  rtkit->warned = true;
  return -EPERM;
}

#endif

void
aipc_rtkit_destroy(struct aipc_rtkit *rtkit)
{
  if (!rtkit)
    return;
  rtkit_disconnect(rtkit);
  pthread_mutex_destroy(&rtkit->lock);
  free(rtkit);
}

/* --- Promotion ------------------------------------------------------------ */

/* Checks that `tid` is still a thread of the client's process; if not
 * (it ended while we worked and its id went to another process), takes
 * back what was given. */
static int
confirm(pid_t pid, int pidfd, pid_t tid)
{
  if (process_alive(pidfd) && aipc_thread_of(pid, tid))
    return 0;
  struct sched_param normal = {.sched_priority = 0};
  sched_setscheduler(tid, SCHED_OTHER, &normal);
  return -ESRCH;
}

static int
check_target(pid_t pid, int pidfd, pid_t tid, int *priority)
{
  *priority = aipc_rt_priority();
  if (*priority == 0)
    return -EPERM; /* promotion is off */
  if (pidfd < 0)
    return -EPERM; /* nobody vouched for the client's process */
  if (!process_alive(pidfd) || !aipc_thread_of(pid, tid))
    return -ESRCH;
  return 0;
}

/*
 * RTKit grants nothing to a process whose RLIMIT_RTTIME is unlimited or
 * above its bound, so that a real-time thread that spins gets SIGXCPU,
 * then SIGKILL, instead of the machine. Promoting directly skips RTKit,
 * not the safeguard: the client's limit is lowered first (never raised),
 * to the bound the client library itself sets for RTKit; if that cannot
 * be done, nothing is promoted.
 */
static int
limit_rttime(pid_t pid)
{
  struct rlimit old;
  if (prlimit(pid, RLIMIT_RTTIME, NULL, &old) < 0)
    return -errno;
  if (old.rlim_max <= AIPC_RTTIME_MAX_US && old.rlim_cur <= old.rlim_max)
    return 0;
  struct rlimit bound = {.rlim_cur = AIPC_RTTIME_MAX_US,
                         .rlim_max = AIPC_RTTIME_MAX_US};
  if (old.rlim_max < bound.rlim_max)
    bound.rlim_cur = bound.rlim_max = old.rlim_max;
  return prlimit(pid, RLIMIT_RTTIME, &bound, NULL) < 0 ? -errno : 0;
}

int
aipc_promote_directly(pid_t pid, int pidfd, pid_t tid)
{
  int priority;
  int r = check_target(pid, pidfd, tid, &priority);
  if (r == 0 && limit_rttime(pid) < 0)
    r = -EPERM;
  if (r == 0)
    r = aipc_thread_set_realtime(tid, priority);
  return r < 0 ? r : confirm(pid, pidfd, tid);
}

/* RTKit's calls per RTKIT_WINDOW_NS, for the whole server: below RTKit's
 * own budget (25 per 20 s per user), which clients must not use up. */
#define RTKIT_CALLS_MAX 16
#define RTKIT_WINDOW_NS (20 * (int64_t)1000000000)

int
aipc_promote_through_rtkit(struct aipc_rtkit *rtkit, pid_t pid, int pidfd,
                           pid_t tid)
{
  int priority;
  int r = check_target(pid, pidfd, tid, &priority);
  if (r < 0)
    return r;
  pthread_mutex_lock(&rtkit->lock);
  int64_t now = aipc_now_ns();
  int64_t *oldest = &rtkit->calls[rtkit->next_call];
  if (*oldest && now - *oldest < RTKIT_WINDOW_NS) {
    r = -EBUSY;
  } else {
    *oldest = now;
    rtkit->next_call = (rtkit->next_call + 1) % RTKIT_CALLS_MAX;
    r = rtkit_call(rtkit, pid, tid, priority);
  }
  pthread_mutex_unlock(&rtkit->lock);
  return r < 0 ? r : confirm(pid, pidfd, tid);
}

void
aipc_demote_client_thread(pid_t pid, int pidfd, pid_t tid)
{
  if (pidfd < 0 || !process_alive(pidfd) || !aipc_thread_of(pid, tid))
    return; /* gone: it holds nothing of ours any more */
  struct sched_param normal = {.sched_priority = 0};
  if (sched_setscheduler(tid, SCHED_OTHER, &normal) < 0)
    aipc_debug("real-time promotion: cannot demote thread %d of process %d "
               "(%s); RTKit's own limits still apply",
               (int)tid, (int)pid, strerror(errno));
}
