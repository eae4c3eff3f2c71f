/* SPDX-License-Identifier: ISC */
/*
 * aipc record: an input device to a sound file or to stdout. The data
 * callback only copies into a ring; this thread writes the file and
 * rewrites its header about once a second, so that even a process
 * killed outright leaves a valid file missing at most its last second.
 */
#include "aipc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_RING_SECONDS 4
#define RECORD_POLL_MS 20
#define RECORD_SYNC_NS 1000000000LL
#define RECORD_GRACE_NS 20000000000LL

static const char record_usage[] =
    "usage: aipc record [OPTIONS] (OUT | -)\n"
    "\n"
    "Records an input device through a server to OUT, or as raw audio to "
    "stdout\n(-), for --seconds S or until SIGINT (Ctrl-C) or SIGTERM, "
    "which finish the\nfile with every frame captured (exit status 0). The "
    "file's header is kept\nvalid as it grows (rewritten about once a "
    "second).\n"
    "\n"
    "OUT's container comes from its name: .wav (and anything else), .w64, "
    ".rf64,\n.aiff, .au, .caf, .flac, .ogg (Vorbis), .opus.\n"
    "\n"
    "Options:\n"
    "  --connect PATH   use the server of \"aipc serve --listen PATH\"; "
    "without it\n"
    "                   a server runs in this process and the client part "
    "in a\n"
    "                   child process\n"
    "  --backend NAME   the in-process server's backend (default: cubeb's "
    "default\n"
    "                   when a sound server is reachable, else "
    "virtual:clock=realtime)\n"
    "  --device ID      record from the input device of this id (see aipc "
    "devices)\n"
    "  --seconds S      stop after S seconds (default: at SIGINT or "
    "SIGTERM)\n"
    "  --volume V       scale the samples by V, 0 to 1 (default 1)\n"
    "  --latency MS     the stream's latency (default: the backend's "
    "minimum)\n"
    "  --rate HZ        the rate (default: the backend's preferred; raw: "
    "48000)\n"
    "  --channels N     1 to 8 (default: the device's, at most 2; raw: 2)\n"
    "  --format F       OUT's sample type: u8 s8 s16 s24 s32 f32 f64, or "
    "with a\n"
    "                   byte order s16le s16be f32le f32be (default f32, "
    "or s24\n"
    "                   where the container has no float; Ogg has its "
    "own); raw\n"
    "                   audio: s16le (default), s16be, f32le, f32be\n"
    "  -h, --help       show this help\n";

struct recorder {
  struct aipc_session session;
  struct aipc_media media;
  size_t frame_bytes;
  uint64_t written, max_frames; /* what the file's header can count */
};

/* Audio thread: copies whole frames into the ring, never waits. */
static long
record_data_cb(cubeb_stream *stream, void *user, const void *input,
               void *output, long nframes)
{
  (void)stream;
  (void)output;
  struct aipc_session *s = user;
  struct recorder *rec = s->user;
  size_t fb = rec->frame_bytes;
  uint64_t moved = atomic_load_explicit(&s->moved, memory_order_relaxed);
  uint64_t left = s->limit - moved;
  size_t n = left < (uint64_t)nframes ? (size_t)left : (size_t)nframes;
  size_t room = (s->ring.size - aipc_ring_used(&s->ring)) / fb;
  size_t copy = n < room ? n : room;
  aipc_ring_push(&s->ring, input, copy * fb);
  if (copy < n)
    atomic_fetch_add_explicit(&s->gaps, n - copy, memory_order_relaxed);
  atomic_store_explicit(&s->moved, moved + n, memory_order_release);
  sem_post(&s->wake);
  return (long)n; /* fewer than given: drain */
}

/* Moves what the ring holds to the file. Returns 0 or a negative errno
 * of the write. */
