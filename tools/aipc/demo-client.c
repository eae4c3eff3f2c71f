/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: the client process. Re-executed clean, it installs the
 * sandbox, makes a remoted context on its connection and plays its tone
 * through one stream (duplex for client 1) at the latency a cubeb
 * application asks for (cubeb_get_min_latency, as Firefox does) or the
 * one it was given, then reports on its stdout (demo.h).
 *
 * --fault KIND is for the tests of the demo's verdict: "stall" sleeps
 * 60 ms in one callback halfway (a late wake, as a stalled machine
 * makes), "wrong" writes one callback's frames an octave up (corrupt
 * audio), "lose" counts one callback's frames twice (frames the client
 * produced that never reach the server), "crash" aborts halfway,
 * "error" fails one callback (the stream errors).
 */
#include "aipc.h"
#include "demo.h"

#include <audioipc/client.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAULT_STALL_NS (60 * 1000000L)

enum fault {
  FAULT_NONE,
  FAULT_STALL,
  FAULT_WRONG,
  FAULT_LOSE,
  FAULT_CRASH,
  FAULT_ERROR,
};

static const char demo_client_usage[] =
    "usage: aipc _client demo-client [--index I] [--freq HZ] [--seconds S]\n"
    "         [--gain G] [--latency MS] [--duplex] [--try CALL]\n"
    "         [--fault stall|wrong|lose|crash|error]\n"
    "(internal: the demo's client process, connection at fd 3)\n";

struct demo_player {
  struct aipc_waiter waiter; /* first: the state callback's user pointer */
  struct aipc_tone tone;
  uint32_t channels, rate;
  uint64_t total, played;
  uint64_t input_frames;
  float input_peak;
  int policy; /* of the callback thread; -1 until the first callback */
  enum fault fault;
  bool faulted;
  uint64_t callbacks;
  long max_request;
  int64_t prev_ns;
  long prev_frames;
  unsigned nlate;
  struct demo_late late[DEMO_LATE_MAX]; /* latest first */
};

/* Audio thread: keeps the latest callbacks, by how late each came. */
static void
note_timing(struct demo_player *p, long nframes)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  if (p->prev_ns) {
    int64_t due =
        p->prev_ns + (int64_t)p->prev_frames * 1000000000 / (int64_t)p->rate;
    struct demo_late e = {
        .at_ns = now, .late_ns = now - due, .gap_ns = now - p->prev_ns};
    unsigned i = p->nlate < DEMO_LATE_MAX ? p->nlate++ : DEMO_LATE_MAX;
    while (i > 0 && p->late[i - 1].late_ns < e.late_ns) {
      if (i < DEMO_LATE_MAX)
        p->late[i] = p->late[i - 1];
      i--;
    }
    if (i < DEMO_LATE_MAX)
      p->late[i] = e;
  }
  p->prev_ns = now;
  p->prev_frames = nframes;
}

/* Audio thread: arithmetic only (and the clock's vDSO call), but for
 * the faults the tests ask for. */
static long
demo_data_cb(cubeb_stream *stream, void *user, const void *input, void *output,
             long nframes)
{
  (void)stream;
  struct demo_player *p = user;
  if (p->policy < 0)
    p->policy = sched_getscheduler(0);
  note_timing(p, nframes);
  p->callbacks++;
  if (nframes > p->max_request)
    p->max_request = nframes;
  if (input) {
    const float *in = input;
    for (long i = 0; i < nframes; i++) {
      float v = fabsf(in[i]);
      if (v > p->input_peak)
        p->input_peak = v;
    }
    p->input_frames += (uint64_t)nframes;
  }
  uint64_t left = p->total - p->played;
  long n = left < (uint64_t)nframes ? (long)left : nframes;
  aipc_tone_fill(&p->tone, output, n, p->channels);
  p->played += (uint64_t)n;
  if (p->fault != FAULT_NONE && !p->faulted && p->played >= p->total / 2 &&
      n == nframes) {
    p->faulted = true;
    if (p->fault == FAULT_STALL) {
      struct timespec pause = {.tv_nsec = FAULT_STALL_NS};
      nanosleep(&pause, NULL);
    } else if (p->fault == FAULT_WRONG) {
      struct aipc_tone octave = p->tone;
      octave.step *= 2.0;
      aipc_tone_fill(&octave, output, n, p->channels);
    } else if (p->fault == FAULT_LOSE) {
      uint64_t more = (uint64_t)n < p->total - p->played ? (uint64_t)n
                                                         : p->total - p->played;
      p->played += more;
    } else if (p->fault == FAULT_CRASH) {
      abort();
    } else if (p->fault == FAULT_ERROR) {
      return CUBEB_ERROR;
    }
  }
  return n; /* fewer than asked: drain */
}

