/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: a server in this process and N sandboxed clients, each in a
 * re-executed child (demo-client.c) that plays its own tone through the
 * server.
 *
 * A client reports to us through its stdout, a pipe, when it is done.
 * Everything else we show comes from the server's statistics, which we
 * look at every DEMO_TICK_MS: that is also when we see a stream's
 * deadline misses, and so the time we give them. The verdict is
 * demo-report.c's; the check of the virtual device's mix, demo-mix.c's.
 *
 * AIPC_DEMO_FAULT=I:KIND (tests only) has client I run with --fault
 * KIND (demo-client.c).
 */
#include "demo.h"

#include <audioipc/client.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEMO_TICK_MS 200
#define DEMO_BAR_WIDTH 16

static const char demo_usage[] =
    "usage: aipc demo [--clients N] [--seconds S] [--latency MS] "
    "[--backend NAME]\n"
    "                 [--out FILE.wav]\n"
    "\n"
    "Starts a server and N client processes. Each client is re-executed "
    "clean,\nkeeps only stdio and its connection, and installs a seccomp "
    "filter that\nkills it if it opens a file, makes a socket, connects, "
    "creates a memfd\nor executes a program. Then it plays its own tone "
    "through the server for\nS seconds and drains; client 1's stream is "
    "duplex and also checks that it\nreceives input. Shows each client's "
    "progress, then the server's statistics\nper stream and how each "
    "client ended. On the virtual device with an output\nfile, checks "
    "that the mix holds exactly the clients' tones.\n"
    "\n"
    "Options:\n"
    "  --clients N      number of clients, 1..32 (default 4)\n"
    "  --seconds S      seconds each client plays (default 5)\n"
    "  --latency MS     each stream's latency, 1..1000 ms (default: what "
    "cubeb_get_min_latency\n"
    "                   says for the backend, as applications ask)\n"
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
    "A deadline miss (the server had no answer from a client in time and "
    "played\nsilence for it, as happens when a loaded machine wakes a "
    "thread late) is\nreported as a glitch with its figures; it is not a "
    "failure.\n"
    "\n"
    "Exit status: 0 unless audio was lost or corrupted (frames a client "
    "played\nthat did not reach the server and no miss explains, or a mix "
    "that does not\nhold the tones), a stream failed or a client crashed, "
    "which give 1;\n2 for bad arguments.\n";

double
demo_client_freq(unsigned i)
{
  return 310.0 + 130.0 * i;
}

double
demo_client_gain(unsigned count)
{
  char text[32];
  double g = 0.8 / count;
  snprintf(text, sizeof(text), "%.4f", g > 0.25 ? 0.25 : g);
  return strtod(text, NULL);
}

uint64_t
demo_frames_for(double seconds, uint32_t rate)
{
  return (uint64_t)llround(seconds * rate);
}

/* Fetches the server's statistics and finds each client's stream;
 * notes the misses that are new since the last look. */
static void
demo_update_stats(struct demo *d)
{
  int64_t now = aipc_tool_now_ns();
  uint64_t device_late = d->device_late;
  if (d->is_virtual) {
    uint64_t periods;
    audioipc_server_virtual_timing(&periods, &device_late);
  }
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
    if (c->have_stats && c->stats.misses > c->misses_seen) {
      if (c->nevents < DEMO_EVENTS_MAX)
        c->events[c->nevents++] = (struct demo_miss_event){
            .from_ns = d->looked_ns,
            .to_ns = now,
            .misses = c->stats.misses - c->misses_seen,
            .device_late = device_late - d->device_late};
      c->misses_seen = c->stats.misses;
    }
  }
  d->device_late = device_late;
  d->looked_ns = now;
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
    char why[200];
    enum demo_verdict v = demo_client_verdict(d, c, why, sizeof(why));
    if (v == DEMO_FAILED || c->report_fd >= 0)
      aipc_describe_status(c->status, state, sizeof(state));
    else
      snprintf(state, sizeof(state), v == DEMO_OK ? "ok" : "ok, glitched");
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
  char *dst = c->report_text + c->report_len;
  size_t room = sizeof(c->report_text) - 1 - c->report_len;
  ssize_t n =
      read(c->report_fd, room ? dst : scratch, room ? room : sizeof(scratch));
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0) {
    close(c->report_fd);
    c->report_fd = -1;
    demo_parse_report(c);
    return;
  }
  if (room)
    c->report_len += (size_t)n;
  c->report_text[c->report_len] = '\0';
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

