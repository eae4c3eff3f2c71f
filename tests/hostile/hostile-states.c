/* SPDX-License-Identifier: ISC */
/*
 * Stream requests in every state, on every backend: a raw client drives
 * output, input and duplex streams through orders of start, stop and
 * destroy, answering the audio requests in full, short (a drain), with
 * an error or not at all, and asks for position, latency, volume, name
 * and device in between. libcubeb's backends assert on several such
 * orders (pulse: a start while it drains; alsa: a destroy of a running
 * stream); the server's guard must keep every one of them from reaching
 * the backend, and answer every request.
 */
#include "hostile.h"
#include "tamper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum step {
  STEP_START,
  STEP_STOP,
  STEP_FULL, /* answer in full from now on */
  STEP_SHORT,
  STEP_ZERO,
  STEP_ERROR,
  STEP_SILENT,
  STEP_WAIT,
  STEP_POSITION,
  STEP_LATENCY,
  STEP_INPUT_LATENCY,
  STEP_VOLUME,
  STEP_NAME,
  STEP_DEVICE,
  STEP_DEVICE_CHANGED_ON,
  STEP_DEVICE_CHANGED_OFF,
  STEP_KILL, /* the sound server ends the stream (pulse; else an error) */
  STEPS,
};

static const char *const step_names[STEPS] = {
    "start",  "stop",   "full",     "short",   "zero",    "error",
    "silent", "wait",   "position", "latency", "in-lat.", "volume",
    "name",   "device", "dc-on",    "dc-off",  "kill",
};

/* The backend of the case under way, and a name for its streams that
 * the sound server shows. */
static const char *case_backend;
static unsigned stream_serial;

/*
 * Has PulseAudio end every stream of ours named `name`, as its
 * administrator can (pacmd kill-sink-input / kill-source-output; pactl
 * 16 has no such command): the backend reports CUBEB_STATE_ERROR, and
 * every later request must get an answer without reaching the dead
 * stream.
 */
static void
kill_pulse_streams(const char *name)
{
  /* The input first: libcubeb's pulse backend aborts (assert(r == 0) in
   * trigger_user_callback) when a duplex stream's output ends while its
   * input still delivers: no client can make that happen, only the sound
   * server (docs/design-notes.md, "The backend guard"). */
  static const char *const kinds[] = {"source-output", "sink-input"};
  for (int k = 0; k < 2; k++) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "pactl list %ss 2>/dev/null", kinds[k]);
    FILE *list = popen(cmd, "r");
    CHECK(list != NULL);
    char line[512], want[160];
    snprintf(want, sizeof(want), "media.name = \"%s\"", name);
    long index = -1;
    while (fgets(line, sizeof(line), list)) {
      const char *hash = strchr(line, '#');
      if (line[0] != '\t' && hash)
        index = strtol(hash + 1, NULL, 10);
      else if (strstr(line, want) && index >= 0) {
        snprintf(cmd, sizeof(cmd), "pacmd kill-%s %ld >/dev/null", kinds[k],
                 index);
        CHECK(system(cmd) == 0);
        index = -1;
      }
    }
    pclose(list);
  }
}

enum stream_kind { KIND_OUTPUT, KIND_INPUT, KIND_DUPLEX, KINDS };
static const char *const kind_names[KINDS] = {"output", "input", "duplex"};

static struct aipc_stream_init
stream_of_kind(enum stream_kind kind)
{
  /* 100 ms: pulse drains for twice its latency, long enough to act on. */
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, 4800);
  if (kind == KIND_INPUT)
    q.has_output = 0,
    q.out_format = q.out_rate = q.out_channels = q.out_layout = 0;
  if (kind != KIND_OUTPUT) {
    q.has_input = 1;
    q.in_format = CUBEB_SAMPLE_FLOAT32NE;
    q.in_rate = FIXTURE_RATE;
    q.in_channels = 1;
    q.in_layout = CUBEB_LAYOUT_MONO;
  }
  return q;
}

