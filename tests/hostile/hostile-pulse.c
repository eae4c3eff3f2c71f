/* SPDX-License-Identifier: ISC */
/*
 * Hostile clients against the real backend: the server in the test
 * process on the private PulseAudio (scripts/pulse.sh), through Debian's
 * libcubeb with its asserts on. Each case sends a sequence of ordinary
 * requests that libcubeb's pulse backend asserts on, blocks on, or that
 * would let one client hear another; the server must answer or refuse
 * them and carry on (fixture_check).
 */
#include "hostile.h"
#include "tamper.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* --- Device-collection registration --------------------------------------- */

struct registration {
  uint32_t type, enable;
};

/* A sequence of registrations, then a hang-up or a clean end. */
struct registration_case {
  const char *what;
  struct registration steps[4];
  unsigned nsteps;
};

static const struct registration_case registration_cases[] = {
    {"register, unregister, hang up",
     {{CUBEB_DEVICE_TYPE_OUTPUT, 1}, {CUBEB_DEVICE_TYPE_OUTPUT, 0}},
     2},
    {"register input, register output, hang up",
     {{CUBEB_DEVICE_TYPE_INPUT, 1}, {CUBEB_DEVICE_TYPE_OUTPUT, 1}},
     2},
    {"a lone unregister, hang up", {{CUBEB_DEVICE_TYPE_INPUT, 0}}, 1},
    {"register both, unregister input, hang up",
     {{CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, 1},
      {CUBEB_DEVICE_TYPE_INPUT, 0}},
     2},
    {"register twice, hang up",
     {{CUBEB_DEVICE_TYPE_OUTPUT, 1}, {CUBEB_DEVICE_TYPE_OUTPUT, 1}},
     2},
    {"register, never unregister, hang up", {{CUBEB_DEVICE_TYPE_INPUT, 1}}, 1},
    {"register, unregister both, register output",
     {{CUBEB_DEVICE_TYPE_INPUT, 1},
      {CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT, 0},
      {CUBEB_DEVICE_TYPE_OUTPUT, 1}},
     3},
};
#define REGISTRATION_CASES                                                     \
  (sizeof(registration_cases) / sizeof(registration_cases[0]))

static void
registrations(struct fixture *f, struct tally *t)
{
  for (size_t i = 0; i < REGISTRATION_CASES; i++) {
    const struct registration_case *c = &registration_cases[i];
    struct raw r;
    fixture_connect(f, &r, NULL);
    raw_greet(&r);
    for (unsigned s = 0; s < c->nsteps; s++) {
      struct aipc_register_collection_changed q = {
          .type = c->steps[s].type, .enable = c->steps[s].enable};
      CHECK_INT(
          raw_call(&r, AIPC_OP_REGISTER_COLLECTION_CHANGED, &q, NULL, NULL), ==,
          0);
      t->sent++;
      t->ok++;
    }
    raw_close(&r);
    /* The context goes with the connection, and with it what libcubeb
     * keeps of the registration. */
    fixture_wait_baseline(f, c->what);
  }
}

TEST(hostile_collection_registrations_in_any_order)
{
  hostile_case(NULL, registrations, "collection registrations");
}

TEST(pulse_collection_registrations_in_any_order)
{
  hostile_case("pulse", registrations, "collection registrations");
}

/* --- The backend asked for
 * ---------------------------------------------------- */

/*
 * PulseAudio takes 64 native clients; past that, libcubeb's pulse init
 * fails and cubeb_init falls back to ALSA without a word. Clients connect
 * until one is refused: every context made must be on pulse, and the
 * one refused gets an error reply.
 */
#define CONTEXTS_TRIED 80

static void
contexts_until_refused(struct fixture *f, struct tally *t)
{
  /* Past the server's own bound (32 by default), which keeps it inside
   * pulse's: here pulse's is the one to reach. */
  AudioIpcServerLimits l;
  CHECK_INT(audioipc_server_get_limits(f->e.server, &l), ==, 0);
  l.connections_max = CONTEXTS_TRIED + 8;
  CHECK_INT(audioipc_server_set_limits(f->e.server, &l), ==, 0);
  static struct raw r[CONTEXTS_TRIED];
  int made = 0, refused = 0;
  for (int i = 0; i < CONTEXTS_TRIED && !refused; i++) {
    fixture_connect(f, &r[i], NULL);
    struct aipc_hello hello = {AIPC_PROTOCOL_VERSION, "hostile", "hostile"};
    CHECK_INT(raw_call(&r[i], AIPC_OP_HELLO, &hello, NULL, NULL), ==, 0);
    struct aipc_context_init init = {.name = "full"};
    struct aipc_context_init_reply reply;
    int e = raw_call(&r[i], AIPC_OP_CONTEXT_INIT, &init, &reply, NULL);
    t->sent++;
    made++;
    if (e == 0) {
      t->ok++;
      if (strcmp(reply.backend_id, "pulse") != 0)
        test_fail(__FILE__, __LINE__,
                  "context %d is on %s, not on the pulse the server was "
                  "started with",
                  i, reply.backend_id);
    } else {
      CHECK(e != -ECONNRESET);
      t->errors++;
      refused++;
    }
  }
  printf("  %d connections: %u contexts on pulse, %d refused\n", made, t->ok,
         refused);
  CHECK_INT(refused, ==, 1);
  for (int i = 0; i < made; i++)
    raw_close(&r[i]);
}

