/* SPDX-License-Identifier: ISC */
/*
 * The client's callback threads. Each waits on the shared memory of its
 * streams for the server's requests and runs the user's data callback on
 * the shared areas directly, with no copy.
 *
 * Without pool_size every stream has a thread of its own. With pool_size
 * N the context has at most N threads, made as streams need them and kept
 * until the context goes; each serves up to AIPC_CB_STREAMS streams, one
 * callback after another, and sleeps on all of their request words at
 * once (futex_waitv), so a client with many streams costs one wake-up
 * per period per thread rather than per stream. The price: a slow
 * callback delays the other streams of its thread, as on backends that
 * run every stream from one thread.
 *
 * A thread learns of streams coming and going through `control`: the
 * change is made (a slot filled or emptied), the word bumped, and the
 * thread reloads its slots and acknowledges on `ack`; a stream is freed
 * only once its thread has acknowledged it is gone.
 */
#include "client-private.h"

#include "log.h"
#include "protocol.h"
#include "rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct aipc_cb_thread {
  cubeb *ctx;
  pthread_t thread;
  struct aipc_wake tid;     /* the thread's id, once it runs */
  struct aipc_wake control; /* bumped when its streams change or it must end */
  struct aipc_wake ack;     /* the last control value the thread acted on */
  atomic_bool quit;
  _Atomic(cubeb_stream *) slots[AIPC_CB_STREAMS];
  unsigned nstreams; /* ctx->pool_lock */
  /* The thread's own: its streams as last loaded, and what it waits on
   * (here rather than on its stack, which stays small). */
  cubeb_stream *streams[AIPC_CB_STREAMS];
  struct aipc_wake *words[AIPC_CB_STREAMS + 1];
  uint32_t old[AIPC_CB_STREAMS + 1];
  struct aipc_cb_thread *next; /* in ctx->pool, ctx->pool_lock */
};

/* --- The thread ----------------------------------------------------------- */

/* A data callback returned more frames than it was asked for. */
static long
overran(cubeb_stream *s)
{
  /* pa_stream_write refuses it, and libcubeb asserts that it worked. */
  if (s->context->rules == AIPC_RULES_PULSE && s->output_area)
    aipc_client_breach(s->context, "data callback",
                       "returned more frames than it was asked for");
  return -1; /* a broken callback is an error, not an overrun */
}

/*
 * Fills a buffered output stream's ring from the user's callback, or
 * passes it the input its ring holds (a duplex stream: and fills the
 * output ring's same slots), in pieces that end at the ring's end, until
 * the ring is full (or empty) or the callback ends. Each piece is
 * published at once: the server may be waiting for it.
 */
static void
serve_ring(cubeb_stream *s)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  uint32_t slots = s->frames_max;
  uint8_t *in_ring = s->input_area, *out_ring = s->output_area;
  /* What the server's position counts: output it played, or input. */
  bool ahead_of_server = in_ring == NULL;
  atomic_store(&s->in_user.value, 1);
  while (atomic_load(&s->running) &&
         atomic_load_explicit(&ctl->end, memory_order_relaxed) ==
             AIPC_RING_END_NONE) {
    uint32_t pos = aipc_wake_load(&ctl->client_pos);
    uint32_t server = aipc_wake_load(&ctl->server_pos);
    uint32_t span = ahead_of_server ? slots - (pos - server) : server - pos;
    if (span == 0 || span > slots)
      break; /* full (or empty), or a server gone wrong */
    uint32_t at = pos & (slots - 1);
    uint32_t n = span < slots - at ? span : slots - at;
    void *in = in_ring ? in_ring + (size_t)at * s->in_frame_bytes : NULL;
    void *out = out_ring ? out_ring + (size_t)at * s->out_frame_bytes : NULL;
    aipc_rt_leave();
    long got = s->data_cb(s, s->user_ptr, in, out, n);
    aipc_rt_enter();
    if (got > (long)n)
      got = overran(s);
    uint32_t end = AIPC_RING_END_NONE;
    if (got < 0) {
      end = AIPC_RING_END_ERROR;
    } else {
      /* Output counts the frames made; input alone, those consumed. */
      pos += out ? (uint32_t)got : n;
      if (got < (long)n)
        end = AIPC_RING_END_SHORT;
    }
    if (end != AIPC_RING_END_NONE) {
      atomic_store_explicit(&ctl->end_pos, pos, memory_order_relaxed);
      atomic_store_explicit(&ctl->end, end, memory_order_release);
      if (out && end == AIPC_RING_END_SHORT)
        atomic_store(&s->draining, true); /* until DRAINED (contract.c) */
    }
    aipc_wake_publish(&ctl->client_pos, pos);
    /* The server waits on this word for any news. */
    aipc_wake_publish(&ctl->response, aipc_wake_load(&ctl->response) + 1);
  }
  aipc_wake_publish(&s->in_user, 0);
}

/* Answers the stream's request if a new one is waiting (for a buffered
 * stream: fills or drains its ring). Real-time path: it touches only the
 * shared memory and the user's callback; no lock, no allocation, no
 * syscall but the futex. */
