/* SPDX-License-Identifier: ISC */
/*
 * Per-stream statistics. The backend's audio thread only adds to atomic
 * counters in a record; the records live in a registry that any thread
 * may read, and outlive their streams for a while so a caller can see how
 * a finished stream fared.
 */
#include "audioipc/server.h"

#include "server-private.h"
#include "virtual.h"

#include <stdlib.h>
#include <string.h>

/* Destroyed streams whose statistics are kept. */
#define RETIRED_MAX 256

struct aipc_stats_registry {
  pthread_mutex_t lock;
  struct aipc_stream_stats *live;
  struct aipc_stream_stats *retired; /* newest first */
  unsigned nretired;
};

int
aipc_stats_registry_new(struct aipc_stats_registry **out)
{
  struct aipc_stats_registry *r = calloc(1, sizeof(*r));
  if (!r)
    return -ENOMEM;
  pthread_mutex_init(&r->lock, NULL);
  *out = r;
  return 0;
}

static void
free_list(struct aipc_stream_stats *s)
{
  while (s) {
    struct aipc_stream_stats *next = s->next;
    free(s);
    s = next;
  }
}

void
aipc_stats_registry_destroy(struct aipc_stats_registry *r)
{
  if (!r)
    return;
  free_list(r->live);
  free_list(r->retired);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

struct aipc_stream_stats *
aipc_stats_new(struct aipc_stats_registry *r, unsigned client, pid_t pid,
               uint32_t stream, const struct aipc_stream_shape *shape)
{
  struct aipc_stream_stats *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->client = client;
  s->pid = pid;
  s->stream = stream;
  s->shape = *shape;
  atomic_init(&s->state, -1);
  pthread_mutex_lock(&r->lock);
  s->next = r->live;
  r->live = s;
  pthread_mutex_unlock(&r->lock);
  return s;
}

/* Called with the lock held. */
static void
unlink_live(struct aipc_stats_registry *r, struct aipc_stream_stats *s)
{
  struct aipc_stream_stats **p = &r->live;
  while (*p && *p != s)
    p = &(*p)->next;
  if (*p)
    *p = s->next;
}

void
aipc_stats_discard(struct aipc_stats_registry *r, struct aipc_stream_stats *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&r->lock);
  unlink_live(r, s);
  pthread_mutex_unlock(&r->lock);
  free(s);
}

void
aipc_stats_retire(struct aipc_stats_registry *r, struct aipc_stream_stats *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&r->lock);
  unlink_live(r, s);
  s->next = r->retired;
  r->retired = s;
  if (++r->nretired > RETIRED_MAX) {
    /* Drop the oldest. */
    struct aipc_stream_stats **last = &r->retired;
    while ((*last)->next)
      last = &(*last)->next;
    free(*last);
    *last = NULL;
    r->nretired--;
  }
  pthread_mutex_unlock(&r->lock);
}

/* The smallest wait (us) at or below which `fraction` of the waits fall. */
static uint32_t
percentile(const struct aipc_stream_stats *s, uint64_t total, double fraction)
{
  if (total == 0)
    return 0;
  uint64_t want = (uint64_t)((double)total * fraction);
  if (want == 0)
    want = 1;
  uint64_t seen = 0;
  for (uint32_t i = 0; i <= AIPC_WAIT_BUCKETS; i++) {
    seen += atomic_load_explicit(&s->wait_hist[i], memory_order_relaxed);
    if (seen >= want)
      return i;
  }
  return AIPC_WAIT_BUCKETS;
}

static void
export_one(const struct aipc_stream_stats *s, bool active,
           AudioIpcStreamStats *out)
{
  uint64_t waits = 0;
  for (uint32_t i = 0; i <= AIPC_WAIT_BUCKETS; i++)
    waits += atomic_load_explicit(&s->wait_hist[i], memory_order_relaxed);
  *out = (AudioIpcStreamStats){.client = s->client,
                               .client_pid = s->pid,
                               .stream = s->stream,
                               .active = active,
                               .callbacks = atomic_load(&s->callbacks),
                               .frames = atomic_load(&s->frames),
                               .misses = atomic_load(&s->misses),
                               .sleeps = atomic_load(&s->sleeps),
                               .wait_p50_us = percentile(s, waits, 0.50),
                               .wait_p99_us = percentile(s, waits, 0.99),
                               .wait_p999_us = percentile(s, waits, 0.999),
                               .shm_bytes = atomic_load(&s->shm_bytes),
                               .wait_max_us = atomic_load(&s->wait_max_us)};
}

int
aipc_stats_export(struct aipc_stats_registry *r, AudioIpcStreamStats *out,
                  size_t max)
{
  size_t n = 0;
  pthread_mutex_lock(&r->lock);
  for (int pass = 0; pass < 2; pass++) {
    for (const struct aipc_stream_stats *s = pass ? r->retired : r->live; s;
         s = s->next, n++)
      if (n < max)
        export_one(s, pass == 0, &out[n]);
  }
  pthread_mutex_unlock(&r->lock);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
aipc_stats_export_live(struct aipc_stats_registry *r, AudioIpcStreamInfo *out,
                       size_t max)
{
  size_t n = 0;
  pthread_mutex_lock(&r->lock);
  for (const struct aipc_stream_stats *s = r->live; s; s = s->next, n++) {
    if (n >= max)
      continue;
    AudioIpcStreamInfo *o = &out[n];
    export_one(s, true, &o->stats);
    o->input_channels = s->shape.in_channels;
    o->output_channels = s->shape.out_channels;
    o->rate = s->shape.rate;
    o->format = s->shape.format;
    o->latency_frames = s->shape.latency_frames;
    o->ring_frames = atomic_load(&s->ring_frames);
    o->ahead_frames = atomic_load(&s->ahead_frames);
    o->state = atomic_load(&s->state);
  }
  pthread_mutex_unlock(&r->lock);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

void
audioipc_server_virtual_timing(uint64_t *periods, uint64_t *late_wakes)
{
  aipc_virtual_timing(periods, late_wakes);
}
