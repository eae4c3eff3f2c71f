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
#include "log.h"
#include "thread.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
aipc_promote_client_thread(struct aipc_rtkit *rtkit, pid_t pid, int pidfd,
                           pid_t tid)
{
  int priority = aipc_rt_priority();
  if (priority == 0)
    return -EPERM; /* promotion is off */
  if (pidfd < 0)
    return -EPERM; /* nobody vouched for the client's process */
  if (!process_alive(pidfd) || !aipc_thread_of(pid, tid))
    return -ESRCH;

  int r = aipc_thread_set_realtime(tid, priority);
  if (r == -EPERM) {
    pthread_mutex_lock(&rtkit->lock);
    r = rtkit_call(rtkit, pid, tid, priority);
    pthread_mutex_unlock(&rtkit->lock);
  }
  if (r < 0)
    return r;

  /* The thread may have ended while we worked and its id gone to another
   * process; then take back what we gave. */
  if (!process_alive(pidfd) || !aipc_thread_of(pid, tid)) {
    struct sched_param normal = {.sched_priority = 0};
    sched_setscheduler(tid, SCHED_OTHER, &normal);
    return -ESRCH;
  }
  return 0;
}
