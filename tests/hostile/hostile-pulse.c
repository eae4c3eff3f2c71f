/* SPDX-License-Identifier: ISC */
/*
 * Hostile clients against the real backend: the server in the test
 * process on the private PulseAudio (scripts/pulse.sh), through Debian's
 * libcubeb with its asserts on. Each case sends a sequence of ordinary
 * requests that libcubeb's pulse backend asserts on, blocks on, or that
 * would let one client hear another; the server must answer or refuse
 * them and carry on (fixture_check).
 */
#include "fixture.h"
#include "hostile.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* --- Device-collection registration ---------------------------------------- */

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
      struct aipc_register_collection_changed q = {.type = c->steps[s].type,
                                                   .enable =
                                                       c->steps[s].enable};
      CHECK_INT(raw_call(&r, AIPC_OP_REGISTER_COLLECTION_CHANGED, &q, NULL,
                         NULL),
                ==, 0);
      t->sent++;
      t->ok++;
    }
    raw_close(&r);
    /* The context goes with the connection, and with it what libcubeb
     * keeps of the registration. */
    fixture_wait_baseline(f, c->what);
  }
}

TEST(pulse_collection_registrations_in_any_order)
{
  struct fixture f;
  fixture_start(&f, "pulse");
  struct tally t = {0};
  registrations(&f, &t);
  tally_print(&t, "collection registrations");
  fixture_check(&f, "collection registrations");
  fixture_finish(&f);
}
