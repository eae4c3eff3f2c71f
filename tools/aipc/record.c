/* SPDX-License-Identifier: ISC */
/*
 * aipc record: the default input to a float WAV file. The data callback
 * only copies into a ring; this thread writes the file.
 */
#include "aipc.h"
#include "wav.h"

#include <getopt.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_RING_SECONDS 2
#define RECORD_POLL_MS 20
#define RECORD_GRACE_NS 20000000000LL

static const char record_usage[] =
    "usage: aipc record [--connect PATH | --backend NAME] OUT.wav --seconds "
    "S\n"
    "\n"
    "Records S seconds of the default input device through a server to a "
    "32-bit\nfloat WAV file, at the backend's preferred rate, with the "
    "device's channels\n(at most 2).\n"
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
    "  --seconds S      how long to record (needed)\n"
    "  -h, --help       show this help\n";

struct record {
  const char *connect, *backend, *out;
  double seconds;
};

/* A single-producer, single-consumer ring of frames. */
struct recorder {
  struct aipc_waiter waiter; /* first: the state callback's user pointer */
  float *ring;
  uint32_t channels;
  uint64_t capacity; /* frames */
  uint64_t total;    /* frames to record */
  uint64_t taken;    /* audio thread only */
  atomic_bool done;  /* all `total` frames were taken */
  atomic_uint_least64_t written, read, lost;
};

/* Audio thread: copies into the ring, never waits. */
static long
record_data_cb(cubeb_stream *stream, void *user, const void *input,
               void *output, long nframes)
{
  (void)stream;
  (void)output;
  struct recorder *r = user;
  const float *in = input;
  uint64_t left = r->total - r->taken;
  uint64_t n = left < (uint64_t)nframes ? left : (uint64_t)nframes;
  uint64_t w = atomic_load_explicit(&r->written, memory_order_relaxed);
  uint64_t free_frames =
      r->capacity - (w - atomic_load_explicit(&r->read, memory_order_acquire));
  uint64_t copy = n < free_frames ? n : free_frames;
  for (uint64_t i = 0; i < copy; i++) {
    uint64_t slot = (w + i) % r->capacity;
    memcpy(r->ring + slot * r->channels, in + i * r->channels,
           r->channels * sizeof(float));
  }
  atomic_store_explicit(&r->written, w + copy, memory_order_release);
  if (copy < n)
    atomic_fetch_add_explicit(&r->lost, n - copy, memory_order_relaxed);
  r->taken += n;
  if (r->taken == r->total)
    atomic_store_explicit(&r->done, true, memory_order_release);
  return (long)n; /* fewer than given: drain */
}

/* Moves what the ring holds to the file. Returns 0 or a writer error. */
static int
drain_ring(struct recorder *r, struct aipc_wav_writer *writer)
{
  uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
  uint64_t w = atomic_load_explicit(&r->written, memory_order_acquire);
  while (rd < w) {
    uint64_t slot = rd % r->capacity;
    uint64_t n = w - rd;
    if (n > r->capacity - slot)
      n = r->capacity - slot;
    int err = aipc_wav_writer_append(writer, r->ring + slot * r->channels,
                                     (uint32_t)n);
    if (err < 0)
      return err;
    rd += n;
    atomic_store_explicit(&r->read, rd, memory_order_release);
  }
  return 0;
}

/* The default input device's channels, at most 2; 1 if unknown. */
static uint32_t
input_channels(cubeb *ctx)
{
  cubeb_device_collection devices;
  uint32_t channels = 1;
  if (cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &devices) !=
      CUBEB_OK)
    return channels;
  for (size_t i = 0; i < devices.count; i++) {
    const cubeb_device_info *d = &devices.device[i];
    if (i == 0 || (d->preferred & CUBEB_DEVICE_PREF_MULTIMEDIA))
      channels = d->max_channels;
  }
  cubeb_device_collection_destroy(ctx, &devices);
  return channels < 1 ? 1 : channels > 2 ? 2 : channels;
}

