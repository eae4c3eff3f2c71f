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

/*
 * Asks for real-time scheduling (SCHED_FIFO) for the calling thread, at
 * the priority AUDIOIPC_RT_PRIORITY gives (default 10; 0 turns promotion
 * off). Returns 0 or -errno; the first failure in the process is logged,
 * later ones are not. Never fatal: audio still plays, less robustly.
 */
int aipc_thread_promote(void);

#endif
