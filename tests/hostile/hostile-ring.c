/* SPDX-License-Identifier: ISC */
/*
 * Hostile clients of buffered (render-ahead) streams, on the virtual
 * device and on pulse: a raw client maps its stream's ring and, instead
 * of filling it honestly, never fills it, puts its position outside the
 * ring, trickles one frame per wake-up, bumps its news word without
 * news, claims ends that are not there, or scribbles on every word; an
 * input stream's client puts its position anywhere. The server must
 * never copy outside the ring, spin or wait past its deadline; the
 * honest client plays on without a miss; everything is reclaimed.
 */
#include "clock.h"
#include "hostile.h"
#include "tamper.h"

#include <string.h>
#include <unistd.h>

#define RING_TAMPER_MS 600.0
#define RING_MIN_RATE 0.9 /* of real time, for the honest stream */
#define BURST_REST_US 200

enum {
  NEVER_FILLS,
  OUT_OF_RING,
  TRICKLES,
  SPINS_NEWS,
  FALSE_ENDS,
  SCRIBBLES,
  INPUT_ANYWHERE,
  DUPLEX_NEVER_FILLS,
  DUPLEX_SCRIBBLES,
  RING_MODES,
};

static const char *const ring_mode_names[RING_MODES] = {
    [NEVER_FILLS] = "never fills its ring",
    [OUT_OF_RING] = "puts its position outside the ring",
    [TRICKLES] = "fills one frame per wake-up",
    [SPINS_NEWS] = "bumps its news word without news",
    [FALSE_ENDS] = "claims ends that are not there",
    [SCRIBBLES] = "scribbles on every word and the ring",
    [INPUT_ANYWHERE] = "puts its input position anywhere",
    [DUPLEX_NEVER_FILLS] = "never fills its duplex ring",
    [DUPLEX_SCRIBBLES] = "scribbles on its duplex rings",
};

static void
news(struct aipc_stream_ctl *ctl)
{
  aipc_wake_publish(&ctl->response, aipc_wake_load(&ctl->response) + 1);
}

/* Waits up to 5 ms for the server's next poke; true if it came. */
static bool
poked(struct tamper *t, uint32_t *last)
{
  uint32_t seq = aipc_wake_load(&t->ctl->request);
  if (seq == *last) {
    aipc_wake_wait(&t->ctl->request, seq,
                   aipc_now_ns() + 5 * AIPC_NSEC_PER_MSEC);
    seq = aipc_wake_load(&t->ctl->request);
  }
  bool changed = seq != *last;
  *last = seq;
  return changed;
}

static void
scribble(struct tamper *t)
{
  struct aipc_stream_ctl *ctl = t->ctl;
  uint64_t x = raw_rand(&t->rng);
  uint32_t v = (uint32_t)(x >> 8);
  switch (x % 6) {
  case 0:
    aipc_wake_publish(&ctl->client_pos, v);
    break;
  case 1:
    atomic_store(&ctl->server_pos.value, v);
    break;
  case 2:
    atomic_store(&ctl->end, v % 4);
    break;
  case 3:
    atomic_store(&ctl->end_pos, v);
    break;
  case 4:
    news(ctl);
    break;
  default:
    aipc_wake_publish(&ctl->request, v);
    break;
  }
  uint8_t *area = (uint8_t *)t->shm.base + AIPC_STREAM_CTL_SIZE;
  area[(x >> 16) % (t->shm.size - AIPC_STREAM_CTL_SIZE)] = (uint8_t)(x >> 40);
}