/* The fault AIPC_DEMO_FAULT=I:KIND asks of client `index`, or NULL. */
static const char *
fault_for(unsigned index, char *buf, size_t size)
{
  const char *env = getenv("AIPC_DEMO_FAULT");
  unsigned which;
  int used = 0;
  if (!env || sscanf(env, "%u:%n", &which, &used) != 1 || used == 0 ||
      which != index)
    return NULL;
  snprintf(buf, size, "%s", env + used);
  return buf;
}

static int
demo_spawn(struct demo *d, struct demo_client *c, unsigned latency_ms)
{
  char index[16], freq[32], seconds[32], gain[32], latency[16], fault[16];
  snprintf(index, sizeof(index), "%u", c->index);
  snprintf(freq, sizeof(freq), "%.0f", c->freq);
  snprintf(seconds, sizeof(seconds), "%.6g", d->seconds);
  snprintf(gain, sizeof(gain), "%.4f", demo_client_gain(d->count));
  snprintf(latency, sizeof(latency), "%u", latency_ms);
  char *argv[20] = {"aipc",        (char *)AIPC_CHILD_COMMAND,
                    "demo-client", "--index",
                    index,         "--freq",
                    freq,          "--seconds",
                    seconds,       "--gain",
                    gain};
  int n = 11;
  if (c->duplex)
    argv[n++] = "--duplex";
  if (latency_ms) {
    argv[n++] = "--latency";
    argv[n++] = latency;
  }
  if (fault_for(c->index, fault, sizeof(fault))) {
    argv[n++] = "--fault";
    argv[n++] = fault;
  }
  argv[n] = NULL;
  c->pid = aipc_spawn_client("demo", d->backend.server, argv, &c->report_fd);
  return c->pid > 0 ? 0 : -1;
}

/* Checks the mix in the virtual device's output file, if it is a
 * regular file; returns false if it does not hold what the clients
 * played. */
static bool
demo_check_mix(const struct demo *d, const char *wav)
{
  struct stat st;
  if (!wav || stat(wav, &st) < 0 || !S_ISREG(st.st_mode))
    return true;
  struct demo_mix_tone tones[DEMO_MAX_CLIENTS];
  for (unsigned i = 0; i < d->count; i++)
    tones[i] = (struct demo_mix_tone){
        .freq = d->clients[i].freq,
        .gain = demo_client_gain(d->count),
        .misses = d->clients[i].have_stats ? d->clients[i].stats.misses : 0};
  struct demo_mix_result m;
  /* The device asks every stream for its period: each client's largest
   * request. */
  uint32_t period = 0;
  for (unsigned i = 0; i < d->count; i++) {
    const struct demo_report *r = &d->clients[i].report;
    if (!r->valid || r->max_request <= 0 ||
        (period && period != (uint32_t)r->max_request)) {
      period = 0;
      break;
    }
    period = (uint32_t)r->max_request;
  }
  if (demo_mix_check(wav, d->backend.rate, period, d->frames, tones, d->count,
                     &m) < 0)
    return false;
  if (!m.checked) {
    printf("mix: %s: not checked (%s)\n", wav, m.problem);
    return true;
  }
  if (m.problem[0]) {
    printf("mix: %s: FAILED: %s\n", wav, m.problem);
    return false;
  }
  printf("mix: %s: %llu frames; %u of its %u blocks of %.0f ms hold exactly "
         "the clients' tones at their gains, the other %u are where a stream "
         "starts, ends or missed\n",
         wav, (unsigned long long)m.frames, m.exact, m.blocks, m.block_ms,
         m.explained);
  return true;
}

struct demo_options {
  unsigned count, latency_ms;
  double seconds;
  const char *backend;
  char name[1024];
};

