/* SPDX-License-Identifier: ISC */
/*
 * Hostile clients on the data path, on the virtual device and on pulse
 * (where the server waits for a client with the context's lock held): a
 * raw client maps its stream's
 * shared memory (the fd from STREAM_INIT_REPLY) and, while the server's
 * audio thread asks it for data, scribbles on the control words, answers
 * with frame counts out of range, answers twice or ahead of time, late,
 * or never. The honest client on the same device must keep playing
 * without a miss *while* this goes on, and everything must be reclaimed
 * once the hostile client is gone.
 */
#include "clock.h"
#include "hostile.h"
#include "tamper.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* How long each misbehaviour lasts. */
#define TAMPER_MS 600.0
/* The honest stream must play at full rate meanwhile: every stream of a
 * period shares one deadline, the next period's time, so a hostile
 * stream loses only its own audio. A little is allowed for the edges of
 * the measurement (and the machine's own stalls). */
#define TAMPER_MIN_RATE 0.9
/* The pause between a spinning client's bursts. */
#define BURST_REST_US 200

enum {
  NEVER_ANSWER,
  SCRIBBLE,
  TOO_MANY_FRAMES,
  ANSWER_TWICE,
  ANSWER_AHEAD,
  ANSWER_LATE,
  ANSWER_SLOW,
  NEGATIVE,
  ZERO_FRAMES,
  SPIN_RESPONSE,
  MODES,
};

static const char *const mode_names[MODES] = {
    [NEVER_ANSWER] = "never answers",
    [SCRIBBLE] = "scribbles on the control words",
    [TOO_MANY_FRAMES] = "answers with too many frames",
    [ANSWER_TWICE] = "answers twice",
    [ANSWER_AHEAD] = "answers ahead of the request",
    [ANSWER_LATE] = "answers late",
    [ANSWER_SLOW] = "answers after 9 ms",
    [NEGATIVE] = "answers with an error",
    [ZERO_FRAMES] = "answers with 0 frames",
    [SPIN_RESPONSE] = "keeps changing its answer word",
};

/* One request of the server, as the misbehaving client handles it. */
static void
misbehave(struct tamper *t, uint32_t seq, uint32_t frames)
{
  switch (t->mode) {
  case NEVER_ANSWER:
    break;
  case SCRIBBLE:
  case SPIN_RESPONSE:
    if (seq < 5)
      tamper_answer(t, seq, (int32_t)frames);
    break;
  case TOO_MANY_FRAMES: {
    static const int32_t counts[] = {0, INT32_MAX, 1 << 20};
    int32_t n = counts[seq % 3];
    tamper_answer(t, seq, n ? n : (int32_t)frames + 1);
    break;
  }
  case ANSWER_TWICE:
    tamper_answer(t, seq, (int32_t)frames);
    tamper_answer(t, seq, (int32_t)frames / 2);
    aipc_wake_publish(&t->ctl->response, seq - 1);
    aipc_wake_publish(&t->ctl->response, seq);
    break;
  case ANSWER_AHEAD:
    tamper_answer(t, seq, (int32_t)frames);
    /* The next request is answered before it is asked. */
    tamper_answer(t, seq + 1, (int32_t)t->reply.frames_max);
    break;
  case ANSWER_LATE:
  case ANSWER_SLOW: {
    /* Past the server's 20 ms; under the old 10 ms, but past a period. */
    int64_t ms = t->mode == ANSWER_LATE ? 25 : 9;
    int64_t until = aipc_now_ns() + ms * AIPC_NSEC_PER_MSEC;
    while (aipc_now_ns() < until)
      usleep(1000);
    tamper_answer(t, seq, (int32_t)frames);
    break;
  }
  case NEGATIVE:
    tamper_answer(t, seq, seq % 2 ? -1 : INT32_MIN);
    break;
  case ZERO_FRAMES:
    tamper_answer(t, seq, 0);
    break;
  }
}

/* Writes random values over every word of the control block and over
 * the output area. */
