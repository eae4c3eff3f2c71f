/* SPDX-License-Identifier: ISC */
#include "tamper.h"

#include "clock.h"

#include <string.h>
#include <unistd.h>

void
tamper_connect(struct fixture *f, struct tamper *t, int mode)
{
  memset(t, 0, sizeof(*t));
  t->mode = mode;
  t->rng = 0x7a3c9e01u + (uint64_t)mode;
  fixture_connect(f, &t->r, &t->client);
  raw_greet(&t->r);
}

void
tamper_open(struct fixture *f, struct tamper *t, int mode,
            const struct aipc_stream_init *q, bool start)
{
  tamper_connect(f, t, mode);
  tamper_stream(t, q, start);
}

void
tamper_stream(struct tamper *t, const struct aipc_stream_init *q, bool start)
{
  struct aipc_stream_init out = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int fd = -1;
  int id = raw_stream_init(&t->r, q ? q : &out, &t->reply, &fd);
  CHECK(id > 0);
  t->stream = (uint32_t)id;
  CHECK_INT(aipc_shm_import(fd, t->reply.shm_size, &t->shm), ==, 0);
  aipc_shm_close_fd(&t->shm);
  t->ctl = t->shm.base;
  if (start)
    CHECK_INT(raw_stream_call(&t->r, AIPC_OP_STREAM_START, t->stream), ==, 0);
}

static void *
serve_main(void *data)
{
  struct tamper *t = data;
  while (!atomic_load(&t->quit)) {
    uint32_t frames;
    uint32_t seq = tamper_next(t, 5, &frames);
    if (!seq)
      continue;
    atomic_fetch_add(&t->requests, 1);
    switch (atomic_load(&t->policy)) {
    case TAMPER_FULL:
      tamper_answer(t, seq, (int32_t)frames);
      break;
    case TAMPER_SHORT:
      tamper_answer(t, seq, (int32_t)(frames / 2));
      break;
    case TAMPER_ZERO:
      tamper_answer(t, seq, 0);
      break;
    case TAMPER_ERROR:
      tamper_answer(t, seq, -1);
      break;
    default:
      break;
    }
  }
  return NULL;
}

void
tamper_serve(struct tamper *t, enum tamper_policy policy)
{
  atomic_store(&t->policy, policy);
  atomic_store(&t->quit, false);
  CHECK_INT(pthread_create(&t->thread, NULL, serve_main, t), ==, 0);
  t->serving = true;
}

void
tamper_close(struct tamper *t)
{
  if (t->serving) {
    atomic_store(&t->quit, true);
    pthread_join(t->thread, NULL);
    t->serving = false;
  }
  aipc_shm_release(&t->shm);
  raw_close(&t->r);
}

void
tamper_answer(struct tamper *t, uint32_t seq, int32_t result)
{
  atomic_store(&t->ctl->result, result);
  aipc_wake_publish(&t->ctl->response, seq);
  t->answered = seq;
}

uint32_t
tamper_next(struct tamper *t, int timeout_ms, uint32_t *frames)
{
  int64_t deadline = aipc_now_ns() + (int64_t)timeout_ms * AIPC_NSEC_PER_MSEC;
  for (;;) {
    uint32_t seq = aipc_wake_load(&t->ctl->request);
    if (seq != t->seen) {
      t->seen = seq;
      if (frames)
        *frames = atomic_load(&t->ctl->frames);
      return seq;
    }
    if (aipc_now_ns() >= deadline ||
        aipc_wake_wait(&t->ctl->request, seq, deadline) < 0)
      return 0;
  }
}

unsigned
tamper_play(struct tamper *t, double ms)
{
  double start = fixture_now_ms();
  unsigned n = 0;
  while (fixture_now_ms() - start < ms) {
    uint32_t frames;
    uint32_t seq = tamper_next(t, 5, &frames);
    if (!seq)
      continue;
    tamper_answer(t, seq, (int32_t)frames);
    n++;
  }
  return n;
}
