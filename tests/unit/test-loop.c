/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "clock.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static struct aipc_loop *
new_loop(void)
{
  struct aipc_loop *loop;
  CHECK_INT(aipc_loop_new("test-loop", NULL, &loop), ==, 0);
  return loop;
}

struct order {
  pthread_mutex_t lock;
  int next[4]; /* per producer: the value expected next */
  int bad;
  int total;
};

struct post_item {
  struct order *order;
  int producer, value;
};

static void
record_item(void *data)
{
  struct post_item *item = data;
  struct order *o = item->order;
  pthread_mutex_lock(&o->lock);
  if (o->next[item->producer] != item->value)
    o->bad++;
  o->next[item->producer] = item->value + 1;
  o->total++;
  pthread_mutex_unlock(&o->lock);
  free(item);
}

struct producer {
  struct aipc_loop *loop;
  struct order *order;
  int id;
};

static void *
produce(void *arg)
{
  struct producer *p = arg;
  for (int i = 0; i < 1000; i++) {
    struct post_item *item = malloc(sizeof(*item));
    *item = (struct post_item){p->order, p->id, i};
    CHECK_INT(aipc_loop_post(p->loop, record_item, item), ==, 0);
  }
  return NULL;
}

static void
nothing(void *data)
{
  (void)data;
}