/* Plays the client's tone; returns its exit status and fills *p. */
static int
demo_client_play(cubeb *ctx, unsigned index, double freq, double seconds,
                 double gain, unsigned latency_ms, bool duplex,
                 struct demo_player *p, uint32_t *latency_out)
{
  uint32_t rate;
  if (cubeb_get_preferred_sample_rate(ctx, &rate) != CUBEB_OK || rate == 0)
    rate = 48000;
  p->channels = 2;
  p->rate = rate;
  p->total = demo_frames_for(seconds, rate);
  aipc_tone_init(&p->tone, freq, rate, gain);
  cubeb_stream_params out = {.format = CUBEB_SAMPLE_FLOAT32NE,
                             .rate = rate,
                             .channels = 2,
                             .layout = CUBEB_LAYOUT_STEREO};
  cubeb_stream_params in = {.format = CUBEB_SAMPLE_FLOAT32NE,
                            .rate = rate,
                            .channels = 1,
                            .layout = CUBEB_LAYOUT_MONO};
  uint32_t latency;
  if (latency_ms > 0)
    latency = (uint32_t)((uint64_t)latency_ms * rate / 1000);
  else if (cubeb_get_min_latency(ctx, &out, &latency) != CUBEB_OK)
    latency = rate / 100;
  if (latency == 0)
    latency = 1;
  *latency_out = latency;

  char name[32];
  snprintf(name, sizeof(name), "aipc demo %u", index);
  cubeb_stream *stream;
  int r =
      cubeb_stream_init(ctx, &stream, name, NULL, duplex ? &in : NULL, NULL,
                        &out, latency, demo_data_cb, aipc_waiter_state_cb, p);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc demo client %u: cannot open a%s stream at %u Hz (cubeb "
            "error %d)\n",
            index, duplex ? " duplex" : "n output", rate, r);
    return CLIENT_EXIT_STREAM;
  }
  int status = 0;
  r = cubeb_stream_start(stream);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc demo client %u: cannot start its stream (cubeb error "
            "%d)\n",
            index, r);
    status = CLIENT_EXIT_STREAM;
  } else {
    int timeout_ms = (int)(seconds * 1000) + DEMO_GRACE_S * 1000 / 2;
    int end = aipc_waiter_wait(&p->waiter, timeout_ms);
    if (end == CUBEB_STATE_ERROR) {
      fprintf(stderr, "aipc demo client %u: its stream reported an error\n",
              index);
      status = CLIENT_EXIT_ERRORED;
    } else if (end != CUBEB_STATE_DRAINED) {
      fprintf(stderr, "aipc demo client %u: its stream did not drain in time\n",
              index);
      status = CLIENT_EXIT_NOT_DRAINED;
    }
  }
  /* No callback runs after this: p is ours again. */
  cubeb_stream_destroy(stream);
  if (status)
    return status;
  if (p->played != p->total) {
    fprintf(stderr, "aipc demo client %u: played %llu of %llu frames\n", index,
            (unsigned long long)p->played, (unsigned long long)p->total);
    return CLIENT_EXIT_SHORT;
  }
  if (duplex && p->input_frames < p->played) {
    fprintf(stderr,
            "aipc demo client %u: received %llu input frames while "
            "playing %llu\n",
            index, (unsigned long long)p->input_frames,
            (unsigned long long)p->played);
    return CLIENT_EXIT_NO_INPUT;
  }
  return 0;
}

static int
parse_fault(const char *text, enum fault *out)
{
  static const char *const names[] = {"stall", "wrong", "lose", "crash",
                                      "error"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(text, names[i]) == 0) {
      *out = (enum fault)(FAULT_STALL + i);
      return 0;
    }
  return -1;
}

