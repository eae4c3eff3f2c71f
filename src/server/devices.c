/* SPDX-License-Identifier: ISC */
/*
 * A client's devices: the opaque tokens that stand for devids on the
 * wire, and the collections kept alive while those devids may still be
 * named. Monitors (a sound server's recording of what is played, hence
 * of every other client) are neither listed nor opened unless the
 * embedder allowed them.
 *
 * A token is the device's for the life of the client's context, as a
 * devid is in libcubeb: every enumeration that lists the same device
 * (the same direction and backend device_id) gives the same token, and
 * a token is never given to another device. It names the devid of the
 * newest collection that listed the device; that collection is kept
 * while any token names into it, so a device that has gone still names
 * the devid it had (the backend then refuses a stream on it, as it
 * would in-process). At the limit, the devices no enumeration has
 * listed for longest are forgotten to make room.
 *
 * The client's thread only, like its context.
 */
#include "server-private.h"

#include "cubeb-errors.h"
#include "protocol.h"

#include <stdlib.h>
#include <string.h>

/* A collection, kept while tokens name devids in it. */
struct held {
  struct held *next;
  cubeb_device_collection collection;
  unsigned refs; /* tokens naming into it */
};

/* A device some enumeration listed, and its token. */
struct known {
  uint64_t token;
  uint64_t seen; /* the enumeration that last listed it */
  uint32_t type;
  char *id; /* the backend's device_id (or friendly name); NULL: none */
  cubeb_devid devid;
  struct held *held;
};

struct aipc_devices {
  cubeb *ctx;
  bool allow_monitors;
  bool lists_monitors; /* the backend is pulse (aipc_devices_default_input) */
  uint32_t max_tokens;
  struct known *known;
  uint32_t nknown;
  struct held *helds;
  uint64_t next_token;
  uint64_t enumerations;
};