/* One step of the misbehaviour. */
static void
misbehave(struct tamper *t, uint32_t *last)
{
  struct aipc_stream_ctl *ctl = t->ctl;
  uint32_t slots = t->reply.frames_max;
  switch (t->mode) {
  case NEVER_FILLS:
  case DUPLEX_NEVER_FILLS:
    poked(t, last);
    break;
  case OUT_OF_RING:
    if (poked(t, last)) {
      uint32_t x = (uint32_t)raw_rand(&t->rng);
      uint32_t ahead = x % 2 ? slots + 1 + x % 1000 : UINT32_MAX - x % 1000;
      aipc_wake_publish(&ctl->client_pos,
                        aipc_wake_load(&ctl->server_pos) + ahead);
      news(ctl);
    }
    break;
  case TRICKLES:
    if (poked(t, last))
      while (aipc_wake_load(&ctl->client_pos) -
                 aipc_wake_load(&ctl->server_pos) <
             slots) {
        aipc_wake_publish(&ctl->client_pos,
                          aipc_wake_load(&ctl->client_pos) + 1);
        news(ctl);
      }
    break;
  case SPINS_NEWS:
    for (int i = 0; i < 100000; i++)
      atomic_fetch_add(&ctl->response.value, 1);
    usleep(BURST_REST_US);
    break;
  case FALSE_ENDS:
    if (poked(t, last)) {
      uint32_t x = (uint32_t)raw_rand(&t->rng);
      uint32_t at = aipc_wake_load(&ctl->server_pos);
      atomic_store(&ctl->end_pos, x % 2 ? at + 1 + x % slots : at);
      atomic_store(&ctl->end, x % 3 ? AIPC_RING_END_SHORT : 7 + x % 100);
      news(ctl);
    }
    break;
  case SCRIBBLES:
  case DUPLEX_SCRIBBLES:
  case INPUT_ANYWHERE:
    for (int i = 0; i < 1000; i++) {
      if (t->mode != INPUT_ANYWHERE) {
        scribble(t);
      } else {
        aipc_wake_publish(&ctl->client_pos, (uint32_t)raw_rand(&t->rng));
        news(ctl);
      }
    }
    usleep(BURST_REST_US);
    break;
  }
}

/* A buffered stream on a connection of its own: output, mono input for
 * INPUT_ANYWHERE, both for the duplex modes (render-ahead 2). Latency
 * 1024, which pulse takes as a quarter ahead. */
static void
ring_open(struct fixture *f, struct tamper *t, int mode)
{
  bool duplex = mode == DUPLEX_NEVER_FILLS || mode == DUPLEX_SCRIBBLES;
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, 1024);
  if (mode == INPUT_ANYWHERE || duplex) {
    q.has_output = duplex;
    q.has_input = 1;
    q.in_format = CUBEB_SAMPLE_FLOAT32NE;
    q.in_rate = FIXTURE_RATE;
    q.in_channels = 1;
    q.in_layout = CUBEB_LAYOUT_MONO;
  }
  e2e_set_render_ahead(&f->e, duplex ? 2 : 1);
  tamper_connect(f, t, mode);
  e2e_set_render_ahead(&f->e, 0);
  tamper_stream(t, &q, true);
  CHECK_INT(t->reply.buffered, ==, 1);
}

static void
ring_finish(struct tamper *t, bool stop_first)
{
  struct aipc_ping ping = {.value = 9};
  CHECK_INT(raw_call(&t->r, AIPC_OP_PING, &ping, NULL, NULL), ==, 0);
  if (stop_first) {
    /* A stream that its client ended may be stopped already; either
     * answer is fine, a hang or a drop is not. */
    raw_stream_call(&t->r, AIPC_OP_STREAM_STOP, t->stream);
    CHECK_INT(raw_stream_call(&t->r, AIPC_OP_STREAM_DESTROY, t->stream), ==, 0);
  }
  tamper_close(t);
}

