/* SPDX-License-Identifier: ISC */
#include "loop.h"

#include "clock.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum source_type { SOURCE_FD, SOURCE_TIMER, SOURCE_INTERNAL };

struct aipc_source {
  struct aipc_loop *loop;
  enum source_type type;
  int fd;
  aipc_loop_fd_fn fd_fn;
  aipc_loop_fn timer_fn;
  void *data;
  int64_t deadline_ns;
  bool removed;
  struct aipc_source *next; /* timers (sorted) or the dead list */
};

struct work {
  aipc_loop_fn fn;
  void *data;
  struct work *next;
};

struct aipc_loop {
  int epoll_fd;
  int event_fd;
  int timer_fd;
  struct aipc_source event_source;
  struct aipc_source timer_source;
  pthread_t thread;

  pthread_mutex_t lock; /* guards the work queue and `stopping` */
  struct work *work_head, **work_tail;
  bool stopping;

  /* Loop thread only. */
  struct aipc_source *timers; /* sorted by deadline */
  struct aipc_source *dead;   /* removed during dispatch; freed after it */
  bool quit;
};

static void
wake_loop(struct aipc_loop *loop)
{
  uint64_t one = 1;
  ssize_t unused = write(loop->event_fd, &one, sizeof(one));
  (void)unused;
}

static void
run_work(struct aipc_loop *loop)
{
  uint64_t count;
  ssize_t unused = read(loop->event_fd, &count, sizeof(count));
  (void)unused;

  pthread_mutex_lock(&loop->lock);
  struct work *list = loop->work_head;
  loop->work_head = NULL;
  loop->work_tail = &loop->work_head;
  if (loop->stopping)
    loop->quit = true;
  pthread_mutex_unlock(&loop->lock);

  while (list) {
    struct work *w = list;
    list = w->next;
    w->fn(w->data);
    free(w);
  }
}

static void
arm_timer(struct aipc_loop *loop)
{
  struct itimerspec its = {0};
  if (loop->timers) {
    its.it_value = aipc_timespec_from_ns(loop->timers->deadline_ns);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
      its.it_value.tv_nsec = 1; /* zero would disarm */
  }
  timerfd_settime(loop->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
unlink_timer(struct aipc_source *source)
{
  struct aipc_source **p = &source->loop->timers;
  while (*p && *p != source)
    p = &(*p)->next;
  if (*p)
    *p = source->next;
  source->next = NULL;
}

static void
run_timers(struct aipc_loop *loop)
{
  uint64_t expirations;
  ssize_t unused = read(loop->timer_fd, &expirations, sizeof(expirations));
  (void)unused;

  int64_t now = aipc_now_ns();
  while (loop->timers && loop->timers->deadline_ns <= now) {
    struct aipc_source *t = loop->timers;
    loop->timers = t->next;
    t->next = NULL;
    t->timer_fn(t->data);
    free(t);
  }
  arm_timer(loop);
}

static void
free_dead(struct aipc_loop *loop)
{
  while (loop->dead) {
    struct aipc_source *s = loop->dead;
    loop->dead = s->next;
    free(s);
  }
}

static void
loop_main(void *data)
{
  struct aipc_loop *loop = data;
  struct epoll_event events[32];

  while (!loop->quit) {
    int n = epoll_wait(loop->epoll_fd, events, 32, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      aipc_error("epoll_wait: %s", strerror(errno));
      abort();
    }
    for (int i = 0; i < n; i++) {
      struct aipc_source *s = events[i].data.ptr;
      if (s->removed)
        continue;
      if (s == &loop->event_source)
        run_work(loop);
      else if (s == &loop->timer_source)
        run_timers(loop);
      else
        s->fd_fn(s->data, events[i].events);
    }
    free_dead(loop);
  }
}

int
aipc_loop_new(const char *name, const struct aipc_thread_hooks *hooks,
              struct aipc_loop **out)
{
  struct aipc_loop *loop = calloc(1, sizeof(*loop));
  if (!loop)
    return -ENOMEM;
  loop->work_tail = &loop->work_head;
  loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  loop->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  loop->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  int r = -errno;
  if (loop->epoll_fd < 0 || loop->event_fd < 0 || loop->timer_fd < 0)
    goto fail;

  loop->event_source = (struct aipc_source){
      .loop = loop, .type = SOURCE_INTERNAL, .fd = loop->event_fd};
  loop->timer_source = (struct aipc_source){
      .loop = loop, .type = SOURCE_INTERNAL, .fd = loop->timer_fd};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &loop->event_source};
  if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->event_fd, &ev) < 0) {
    r = -errno;
    goto fail;
  }
  ev.data.ptr = &loop->timer_source;
  if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->timer_fd, &ev) < 0) {
    r = -errno;
    goto fail;
  }

  pthread_mutex_init(&loop->lock, NULL);
  r = aipc_thread_start(&loop->thread, name, hooks, loop_main, loop);
  if (r < 0) {
    pthread_mutex_destroy(&loop->lock);
    goto fail;
  }
  *out = loop;
  return 0;