static bool
serve(cubeb_stream *s)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  uint32_t seq = aipc_wake_load(&ctl->request);
  if (seq == s->last_request)
    return false;
  s->last_request = seq;
  if (s->buffered) {
    serve_ring(s);
    return true;
  }
  uint32_t frames = atomic_load_explicit(&ctl->frames, memory_order_relaxed);
  if (frames > s->frames_max)
    frames = s->frames_max;

  long got;
  atomic_store(&s->in_user.value, 1);
  if (atomic_load(&s->running)) {
    aipc_rt_leave();
    got = s->data_cb(s, s->user_ptr, s->input_area, s->output_area, frames);
    aipc_rt_enter();
  } else {
    /* Stopped: answer with silence, never call the user. */
    if (s->output_area)
      memset(s->output_area, 0, (size_t)frames * s->out_frame_bytes);
    got = frames;
  }
  aipc_wake_publish(&s->in_user, 0);

  if (got > (long)frames) {
    got = overran(s);
  } else if (got >= 0 && got < (long)frames && s->output_area &&
             atomic_load(&s->running)) {
    atomic_store(&s->draining, true); /* until DRAINED (contract.c) */
  }
  atomic_store_explicit(&ctl->result, (int32_t)(got < 0 ? -1 : got),
                        memory_order_release);
  aipc_wake_publish(&ctl->response, seq);
  return true;
}

static void
thread_main(void *data)
{
  struct aipc_cb_thread *t = data;
  cubeb_stream **streams = t->streams;
  struct aipc_wake **words = t->words;
  uint32_t *old = t->old;
  unsigned n = 0;
  uint32_t seen = 0;
  bool loaded = false;

  aipc_client_set_callback(AIPC_CB_DATA); /* for the thread's whole life */
  /* Tells whoever started us who we are, so it can get us promoted. */
  aipc_wake_publish(&t->tid, (uint32_t)gettid());
  aipc_rt_enter();
  for (;;) {
    uint32_t control = aipc_wake_load(&t->control);
    if (!loaded || control != seen) {
      if (atomic_load(&t->quit))
        break;
      n = 0;
      for (unsigned i = 0; i < AIPC_CB_STREAMS; i++) {
        cubeb_stream *s = atomic_load(&t->slots[i]);
        if (s)
          streams[n++] = s;
      }
      seen = control;
      loaded = true;
      aipc_wake_publish(&t->ack, control);
    }

    bool served = false;
    for (unsigned i = 0; i < n; i++)
      served |= serve(streams[i]);
    if (served)
      continue; /* more may have come meanwhile */

    words[0] = &t->control;
    old[0] = control;
    for (unsigned i = 0; i < n; i++) {
      words[i + 1] = &streams[i]->ctl->request;
      old[i + 1] = streams[i]->last_request;
    }
    if (aipc_wake_wait_any(words, old, n + 1) == -ENOSYS) {
      /* An old kernel: one stream per thread (see aipc_callbacks_attach),
       * and whoever changes it bumps its request word too. */
      aipc_wake_wait(words[n], old[n], -1);
    }
  }
  aipc_rt_leave();
}

/* --- Real-time priority --------------------------------------------------- */

/*
 * Real-time priority for a callback thread: directly where our limits
 * allow, otherwise through the server, which holds the rights a sandboxed
 * process lacks (it can reach neither the scheduler nor RTKit). Never
 * fatal: the first failure in the process is logged.
 */
static void
promote(cubeb *ctx, pid_t tid)
{
  static atomic_bool warned;
  int priority = aipc_rt_priority();
  if (priority == 0)
    return;
  int direct = aipc_thread_set_realtime(tid, priority);
  if (direct == 0)
    return;
  struct rlimit rttime;
  if (getrlimit(RLIMIT_RTTIME, &rttime) == 0 &&
      rttime.rlim_max > AIPC_RTTIME_MAX_US) {
    rttime.rlim_cur = rttime.rlim_max = AIPC_RTTIME_MAX_US;
    setrlimit(RLIMIT_RTTIME, &rttime);
  }
  struct aipc_promote_thread q = {.tid = (uint32_t)tid};
  struct aipc_empty reply;
  int r = aipc_client_call(ctx, AIPC_OP_PROMOTE_THREAD, &q, &reply, NULL);
  if (r < 0 && !atomic_exchange(&warned, true))
    aipc_warn("no real-time priority for audio callbacks (by ourselves: %s; "
              "through the server: %s)",
              strerror(-direct), strerror(-r));
}

/* --- Threads and their streams -------------------------------------------- */

/* Whether the kernel has futex_waitv, which pooling needs. */
static bool
can_wait_any(void)
{
  static atomic_int known; /* 0 unknown, 1 yes, 2 no */
  int k = atomic_load(&known);
  if (k == 0) {
    struct aipc_wake w = {0};
    struct aipc_wake *words[] = {&w};
    uint32_t old[] = {1}; /* differs: returns at once if supported */
    k = aipc_wake_wait_any(words, old, 1) == -ENOSYS ? 2 : 1;
    atomic_store(&known, k);
  }
  return k == 1;
}