TEST(loop_post_runs_in_order_from_many_threads)
{
  struct aipc_loop *loop = new_loop();
  struct order order = {.lock = PTHREAD_MUTEX_INITIALIZER};
  pthread_t threads[4];
  struct producer producers[4];
  for (int i = 0; i < 4; i++) {
    producers[i] = (struct producer){loop, &order, i};
    pthread_create(&threads[i], NULL, produce, &producers[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  /* invoke returns after everything posted before it has run. */
  CHECK_INT(aipc_loop_invoke(loop, nothing, NULL), ==, 0);
  CHECK_INT(order.total, ==, 4000);
  CHECK_INT(order.bad, ==, 0);
  aipc_loop_destroy(loop);
}

static void
count_up(void *data)
{
  atomic_fetch_add((atomic_int *)data, 1);
}

TEST(loop_destroy_runs_posted_work_then_refuses_more)
{
  struct aipc_loop *loop = new_loop();
  atomic_int count = 0;
  for (int i = 0; i < 100; i++)
    CHECK_INT(aipc_loop_post(loop, count_up, &count), ==, 0);
  aipc_loop_destroy(loop);
  CHECK_INT(atomic_load(&count), ==, 100);
}

struct hooks_seen {
  pthread_t created_on, destroyed_on, ran_on;
  char name[32];
  int created, destroyed;
};
static struct hooks_seen seen;

static void
on_create(const char *name)
{
  seen.created_on = pthread_self();
  snprintf(seen.name, sizeof(seen.name), "%s", name);
  seen.created++;
}

static void
on_destroy(void)
{
  seen.destroyed_on = pthread_self();
  seen.destroyed++;
}

static void
note_thread(void *data)
{
  (void)data;
  seen.ran_on = pthread_self();
}

TEST(loop_calls_thread_hooks_on_its_own_thread)
{
  struct aipc_thread_hooks hooks = {
      .create = on_create, .destroy = on_destroy, .stack_size = 256 * 1024};
  struct aipc_loop *loop;
  CHECK_INT(aipc_loop_new("hooked", &hooks, &loop), ==, 0);
  CHECK_INT(aipc_loop_invoke(loop, note_thread, NULL), ==, 0);
  aipc_loop_destroy(loop);
  CHECK_INT(seen.created, ==, 1);
  CHECK_INT(seen.destroyed, ==, 1);
  CHECK(strcmp(seen.name, "hooked") == 0);
  CHECK(pthread_equal(seen.created_on, seen.ran_on));
  CHECK(pthread_equal(seen.destroyed_on, seen.ran_on));
  CHECK(!pthread_equal(seen.ran_on, pthread_self()));
}

struct timer_log {
  struct aipc_loop *loop;
  int64_t deadlines[3];
  int64_t fired_at[3];
  int order[3];
  int fired;
  struct aipc_source *cancelled;
};

struct timer_arg {
  struct timer_log *log;
  int index;
};
static struct timer_arg timer_args[4];

static void
timer_fired(void *data)
{
  struct timer_arg *arg = data;
  struct timer_log *log = arg->log;
  CHECK(arg->index < 3); /* the cancelled one never fires */
  log->fired_at[arg->index] = aipc_now_ns();
  log->order[log->fired++] = arg->index;
}

static void
add_timers(void *data)
{
  struct timer_log *log = data;
  int64_t now = aipc_now_ns();
  /* Added out of order; they must fire by deadline. */
  int64_t offsets[3] = {30, 10, 20};
  for (int i = 0; i < 3; i++) {
    timer_args[i] = (struct timer_arg){log, i};
    log->deadlines[i] = now + offsets[i] * AIPC_NSEC_PER_MSEC;
    CHECK_INT(aipc_loop_add_timer(log->loop, log->deadlines[i], timer_fired,
                                  &timer_args[i], NULL),
              ==, 0);
  }
  timer_args[3] = (struct timer_arg){log, 3};
  CHECK_INT(aipc_loop_add_timer(log->loop, now + 5 * AIPC_NSEC_PER_MSEC,
                                timer_fired, &timer_args[3], &log->cancelled),
            ==, 0);
  aipc_loop_remove(log->cancelled);
}

TEST(loop_timers_fire_in_deadline_order_and_can_be_cancelled)
{
  struct timer_log log = {.loop = new_loop()};
  CHECK_INT(aipc_loop_invoke(log.loop, add_timers, &log), ==, 0);
  /* Wait (bounded by the test timeout) until all three fired. */
  for (;;) {
    aipc_loop_invoke(log.loop, nothing, NULL);
    if (log.fired == 3)
      break;
    usleep(1000);
  }
  CHECK_INT(log.order[0], ==, 1);
  CHECK_INT(log.order[1], ==, 2);
  CHECK_INT(log.order[2], ==, 0);
  for (int i = 0; i < 3; i++)
    CHECK(log.fired_at[i] >= log.deadlines[i]); /* never early */
  aipc_loop_destroy(log.loop);
}

struct fd_watch {
  struct aipc_loop *loop;
  int pipes[2][2];
  struct aipc_source *sources[2];
  int calls[2];
};

struct watch_arg {
  struct fd_watch *w;
  int index;
};
static struct watch_arg watch_args[2];

/* Whichever source runs first removes the other, whose event was
 * collected in the same epoll batch: it must not run. */
static void
on_ready(void *data, uint32_t events)
{
  struct watch_arg *arg = data;
  struct fd_watch *w = arg->w;
  CHECK(events & EPOLLIN);
  w->calls[arg->index]++;
  struct aipc_source **other = &w->sources[1 - arg->index];
  if (*other) {
    aipc_loop_remove(*other);
    *other = NULL;
  }
  char c;
  CHECK(read(w->pipes[arg->index][0], &c, 1) == 1);
}

static void
watch(void *data)
{
  struct fd_watch *w = data;
  for (int i = 0; i < 2; i++) {
    watch_args[i] = (struct watch_arg){w, i};
    CHECK_INT(aipc_loop_add_fd(w->loop, w->pipes[i][0], EPOLLIN, on_ready,
                               &watch_args[i], &w->sources[i]),
              ==, 0);
  }
}

static void
unwatch(void *data)
{
  struct fd_watch *w = data;
  for (int i = 0; i < 2; i++)
    if (w->sources[i])
      aipc_loop_remove(w->sources[i]);
}

static void
sync_loop(void *data)
{
  (void)data;
}

TEST(loop_fd_sources_dispatch_and_remove_safely)
{
  struct fd_watch w = {.loop = new_loop()};
  for (int i = 0; i < 2; i++) {
    CHECK(pipe2(w.pipes[i], O_CLOEXEC) == 0);
    CHECK(write(w.pipes[i][1], "x", 1) == 1);
  }
  /* Both fds are readable before the loop first waits on them. */
  CHECK_INT(aipc_loop_invoke(w.loop, watch, &w), ==, 0);
  for (;;) {
    aipc_loop_invoke(w.loop, sync_loop, NULL);
    if (w.calls[0] + w.calls[1] > 0)
      break;
    usleep(100);
  }
  aipc_loop_invoke(w.loop, unwatch, &w);
  CHECK_INT(w.calls[0] + w.calls[1], ==, 1);
  for (int i = 0; i < 2; i++) {
    close(w.pipes[i][0]);
    close(w.pipes[i][1]);
  }
  aipc_loop_destroy(w.loop);
}