static void
scribble(struct tamper *t)
{
  struct aipc_stream_ctl *ctl = t->ctl;
  uint64_t x = raw_rand(&t->rng);
  switch (x % 8) {
  case 0:
    atomic_store(&ctl->request.value, (uint32_t)(x >> 8));
    break;
  case 1:
    atomic_store(&ctl->request.waiters, (uint32_t)(x >> 8));
    break;
  case 2:
    atomic_store(&ctl->response.value, (uint32_t)(x >> 8));
    break;
  case 3:
    atomic_store(&ctl->response.waiters, (uint32_t)(x >> 8));
    break;
  case 4:
    atomic_store(&ctl->frames, (uint32_t)(x >> 8));
    break;
  case 5:
    /* A new value, and a wake-up for whoever waits on it. */
    aipc_wake_publish(&ctl->response, (uint32_t)(x >> 8));
    break;
  case 6:
    aipc_wake_publish(&ctl->request, (uint32_t)(x >> 8));
    break;
  default:
    atomic_store(&ctl->result, (int32_t)(x >> 8));
    break;
  }
  uint8_t *out = (uint8_t *)t->shm.base + t->reply.output_offset;
  size_t room = t->shm.size - t->reply.output_offset;
  out[(x >> 16) % room] = (uint8_t)(x >> 40);
}

/* The backend of the case under way (NULL: the virtual device). */
static const char *case_backend;

/* Misbehaves for TAMPER_MS while checking that the honest stream plays
 * on meanwhile. */
static void
run_tamper(struct fixture *f, struct tamper *t)
{
  uint64_t honest_start = fixture_honest_frames(f);
  double start = fixture_now_ms();
  uint32_t last = 0;
  unsigned requests = 0;
  while (fixture_now_ms() - start < TAMPER_MS) {
    /* A scribbler answers a few requests well, then scribbles while the
     * server waits for the next answer. Both it and the spinner below
     * rest a little between bursts: a client that spins flat out only
     * takes a CPU from the machine, which no server can prevent, and on
     * two loaded cores that would be what the honest stream measures. */
    if (t->mode == SCRIBBLE && requests > 4) {
      for (int i = 0; i < 1000; i++)
        scribble(t);
      usleep(BURST_REST_US);
      continue;
    }
    /* Never the awaited value, but a new one all the time. */
    if (t->mode == SPIN_RESPONSE && requests > 4) {
      uint32_t awaited = last;
      for (int i = 0; i < 100000; i++) {
        uint32_t v = atomic_fetch_add(&t->ctl->response.value, 1) + 1;
        if (v == awaited)
          atomic_fetch_add(&t->ctl->response.value, 1);
      }
      usleep(BURST_REST_US);
      continue;
    }
    uint32_t seq = aipc_wake_load(&t->ctl->request);
    if (seq == last) {
      aipc_wake_wait(&t->ctl->request, seq,
                     aipc_now_ns() + 5 * AIPC_NSEC_PER_MSEC);
      continue;
    }
    last = seq;
    requests++;
    misbehave(t, seq, atomic_load(&t->ctl->frames));
  }
  t->misbehaved = true;
  /* Still misbehaving (a scribbler keeps the words moving until now). */
  uint64_t honest = fixture_honest_frames(f) - honest_start;
  double elapsed = fixture_now_ms() - start;
  double rate = (double)honest * 1000.0 / elapsed / FIXTURE_RATE;
  if (rate < TAMPER_MIN_RATE)
    test_fail(__FILE__, __LINE__,
              "while a client %s, the honest stream played only %llu frames "
              "in %.0f ms (%.0f %% of real time)",
              mode_names[t->mode], (unsigned long long)honest, elapsed,
              rate * 100);
  AudioIpcStreamStats hs = fixture_stats(f, t->client, t->stream);
  printf("  client that %-32s: %u requests seen, its stream %llu callbacks, "
         "%llu misses, %llu frames, longest wait %u us; honest +%llu "
         "frames (%.0f %% of real time)\n",
         mode_names[t->mode], requests, (unsigned long long)hs.callbacks,
         (unsigned long long)hs.misses, (unsigned long long)hs.frames,
         hs.wait_max_us, (unsigned long long)honest, rate * 100);
  fflush(stdout);
  /* 9 ms is within a real backend's deadline (10 ms or the callback's
   * duration), not within the virtual device's period. */
  if (t->mode == NEVER_ANSWER || t->mode == ANSWER_LATE ||
      (t->mode == ANSWER_SLOW && !case_backend) || t->mode == TOO_MANY_FRAMES)
    CHECK(hs.misses > 0);
}

