/* SPDX-License-Identifier: ISC */
/*
 * Checks the private PulseAudio that scripts/pulse.sh starts, through
 * Debian's libcubeb directly: the suite `pulse` depends on it, so when it
 * is missing or misconfigured this fails first, and says why.
 */
#include "../runner.h"

#include <cubeb/cubeb.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static cubeb *
pulse_context(void)
{
  if (!getenv("PULSE_SERVER"))
    test_fail(__FILE__, __LINE__,
              "PULSE_SERVER is not set: run `eval \"$(scripts/pulse.sh env)\"`"
              " after `scripts/pulse.sh start`");
  cubeb *ctx = NULL;
  CHECK_INT(cubeb_init(&ctx, "aipc-pulse-env", "pulse"), ==, CUBEB_OK);
  CHECK(strcmp(cubeb_get_backend_id(ctx), "pulse") == 0);
  return ctx;
}

TEST(pulse_lists_the_null_sinks)
{
  cubeb *ctx = pulse_context();
  uint32_t rate = 0;
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &rate), ==, CUBEB_OK);
  CHECK_INT(rate, ==, 48000);

  cubeb_device_collection devices;
  CHECK_INT(cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_OUTPUT, &devices),
            ==, CUBEB_OK);
  bool found = false;
  for (size_t i = 0; i < devices.count; i++)
    found |= devices.device[i].device_id &&
             strcmp(devices.device[i].device_id, "ci_sink") == 0;
  CHECK(found);
  cubeb_device_collection_destroy(ctx, &devices);
  cubeb_destroy(ctx);
}

static atomic_long frames_played;

static long
data_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)user;
  (void)in;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&frames_played, n);
  return n;
}

static void
state_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  (void)user;
  (void)state;
}

TEST(pulse_plays_an_output_stream)
{
  cubeb *ctx = pulse_context();
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = 48000,
                                .channels = 2,
                                .layout = CUBEB_LAYOUT_STEREO};
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "env-check", NULL, NULL, NULL, &params,
                              1200, data_cb, state_cb, NULL),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  /* A hang is caught by the timeout; no pace is asserted here. */
  while (atomic_load(&frames_played) < 48000 / 4)
    usleep(10000);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);
}