fail:
  if (loop->epoll_fd >= 0)
    close(loop->epoll_fd);
  if (loop->event_fd >= 0)
    close(loop->event_fd);
  if (loop->timer_fd >= 0)
    close(loop->timer_fd);
  free(loop);
  return r;
}

void
aipc_loop_destroy(struct aipc_loop *loop)
{
  if (!loop)
    return;
  assert(!aipc_loop_in_thread(loop));
  pthread_mutex_lock(&loop->lock);
  loop->stopping = true;
  pthread_mutex_unlock(&loop->lock);
  /* The quit flag is set by run_work, after it has taken the queue, so
   * everything posted before `stopping` runs. */
  wake_loop(loop);
  pthread_join(loop->thread, NULL);

  while (loop->timers) {
    struct aipc_source *t = loop->timers;
    loop->timers = t->next;
    free(t);
  }
  free_dead(loop);
  pthread_mutex_destroy(&loop->lock);
  close(loop->epoll_fd);
  close(loop->event_fd);
  close(loop->timer_fd);
  free(loop);
}

bool
aipc_loop_in_thread(const struct aipc_loop *loop)
{
  return pthread_equal(pthread_self(), loop->thread);
}

int
aipc_loop_post(struct aipc_loop *loop, aipc_loop_fn fn, void *data)
{
  struct work *w = malloc(sizeof(*w));
  if (!w)
    return -ENOMEM;
  *w = (struct work){.fn = fn, .data = data};

  pthread_mutex_lock(&loop->lock);
  if (loop->stopping) {
    pthread_mutex_unlock(&loop->lock);
    free(w);
    return -ESHUTDOWN;
  }
  bool was_empty = loop->work_head == NULL;
  *loop->work_tail = w;
  loop->work_tail = &w->next;
  pthread_mutex_unlock(&loop->lock);
  if (was_empty)
    wake_loop(loop);
  return 0;
}

struct invocation {
  aipc_loop_fn fn;
  void *data;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
};

static void
run_invocation(void *data)
{
  struct invocation *inv = data;
  inv->fn(inv->data);
  pthread_mutex_lock(&inv->lock);
  inv->done = true;
  pthread_cond_signal(&inv->cond);
  pthread_mutex_unlock(&inv->lock);
}

int
aipc_loop_invoke(struct aipc_loop *loop, aipc_loop_fn fn, void *data)
{
  if (aipc_loop_in_thread(loop)) {
    fn(data);
    return 0;
  }
  struct invocation inv = {.fn = fn, .data = data};
  pthread_mutex_init(&inv.lock, NULL);
  pthread_cond_init(&inv.cond, NULL);
  int r = aipc_loop_post(loop, run_invocation, &inv);
  if (r == 0) {
    pthread_mutex_lock(&inv.lock);
    while (!inv.done)
      pthread_cond_wait(&inv.cond, &inv.lock);
    pthread_mutex_unlock(&inv.lock);
  }
  pthread_cond_destroy(&inv.cond);
  pthread_mutex_destroy(&inv.lock);
  return r;
}

int
aipc_loop_add_fd(struct aipc_loop *loop, int fd, uint32_t events,
                 aipc_loop_fd_fn fn, void *data, struct aipc_source **out)
{
  assert(aipc_loop_in_thread(loop));
  struct aipc_source *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  *s = (struct aipc_source){
      .loop = loop, .type = SOURCE_FD, .fd = fd, .fd_fn = fn, .data = data};
  struct epoll_event ev = {.events = events, .data.ptr = s};
  if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int r = -errno;
    free(s);
    return r;
  }
  *out = s;
  return 0;
}

int
aipc_loop_update_fd(struct aipc_source *s, uint32_t events)
{
  assert(s->type == SOURCE_FD);
  struct epoll_event ev = {.events = events, .data.ptr = s};
  if (epoll_ctl(s->loop->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
    return -errno;
  return 0;
}

int
aipc_loop_add_timer(struct aipc_loop *loop, int64_t deadline_ns,
                    aipc_loop_fn fn, void *data, struct aipc_source **out)
{
  assert(aipc_loop_in_thread(loop));
  struct aipc_source *s = calloc(1, sizeof(*s));
  if (!s)
    return -ENOMEM;
  *s = (struct aipc_source){.loop = loop,
                            .type = SOURCE_TIMER,
                            .fd = -1,
                            .timer_fn = fn,
                            .data = data,
                            .deadline_ns = deadline_ns};
  struct aipc_source **p = &loop->timers;
  while (*p && (*p)->deadline_ns <= deadline_ns)
    p = &(*p)->next;
  s->next = *p;
  *p = s;
  if (loop->timers == s)
    arm_timer(loop);
  if (out)
    *out = s;
  return 0;
}

void
aipc_loop_remove(struct aipc_source *s)
{
  struct aipc_loop *loop = s->loop;
  assert(aipc_loop_in_thread(loop));
  if (s->type == SOURCE_FD) {
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
  } else {
    bool was_first = loop->timers == s;
    unlink_timer(s);
    if (was_first)
      arm_timer(loop);
  }
  s->removed = true;
  s->next = loop->dead;
  loop->dead = s;
}