/* Starts a thread and gets it promoted. */
static int
thread_new(cubeb *ctx, struct aipc_cb_thread **out)
{
  struct aipc_cb_thread *t = calloc(1, sizeof(*t));
  if (!t)
    return -ENOMEM;
  t->ctx = ctx;
  char name[16];
  snprintf(name, sizeof(name), "aipc-cb-%u",
           atomic_fetch_add(&ctx->threads_made, 1));
  int r = aipc_thread_start(&t->thread, name, &ctx->hooks, thread_main, t);
  if (r < 0) {
    free(t);
    return r;
  }
  uint32_t tid;
  while ((tid = aipc_wake_load(&t->tid)) == 0)
    aipc_wake_wait(&t->tid, 0, -1);
  promote(ctx, (pid_t)tid);
  *out = t;
  return 0;
}

static void
thread_end(struct aipc_cb_thread *t, cubeb_stream *last)
{
  atomic_store(&t->quit, true);
  aipc_wake_publish(&t->control, aipc_wake_load(&t->control) + 1);
  if (last) /* for a thread waiting on its stream only (old kernels) */
    aipc_wake_publish(&last->ctl->request,
                      aipc_wake_load(&last->ctl->request) + 1);
  pthread_join(t->thread, NULL);
  free(t);
}

/* Bumps `control` and returns once the thread has seen the change. For a
 * pool thread, ctx->pool_lock is held, so changes are seen in order. */
static void
thread_sync(struct aipc_cb_thread *t)
{
  uint32_t want = aipc_wake_load(&t->control) + 1;
  aipc_wake_publish(&t->control, want);
  uint32_t ack;
  while ((int32_t)((ack = aipc_wake_load(&t->ack)) - want) < 0)
    aipc_wake_wait(&t->ack, ack, -1);
}

/* The thread to take one more stream: streams spread over up to
 * pool_size threads before they double up. *idle tells whether it is a
 * thread that had no stream left. ctx->pool_lock held. */
static int
pick_pooled(cubeb *ctx, struct aipc_cb_thread **out, bool *idle)
{
  *idle = false;
  struct aipc_cb_thread *best = NULL;
  for (struct aipc_cb_thread *t = ctx->pool; t; t = t->next)
    if (t->nstreams < AIPC_CB_STREAMS &&
        (!best || t->nstreams < best->nstreams))
      best = t;
  if (best && (best->nstreams == 0 || ctx->pool_threads >= ctx->pool_size)) {
    *idle = best->nstreams == 0;
    *out = best;
    return 0;
  }
  if (ctx->pool_threads >= ctx->pool_size)
    return -EBUSY; /* every thread serves AIPC_CB_STREAMS streams */
  int r = thread_new(ctx, out);
  if (r == 0) {
    (*out)->next = ctx->pool;
    ctx->pool = *out;
    ctx->pool_threads++;
  }
  return r;
}

/* Puts `s` in a free slot of `t` and waits until the thread has it. */
static void
thread_add(struct aipc_cb_thread *t, cubeb_stream *s)
{
  unsigned slot = 0;
  while (atomic_load(&t->slots[slot]))
    slot++;
  atomic_store(&t->slots[slot], s);
  t->nstreams++;
  s->cb = t;
  s->cb_slot = slot;
  thread_sync(t);
}

int
aipc_callbacks_attach(cubeb *ctx, cubeb_stream *s)
{
  /* The region is new and the server's first request is 1. */
  s->last_request = 0;
  s->cb_pooled = ctx->pool_size > 0 && can_wait_any();
  struct aipc_cb_thread *t;
  int r;
  if (!s->cb_pooled) {
    r = thread_new(ctx, &t);
    if (r == 0)
      thread_add(t, s);
    return r;
  }
  pthread_mutex_lock(&ctx->pool_lock);
  bool idle;
  r = pick_pooled(ctx, &t, &idle);
  if (r == 0)
    thread_add(t, s);
  pthread_mutex_unlock(&ctx->pool_lock);
  /* An idle thread the server may have demoted meanwhile (it keeps a
   * process's real-time threads to its streams). */
  if (r == 0 && idle)
    promote(ctx, (pid_t)aipc_wake_load(&t->tid));
  return r;
}

void
aipc_callbacks_detach(cubeb *ctx, cubeb_stream *s)
{
  struct aipc_cb_thread *t = s->cb;
  if (!s->cb_pooled) {
    thread_end(t, s);
    return;
  }
  pthread_mutex_lock(&ctx->pool_lock);
  atomic_store(&t->slots[s->cb_slot], NULL);
  t->nstreams--;
  thread_sync(t);
  pthread_mutex_unlock(&ctx->pool_lock);
}

void
aipc_callbacks_shutdown(cubeb *ctx)
{
  while (ctx->pool) {
    struct aipc_cb_thread *t = ctx->pool;
    ctx->pool = t->next;
    thread_end(t, NULL);
  }
  ctx->pool_threads = 0;
}