static int
record_client(const char *cmd, cubeb *ctx, void *data)
{
  const struct record *o = data;
  struct recorder rec = {.channels = 0};
  struct aipc_wav_writer *writer = NULL;
  cubeb_stream *stream = NULL;
  int status = AIPC_EXIT_FAILURE;
  uint32_t rate;

  int err = aipc_waiter_init(&rec.waiter);
  if (err < 0) {
    fprintf(stderr, "aipc %s: cannot make a condition: %s\n", cmd,
            strerror(-err));
    return AIPC_EXIT_FAILURE;
  }
  if (cubeb_get_preferred_sample_rate(ctx, &rate) != CUBEB_OK || rate == 0)
    rate = 48000;
  rec.channels = input_channels(ctx);
  rec.total = (uint64_t)llround(o->seconds * rate);
  rec.capacity = (uint64_t)rate * RECORD_RING_SECONDS;
  rec.ring = calloc(rec.capacity * rec.channels, sizeof(float));
  if (!rec.ring) {
    fprintf(stderr, "aipc %s: cannot allocate a buffer: out of memory\n", cmd);
    goto out;
  }
  err = aipc_wav_writer_new(&writer, o->out, true, rec.channels, rate);
  if (err < 0) {
    fprintf(stderr, "aipc %s: cannot create %s: %s\n", cmd, o->out,
            aipc_wav_strerror(err));
    goto out;
  }

  cubeb_stream_params params = {
      .format = CUBEB_SAMPLE_FLOAT32NE,
      .rate = rate,
      .channels = rec.channels,
      .layout = rec.channels == 1 ? CUBEB_LAYOUT_MONO : CUBEB_LAYOUT_STEREO,
  };
  uint32_t latency;
  if (cubeb_get_min_latency(ctx, &params, &latency) != CUBEB_OK || latency == 0)
    latency = rate / 100;
  int r =
      cubeb_stream_init(ctx, &stream, "aipc record", NULL, &params, NULL, NULL,
                        latency, record_data_cb, aipc_waiter_state_cb, &rec);
  if (r != CUBEB_OK) {
    stream = NULL;
    fprintf(stderr,
            "aipc %s: cannot open a %u-channel input stream at %u Hz "
            "(cubeb error %d)\n",
            cmd, rec.channels, rate, r);
    goto out;
  }
  r = cubeb_stream_start(stream);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc %s: cannot start the stream (cubeb error %d)\n", cmd,
            r);
    goto out;
  }
  int64_t deadline =
      aipc_tool_now_ns() + (int64_t)(o->seconds * 1e9) + RECORD_GRACE_NS;
  /* Done when every frame was taken: libcubeb's pulse backend does not
   * report DRAINED for input-only streams. */
  int end = -1;
  bool done = false;
  while (end < 0 && !done && err == 0 && aipc_tool_now_ns() < deadline) {
    end = aipc_waiter_wait(&rec.waiter, RECORD_POLL_MS);
    err = drain_ring(&rec, writer);
    done = atomic_load_explicit(&rec.done, memory_order_acquire);
  }
  /* No callback runs after this; then the ring's rest. */
  cubeb_stream_destroy(stream);
  stream = NULL;
  if (err == 0)
    err = drain_ring(&rec, writer);
  if (err < 0) {
    fprintf(stderr, "aipc %s: cannot write %s: %s\n", cmd, o->out,
            aipc_wav_strerror(err));
    goto out;
  }
  if (!done || end == CUBEB_STATE_ERROR) {
    fprintf(stderr, "aipc %s: the stream %s after %llu of %llu frames\n", cmd,
            end == CUBEB_STATE_ERROR ? "failed" : "stalled",
            (unsigned long long)rec.taken, (unsigned long long)rec.total);
    goto out;
  }
  uint64_t lost = atomic_load(&rec.lost);
  if (lost) {
    fprintf(stderr,
            "aipc %s: %llu frames were lost: the file was written too "
            "slowly\n",
            cmd, (unsigned long long)lost);
    goto out;
  }
  status = AIPC_EXIT_OK;

out:
  if (stream)
    cubeb_stream_destroy(stream);
  if (writer) {
    err = aipc_wav_writer_destroy(writer);
    if (err < 0 && status == AIPC_EXIT_OK) {
      fprintf(stderr, "aipc %s: cannot finish %s: %s\n", cmd, o->out,
              aipc_wav_strerror(err));
      status = AIPC_EXIT_FAILURE;
    }
  }
  if (status == AIPC_EXIT_OK)
    printf("aipc %s: recorded %llu frames (%.2f s, %u channel%s at %u Hz) "
           "to %s\n",
           cmd, (unsigned long long)atomic_load(&rec.read),
           (double)atomic_load(&rec.read) / rate, rec.channels,
           rec.channels == 1 ? "" : "s", rate, o->out);
  free(rec.ring);
  aipc_waiter_destroy(&rec.waiter);
  return status;
}

int
aipc_record_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"connect", required_argument, NULL, 'c'},
      {"backend", required_argument, NULL, 'b'},
      {"seconds", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct record o = {0};
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'c':
      o.connect = optarg;
      break;
    case 'b':
      o.backend = optarg;
      break;
    case 's':
      if (aipc_parse_seconds(optarg, &o.seconds) < 0)
        return aipc_usage_error("record", record_usage,
                                "--seconds %s: not a number of seconds above "
                                "0 and at most 3600",
                                optarg);
      break;
    case 'h':
      fputs(record_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("record", record_usage, c, argv);
    }
  }
  if (optind < argc)
    o.out = argv[optind++];
  if (optind != argc)
    return aipc_usage_error("record", record_usage, "unexpected argument %s",
                            argv[optind]);
  if (!o.out)
    return aipc_usage_error("record", record_usage, "give an OUT.wav");
  if (o.seconds <= 0.0)
    return aipc_usage_error("record", record_usage, "--seconds S is needed");
  if (o.connect && o.backend)
    return aipc_usage_error("record", record_usage,
                            "--backend is for the in-process server; "
                            "--connect uses another's");
  return aipc_run_client("record", o.connect, o.backend,
                         "virtual:clock=realtime", record_client, &o);
}
