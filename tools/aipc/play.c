/* SPDX-License-Identifier: ISC */
/* aipc play: a WAV file or a tone, through a server. */
#include "aipc.h"
#include "wav.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PLAY_MAX_CHANNELS 32
#define PLAY_GRACE_MS 20000

static const char play_usage[] =
    "usage: aipc play [--connect PATH | --backend NAME] (FILE.wav | --tone "
    "HZ)\n"
    "                 [--seconds S]\n"
    "\n"
    "Plays a WAV file (32-bit float or 16-bit PCM, at a rate the backend "
    "takes)\nto its end, or a sine tone, through a server, and waits until "
    "it has\ndrained.\n"
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
    "  --tone HZ        play a sine of HZ Hz (1..24000) instead of a file\n"
    "  --seconds S      stop after S seconds (default for --tone: 2)\n"
    "  -h, --help       show this help\n";

struct play {
  const char *connect, *backend, *file;
  unsigned tone;
  double seconds; /* 0: the whole file, or 2 s of tone */
};

/* What the data callback plays from. */
struct player {
  struct aipc_waiter waiter; /* first: the state callback's user pointer */
  const float *samples;      /* the file, or NULL for the tone */
  struct aipc_tone tone;
  uint32_t channels;
  uint64_t total, played;
};

/* Audio thread: copies or computes, nothing else. */
static long
play_data_cb(cubeb_stream *stream, void *user, const void *input, void *output,
             long nframes)
{
  (void)stream;
  (void)input;
  struct player *p = user;
  uint64_t left = p->total - p->played;
  long n = left < (uint64_t)nframes ? (long)left : nframes;
  if (p->samples)
    memcpy(output, p->samples + p->played * p->channels,
           (size_t)n * p->channels * sizeof(float));
  else
    aipc_tone_fill(&p->tone, output, n, p->channels);
  p->played += (uint64_t)n;
  return n;
}

static int
play_client(const char *cmd, cubeb *ctx, void *data)
{
  const struct play *o = data;
  struct aipc_wav_data wav = {0};
  struct player p = {.channels = 2};
  uint32_t rate;
  int status = AIPC_EXIT_FAILURE;

  int r = aipc_waiter_init(&p.waiter);
  if (r < 0) {
    fprintf(stderr, "aipc %s: cannot make a condition: %s\n", cmd,
            strerror(-r));
    return AIPC_EXIT_FAILURE;
  }
  if (o->file) {
    r = aipc_wav_read(o->file, PLAY_MAX_CHANNELS, &wav);
    if (r < 0) {
      fprintf(stderr, "aipc %s: cannot read %s: %s\n", cmd, o->file,
              aipc_wav_strerror(r));
      goto out;
    }
    p.samples = wav.samples;
    p.channels = wav.channels;
    p.total = wav.frames;
    rate = wav.rate;
    if (o->seconds > 0.0 && (uint64_t)llround(o->seconds * rate) < p.total)
      p.total = (uint64_t)llround(o->seconds * rate);
  } else {
    if (cubeb_get_preferred_sample_rate(ctx, &rate) != CUBEB_OK || rate == 0)
      rate = 48000;
    aipc_tone_init(&p.tone, o->tone, rate, 0.25);
    p.total = (uint64_t)llround((o->seconds > 0.0 ? o->seconds : 2.0) * rate);
  }

  cubeb_stream_params params = {
      .format = CUBEB_SAMPLE_FLOAT32NE,
      .rate = rate,
      .channels = p.channels,
      .layout = p.channels == 1   ? CUBEB_LAYOUT_MONO
                : p.channels == 2 ? CUBEB_LAYOUT_STEREO
                                  : CUBEB_LAYOUT_UNDEFINED,
  };
  uint32_t latency;
  if (cubeb_get_min_latency(ctx, &params, &latency) != CUBEB_OK || latency == 0)
    latency = rate / 100;
  cubeb_stream *stream;
  r = cubeb_stream_init(ctx, &stream, "aipc play", NULL, NULL, NULL, &params,
                        latency, play_data_cb, aipc_waiter_state_cb, &p);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc %s: cannot open a %u-channel stream at %u Hz (cubeb error "
            "%d)\n",
            cmd, p.channels, rate, r);
    goto out;
  }
  r = cubeb_stream_start(stream);
  int end = -1;
  if (r != CUBEB_OK)
    fprintf(stderr, "aipc %s: cannot start the stream (cubeb error %d)\n", cmd,
            r);
  else
    end = aipc_waiter_wait(&p.waiter,
                           (int)(p.total * 1000 / rate) + PLAY_GRACE_MS);
  cubeb_stream_destroy(stream);
  if (r != CUBEB_OK)
    goto out;
  if (end != CUBEB_STATE_DRAINED) {
    fprintf(stderr, "aipc %s: the stream %s after %llu of %llu frames\n", cmd,
            end == CUBEB_STATE_ERROR ? "failed" : "did not drain in time",
            (unsigned long long)p.played, (unsigned long long)p.total);
    goto out;
  }
  if (o->file)
    printf("aipc %s: played %llu frames (%.2f s) of %s at %u Hz\n", cmd,
           (unsigned long long)p.played, (double)p.played / rate, o->file,
           rate);
  else
    printf("aipc %s: played %llu frames (%.2f s) of a %u Hz tone at %u Hz\n",
           cmd, (unsigned long long)p.played, (double)p.played / rate, o->tone,
           rate);
  status = AIPC_EXIT_OK;

out:
  aipc_wav_data_clear(&wav);
  aipc_waiter_destroy(&p.waiter);
  return status;
}

int
aipc_play_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"connect", required_argument, NULL, 'c'},
      {"backend", required_argument, NULL, 'b'},
      {"tone", required_argument, NULL, 't'},
      {"seconds", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct play o = {0};
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
    case 't':
      if (aipc_parse_uint(optarg, 1, 24000, &o.tone) < 0)
        return aipc_usage_error("play", play_usage,
                                "--tone %s: not a whole number of Hz from 1 "
                                "to 24000",
                                optarg);
      break;
    case 's':
      if (aipc_parse_seconds(optarg, &o.seconds) < 0)
        return aipc_usage_error("play", play_usage,
                                "--seconds %s: not a number of seconds above "
                                "0 and at most 3600",
                                optarg);
      break;
    case 'h':
      fputs(play_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("play", play_usage, c, argv);
    }
  }
  if (optind < argc)
    o.file = argv[optind++];
  if (optind != argc)
    return aipc_usage_error("play", play_usage, "unexpected argument %s",
                            argv[optind]);
  if (!o.file && !o.tone)
    return aipc_usage_error("play", play_usage, "give a FILE.wav or --tone HZ");
  if (o.file && o.tone)
    return aipc_usage_error("play", play_usage,
                            "give a FILE.wav or --tone HZ, not both");
  if (o.connect && o.backend)
    return aipc_usage_error("play", play_usage,
                            "--backend is for the in-process server; "
                            "--connect uses another's");
  return aipc_run_client("play", o.connect, o.backend, "virtual:clock=realtime",
                         play_client, &o);
}