/* After the misbehaviour: the session still works (or, for NEGATIVE,
 * the stream reported its error), and `stop_first` stops and destroys
 * the stream before hanging up. */
static void
tamper_finish(struct tamper *t, bool stop_first)
{
  struct aipc_ping ping = {.value = 9};
  CHECK_INT(raw_call(&t->r, AIPC_OP_PING, &ping, NULL, NULL), ==, 0);
  if (t->mode == NEGATIVE && t->misbehaved) {
    /* The error reaches the client as a state event. */
    double start = fixture_now_ms();
    while (t->r.error_events == 0) {
      CHECK(fixture_now_ms() - start < 10000);
      CHECK_INT(raw_call(&t->r, AIPC_OP_PING, &ping, NULL, NULL), ==, 0);
      usleep(1000);
    }
  }
  if (stop_first) {
    CHECK_INT(raw_stream_call(&t->r, AIPC_OP_STREAM_STOP, t->stream), ==, 0);
    CHECK_INT(raw_stream_call(&t->r, AIPC_OP_STREAM_DESTROY, t->stream), ==, 0);
  }
  tamper_close(t);
}

static void
shm_case(const char *backend, int mode)
{
  struct fixture f;
  case_backend = backend;
  fixture_start(&f, backend);
  struct tamper t;
  /* Rehearsal, short, then the measured run. */
  tamper_open(&f, &t, mode, NULL, true);
  tamper_finish(&t, true);
  fixture_baseline(&f);
  for (int round = 0; round < 2; round++) {
    tamper_open(&f, &t, mode, NULL, true);
    run_tamper(&f, &t);
    tamper_finish(&t, round == 0);
    fixture_check(&f, mode_names[mode]);
  }
  fixture_finish(&f);
}

TEST(hostile_shm_client_never_answers)
{
  shm_case(NULL, NEVER_ANSWER);
}

TEST(pulse_shm_client_never_answers)
{
  shm_case("pulse", NEVER_ANSWER);
}

TEST(hostile_shm_client_scribbles_on_control_words)
{
  shm_case(NULL, SCRIBBLE);
}

TEST(pulse_shm_client_scribbles_on_control_words)
{
  shm_case("pulse", SCRIBBLE);
}

TEST(hostile_shm_client_answers_with_too_many_frames)
{
  shm_case(NULL, TOO_MANY_FRAMES);
}

TEST(pulse_shm_client_answers_with_too_many_frames)
{
  shm_case("pulse", TOO_MANY_FRAMES);
}

TEST(hostile_shm_client_answers_twice)
{
  shm_case(NULL, ANSWER_TWICE);
}

TEST(pulse_shm_client_answers_twice)
{
  shm_case("pulse", ANSWER_TWICE);
}

TEST(hostile_shm_client_answers_ahead)
{
  shm_case(NULL, ANSWER_AHEAD);
}

TEST(pulse_shm_client_answers_ahead)
{
  shm_case("pulse", ANSWER_AHEAD);
}

TEST(hostile_shm_client_answers_late)
{
  shm_case(NULL, ANSWER_LATE);
}

TEST(pulse_shm_client_answers_late)
{
  shm_case("pulse", ANSWER_LATE);
}

/* Under the old 10 ms deadline, never late; but slower than a period. */
TEST(hostile_shm_client_answers_slower_than_a_period)
{
  shm_case(NULL, ANSWER_SLOW);
}

TEST(pulse_shm_client_answers_slower_than_a_period)
{
  shm_case("pulse", ANSWER_SLOW);
}

TEST(hostile_shm_client_answers_with_an_error)
{
  shm_case(NULL, NEGATIVE);
}

TEST(pulse_shm_client_answers_with_an_error)
{
  shm_case("pulse", NEGATIVE);
}

TEST(hostile_shm_client_keeps_changing_its_answer_word)
{
  shm_case(NULL, SPIN_RESPONSE);
}

TEST(pulse_shm_client_keeps_changing_its_answer_word)
{
  shm_case("pulse", SPIN_RESPONSE);
}

TEST(hostile_shm_client_answers_with_zero_frames)
{
  shm_case(NULL, ZERO_FRAMES);
}

TEST(pulse_shm_client_answers_with_zero_frames)
{
  shm_case("pulse", ZERO_FRAMES);
}