struct sequence_stats {
  unsigned requests, errors;
  double worst_ms;
  const char *worst_step;
};

static void
run_step(struct tamper *t, enum step step, struct sequence_stats *st)
{
  static const enum tamper_policy policies[] = {
      [STEP_FULL] = TAMPER_FULL,     [STEP_SHORT] = TAMPER_SHORT,
      [STEP_ZERO] = TAMPER_ZERO,     [STEP_ERROR] = TAMPER_ERROR,
      [STEP_SILENT] = TAMPER_SILENT,
  };
  uint16_t op;
  _Alignas(max_align_t) uint8_t body[AIPC_MSG_DECODED_MAX];
  struct aipc_stream_ref *ref = (void *)body;
  ref->stream = t->stream;
  switch (step) {
  case STEP_FULL:
  case STEP_SHORT:
  case STEP_ZERO:
  case STEP_ERROR:
  case STEP_SILENT:
    atomic_store(&t->policy, policies[step]);
    usleep(20 * 1000);
    return;
  case STEP_WAIT:
    usleep(60 * 1000);
    return;
  case STEP_KILL:
    if (case_backend && strcmp(case_backend, "pulse") == 0)
      kill_pulse_streams(t->name);
    else
      atomic_store(&t->policy, TAMPER_ERROR);
    usleep(20 * 1000);
    return;
  case STEP_START:
    op = AIPC_OP_STREAM_START;
    break;
  case STEP_STOP:
    op = AIPC_OP_STREAM_STOP;
    break;
  case STEP_POSITION:
    op = AIPC_OP_STREAM_GET_POSITION;
    break;
  case STEP_LATENCY:
    op = AIPC_OP_STREAM_GET_LATENCY;
    break;
  case STEP_INPUT_LATENCY:
    op = AIPC_OP_STREAM_GET_INPUT_LATENCY;
    break;
  case STEP_VOLUME:
    op = AIPC_OP_STREAM_SET_VOLUME;
    *(struct aipc_stream_volume *)body =
        (struct aipc_stream_volume){.stream = t->stream, .volume = 0.5f};
    break;
  case STEP_NAME:
    op = AIPC_OP_STREAM_SET_NAME;
    *(struct aipc_stream_name *)body =
        (struct aipc_stream_name){.stream = t->stream, .name = "renamed"};
    break;
  case STEP_DEVICE:
    op = AIPC_OP_STREAM_GET_CURRENT_DEVICE;
    break;
  case STEP_DEVICE_CHANGED_ON:
  case STEP_DEVICE_CHANGED_OFF:
    op = AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED;
    *(struct aipc_stream_register *)body = (struct aipc_stream_register){
        .stream = t->stream, .enable = step == STEP_DEVICE_CHANGED_ON};
    break;
  default:
    CHECK(!"a step");
    return;
  }
  double start = fixture_now_ms();
  int e = raw_call(&t->r, op, body, NULL, NULL);
  double ms = fixture_now_ms() - start;
  CHECK(e != -ECONNRESET); /* an error reply is fine, a hang-up is not */
  st->requests++;
  st->errors += e < 0;
  if (ms > st->worst_ms) {
    st->worst_ms = ms;
    st->worst_step = step_names[step];
  }
}

static void
run_sequence(struct fixture *f, enum stream_kind kind, const enum step *steps,
             unsigned n, bool destroy, struct sequence_stats *st)
{
  struct aipc_stream_init q = stream_of_kind(kind);
  struct tamper t;
  char name[32];
  snprintf(name, sizeof(name), "hostile-seq-%u", ++stream_serial);
  q.name = name;
  tamper_connect(f, &t, 0);
  snprintf(t.name, sizeof(t.name), "%s", name);
  tamper_stream(&t, &q, false);
  tamper_serve(&t, TAMPER_FULL);
  for (unsigned i = 0; i < n; i++)
    run_step(&t, steps[i], st);
  if (destroy)
    CHECK_INT(raw_stream_call(&t.r, AIPC_OP_STREAM_DESTROY, t.stream), ==, 0);
  tamper_close(&t);
}

