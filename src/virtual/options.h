/* SPDX-License-Identifier: ISC */
/* The virtual device's option string (see virtual.h), parsed. */
#ifndef AIPC_VIRTUAL_OPTIONS_H
#define AIPC_VIRTUAL_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum aipc_virtual_clock {
  AIPC_VIRTUAL_CLOCK_REALTIME,
  AIPC_VIRTUAL_CLOCK_FAST,
};

enum aipc_virtual_source {
  AIPC_VIRTUAL_SOURCE_SINE,
  AIPC_VIRTUAL_SOURCE_SILENCE,
  AIPC_VIRTUAL_SOURCE_FILE,
};

struct aipc_virtual_options {
  uint32_t rate;
  uint32_t channels;
  uint32_t period;
  bool is_float; /* device sample format: float32, else s16 */
  enum aipc_virtual_clock clock;
  enum aipc_virtual_source source;
  double sine_hz;
  char *in_path;          /* owned; set for AIPC_VIRTUAL_SOURCE_FILE */
  char *out_path;         /* owned; NULL: the mix is discarded */
  uint32_t init_delay_ms; /* stream creation takes this long, as on pulse */
};

/* Parses `text` (borrowed; NULL or "" gives the defaults) into *opts.
 * Returns 0, -EINVAL after logging which option is wrong, or -ENOMEM.
 * On failure *opts holds nothing that needs clearing. */
int aipc_virtual_options_parse(const char *text,
                               struct aipc_virtual_options *opts);

/* Frees the paths and zeroes *opts. */
void aipc_virtual_options_clear(struct aipc_virtual_options *opts);

#endif