static int
drain_ring(struct recorder *rec, double volume)
{
  uint8_t chunk[16384];
  size_t len = sizeof(chunk) - sizeof(chunk) % rec->frame_bytes;
  size_t n;
  while ((n = aipc_ring_pop(&rec->session.ring, chunk, len)) > 0) {
    uint64_t frames = n / rec->frame_bytes;
    if (frames > rec->max_frames - rec->written)
      return -EFBIG;
    rec->written += frames;
    if (volume != 1.0)
      aipc_scale_samples(rec->media.format, chunk, n, volume);
    int r = aipc_media_write(&rec->media, chunk, n);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The channels of the input device (a->device, else the default), at
 * most 2; 1 if unknown. */
static uint32_t
device_channels(cubeb *ctx, const char *id)
{
  cubeb_device_collection devices;
  uint32_t channels = 1;
  if (cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &devices) !=
      CUBEB_OK)
    return channels;
  for (size_t i = 0; i < devices.count; i++) {
    const cubeb_device_info *d = &devices.device[i];
    bool named = id && d->device_id && strcmp(d->device_id, id) == 0;
    if (named ||
        (!id && (i == 0 || (d->preferred & CUBEB_DEVICE_PREF_MULTIMEDIA))))
      channels = d->max_channels;
  }
  cubeb_device_collection_destroy(ctx, &devices);
  return channels < 1 ? 1 : channels > 2 ? 2 : channels;
}

static int
record_client(const char *cmd, cubeb *ctx, void *data)
{
  const struct aipc_stream_args *a = data;
  struct recorder rec = {0};
  int status = AIPC_EXIT_FAILURE;
  uint32_t rate = a->rate, channels = a->channels;
  if (!rate &&
      (cubeb_get_preferred_sample_rate(ctx, &rate) != CUBEB_OK || rate == 0))
    rate = 48000;
  if (!channels)
    channels = device_channels(ctx, a->device);
  if (aipc_media_open(a, rate, channels, &rec.media) < 0)
    return AIPC_EXIT_FAILURE;
  rec.frame_bytes = rec.media.frame_bytes;
  rec.max_frames = rec.media.raw
                       ? UINT64_MAX
                       : aipc_sound_max_frames(rec.media.sf_format, channels);
  struct aipc_session *s = &rec.session;
  int err = aipc_session_init(s, (size_t)rate * RECORD_RING_SECONDS *
                                     rec.frame_bytes);
  if (err < 0) {
    fprintf(stderr, "aipc %s: cannot set up the stream: %s\n", cmd,
            strerror(-err));
    aipc_media_close(&rec.media, cmd, a->path);
    return AIPC_EXIT_FAILURE;
  }
  s->user = &rec;
  s->limit = a->seconds > 0 ? (uint64_t)llround(a->seconds * rate) : UINT64_MAX;

  cubeb_stream_params params = {.format = rec.media.format,
                                .rate = rate,
                                .channels = channels,
                                .layout = rec.media.layout};
  if (aipc_session_open(s, a, ctx, &params, record_data_cb) < 0)
    goto out;
  int64_t now = aipc_tool_now_ns(), synced = now;
  int64_t deadline = a->seconds > 0
                         ? now + (int64_t)(a->seconds * 1e9) + RECORD_GRACE_NS
                         : INT64_MAX;
  /* Done when every frame was taken: libcubeb's pulse backend does not
   * report DRAINED for input-only streams. */
  int end = -1;
  bool done = false;
  while (!done && err == 0 && (end = atomic_load(&s->state)) < 0 &&
         !aipc_session_stop_signal() && now < deadline) {
    aipc_session_wait(s, RECORD_POLL_MS);
    err = drain_ring(&rec, a->volume);
    done = atomic_load_explicit(&s->moved, memory_order_acquire) >= s->limit;
    now = aipc_tool_now_ns();
    if (err == 0 && rec.media.file && now - synced >= RECORD_SYNC_NS) {
      char why[AIPC_SOUND_WHY_MAX];
      if (aipc_sound_sync(rec.media.file, why, sizeof(why)) < 0) {
        fprintf(stderr, "aipc %s: %s: %s\n", cmd, a->path, why);
        goto out;
      }
      synced = now;
    }
  }
  /* No callback runs after this; then the ring's rest. */
  cubeb_stream_destroy(s->stream);
  s->stream = NULL;
  done = atomic_load(&s->moved) >= s->limit;
  if (err == 0)
    err = drain_ring(&rec, a->volume);
  uint64_t taken = atomic_load(&s->moved);
  bool reader_gone = err == -EPIPE && rec.media.raw;
  if (err < 0 && !reader_gone) {
    fprintf(stderr, "aipc %s: %s: %s\n", cmd, a->path,
            aipc_media_strerror(&rec.media, err));
    goto out;
  }
  int sig = aipc_session_stop_signal();
  if (!sig && !done && !reader_gone) {
    fprintf(stderr, "aipc %s: the stream %s after %llu frames\n", cmd,
            end == CUBEB_STATE_ERROR ? "failed" : "stalled",
            (unsigned long long)taken);
    goto out;
  }
  uint64_t lost = atomic_load(&s->gaps);
  if (lost) {
    fprintf(stderr,
            "aipc %s: %llu frames were lost: the file was written too "
            "slowly\n",
            cmd, (unsigned long long)lost);
    goto out;
  }
  status = AIPC_EXIT_OK;

out:
  aipc_session_destroy(s);
  if (aipc_media_close(&rec.media, cmd, a->path) < 0)
    status = AIPC_EXIT_FAILURE;
  if (status == AIPC_EXIT_OK) {
    char what[160];
    aipc_media_describe(&rec.media, what, sizeof(what));
    uint64_t frames = atomic_load(&s->moved);
    /* With raw audio on stdout, the report goes to stderr. */
    fprintf(rec.media.raw ? stderr : stdout,
            "aipc %s: recorded %llu frames (%.2f s, %s) to %s%s\n", cmd,
            (unsigned long long)frames, (double)frames / rate, what,
            rec.media.raw ? "stdout" : a->path,
            aipc_session_stop_signal() ? ", stopped by a signal"
            : err == -EPIPE            ? ", stopped: stdout was closed"
                                       : "");
  }
  return status;
}

int
aipc_record_main(int argc, char **argv)
{
  struct aipc_stream_args a;
  int status;
  if (!aipc_stream_parse("record", true, record_usage, argc, argv, &a, &status))
    return status;
  return aipc_run_client("record", a.connect, a.backend,
                         "virtual:clock=realtime", record_client, &a);
}
