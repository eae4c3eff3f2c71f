/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: a server in this process and N sandboxed clients, each in a
 * re-executed child that plays its own tone through the server.
 *
 * A client reports to us through its stdout, a pipe: one line when it is
 * done. Everything else we show comes from the server's statistics.
 */
#include "aipc.h"

#include <audioipc/client.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEMO_MAX_CLIENTS 32
#define DEMO_TICK_MS 200
/* Beyond the playing time, how long clients may take before we kill
 * them. */
#define DEMO_GRACE_S 30
#define DEMO_BAR_WIDTH 16

/* Exit statuses of a demo client, for the parent's report. */
enum {
  CLIENT_EXIT_SANDBOX = 10,
  CLIENT_EXIT_CONTEXT = 11,
  CLIENT_EXIT_STREAM = 12,
  CLIENT_EXIT_NOT_DRAINED = 13,
  CLIENT_EXIT_SHORT = 14,
  CLIENT_EXIT_NO_INPUT = 15,
  CLIENT_EXIT_NOT_STOPPED = 16,
  CLIENT_EXIT_NO_CONNECTION = 126, /* from spawn.c, before exec */
  CLIENT_EXIT_NO_EXEC = 127,
};

static const char demo_usage[] =
    "usage: aipc demo [--clients N] [--seconds S] [--backend NAME] "
    "[--out FILE.wav]\n"
    "\n"
    "Starts a server and N client processes. Each client is re-executed "
    "clean,\nkeeps only stdio and its connection, and installs a seccomp "
    "filter that\nkills it if it opens a file, makes a socket, connects, "
    "creates a memfd\nor executes a program. Then it plays its own tone "
    "through the server for\nS seconds and drains; client 1's stream is "
    "duplex and also checks that it\nreceives input. Shows each client's "
    "progress, then the server's statistics\nper stream and how each "
    "client ended.\n"
    "\n"
    "Options:\n"
    "  --clients N      number of clients, 1..32 (default 4)\n"
    "  --seconds S      seconds each client plays (default 5)\n"
    "  --backend NAME   the server's backend: a cubeb backend name (pulse, "
    "alsa,\n"
    "                   ...) or virtual[:OPTIONS]; default: cubeb's default "
    "when\n"
    "                   a sound server is reachable, else\n"
    "                   virtual:clock=realtime,out=aipc-demo.wav\n"
    "  --out FILE.wav   the virtual device's output file (implies the "
    "virtual\n"
    "                   device unless --backend is given)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 if every client exited 0 and the server saw every "
    "stream\ndeliver every frame; 1 otherwise; 2 for bad arguments.\n";

static const char demo_client_usage[] =
    "usage: aipc _client demo-client [--index I] [--freq HZ] [--seconds S]\n"
    "         [--gain G] [--duplex] [--try CALL]\n"
    "(internal: the demo's client process, connection at fd 3)\n";

struct demo_client {
  unsigned index; /* 1-based, as shown */
  double freq;
  bool duplex;
  pid_t pid;
  int report_fd;
  char report[256];
  size_t report_len;
  bool exited;
  int status;
  bool have_stats;
  AudioIpcStreamStats stats;
};

struct demo {
  struct aipc_backend backend;
  unsigned count;
  double seconds;
  uint64_t frames; /* each client's */
  struct demo_client clients[DEMO_MAX_CLIENTS];
  AudioIpcStreamStats *stats;
  size_t stats_cap;
  int stats_count;
  bool tty;
  bool drawn;
  int64_t start_ns, next_line_ns;
};

static double
client_freq(unsigned i)
{
  /* 310, 440, 570, ...: 130 Hz apart, none a low harmonic of another. */
  return 310.0 + 130.0 * i;
}

static uint64_t
frames_for(double seconds, uint32_t rate)
{
  return (uint64_t)llround(seconds * rate);
}

/* --- The client process --------------------------------------------------- */

struct demo_player {
  struct aipc_waiter waiter; /* first: the state callback's user pointer */
  struct aipc_tone tone;
  uint32_t channels;
  uint64_t total, played;
  uint64_t input_frames;
  float input_peak;
  int policy; /* of the callback thread; -1 until the first callback */
};