/* Returns -1 to go on, or the exit status. */
static int
parse_options(int argc, char **argv, struct demo_options *o)
{
  static const struct option options[] = {
      {"clients", required_argument, NULL, 'c'},
      {"seconds", required_argument, NULL, 's'},
      {"latency", required_argument, NULL, 'l'},
      {"backend", required_argument, NULL, 'b'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *out = NULL;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'c':
      if (aipc_parse_uint(optarg, 1, DEMO_MAX_CLIENTS, &o->count) < 0)
        return aipc_usage_error("demo", demo_usage,
                                "--clients %s: not a number from 1 to %d",
                                optarg, DEMO_MAX_CLIENTS);
      break;
    case 's':
      if (aipc_parse_seconds(optarg, &o->seconds) < 0)
        return aipc_usage_error("demo", demo_usage,
                                "--seconds %s: not a number of seconds "
                                "above 0 and at most 3600",
                                optarg);
      break;
    case 'l':
      if (aipc_parse_uint(optarg, 1, 1000, &o->latency_ms) < 0)
        return aipc_usage_error("demo", demo_usage,
                                "--latency %s: not a number of ms from 1 "
                                "to 1000",
                                optarg);
      break;
    case 'b':
      o->backend = optarg;
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
  if (out) {
    int r = backend_with_out(o->backend, out, o->name, sizeof(o->name));
    if (r)
      return r;
    o->backend = o->name;
  }
  return -1;
}

int
aipc_demo_main(int argc, char **argv)
{
  struct demo_options o = {.count = 4, .seconds = 5.0};
  int r = parse_options(argc, argv, &o);
  if (r >= 0)
    return r;
  unsigned count = o.count;

  struct demo *d = calloc(1, sizeof(*d));
  if (!d) {
    fprintf(stderr, "aipc demo: out of memory\n");
    return AIPC_EXIT_FAILURE;
  }
  d->count = count;
  d->seconds = o.seconds;
  d->stats_cap = 64;
  d->stats = calloc(d->stats_cap, sizeof(*d->stats));
  if (!d->stats) {
    fprintf(stderr, "aipc demo: out of memory\n");
    free(d);
    return AIPC_EXIT_FAILURE;
  }
  d->tty = isatty(STDOUT_FILENO);
  if (aipc_backend_start("demo", o.backend,
                         "virtual:clock=realtime,out=aipc-demo.wav",
                         &d->backend) < 0) {
    free(d->stats);
    free(d);
    return AIPC_EXIT_FAILURE;
  }
  d->is_virtual = strcmp(d->backend.id, "virtual") == 0;
  d->fast_clock = d->is_virtual && strstr(d->backend.name, "clock=fast");
  d->frames = demo_frames_for(o.seconds, d->backend.rate);
  char description[700];
  aipc_backend_describe(&d->backend, description, sizeof(description));
  printf("aipc demo: backend %s, %u Hz\n", description, d->backend.rate);
  printf("aipc demo: %u sandboxed client%s, %g s (%llu frames) each", count,
         count == 1 ? "" : "s", o.seconds, (unsigned long long)d->frames);
  if (o.latency_ms)
    printf(", latency %u ms\n\n", o.latency_ms);
  else
    printf(", cubeb's minimum latency\n\n");

  int status = AIPC_EXIT_OK;
  d->start_ns = aipc_tool_now_ns();
  d->looked_ns = d->start_ns;
  d->next_line_ns = d->start_ns + 1000000000;
  unsigned spawned = 0;
  for (unsigned i = 0; i < count; i++) {
    struct demo_client *cl = &d->clients[i];
    cl->index = i + 1;
    cl->freq = demo_client_freq(i);
    cl->duplex = i == 0;
    cl->report_fd = -1;
    if (demo_spawn(d, cl, o.latency_ms) < 0) {
      status = AIPC_EXIT_FAILURE;
      break;
    }
    spawned++;
  }
  d->count = spawned;
  demo_watch(d);

  demo_print_table(d);
  unsigned glitches = 0;
  unsigned failed = demo_print_outcomes(d, &glitches);
  if (failed || spawned != count)
    status = AIPC_EXIT_FAILURE;
  char path[600];
  const char *wav = virtual_out(d->backend.name, path, sizeof(path));
  /* The file is complete once the server's contexts are gone. */
  aipc_backend_stop(&d->backend);
  if (!demo_check_mix(d, wav))
    status = AIPC_EXIT_FAILURE;
  unsigned bad = failed + count - spawned;
  if (status == AIPC_EXIT_OK)
    printf("aipc demo: all %u clients ok: each played %llu frames through "
           "the server, sandboxed%s%s",
           count, (unsigned long long)d->frames, wav ? "; the mix is in " : "",
           wav ? wav : "");
  else if (bad)
    printf("aipc demo: FAILED: %u of %u clients failed", bad, count);
  else
    printf("aipc demo: FAILED: the mix does not hold what the clients played");
  if (glitches)
    printf("; %u client%s glitched (deadline misses: the machine was late; "
           "not a failure)",
           glitches, glitches == 1 ? "" : "s");
  printf("\n");

  free(d->stats);
  free(d);
  return status;
}