/* Orders known to abort libcubeb's pulse backend, then random ones. */
struct known_sequence {
  unsigned n;
  enum step steps[8];
};

static const struct known_sequence known_sequences[] = {
    /* START while the drain timer is armed: the next short answer hits
     * assert(!stm->drain_timer). */
    {4, {STEP_START, STEP_SHORT, STEP_START, STEP_WAIT}},
    {5, {STEP_START, STEP_SHORT, STEP_WAIT, STEP_START, STEP_WAIT}},
    {5, {STEP_START, STEP_SHORT, STEP_STOP, STEP_START, STEP_WAIT}},
    {6,
     {STEP_START, STEP_ERROR, STEP_START, STEP_SHORT, STEP_START, STEP_WAIT}},
    {6, {STEP_STOP, STEP_STOP, STEP_START, STEP_START, STEP_SHORT, STEP_START}},
    {8,
     {STEP_START, STEP_ZERO, STEP_LATENCY, STEP_WAIT, STEP_LATENCY,
      STEP_POSITION, STEP_START, STEP_LATENCY}},
    /* Every request after the backend reported an error. */
    {8,
     {STEP_START, STEP_KILL, STEP_START, STEP_POSITION, STEP_LATENCY,
      STEP_VOLUME, STEP_NAME, STEP_STOP}},
    {7,
     {STEP_KILL, STEP_DEVICE, STEP_DEVICE_CHANGED_ON, STEP_START,
      STEP_INPUT_LATENCY, STEP_STOP, STEP_START}},
    {6, {STEP_START, STEP_SHORT, STEP_KILL, STEP_START, STEP_WAIT, STEP_STOP}},
};
#define KNOWN_SEQUENCES (sizeof(known_sequences) / sizeof(known_sequences[0]))
#define RANDOM_SEQUENCES 12
#define RANDOM_STEPS 8

static void
sequences(struct fixture *f, uint64_t seed)
{
  uint64_t rng = seed;
  for (int kind = 0; kind < KINDS; kind++) {
    struct sequence_stats st = {0};
    for (size_t i = 0; i < KNOWN_SEQUENCES; i++)
      run_sequence(f, (enum stream_kind)kind, known_sequences[i].steps,
                   known_sequences[i].n, i % 2, &st);
    for (int i = 0; i < RANDOM_SEQUENCES; i++) {
      enum step steps[RANDOM_STEPS];
      for (int s = 0; s < RANDOM_STEPS; s++)
        steps[s] = (enum step)(raw_rand(&rng) % STEPS);
      run_sequence(f, (enum stream_kind)kind, steps, RANDOM_STEPS, i % 2, &st);
    }
    printf("  %-6s streams: %u requests, %u error replies, slowest answer "
           "%.1f ms (%s)\n",
           kind_names[kind], st.requests, st.errors, st.worst_ms,
           st.worst_step ? st.worst_step : "-");
    fflush(stdout);
  }
}

static void
states_case(const char *backend)
{
  struct fixture f;
  case_backend = backend;
  fixture_start(&f, backend);
  /* A rehearsal warms up what the backend allocates once (libpulse's
   * pools, alsa-lib's configuration), then the measured run. */
  sequences(&f, 0x5eed0001);
  fixture_baseline(&f);
  sequences(&f, 0x5eed0001);
  fixture_check(&f, "stream requests in every state");
  fixture_finish(&f);
}

TEST_TIMEOUT(hostile_stream_requests_in_every_state, 300)
{
  states_case(NULL);
}

TEST_TIMEOUT(pulse_stream_requests_in_every_state, 300)
{
  states_case("pulse");
}

/* ALSA, whose default device is the private PulseAudio (alsa-plugins). */
TEST_TIMEOUT(pulse_alsa_stream_requests_in_every_state, 300)
{
  states_case("alsa");
}