/* Audio thread: arithmetic only. */
static long
demo_data_cb(cubeb_stream *stream, void *user, const void *input, void *output,
             long nframes)
{
  (void)stream;
  struct demo_player *p = user;
  if (p->policy < 0)
    p->policy = sched_getscheduler(0);
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
  return n; /* fewer than asked: drain */
}

/* Plays the client's tone; returns its exit status and fills *p. */
static int
demo_client_play(cubeb *ctx, unsigned index, double freq, double seconds,
                 double gain, bool duplex, struct demo_player *p)
{
  uint32_t rate;
  if (cubeb_get_preferred_sample_rate(ctx, &rate) != CUBEB_OK || rate == 0)
    rate = 48000;
  p->channels = 2;
  p->total = frames_for(seconds, rate);
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
  if (cubeb_get_min_latency(ctx, &out, &latency) != CUBEB_OK || latency == 0)
    latency = rate / 100;

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
    if (end != CUBEB_STATE_DRAINED) {
      fprintf(stderr, "aipc demo client %u: its stream %s\n", index,
              end == CUBEB_STATE_ERROR ? "reported an error"
                                       : "did not drain in time");
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
demo_client_run(int argc, char **argv)
{
  static const struct option options[] = {
      {"index", required_argument, NULL, 'i'},
      {"freq", required_argument, NULL, 'f'},
      {"seconds", required_argument, NULL, 's'},
      {"gain", required_argument, NULL, 'g'},
      {"duplex", no_argument, NULL, 'd'},
      {"try", required_argument, NULL, 't'},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = "demo-client";
  unsigned index = 1, freq = 440;
  double seconds = 1.0, gain = 0.25;
  bool duplex = false;
  const char *try_call = NULL;
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
    case 'd':
      duplex = true;
      break;
    case 't':
      if (!aipc_sandbox_try_known(optarg))
        return aipc_usage_error(cmd, demo_client_usage,
                                "--try: %s is not a forbidden call", optarg);
      try_call = optarg;
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
  struct demo_player p = {.policy = -1};
  r = aipc_waiter_init(&p.waiter);
  if (r < 0) {
    fprintf(stderr, "aipc demo client %u: cannot make a condition: %s\n", index,
            strerror(-r));
    cubeb_destroy(ctx);
    return CLIENT_EXIT_STREAM;
  }
  int status = demo_client_play(ctx, index, freq, seconds, gain, duplex, &p);
  cubeb_destroy(ctx);

  /* The report the parent reads from our stdout. */
  printf("played=%llu expected=%llu drained=%d input=%llu peak=%.4f "
         "policy=%d\n",
         (unsigned long long)p.played, (unsigned long long)p.total,
         p.waiter.drained, (unsigned long long)p.input_frames,
         (double)p.input_peak, p.policy);
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

/* --- The parent ----------------------------------------------------------- */

static const char *
client_exit_reason(int code)
{
  switch (code) {
  case CLIENT_EXIT_SANDBOX:
    return "could not install the seccomp filter";
  case CLIENT_EXIT_CONTEXT:
    return "could not set up the remote context";
  case CLIENT_EXIT_STREAM:
    return "could not open or start its stream";
  case CLIENT_EXIT_NOT_DRAINED:
    return "its stream failed or did not drain in time";
  case CLIENT_EXIT_SHORT:
    return "did not play every frame";
  case CLIENT_EXIT_NO_INPUT:
    return "received no input on its duplex stream";
  case CLIENT_EXIT_NOT_STOPPED:
    return "a forbidden call was not stopped";
  case CLIENT_EXIT_NO_CONNECTION:
    return "did not receive its connection";
  case CLIENT_EXIT_NO_EXEC:
    return "could not re-execute aipc";
  default:
    return "see its messages above";
  }
}

/* Fetches the server's statistics and finds each client's stream. */
static void
demo_update_stats(struct demo *d)
{
  for (;;) {
    int n = audioipc_server_get_stream_stats(d->backend.server, d->stats,
                                             d->stats_cap);
    if (n < 0) {
      d->stats_count = 0;
      return;
    }
    if ((size_t)n <= d->stats_cap) {
      d->stats_count = n;
      break;
    }
    AudioIpcStreamStats *grown = realloc(d->stats, (size_t)n * sizeof(*grown));
    if (!grown) {
      d->stats_count = (int)d->stats_cap;
      break;
    }
    d->stats = grown;
    d->stats_cap = (size_t)n;
  }
  for (unsigned i = 0; i < d->count; i++) {
    struct demo_client *c = &d->clients[i];
    for (int k = 0; k < d->stats_count; k++) {
      if (d->stats[k].client_pid == c->pid) {
        c->stats = d->stats[k];
        c->have_stats = true;
        break;
      }
    }
  }
}

/* True if the client's stream delivered every frame, by the server's
 * count. */
static bool
client_delivered(const struct demo *d, const struct demo_client *c)
{
  return c->have_stats && c->stats.frames >= d->frames;
}

static bool
client_ok(const struct demo *d, const struct demo_client *c)
{
  return c->exited && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 &&
         client_delivered(d, c);
}

static void
format_progress(const struct demo *d, const struct demo_client *c, char *buf,
                size_t size)
{
  uint64_t frames = c->have_stats ? c->stats.frames : 0;
  double done = d->frames ? (double)frames / (double)d->frames : 0.0;
  if (done > 1.0)
    done = 1.0;
  char bar[DEMO_BAR_WIDTH + 1];
  int filled = (int)(done * DEMO_BAR_WIDTH + 0.5);
  for (int i = 0; i < DEMO_BAR_WIDTH; i++)
    bar[i] = i < filled ? '#' : '-';
  bar[DEMO_BAR_WIDTH] = '\0';

  char state[96];
  if (c->exited) {
    if (client_ok(d, c))
      snprintf(state, sizeof(state), "ok");
    else
      aipc_describe_status(c->status, state, sizeof(state));
  } else {
    snprintf(state, sizeof(state), "%s",
             !c->have_stats    ? "starting"
             : c->stats.active ? "playing"
                               : "closing");
  }
  snprintf(buf, size,
           "client %2u %4.0f Hz%s [%s] %3.0f%% %7llu/%llu frames  %llu cb  "
           "%llu miss  %s",
           c->index, c->freq, c->duplex ? " duplex" : "       ", bar,
           done * 100.0, (unsigned long long)frames,
           (unsigned long long)d->frames,
           (unsigned long long)(c->have_stats ? c->stats.callbacks : 0),
           (unsigned long long)(c->have_stats ? c->stats.misses : 0), state);
}

/* Redraws the clients' lines in place on a terminal, else prints them
 * once a second (and always when `final`). */
static void
demo_draw(struct demo *d, bool final)
{
  char line[256];
  int64_t now = aipc_tool_now_ns();
  if (d->tty) {
    if (d->drawn)
      printf("\033[%uA", d->count);
    /* A line that wrapped would throw the cursor movement off. */
    struct winsize ws;
    size_t width = sizeof(line) - 1;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 &&
        ws.ws_col - 1u < width)
      width = ws.ws_col - 1u;
    for (unsigned i = 0; i < d->count; i++) {
      format_progress(d, &d->clients[i], line, sizeof(line));
      printf("\r\033[2K%.*s\n", (int)width, line);
    }
    d->drawn = true;
  } else if (final || now >= d->next_line_ns) {
    double t = (double)(now - d->start_ns) / 1e9;
    for (unsigned i = 0; i < d->count; i++) {
      format_progress(d, &d->clients[i], line, sizeof(line));
      printf("[%5.1f s] %s\n", t, line);
    }
    d->next_line_ns += 1000000000;
  }
  fflush(stdout);
}

static void
read_report(struct demo_client *c)
{
  char scratch[256];
  char *dst = c->report + c->report_len;
  size_t room = sizeof(c->report) - 1 - c->report_len;
  ssize_t n =
      read(c->report_fd, room ? dst : scratch, room ? room : sizeof(scratch));
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0) {
    close(c->report_fd);
    c->report_fd = -1;
    return;
  }
  if (room)
    c->report_len += (size_t)n;
  c->report[c->report_len] = '\0';
}

static unsigned
demo_reap(struct demo *d)
{
  unsigned running = 0;
  for (unsigned i = 0; i < d->count; i++) {
    struct demo_client *c = &d->clients[i];
    if (c->exited)
      continue;
    pid_t r = waitpid(c->pid, &c->status, WNOHANG);
    if (r == c->pid || (r < 0 && errno == ECHILD))
      c->exited = true;
    else
      running++;
  }
  return running;
}

/* Until every client has exited: reads their reports, polls the
 * statistics and shows progress. Kills clients that overrun. */
static void
demo_watch(struct demo *d)
{
  int64_t deadline = d->start_ns + (int64_t)((d->seconds + DEMO_GRACE_S) * 1e9);
  int64_t next_tick = d->start_ns;
  bool killed = false;
  for (;;) {
    struct pollfd fds[DEMO_MAX_CLIENTS];
    struct demo_client *owner[DEMO_MAX_CLIENTS];
    nfds_t n = 0;
    for (unsigned i = 0; i < d->count; i++) {
      if (d->clients[i].report_fd >= 0) {
        fds[n] =
            (struct pollfd){.fd = d->clients[i].report_fd, .events = POLLIN};
        owner[n++] = &d->clients[i];
      }
    }
    int64_t now = aipc_tool_now_ns();
    int wait_ms = next_tick > now ? (int)((next_tick - now) / 1000000) : 0;
    if (poll(fds, n, wait_ms) > 0) {
      for (nfds_t k = 0; k < n; k++)
        if (fds[k].revents)
          read_report(owner[k]);
    }
    now = aipc_tool_now_ns();
    if (now < next_tick)
      continue;
    next_tick = now + DEMO_TICK_MS * 1000000LL;

    unsigned running = demo_reap(d);
    demo_update_stats(d);
    if (running == 0) {
      /* Collect the rest of the reports: the pipes are at EOF now. */
      for (unsigned i = 0; i < d->count; i++)
        while (d->clients[i].report_fd >= 0)
          read_report(&d->clients[i]);
      demo_draw(d, true);
      return;
    }
    demo_draw(d, false);
    if (now > deadline && !killed) {
      fprintf(stderr,
              "aipc demo: clients still running after %.0f s; "
              "killing them\n",
              d->seconds + DEMO_GRACE_S);
      for (unsigned i = 0; i < d->count; i++)
        if (!d->clients[i].exited)
          kill(d->clients[i].pid, SIGKILL);
      killed = true;
    }
  }
}

static void
print_table(const struct demo *d)
{
  /* "µ" takes two bytes and one column. */
  printf("\n%6s %8s %6s %14s %10s %10s  %-23s %6s\n", "client", "pid", "stream",
         "tone", "callbacks", "frames", "wait p50/p99/max (µs)", "misses");
  for (unsigned i = 0; i < d->count; i++) {
    const struct demo_client *c = &d->clients[i];
    char tone[32];
    snprintf(tone, sizeof(tone), "%.0f Hz%s", c->freq,
             c->duplex ? " duplex" : "");
    bool any = false;
    for (int k = 0; k < d->stats_count; k++) {
      const AudioIpcStreamStats *s = &d->stats[k];
      if (s->client_pid != c->pid)
        continue;
      char wait[48];
      snprintf(wait, sizeof(wait), "%u/%u/%u", s->wait_p50_us, s->wait_p99_us,
               s->wait_max_us);
      printf("%6u %8d %6u %14s %10llu %10llu  %-22s %6llu\n", c->index,
             (int)c->pid, s->stream, tone, (unsigned long long)s->callbacks,
             (unsigned long long)s->frames, wait,
             (unsigned long long)s->misses);
      any = true;
    }
    if (!any)
      printf("%6u %8d %6s %14s  (the server saw no stream)\n", c->index,
             (int)c->pid, "-", tone);
  }
  printf("\n");
}

/* Prints how each client ended; returns the number that failed. */
/* The callback thread's scheduling, as the client saw it. It cannot
 * change any itself (the sandbox says EPERM), so real-time priority came
 * through the server: directly, or from RTKit (which grants SCHED_RR). */
static const char *
policy_name(int policy)
{
  switch (policy & ~SCHED_RESET_ON_FORK) {
  case SCHED_FIFO:
    return "real-time callbacks (SCHED_FIFO, granted by the server)";
  case SCHED_RR:
    return "real-time callbacks (SCHED_RR, granted by RTKit for the server)";
  default:
    return "callbacks at normal priority";
  }
}

static unsigned
print_outcomes(const struct demo *d)
{
  unsigned failed = 0;
  for (unsigned i = 0; i < d->count; i++) {
    const struct demo_client *c = &d->clients[i];
    char status[96], detail[160] = "";
    unsigned long long played = 0, expected = 0, input = 0;
    int drained = 0;
    double peak = 0.0;
    int policy = -1;
    bool reported = sscanf(c->report,
                           "played=%llu expected=%llu drained=%d input=%llu "
                           "peak=%lf policy=%d",
                           &played, &expected, &drained, &input, &peak,
                           &policy) == 6;
    aipc_describe_status(c->status, status, sizeof(status));
    if (reported) {
      int len = snprintf(detail, sizeof(detail), "; played %llu frames%s; %s",
                         played, drained ? ", saw DRAINED" : "",
                         policy_name(policy));
      if (c->duplex && len > 0 && (size_t)len < sizeof(detail))
        snprintf(detail + len, sizeof(detail) - (size_t)len,
                 "; received %llu input frames (peak %.3f)", input, peak);
    }
    if (client_ok(d, c)) {
      printf("client %u (pid %d): ok: exited 0 under the seccomp filter%s\n",
             c->index, (int)c->pid, detail);
      continue;
    }
    failed++;
    if (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0)
      printf("client %u (pid %d): FAILED: %s: %s%s\n", c->index, (int)c->pid,
             status, client_exit_reason(WEXITSTATUS(c->status)), detail);
    else if (!WIFEXITED(c->status))
      printf("client %u (pid %d): FAILED: %s%s\n", c->index, (int)c->pid,
             status, detail);
    else
      printf("client %u (pid %d): FAILED: exited 0, but the server counted "
             "%llu of %llu frames\n",
             c->index, (int)c->pid,
             (unsigned long long)(c->have_stats ? c->stats.frames : 0),
             (unsigned long long)d->frames);
  }
  return failed;
}

/* Adds out=FILE to a virtual backend name. Returns 0 or a usage error. */
static int
backend_with_out(const char *backend, const char *out, char *buf, size_t size)
{
  if (strchr(out, ','))
    return aipc_usage_error("demo", demo_usage,
                            "--out %s: the path cannot contain a comma", out);
  if (!backend) {
    snprintf(buf, size, "virtual:clock=realtime,out=%s", out);
    return 0;
  }
  if (strcmp(backend, "virtual") == 0) {
    snprintf(buf, size, "virtual:out=%s", out);
    return 0;
  }
  if (strncmp(backend, "virtual:", 8) != 0)
    return aipc_usage_error("demo", demo_usage,
                            "--out needs the virtual backend, not %s", backend);
  const char *opts = backend + 8;
  if (strncmp(opts, "out=", 4) == 0 || strstr(opts, ",out="))
    return aipc_usage_error("demo", demo_usage,
                            "--out and an out= in --backend both name the "
                            "output file");
  snprintf(buf, size, "%s%sout=%s", backend, *opts ? "," : "", out);
  return 0;
}

/* Names the output file of a virtual backend, if it has one. */
static const char *
virtual_out(const char *name, char *buf, size_t size)
{
  if (strncmp(name, "virtual:", 8) != 0)
    return NULL;
  const char *p = name + 8;
  while (p && *p) {
    if (strncmp(p, "out=", 4) == 0) {
      size_t len = strcspn(p + 4, ",");
      snprintf(buf, size, "%.*s", (int)len, p + 4);
      return buf;
    }
    p = strchr(p, ',');
    if (p)
      p++;
  }
  return NULL;
}

static int
demo_spawn(struct demo *d, struct demo_client *c)
{
  char index[16], freq[32], seconds[32], gain[32];
  snprintf(index, sizeof(index), "%u", c->index);
  snprintf(freq, sizeof(freq), "%.0f", c->freq);
  snprintf(seconds, sizeof(seconds), "%.6g", d->seconds);
  double g = 0.8 / d->count;
  snprintf(gain, sizeof(gain), "%.4f", g > 0.25 ? 0.25 : g);
  char *argv[] = {
      "aipc",        (char *)AIPC_CHILD_COMMAND,
      "demo-client", "--index",
      index,         "--freq",
      freq,          "--seconds",
      seconds,       "--gain",
      gain,          c->duplex ? "--duplex" : NULL,
      NULL,
  };
  c->pid = aipc_spawn_client("demo", d->backend.server, argv, &c->report_fd);
  return c->pid > 0 ? 0 : -1;
}

int
aipc_demo_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"clients", required_argument, NULL, 'c'},
      {"seconds", required_argument, NULL, 's'},
      {"backend", required_argument, NULL, 'b'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  unsigned count = 4;
  double seconds = 5.0;
  const char *backend = NULL, *out = NULL;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'c':
      if (aipc_parse_uint(optarg, 1, DEMO_MAX_CLIENTS, &count) < 0)
        return aipc_usage_error("demo", demo_usage,
                                "--clients %s: not a number from 1 to %d",
                                optarg, DEMO_MAX_CLIENTS);
      break;
    case 's':
      if (aipc_parse_seconds(optarg, &seconds) < 0)
        return aipc_usage_error("demo", demo_usage,
                                "--seconds %s: not a number of seconds "
                                "above 0 and at most 3600",
                                optarg);
      break;
    case 'b':
      backend = optarg;
      break;
    case 'o':
      out = optarg;
      break;
    case 'h':
      fputs(demo_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("demo", demo_usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error("demo", demo_usage, "unexpected argument %s",
                            argv[optind]);
  char name[1024];
  if (out) {
    int r = backend_with_out(backend, out, name, sizeof(name));
    if (r)
      return r;
    backend = name;
  }

  struct demo *d = calloc(1, sizeof(*d));
  if (!d) {
    fprintf(stderr, "aipc demo: out of memory\n");
    return AIPC_EXIT_FAILURE;
  }
  d->count = count;
  d->seconds = seconds;
  d->stats_cap = 64;
  d->stats = calloc(d->stats_cap, sizeof(*d->stats));
  if (!d->stats) {
    fprintf(stderr, "aipc demo: out of memory\n");
    free(d);
    return AIPC_EXIT_FAILURE;
  }
  d->tty = isatty(STDOUT_FILENO);
  if (aipc_backend_start("demo", backend,
                         "virtual:clock=realtime,out=aipc-demo.wav",
                         &d->backend) < 0) {
    free(d->stats);
    free(d);
    return AIPC_EXIT_FAILURE;
  }
  d->frames = frames_for(seconds, d->backend.rate);
  char description[700];
  aipc_backend_describe(&d->backend, description, sizeof(description));
  printf("aipc demo: backend %s, %u Hz\n", description, d->backend.rate);
  printf("aipc demo: %u sandboxed client%s, %g s (%llu frames) each\n\n", count,
         count == 1 ? "" : "s", seconds, (unsigned long long)d->frames);

  int status = AIPC_EXIT_OK;
  d->start_ns = aipc_tool_now_ns();
  d->next_line_ns = d->start_ns + 1000000000;
  unsigned spawned = 0;
  for (unsigned i = 0; i < count; i++) {
    struct demo_client *cl = &d->clients[i];
    cl->index = i + 1;
    cl->freq = client_freq(i);
    cl->duplex = i == 0;
    cl->report_fd = -1;
    if (demo_spawn(d, cl) < 0) {
      status = AIPC_EXIT_FAILURE;
      break;
    }
    spawned++;
  }
  d->count = spawned;
  demo_watch(d);

  print_table(d);
  unsigned failed = print_outcomes(d);
  if (failed || spawned != count)
    status = AIPC_EXIT_FAILURE;
  char path[600];
  const char *wav = virtual_out(d->backend.name, path, sizeof(path));
  if (status == AIPC_EXIT_OK)
    printf("aipc demo: all %u clients ok: each played %llu frames through "
           "the server, sandboxed%s%s\n",
           count, (unsigned long long)d->frames, wav ? "; the mix is in " : "",
           wav ? wav : "");
  else
    printf("aipc demo: %u of %u clients failed\n", failed + count - spawned,
           count);

  aipc_backend_stop(&d->backend);
  free(d->stats);
  free(d);
  return status;
}
