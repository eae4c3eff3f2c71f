/* SPDX-License-Identifier: ISC */
#include "thread.h"

#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct start {
  char name[16];
  struct aipc_thread_hooks hooks;
  void (*fn)(void *data);
  void *data;
};

static void *
thread_main(void *arg)
{
  struct start start = *(struct start *)arg;
  free(arg);
  pthread_setname_np(pthread_self(), start.name);
  if (start.hooks.create)
    start.hooks.create(start.name);
  start.fn(start.data);
  if (start.hooks.destroy)
    start.hooks.destroy();
  return NULL;
}

int
aipc_thread_start(pthread_t *thread, const char *name,
                  const struct aipc_thread_hooks *hooks, void (*fn)(void *data),
                  void *data)
{
  struct start *start = calloc(1, sizeof(*start));
  if (!start)
    return -ENOMEM;
  snprintf(start->name, sizeof(start->name), "%s", name);
  if (hooks)
    start->hooks = *hooks;
  start->fn = fn;
  start->data = data;

  pthread_attr_t attr;
  int r = pthread_attr_init(&attr);
  if (r == 0 && start->hooks.stack_size) {
    size_t size = start->hooks.stack_size;
    if (size < (size_t)PTHREAD_STACK_MIN)
      size = (size_t)PTHREAD_STACK_MIN;
    r = pthread_attr_setstacksize(&attr, size);
  }
  if (r == 0)
    r = pthread_create(thread, &attr, thread_main, start);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    free(start);
    return -r;
  }
  return 0;
}

int
aipc_rt_priority(void)
{
  int priority = 10;
  const char *env = getenv("AUDIOIPC_RT_PRIORITY");
  if (env)
    priority = atoi(env);
  if (priority <= 0)
    return 0;
  int max = sched_get_priority_max(SCHED_FIFO);
  return priority > max ? max : priority;
}

int
aipc_thread_set_realtime(pid_t tid, int priority)
{
  struct sched_param param = {.sched_priority = priority};
  if (sched_setscheduler(tid, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) < 0)
    return -errno;
  return 0;
}

int
aipc_thread_promote(void)
{
  static atomic_bool warned;
  int priority = aipc_rt_priority();
  if (priority == 0)
    return 0;
  int r = aipc_thread_set_realtime(0, priority);
  if (r < 0 && !atomic_exchange(&warned, true))
    aipc_warn("no real-time priority for audio threads (%s); set "
              "RLIMIT_RTPRIO or run with CAP_SYS_NICE",
              strerror(-r));
  return r;
}
