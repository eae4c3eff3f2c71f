/* SPDX-License-Identifier: ISC */
#include "options.h"

#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum option_key {
  KEY_RATE,
  KEY_CHANNELS,
  KEY_PERIOD,
  KEY_FORMAT,
  KEY_CLOCK,
  KEY_OUT,
  KEY_IN,
  KEY_INIT_DELAY,
  KEY_COUNT,
};

static const char *const key_names[KEY_COUNT] = {
    [KEY_RATE] = "rate",     [KEY_CHANNELS] = "channels",
    [KEY_PERIOD] = "period", [KEY_FORMAT] = "format",
    [KEY_CLOCK] = "clock",   [KEY_OUT] = "out",
    [KEY_IN] = "in",         [KEY_INIT_DELAY] = "init_delay_ms",
};

static bool
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
  /* strtoul would accept a sign and leading blanks. */
  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return false;
  *out = (uint32_t)v;
  return true;
}

static bool
parse_hz(const char *s, double *out)
{
  if ((*s < '0' || *s > '9') && *s != '.')
    return false;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0 || v > 96000)
    return false;
  *out = v;
  return true;
}

static int
set_path(char **path, const char *value)
{
  free(*path);
  *path = strdup(value);
  return *path ? 0 : -ENOMEM;
}

static int
parse_value(struct aipc_virtual_options *opts, enum option_key key,
            const char *value)
{
  switch (key) {
  case KEY_RATE:
    return parse_u32(value, 1000, 192000, &opts->rate) ? 0 : -EINVAL;
  case KEY_CHANNELS:
    return parse_u32(value, 1, 8, &opts->channels) ? 0 : -EINVAL;
  case KEY_PERIOD:
    return parse_u32(value, 1, 96000, &opts->period) ? 0 : -EINVAL;
  case KEY_FORMAT:
    if (strcmp(value, "f32") == 0)
      opts->is_float = true;
    else if (strcmp(value, "s16") == 0)
      opts->is_float = false;
    else
      return -EINVAL;
    return 0;
  case KEY_CLOCK:
    if (strcmp(value, "realtime") == 0)
      opts->clock = AIPC_VIRTUAL_CLOCK_REALTIME;
    else if (strcmp(value, "fast") == 0)
      opts->clock = AIPC_VIRTUAL_CLOCK_FAST;
    else
      return -EINVAL;
    return 0;
  case KEY_OUT:
    return set_path(&opts->out_path, value);
  case KEY_INIT_DELAY:
    return parse_u32(value, 0, 10000, &opts->init_delay_ms) ? 0 : -EINVAL;
  case KEY_IN:
    if (strcmp(value, "silence") == 0) {
      opts->source = AIPC_VIRTUAL_SOURCE_SILENCE;
      return 0;
    }
    if (strncmp(value, "sine:", 5) == 0) {
      opts->source = AIPC_VIRTUAL_SOURCE_SINE;
      return parse_hz(value + 5, &opts->sine_hz) ? 0 : -EINVAL;
    }
    opts->source = AIPC_VIRTUAL_SOURCE_FILE;
    return set_path(&opts->in_path, value);
  case KEY_COUNT:
    break;
  }
  return -EINVAL;
}

static int
parse_item(struct aipc_virtual_options *opts, char *item, unsigned *seen)
{
  char *eq = strchr(item, '=');
  if (eq)
    *eq = '\0';
  enum option_key key = KEY_COUNT;
  for (int k = 0; k < KEY_COUNT; k++) {
    if (strcmp(item, key_names[k]) == 0)
      key = (enum option_key)k;
  }
  if (key == KEY_COUNT) {
    aipc_error("virtual device: unknown option '%s'", item);
    return -EINVAL;
  }
  if (!eq || eq[1] == '\0') {
    aipc_error("virtual device: option '%s' needs a value", item);
    return -EINVAL;
  }
  if (*seen & 1u << key) {
    aipc_error("virtual device: option '%s' given twice", item);
    return -EINVAL;
  }
  *seen |= 1u << key;
  int r = parse_value(opts, key, eq + 1);
  if (r == -EINVAL)
    aipc_error("virtual device: bad value for option '%s': '%s'", item, eq + 1);
  return r;
}

int
aipc_virtual_options_parse(const char *text, struct aipc_virtual_options *out)
{
  struct aipc_virtual_options opts = {
      .rate = 48000,
      .channels = 2,
      .period = 128,
      .is_float = true,
      .clock = AIPC_VIRTUAL_CLOCK_REALTIME,
      .source = AIPC_VIRTUAL_SOURCE_SINE,
      .sine_hz = 440,
  };
  if (!text || !*text) {
    *out = opts;
    return 0;
  }
  char *copy = strdup(text);
  if (!copy)
    return -ENOMEM;
  int r = 0;
  unsigned seen = 0;
  char *item = copy;
  for (;;) {
    char *comma = strchr(item, ',');
    if (comma)
      *comma = '\0';
    if (!*item) {
      aipc_error("virtual device: empty option in '%s'", text);
      r = -EINVAL;
      break;
    }
    r = parse_item(&opts, item, &seen);
    if (r < 0 || !comma)
      break;
    item = comma + 1;
  }
  free(copy);
  if (r < 0) {
    aipc_virtual_options_clear(&opts);
    return r;
  }
  *out = opts;
  return 0;
}

void
aipc_virtual_options_clear(struct aipc_virtual_options *opts)
{
  free(opts->in_path);
  free(opts->out_path);
  memset(opts, 0, sizeof(*opts));
}
