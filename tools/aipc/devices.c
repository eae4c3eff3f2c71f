/* SPDX-License-Identifier: ISC */
/* aipc devices and aipc info: what the backend says, through a server. */
#include "aipc.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define COMMON_OPTIONS                                                         \
  "Options:\n"                                                                 \
  "  --connect PATH   use the server of \"aipc serve --listen PATH\"; "        \
  "without it\n"                                                               \
  "                   a server runs in this process and the client part "      \
  "in a\n"                                                                     \
  "                   child process\n"                                         \
  "  --backend NAME   the in-process server's backend (default: cubeb's "      \
  "default\n"                                                                  \
  "                   when a sound server is reachable, else the virtual "     \
  "device)\n"                                                                  \
  "  -h, --help       show this help\n"

static const char devices_usage[] =
    "usage: aipc devices [--connect PATH | --backend NAME]\n"
    "\n"
    "Lists the backend's output and input devices, one a line: direction, "
    "id,\nname, type, state, channels, rates (default, min-max) and the "
    "roles it is\npreferred for.\n"
    "\n" COMMON_OPTIONS;

static const char info_usage[] =
    "usage: aipc info [--connect PATH | --backend NAME]\n"
    "\n"
    "Shows the backend's id, preferred rate, minimum latency (for float "
    "stereo\nat the preferred rate) and maximum channel count.\n"
    "\n" COMMON_OPTIONS;

struct common {
  const char *connect, *backend;
};

/* Parses the options both commands share. Returns -1 to go on, or an
 * exit status. */
static int
parse_common(const char *cmd, const char *usage, int argc, char **argv,
             struct common *o)
{
  static const struct option options[] = {
      {"connect", required_argument, NULL, 'c'},
      {"backend", required_argument, NULL, 'b'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'c':
      o->connect = optarg;
      break;
    case 'b':
      o->backend = optarg;
      break;
    case 'h':
      fputs(usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option(cmd, usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error(cmd, usage, "unexpected argument %s", argv[optind]);
  if (o->connect && o->backend)
    return aipc_usage_error(cmd, usage,
                            "--backend is for the in-process server; "
                            "--connect uses another's");
  return -1;
}

static const char *
state_name(cubeb_device_state state)
{
  switch (state) {
  case CUBEB_DEVICE_STATE_DISABLED:
    return "disabled";
  case CUBEB_DEVICE_STATE_UNPLUGGED:
    return "unplugged";
  case CUBEB_DEVICE_STATE_ENABLED:
    return "enabled";
  }
  return "unknown";
}

static void
preferred_names(cubeb_device_pref pref, char *buf, size_t size)
{
  static const struct {
    cubeb_device_pref bit;
    const char *name;
  } names[] = {
      {CUBEB_DEVICE_PREF_MULTIMEDIA, "multimedia"},
      {CUBEB_DEVICE_PREF_VOICE, "voice"},
      {CUBEB_DEVICE_PREF_NOTIFICATION, "notification"},
  };
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (!(pref & names[i].bit))
      continue;
    int n =
        snprintf(buf + len, size - len, "%s%s", len ? "," : "", names[i].name);
    if (n < 0 || (size_t)n >= size - len)
      break;
    len += (size_t)n;
  }
  if (!len)
    snprintf(buf, size, "-");
}

static int
devices_client(const char *cmd, cubeb *ctx, void *data)
{
  (void)data;
  cubeb_device_collection devices;
  int r = cubeb_enumerate_devices(
      ctx, CUBEB_DEVICE_TYPE_OUTPUT | CUBEB_DEVICE_TYPE_INPUT, &devices);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc %s: cannot list the devices (cubeb error %d)\n", cmd,
            r);
    return AIPC_EXIT_FAILURE;
  }
  printf("%-9s %-24s %-24s %-9s %8s  %-24s %s\n", "direction", "id", "name",
         "state", "channels", "rate (default, min-max)", "preferred");
  for (size_t i = 0; i < devices.count; i++) {
    const cubeb_device_info *d = &devices.device[i];
    const char *type = d->type == CUBEB_DEVICE_TYPE_OUTPUT  ? "output"
                       : d->type == CUBEB_DEVICE_TYPE_INPUT ? "input"
                                                            : "unknown";
    char rates[64], pref[64];
    snprintf(rates, sizeof(rates), "%u Hz, %u-%u", d->default_rate, d->min_rate,
             d->max_rate);
    preferred_names(d->preferred, pref, sizeof(pref));
    printf("%-9s %-24s %-24s %-9s %8u  %-24s %s\n", type,
           d->device_id ? d->device_id : "-",
           d->friendly_name ? d->friendly_name : "-", state_name(d->state),
           d->max_channels, rates, pref);
  }
  printf("%zu device%s\n", devices.count, devices.count == 1 ? "" : "s");
  cubeb_device_collection_destroy(ctx, &devices);
  return AIPC_EXIT_OK;
}

static int
info_client(const char *cmd, cubeb *ctx, void *data)
{
  (void)data;
  uint32_t rate = 0, latency = 0, channels = 0;
  const char *id = cubeb_get_backend_id(ctx);
  printf("backend id:      %s\n", id ? id : "(none)");
  int r = cubeb_get_preferred_sample_rate(ctx, &rate);
  if (r == CUBEB_OK)
    printf("preferred rate:  %u Hz\n", rate);
  else
    printf("preferred rate:  unknown (cubeb error %d)\n", r);
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = rate ? rate : 48000,
                                .channels = 2,
                                .layout = CUBEB_LAYOUT_STEREO};
  r = cubeb_get_min_latency(ctx, &params, &latency);
  if (r == CUBEB_OK)
    printf("min latency:     %u frames (%.2f ms)\n", latency,
           latency * 1000.0 / params.rate);
  else
    printf("min latency:     unknown (cubeb error %d)\n", r);
  r = cubeb_get_max_channel_count(ctx, &channels);
  if (r == CUBEB_OK)
    printf("max channels:    %u\n", channels);
  else
    printf("max channels:    unknown (cubeb error %d)\n", r);
  if (!id) {
    fprintf(stderr, "aipc %s: the server reported no backend id\n", cmd);
    return AIPC_EXIT_FAILURE;
  }
  return AIPC_EXIT_OK;
}

int
aipc_devices_main(int argc, char **argv)
{
  struct common o = {0};
  int r = parse_common("devices", devices_usage, argc, argv, &o);
  if (r >= 0)
    return r;
  return aipc_run_client("devices", o.connect, o.backend,
                         "virtual:clock=realtime", devices_client, NULL);
}

int
aipc_info_main(int argc, char **argv)
{
  struct common o = {0};
  int r = parse_common("info", info_usage, argc, argv, &o);
  if (r >= 0)
    return r;
  return aipc_run_client("info", o.connect, o.backend, "virtual:clock=realtime",
                         info_client, NULL);
}
