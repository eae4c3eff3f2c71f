/* SPDX-License-Identifier: ISC */
/*
 * Threads the library starts. Each one is named, runs on a stack of the
 * embedder's chosen size, and calls the embedder's create/destroy hooks on
 * itself, first and last thing.
 */
#ifndef AIPC_THREAD_H
#define AIPC_THREAD_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

struct aipc_thread_hooks {
  size_t stack_size;                       /* 0: the system's default */
  void (*create)(const char *thread_name); /* may be NULL */
  void (*destroy)(void);                   /* may be NULL */
};

/* Starts fn(data) on a new joinable thread named `name` (at most 15
 * characters are kept). `hooks` may be NULL. Returns 0 or -errno. */
int aipc_thread_start(pthread_t *thread, const char *name,
                      const struct aipc_thread_hooks *hooks,
                      void (*fn)(void *data), void *data);

/* The RLIMIT_RTTIME (microseconds) of a process holding real-time
 * threads: a thread that runs this long without blocking gets SIGXCPU,
 * then SIGKILL. RTKit's default bound, which it checks before it grants
 * anything; the client library sets it before asking, the server before
 * it promotes a client's thread itself. */
#define AIPC_RTTIME_MAX_US 200000

/* The real-time priority audio threads ask for: AUDIOIPC_RT_PRIORITY
 * (default 10; 0 turns promotion off), at most SCHED_FIFO's maximum. */
int aipc_rt_priority(void);

/* Gives thread `tid` (of any process the caller may reschedule)
 * SCHED_FIFO at `priority`, reset to normal in children it forks.
 * Returns 0 or -errno (-EPERM without the right). */
int aipc_thread_set_realtime(pid_t tid, int priority);

/*
 * Asks for real-time scheduling for the calling thread at aipc_rt_priority().
 * Returns 0 or -errno; the first failure in the process is logged, later
 * ones are not. Never fatal: audio still plays, less robustly.
 */
int aipc_thread_promote(void);

#endif
