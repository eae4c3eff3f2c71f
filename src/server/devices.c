/* SPDX-License-Identifier: ISC */
/*
 * A client's devices: the collections its enumerations made, kept alive
 * while their devids may still be named, and the opaque tokens that
 * stand for those devids on the wire. Monitors (a sound server's
 * recording of what is played, hence of every other client) are neither
 * listed nor opened unless the embedder allowed them.
 *
 * The client's thread only, like its context.
 */
#include "server-private.h"

#include "cubeb-errors.h"
#include "protocol.h"

#include <stdlib.h>
#include <string.h>

/* Device collections kept alive per client, so their devids stay valid
 * while the client may still name them by token. */
#define COLLECTIONS_KEPT 4

struct token {
  uint64_t token;
  cubeb_devid devid;
  unsigned collection; /* slot in `collections` */
};

struct aipc_devices {
  cubeb *ctx;
  bool allow_monitors;
  uint32_t max_tokens;
  cubeb_device_collection collections[COLLECTIONS_KEPT];
  bool used[COLLECTIONS_KEPT];
  unsigned next;
  struct token *tokens;
  uint32_t ntokens;
  uint64_t next_token;
};

int
aipc_devices_new(cubeb *ctx, uint32_t max_tokens, bool allow_monitors,
                 struct aipc_devices **out)
{
  struct aipc_devices *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->tokens = calloc(max_tokens, sizeof(*d->tokens));
  if (!d->tokens) {
    free(d);
    return -ENOMEM;
  }
  d->ctx = ctx;
  d->allow_monitors = allow_monitors;
  d->max_tokens = max_tokens;
  *out = d;
  return 0;
}

static void
drop_collection(struct aipc_devices *d, unsigned slot)
{
  if (!d->used[slot])
    return;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < d->ntokens; i++)
    if (d->tokens[i].collection != slot)
      d->tokens[kept++] = d->tokens[i];
  d->ntokens = kept;
  cubeb_device_collection_destroy(d->ctx, &d->collections[slot]);
  d->used[slot] = false;
}

void
aipc_devices_destroy(struct aipc_devices *d)
{
  if (!d)
    return;
  for (unsigned i = 0; i < COLLECTIONS_KEPT; i++)
    drop_collection(d, i);
  free(d->tokens);
  free(d);
}

/*
 * PulseAudio names every sink's monitor source "<sink>.monitor" (so does
 * PipeWire's pulse server); recording from one hears everything played
 * to that sink, other clients included.
 */
bool
aipc_device_is_monitor(const cubeb_device_info *info)
{
  static const char suffix[] = ".monitor";
  if (!(info->type & CUBEB_DEVICE_TYPE_INPUT) || !info->device_id)
    return false;
  size_t n = strlen(info->device_id), k = sizeof(suffix) - 1;
  return n >= k && strcmp(info->device_id + n - k, suffix) == 0;
}

static bool
listed(const struct aipc_devices *d, const cubeb_device_info *info)
{
  return d->allow_monitors || !aipc_device_is_monitor(info);
}

/* Backend strings longer than the wire allows are cut short into `buf`
 * (AIPC_NAME_MAX + 1 bytes). */
const char *
aipc_bounded_string(const char *s, char *buf)
{
  if (!s || strlen(s) <= AIPC_NAME_MAX)
    return s;
  memcpy(buf, s, AIPC_NAME_MAX);
  buf[AIPC_NAME_MAX] = '\0';
  return buf;
}

static struct aipc_device
wire_device(const cubeb_device_info *info, uint64_t token,
            char (*names)[AIPC_NAME_MAX + 1])
{
  return (struct aipc_device){
      .token = token,
      .device_id = aipc_bounded_string(info->device_id, names[0]),
      .friendly_name = aipc_bounded_string(info->friendly_name, names[1]),
      .group_id = aipc_bounded_string(info->group_id, names[2]),
      .vendor_name = aipc_bounded_string(info->vendor_name, names[3]),
      .type = info->type,
      .state = info->state,
      .preferred = info->preferred,
      .format = info->format,
      .default_format = info->default_format,
      .max_channels = info->max_channels,
      .default_rate = info->default_rate,
      .max_rate = info->max_rate,
      .min_rate = info->min_rate,
      .latency_lo = info->latency_lo,
      .latency_hi = info->latency_hi};
}

