/* SPDX-License-Identifier: ISC */
/*
 * An event loop on its own thread: epoll for fds, a timerfd for timers,
 * an eventfd to post work from other threads.
 *
 * Sources (fds and timers) are added and removed on the loop thread only;
 * other threads post a function to do it. Callbacks run on the loop
 * thread, one at a time.
 */
#ifndef AIPC_LOOP_H
#define AIPC_LOOP_H

#include "thread.h"

#include <stdbool.h>
#include <stdint.h>

struct aipc_loop;
struct aipc_source;

typedef void (*aipc_loop_fn)(void *data);
typedef void (*aipc_loop_fd_fn)(void *data, uint32_t events);

/* Starts a loop thread named `name`. `hooks` may be NULL. */
int aipc_loop_new(const char *name, const struct aipc_thread_hooks *hooks,
                  struct aipc_loop **out);

/*
 * Stops the thread and frees the loop. Work already posted runs first;
 * sources still registered are dropped without their callbacks (their
 * fds are not closed: they belong to whoever added them). Not from the
 * loop thread itself.
 */
void aipc_loop_destroy(struct aipc_loop *loop);

bool aipc_loop_in_thread(const struct aipc_loop *loop);

/* Runs fn(data) on the loop thread, after work posted before it. Any
 * thread. Returns -ESHUTDOWN once the loop is stopping; fn then never
 * runs and `data` stays the caller's. */
int aipc_loop_post(struct aipc_loop *loop, aipc_loop_fn fn, void *data);

/* Runs fn(data) on the loop thread and waits for it to return. On the loop
 * thread, calls it directly. */
int aipc_loop_invoke(struct aipc_loop *loop, aipc_loop_fn fn, void *data);

/* Loop thread only. Watches fd (borrowed) for `events` (EPOLLIN ...). */
int aipc_loop_add_fd(struct aipc_loop *loop, int fd, uint32_t events,
                     aipc_loop_fd_fn fn, void *data, struct aipc_source **out);

/* Changes the events an fd source waits for. Any thread, while the source
 * is registered. */
int aipc_loop_update_fd(struct aipc_source *source, uint32_t events);

/* Loop thread only. Calls fn(data) once, at `deadline_ns` on the
 * monotonic clock (aipc_now_ns()). The source is removed after it fires. */
int aipc_loop_add_timer(struct aipc_loop *loop, int64_t deadline_ns,
                        aipc_loop_fn fn, void *data, struct aipc_source **out);

/* Loop thread only. Unregisters a source; its callback will not run again,
 * even for events already collected. A fired timer is gone already and
 * must not be removed. */
void aipc_loop_remove(struct aipc_source *source);

#endif