static void
run_ring(struct fixture *f, struct tamper *t)
{
  uint64_t honest_start = fixture_honest_frames(f);
  AudioIpcStreamStats before = fixture_stats(f, t->client, t->stream);
  double start = fixture_now_ms();
  uint32_t last = 0;
  while (fixture_now_ms() - start < RING_TAMPER_MS)
    misbehave(t, &last);
  uint64_t honest = fixture_honest_frames(f) - honest_start;
  double elapsed = fixture_now_ms() - start;
  double rate = (double)honest * 1000.0 / elapsed / FIXTURE_RATE;
  AudioIpcStreamStats hs = fixture_stats(f, t->client, t->stream);
  printf("  client that %-38s: its stream %llu callbacks, %llu misses, "
         "longest wait %u us; honest %.0f %% of real time\n",
         ring_mode_names[t->mode], (unsigned long long)hs.callbacks,
         (unsigned long long)hs.misses, hs.wait_max_us, rate * 100);
  fflush(stdout);
  if (rate < RING_MIN_RATE)
    test_fail(__FILE__, __LINE__,
              "while a client %s, the honest stream played %.0f %% of real "
              "time",
              ring_mode_names[t->mode], rate * 100);
  /* The backend kept calling the stream (no callback hung); a hang,
   * not lateness, is what the generous bound catches. */
  if (t->mode != FALSE_ENDS)
    CHECK(hs.callbacks > before.callbacks);
  CHECK(hs.wait_max_us < 1000 * 1000);
  if (t->mode == NEVER_FILLS || t->mode == OUT_OF_RING ||
      t->mode == DUPLEX_NEVER_FILLS)
    CHECK(hs.misses > before.misses);
}

static void
ring_case(const char *backend, int mode)
{
  struct fixture f;
  fixture_start(&f, backend);
  struct tamper t;
  ring_open(&f, &t, mode);
  ring_finish(&t, true);
  fixture_baseline(&f);
  for (int round = 0; round < 2; round++) {
    ring_open(&f, &t, mode);
    run_ring(&f, &t);
    ring_finish(&t, round == 0);
    fixture_check(&f, ring_mode_names[mode]);
  }
  fixture_finish(&f);
}

TEST(hostile_ring_client_never_fills)
{
  ring_case(NULL, NEVER_FILLS);
}

TEST(pulse_ring_client_never_fills)
{
  ring_case("pulse", NEVER_FILLS);
}

TEST(hostile_ring_position_outside_the_ring)
{
  ring_case(NULL, OUT_OF_RING);
}

TEST(pulse_ring_position_outside_the_ring)
{
  ring_case("pulse", OUT_OF_RING);
}

TEST(hostile_ring_client_trickles)
{
  ring_case(NULL, TRICKLES);
}

TEST(pulse_ring_client_trickles)
{
  ring_case("pulse", TRICKLES);
}

TEST(hostile_ring_client_spins_its_news_word)
{
  ring_case(NULL, SPINS_NEWS);
}

TEST(pulse_ring_client_spins_its_news_word)
{
  ring_case("pulse", SPINS_NEWS);
}

TEST(hostile_ring_client_claims_false_ends)
{
  ring_case(NULL, FALSE_ENDS);
}

TEST(pulse_ring_client_claims_false_ends)
{
  ring_case("pulse", FALSE_ENDS);
}

TEST(hostile_ring_client_scribbles)
{
  ring_case(NULL, SCRIBBLES);
}

TEST(pulse_ring_client_scribbles)
{
  ring_case("pulse", SCRIBBLES);
}

TEST(hostile_ring_input_position_anywhere)
{
  ring_case(NULL, INPUT_ANYWHERE);
}

TEST(pulse_ring_input_position_anywhere)
{
  ring_case("pulse", INPUT_ANYWHERE);
}

TEST(hostile_ring_duplex_client_never_fills)
{
  ring_case(NULL, DUPLEX_NEVER_FILLS);
}

TEST(pulse_ring_duplex_client_never_fills)
{
  ring_case("pulse", DUPLEX_NEVER_FILLS);
}

TEST(hostile_ring_duplex_client_scribbles)
{
  ring_case(NULL, DUPLEX_SCRIBBLES);
}

TEST(pulse_ring_duplex_client_scribbles)
{
  ring_case("pulse", DUPLEX_SCRIBBLES);
}