int
aipc_devices_new(cubeb *ctx, uint32_t max_tokens, bool allow_monitors,
                 struct aipc_devices **out)
{
  struct aipc_devices *d = calloc(1, sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->known = calloc(max_tokens, sizeof(*d->known));
  if (!d->known) {
    free(d);
    return -ENOMEM;
  }
  d->ctx = ctx;
  d->allow_monitors = allow_monitors;
  d->lists_monitors = strcmp(cubeb_get_backend_id(ctx), "pulse") == 0;
  d->max_tokens = max_tokens;
  *out = d;
  return 0;
}

/* Destroys the collections no token names into any more. */
static void
drop_unnamed(struct aipc_devices *d)
{
  struct held **p = &d->helds;
  while (*p) {
    struct held *h = *p;
    if (h->refs) {
      p = &h->next;
      continue;
    }
    *p = h->next;
    cubeb_device_collection_destroy(d->ctx, &h->collection);
    free(h);
  }
}

static void
point_at(struct known *k, struct held *h, cubeb_devid devid)
{
  if (k->held)
    k->held->refs--;
  k->held = h;
  k->devid = devid;
  if (h)
    h->refs++;
}

void
aipc_devices_destroy(struct aipc_devices *d)
{
  if (!d)
    return;
  for (uint32_t i = 0; i < d->nknown; i++) {
    point_at(&d->known[i], NULL, NULL);
    free(d->known[i].id);
  }
  drop_unnamed(d);
  free(d->known);
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
listed_for(const struct aipc_devices *d, const cubeb_device_info *info)
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

/* What tells the device apart from the others of its direction. */
static const char *
identity(const cubeb_device_info *info)
{
  return info->device_id ? info->device_id : info->friendly_name;
}

/* The known device `info` is, unless this enumeration already gave its
 * token to another device that looks the same. */
static struct known *
find_known(struct aipc_devices *d, const cubeb_device_info *info)
{
  const char *id = identity(info);
  if (!id)
    return NULL;
  for (uint32_t i = 0; i < d->nknown; i++) {
    struct known *k = &d->known[i];
    if (k->seen != d->enumerations && k->type == (uint32_t)info->type &&
        k->id && strcmp(k->id, id) == 0)
      return k;
  }
  return NULL;
}

/* Forgets the device no enumeration has listed for longest (one this
 * enumeration did not list). */
static void
forget_oldest(struct aipc_devices *d)
{
  struct known *oldest = NULL;
  for (uint32_t i = 0; i < d->nknown; i++) {
    struct known *k = &d->known[i];
    if (k->seen < d->enumerations && (!oldest || k->seen < oldest->seen))
      oldest = k;
  }
  if (!oldest)
    return;
  point_at(oldest, NULL, NULL);
  free(oldest->id);
  *oldest = d->known[--d->nknown];
}

/*
 * Gives the `count` devices of `listed` their tokens, in `tokens`: the
 * ones they had, or new ones. Marks every device it finds first, so
 * that making room forgets none of this enumeration's; -ENOSPC if they
 * alone are more than the limit.
 */
static int
give_tokens(struct aipc_devices *d, struct held *h,
            const cubeb_device_info **listed, size_t count, uint64_t *tokens)
{
  uint64_t now = ++d->enumerations;
  size_t fresh = 0;
  for (size_t i = 0; i < count; i++) {
    struct known *k = find_known(d, listed[i]);
    if (k)
      k->seen = now;
    else
      fresh++;
  }
  if (count > d->max_tokens)
    return -ENOSPC;
  while (d->nknown + fresh > d->max_tokens)
    forget_oldest(d);
  /* Match again, with the marks off, now that nothing moves. */
  for (uint32_t i = 0; i < d->nknown; i++)
    if (d->known[i].seen == now)
      d->known[i].seen = now - 1;
  for (size_t i = 0; i < count; i++) {
    const cubeb_device_info *info = listed[i];
    struct known *k = find_known(d, info);
    if (!k) {
      const char *id = identity(info);
      k = &d->known[d->nknown];
      *k = (struct known){.token = ++d->next_token,
                          .type = (uint32_t)info->type,
                          .id = id ? strdup(id) : NULL};
      if (id && !k->id)
        return -ENOMEM;
      d->nknown++;
    }
    k->seen = now;
    point_at(k, h, info->devid);
    tokens[i] = k->token;
  }
  return 0;
}

int
aipc_devices_enumerate(struct aipc_devices *d, uint32_t type,
                       struct aipc_request *req)
{
  if (type == 0)
    return -EINVAL;
  struct held *h = calloc(1, sizeof(*h));
  if (!h)
    return -ENOMEM;
  h->next = d->helds;
  d->helds = h;
  cubeb_device_collection *coll = &h->collection;
  /* libcubeb walks it to log it even when the backend failed. */
  int r = aipc_errno_from_cubeb(
      cubeb_enumerate_devices(d->ctx, (cubeb_device_type)type, coll));
  if (r < 0) {
    /* Nothing to destroy in a collection the backend did not fill. */
    d->helds = h->next;
    free(h);
    return r;
  }

  size_t count = 0;
  bool default_hidden = false;
  const cubeb_device_info **listed =
      calloc(coll->count ? coll->count : 1, sizeof(*listed));
  struct aipc_device *devices = calloc(coll->count ? coll->count : 1,
                                       sizeof(*devices));
  char(*names)[4][AIPC_NAME_MAX + 1] =
      calloc(coll->count ? coll->count : 1, sizeof(*names));
  uint64_t *tokens = calloc(coll->count ? coll->count : 1, sizeof(*tokens));
  if (!listed || !devices || !names || !tokens) {
    r = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < coll->count; i++) {
    const cubeb_device_info *info = &coll->device[i];
    if (!listed_for(d, info)) {
      if (info->preferred != CUBEB_DEVICE_PREF_NONE)
        default_hidden = true;
    } else if (count < AIPC_DEVICES_MAX) {
      listed[count++] = info;
    }
  }
  r = give_tokens(d, h, listed, count, tokens);
  if (r < 0)
    goto out;

  bool default_input_given = false;
  for (size_t i = 0; i < count; i++) {
    devices[i] = wire_device(listed[i], tokens[i], names[i]);
    /* A hidden monitor was the default input: the first real input is
     * what a stream on "the default" gets (aipc_devices_default_input). */
    if (default_hidden && !default_input_given &&
        (listed[i]->type & CUBEB_DEVICE_TYPE_INPUT)) {
      devices[i].preferred = CUBEB_DEVICE_PREF_ALL;
      default_input_given = true;
    }
  }
  struct aipc_devices_reply reply = {
      .devices = {.count = (uint32_t)count, .items = devices}};
  aipc_request_reply(req, &reply, NULL, 0);
out:
  free(listed);
  free(devices);
  free(names);
  free(tokens);
  drop_unnamed(d);
  return r;
}

int
aipc_devices_resolve(const struct aipc_devices *d, uint64_t token,
                     cubeb_devid *out)
{
  if (token == 0) {
    *out = NULL;
    return 0;
  }
  for (uint32_t i = 0; i < d->nknown; i++) {
    if (d->known[i].token == token) {
      *out = d->known[i].devid;
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
 * caller destroys once the stream is made. Only PulseAudio lists
 * monitors: libcubeb's ALSA backend lists "default" alone, and its
 * enumeration opens the device twice (and may fail while it is busy),
 * for nothing to tell apart.
 */
int
aipc_devices_default_input(struct aipc_devices *d, cubeb_devid *out,
                           cubeb_device_collection *hold)
{
  *hold = (cubeb_device_collection){0};
  *out = NULL;
  if (d->allow_monitors || !d->lists_monitors)
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