int
aipc_devices_enumerate(struct aipc_devices *d, uint32_t type,
                       struct aipc_request *req)
{
  if (type == 0)
    return -EINVAL;
  unsigned slot = d->next;
  drop_collection(d, slot);
  cubeb_device_collection *coll = &d->collections[slot];
  /* libcubeb walks it to log it even when the backend failed. */
  *coll = (cubeb_device_collection){0};
  int r = aipc_errno_from_cubeb(
      cubeb_enumerate_devices(d->ctx, (cubeb_device_type)type, coll));
  if (r < 0)
    return r;
  d->used[slot] = true;
  d->next = (slot + 1) % COLLECTIONS_KEPT;

  size_t count = 0;
  bool default_hidden = false;
  for (size_t i = 0; i < coll->count; i++) {
    if (listed(d, &coll->device[i]))
      count++;
    else if (coll->device[i].preferred != CUBEB_DEVICE_PREF_NONE)
      default_hidden = true;
  }
  if (count > AIPC_DEVICES_MAX)
    count = AIPC_DEVICES_MAX;
  if (d->ntokens + count > d->max_tokens) {
    drop_collection(d, slot);
    return -ENOSPC;
  }
  struct aipc_device *devices = calloc(count ? count : 1, sizeof(*devices));
  char(*names)[4][AIPC_NAME_MAX + 1] =
      calloc(count ? count : 1, sizeof(*names));
  if (!devices || !names) {
    free(devices);
    free(names);
    return -ENOMEM;
  }
  size_t n = 0;
  bool default_input_given = false;
  for (size_t i = 0; i < coll->count && n < count; i++) {
    const cubeb_device_info *info = &coll->device[i];
    if (!listed(d, info))
      continue;
    uint64_t token = ++d->next_token;
    d->tokens[d->ntokens++] = (struct token){
        .token = token, .devid = info->devid, .collection = slot};
    devices[n] = wire_device(info, token, names[n]);
    /* A hidden monitor was the default input: the first real input is
     * what a stream on "the default" gets (aipc_devices_default_input). */
    if (default_hidden && !default_input_given &&
        (info->type & CUBEB_DEVICE_TYPE_INPUT)) {
      devices[n].preferred = CUBEB_DEVICE_PREF_ALL;
      default_input_given = true;
    }
    n++;
  }
  struct aipc_devices_reply reply = {
      .devices = {.count = (uint32_t)n, .items = devices}};
  aipc_request_reply(req, &reply, NULL, 0);
  free(devices);
  free(names);
  return 0;
}

int
aipc_devices_resolve(const struct aipc_devices *d, uint64_t token,
                     cubeb_devid *out)
{
  if (token == 0) {
    *out = NULL;
    return 0;
  }
  for (uint32_t i = 0; i < d->ntokens; i++) {
    if (d->tokens[i].token == token) {
      *out = d->tokens[i].devid;
      return 0;
    }
  }
  return -ENODEV;
}

/*
 * With monitors hidden, "the default input" must not be one either: if
 * the backend's default is a monitor, the first input that is not one is
 * named instead, and if there is none the stream is refused (-ENODEV).
 * *out is NULL (the backend's default) or a devid of `hold`, which the
 * caller destroys once the stream is made.
 */
int
aipc_devices_default_input(struct aipc_devices *d, cubeb_devid *out,
                           cubeb_device_collection *hold)
{
  *hold = (cubeb_device_collection){0};
  *out = NULL;
  if (d->allow_monitors)
    return 0;
  int r = aipc_errno_from_cubeb(
      cubeb_enumerate_devices(d->ctx, CUBEB_DEVICE_TYPE_INPUT, hold));
  if (r == -EOPNOTSUPP)
    return 0; /* no devices to tell apart */
  if (r < 0)
    return r;
  const cubeb_device_info *first_real = NULL;
  bool default_is_monitor = false, any_default = false, any_monitor = false;
  for (size_t i = 0; i < hold->count; i++) {
    const cubeb_device_info *info = &hold->device[i];
    bool monitor = aipc_device_is_monitor(info);
    bool preferred = info->preferred != CUBEB_DEVICE_PREF_NONE;
    if (!monitor && !first_real)
      first_real = info;
    any_monitor |= monitor;
    any_default |= preferred;
    default_is_monitor |= monitor && preferred;
  }
  /* The backend's default is fine if it is known not to be a monitor. */
  if (!default_is_monitor && (any_default || !any_monitor))
    return 0;
  if (!first_real)
    return -ENODEV;
  *out = first_real->devid;
  return 0;
}