/* (The rehearsal's refusal loads alsa-lib's configuration, for good.) */
TEST_TIMEOUT(pulse_no_silent_fallback_when_pulse_is_full, 120)
{
  hostile_case("pulse", contexts_until_refused, "contexts until pulse is full");
}

/* --- No client hears another ---------------------------------------------- */

static bool
is_monitor_id(const char *id)
{
  size_t n = strlen(id);
  return n >= 8 && strcmp(id + n - 8, ".monitor") == 0;
}

/* Records `ms` of mono input from the device named `id` (NULL: the
 * default), on a connection of its own, and returns the loudest sample. */
static float
record_peak(struct fixture *f, const char *id, double ms)
{
  struct tamper t;
  tamper_connect(f, &t, 0);
  struct aipc_stream_init q = {.name = "listener",
                               .has_input = 1,
                               .in_format = CUBEB_SAMPLE_FLOAT32NE,
                               .in_rate = FIXTURE_RATE,
                               .in_channels = 1,
                               .in_layout = CUBEB_LAYOUT_MONO,
                               .latency_frames = FIXTURE_PERIOD};
  if (id) {
    struct raw_device devices[32];
    int n = raw_list_devices(&t.r, devices, 32);
    for (int i = 0; i < n && !q.input_device; i++)
      if (strcmp(devices[i].id, id) == 0 &&
          (devices[i].type & CUBEB_DEVICE_TYPE_INPUT))
        q.input_device = devices[i].token;
    CHECK(q.input_device != 0);
  }
  tamper_stream(&t, &q, true);
  const float *in =
      (const float *)((uint8_t *)t.shm.base + t.reply.input_offset);
  float peak = 0;
  double start = fixture_now_ms();
  while (fixture_now_ms() - start < ms) {
    uint32_t frames;
    uint32_t seq = tamper_next(&t, 5, &frames);
    if (!seq)
      continue;
    if (frames > t.reply.frames_max)
      frames = t.reply.frames_max;
    for (uint32_t i = 0; i < frames; i++)
      if (fabsf(in[i]) > peak)
        peak = fabsf(in[i]);
    tamper_answer(&t, seq, (int32_t)frames);
  }
  tamper_close(&t);
  return peak;
}

/* The honest client plays samples up to 0.98 on the default sink; the
 * inputs that are not monitors carry a 0.5 sine. */
#define HEARS_OTHERS 0.75f

static void
monitors_hidden(struct fixture *f, struct tally *t)
{
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct raw_device devices[32];
  int n = raw_list_devices(&r, devices, 32);
  int inputs = 0, preferred_inputs = 0;
  for (int i = 0; i < n; i++) {
    if (!(devices[i].type & CUBEB_DEVICE_TYPE_INPUT))
      continue;
    if (is_monitor_id(devices[i].id))
      test_fail(__FILE__, __LINE__, "the server lists monitor %s",
                devices[i].id);
    inputs++;
    preferred_inputs += devices[i].preferred != 0;
  }
  CHECK(inputs > 0);
  CHECK_INT(preferred_inputs, ==, 1);
  /* A loopback stream is refused. */
  struct aipc_stream_init q = {.name = "loopback",
                               .has_input = 1,
                               .in_format = CUBEB_SAMPLE_FLOAT32NE,
                               .in_rate = FIXTURE_RATE,
                               .in_channels = 1,
                               .in_layout = CUBEB_LAYOUT_MONO,
                               .in_prefs = CUBEB_STREAM_PREF_LOOPBACK,
                               .latency_frames = FIXTURE_PERIOD};
  CHECK_INT(raw_stream_init(&r, &q, NULL, NULL), ==, -EPERM);
  t->sent += 2;
  t->ok++;
  t->errors++;
  raw_close(&r);

  /* The default and every input listed: none hears the honest client,
   * and each records something (the sine). */
  float peak = record_peak(f, NULL, 300);
  printf("  default input: loudest sample %.2f\n", (double)peak);
  CHECK(peak > 0.1f && peak < HEARS_OTHERS);
  for (int i = 0; i < n; i++) {
    if (!(devices[i].type & CUBEB_DEVICE_TYPE_INPUT))
      continue;
    peak = record_peak(f, devices[i].id, 300);
    printf("  input %-20s loudest sample %.2f\n", devices[i].id, (double)peak);
    CHECK(peak < HEARS_OTHERS);
    t->sent++;
    t->ok++;
  }
}

/* With monitors allowed, the default sink's monitor does hear the honest
 * client: the measure above would catch an eavesdropper. */
static void
monitors_allowed(struct fixture *f)
{
  CHECK_INT(audioipc_server_allow_monitors(f->e.server, 1), ==, 0);
  float peak = record_peak(f, "ci_sink.monitor", 300);
  printf("  monitors allowed: ci_sink.monitor's loudest sample %.2f\n",
         (double)peak);
  CHECK(peak > HEARS_OTHERS);
  CHECK_INT(audioipc_server_allow_monitors(f->e.server, 0), ==, 0);
}

TEST_TIMEOUT(pulse_no_client_hears_another, 120)
{
  struct fixture f;
  fixture_start(&f, "pulse");
  struct tally t = {0};
  monitors_allowed(&f);
  monitors_hidden(&f, &t);
  fixture_baseline(&f);
  t = (struct tally){0};
  monitors_hidden(&f, &t);
  tally_print(&t, "monitors");
  fixture_check(&f, "monitors");
  fixture_finish(&f);
}