static int
demo_client_run(int argc, char **argv)
{
  static const struct option options[] = {
      {"index", required_argument, NULL, 'i'},
      {"freq", required_argument, NULL, 'f'},
      {"seconds", required_argument, NULL, 's'},
      {"gain", required_argument, NULL, 'g'},
      {"latency", required_argument, NULL, 'l'},
      {"duplex", no_argument, NULL, 'd'},
      {"try", required_argument, NULL, 't'},
      {"fault", required_argument, NULL, 'F'},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = "demo-client";
  unsigned index = 1, freq = 440, latency_ms = 0;
  double seconds = 1.0, gain = 0.25;
  bool duplex = false;
  const char *try_call = NULL;
  enum fault fault = FAULT_NONE;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
    switch (c) {
    case 'i':
      if (aipc_parse_uint(optarg, 1, DEMO_MAX_CLIENTS, &index) < 0)
        return aipc_usage_error(cmd, demo_client_usage, "bad --index %s",
                                optarg);
      break;
    case 'f':
      if (aipc_parse_uint(optarg, 1, 20000, &freq) < 0)
        return aipc_usage_error(cmd, demo_client_usage, "bad --freq %s",
                                optarg);
      break;
    case 's':
      if (aipc_parse_seconds(optarg, &seconds) < 0)
        return aipc_usage_error(cmd, demo_client_usage, "bad --seconds %s",
                                optarg);
      break;
    case 'g': {
      char *end;
      gain = strtod(optarg, &end);
      if (*end || !(gain >= 0.0 && gain <= 1.0))
        return aipc_usage_error(cmd, demo_client_usage, "bad --gain %s",
                                optarg);
      break;
    }
    case 'l':
      if (aipc_parse_uint(optarg, 1, 1000, &latency_ms) < 0)
        return aipc_usage_error(cmd, demo_client_usage, "bad --latency %s",
                                optarg);
      break;
    case 'd':
      duplex = true;
      break;
    case 't':
      if (!aipc_sandbox_try_known(optarg))
        return aipc_usage_error(cmd, demo_client_usage,
                                "--try: %s is not a forbidden call", optarg);
      try_call = optarg;
      break;
    case 'F':
      if (parse_fault(optarg, &fault) < 0)
        return aipc_usage_error(cmd, demo_client_usage, "bad --fault %s",
                                optarg);
      break;
    default:
      return aipc_bad_option(cmd, demo_client_usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error(cmd, demo_client_usage, "unexpected argument %s",
                            argv[optind]);

  int prepared = try_call ? aipc_sandbox_try_prepare(try_call) : -1;
  int r = aipc_sandbox_enter();
  if (r < 0) {
    fprintf(stderr,
            "aipc demo client %u: cannot install the seccomp filter: %s\n",
            index, strerror(-r));
    return CLIENT_EXIT_SANDBOX;
  }
  if (try_call) {
    long result = aipc_sandbox_try(try_call, prepared);
    fprintf(stderr,
            "aipc demo client %u: %s was not stopped by the filter "
            "(it returned %ld)\n",
            index, try_call, result);
    return CLIENT_EXIT_NOT_STOPPED;
  }

  AudioIpcInitParams params = {.server_connection = AIPC_CHILD_CONN_FD};
  cubeb *ctx;
  r = audioipc_client_init(&ctx, "aipc-demo-client", &params);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc demo client %u: cannot set up the remote context: "
            "audioipc_client_init failed (cubeb error %d)\n",
            index, r);
    return CLIENT_EXIT_CONTEXT;
  }
  struct demo_player p = {.policy = -1, .fault = fault};
  r = aipc_waiter_init(&p.waiter);
  if (r < 0) {
    fprintf(stderr, "aipc demo client %u: cannot make a condition: %s\n", index,
            strerror(-r));
    cubeb_destroy(ctx);
    return CLIENT_EXIT_STREAM;
  }
  uint32_t latency = 0;
  int status = demo_client_play(ctx, index, freq, seconds, gain, latency_ms,
                                duplex, &p, &latency);
  cubeb_destroy(ctx);

  /* The report the parent reads from our stdout. */
  printf("played=%llu expected=%llu drained=%d input=%llu peak=%.4f "
         "policy=%d rate=%u latency=%u callbacks=%llu max_request=%ld "
         "late=%u\n",
         (unsigned long long)p.played, (unsigned long long)p.total,
         p.waiter.drained, (unsigned long long)p.input_frames,
         (double)p.input_peak, p.policy, p.rate, latency,
         (unsigned long long)p.callbacks, p.max_request, p.nlate);
  for (unsigned i = 0; i < p.nlate; i++)
    printf("late %lld %lld %lld\n", (long long)p.late[i].at_ns,
           (long long)p.late[i].late_ns, (long long)p.late[i].gap_ns);
  aipc_waiter_destroy(&p.waiter);
  return status;
}

int
aipc_demo_client_main(int argc, char **argv)
{
  int status = demo_client_run(argc, argv);
  fflush(NULL);
  /* Not exit(): LeakSanitizer's exit-time check cannot run under the
   * filter and would hang (see sandbox.c). */
  _exit(status);
}
