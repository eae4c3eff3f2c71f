/* SPDX-License-Identifier: ISC */
/*
 * One set of cubeb-level cases (cases.c), run three ways in one run:
 * libcubeb's own pulse backend in the case's process, our remote on
 * pulse, and our remote on the virtual device (a server in the test
 * process, the case in a client process). Each way's observations are
 * computed now and compared with libcubeb's; a remote way that differs
 * fails the test unless the difference is in `known` below, with its
 * reason. Needs the private PulseAudio (scripts/pulse.sh).
 */
#include "../e2e/harness.h"
#include "cases.h"
#include "sound-file.h"

#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONF_ENV_CASE "AIPC_CONF_CASE"
/* A sink of its own (scripts/pulse.sh), so that another suite's streams
 * on ci_sink never reach the level measured here. */
#define CONF_SINK "ci_conf_sink"
#define CONF_SINK_ARGS                                                         \
  "sink_name=" CONF_SINK " norewinds=1 rate=48000 channels=2"

enum way_kind { WAY_PLAIN, WAY_REMOTE };

static const struct way {
  const char *name;
  enum way_kind kind;
  const char *backend; /* "%s": the WAV the virtual device writes */
  const char *out_device;
  bool on_pulse; /* output measured on CONF_SINK's monitor, else the WAV */
} ways[] = {
    {"libcubeb-pulse", WAY_PLAIN, "pulse", CONF_SINK, true},
    {"remote-pulse", WAY_REMOTE, "pulse", CONF_SINK, true},
    {"remote-virtual", WAY_REMOTE, "virtual:clock=realtime,in=sine:440,out=%s",
     "virtual-out", false},
};
#define WAY_COUNT (sizeof(ways) / sizeof(ways[0]))

/* Where a remote way may differ from libcubeb's: the observation's
 * tokens with this key are left out of the comparison (and must still
 * differ, or the entry is stale). */
static const struct known_difference {
  const char *case_name;
  const char *way;
  const char *key;
  const char *reason;
} known[] = {
    {"latency", "remote-virtual", "input-latency-of-output",
     "libcubeb's pulse has no input latency call (NOT_SUPPORTED); the "
     "virtual device has one, which an output-only stream fails (ERROR)"},
    {"input", "remote-virtual", "input-latency",
     "libcubeb's pulse has no input latency call (NOT_SUPPORTED); the "
     "virtual device reports its input's"},
    {"device-changed", "remote-virtual", "register",
     "libcubeb's pulse has no device-changed callback (NOT_SUPPORTED); the "
     "virtual device has one (the embedder says when the device changed)"},
    {"device-changed", "remote-virtual", "unregister",
     "as for register: pulse has no device-changed callback"},
};

/* --- Measuring the level on the pulse sink -------------------------------- */

/* A process of its own, forked before any server runs: libcubeb's pulse
 * backend recording CONF_SINK's monitor (which our server would refuse
 * to a client). Commands on its socket: 'r' starts a recording and is
 * answered once input flows; 's' stops it and is answered with the
 * peak, a float (negative if the recording failed). */
struct recorder {
  _Atomic float peak;
  atomic_long frames;
};

static long
record_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)out;
  struct recorder *r = user;
  const float *x = in;
  float peak = atomic_load(&r->peak);
  for (long i = 0; i < 2 * n; i++)
    if (fabsf(x[i]) > peak)
      peak = fabsf(x[i]);
  atomic_store(&r->peak, peak);
  atomic_fetch_add(&r->frames, n);
  return n;
}

static void
record_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  (void)user;
  (void)state;
}

static cubeb_stream *
recording_start(cubeb *ctx, struct recorder *rec)
{
  cubeb_device_collection c;
  if (cubeb_enumerate_devices(ctx, CUBEB_DEVICE_TYPE_INPUT, &c) != CUBEB_OK)
    return NULL;
  cubeb_devid monitor = NULL;
  for (size_t i = 0; i < c.count; i++)
    if (c.device[i].device_id &&
        !strcmp(c.device[i].device_id, CONF_SINK ".monitor"))
      monitor = c.device[i].devid;
  cubeb_stream_params in = E2E_STEREO_OUT;
  cubeb_stream *stm = NULL;
  atomic_store(&rec->peak, 0.0f);
  atomic_store(&rec->frames, 0);
  if (monitor &&
      cubeb_stream_init(ctx, &stm, "conformance level", monitor, &in, NULL,
                        NULL, 4800, record_cb, record_state, rec) == CUBEB_OK &&
      cubeb_stream_start(stm) == CUBEB_OK) {
    for (int i = 0; i < 5000 && atomic_load(&rec->frames) == 0; i++)
      usleep(1000);
  }
  if (stm && atomic_load(&rec->frames) == 0) {
    cubeb_stream_destroy(stm);
    stm = NULL;
  }
  cubeb_device_collection_destroy(ctx, &c);
  return stm;
}

static void
recorder_main(void *arg)
{
  const int *fds = arg;
  close(fds[0]);
  int fd = fds[1];
  cubeb *ctx = NULL;
  CHECK_INT(cubeb_init(&ctx, "conformance recorder", "pulse"), ==, CUBEB_OK);
  struct recorder rec;
  cubeb_stream *stm = NULL;
  char cmd;
  while (read(fd, &cmd, 1) == 1) {
    if (cmd == 'r') {
      stm = recording_start(ctx, &rec);
      CHECK(write(fd, stm ? "k" : "x", 1) == 1);
    } else {
      float peak = -1;
      if (stm) {
        cubeb_stream_stop(stm);
        cubeb_stream_destroy(stm);
        stm = NULL;
        peak = atomic_load(&rec.peak);
      }
      CHECK(write(fd, &peak, sizeof(peak)) == sizeof(peak));
    }
  }
  cubeb_destroy(ctx);
}

/* Runs `pactl ARGS`; returns its first line of output. */
static void
pactl(const char *args, char *line, size_t len)
{
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "pactl %s", args);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  line[0] = '\0';
  if (!fgets(line, (int)len, p))
    line[0] = '\0';
  char rest[512];
  while (fgets(rest, sizeof(rest), p))
    ;
  CHECK_INT(pclose(p), ==, 0);
}

/* Loads CONF_SINK if this PulseAudio was started by an older pulse.sh;
 * returns the module to unload at the end, or 0. */
static unsigned
ensure_sink(void)
{
  if (!getenv("PULSE_SERVER"))
    test_fail(__FILE__, __LINE__,
              "PULSE_SERVER is not set: run scripts/pulse.sh start and "
              "eval \"$(scripts/pulse.sh env)\"");
  char line[512];
  pactl("list short sinks | grep -c '\t" CONF_SINK "\t' || true", line,
        sizeof(line));
  if (atoi(line) > 0)
    return 0;
  pactl("load-module module-null-sink " CONF_SINK_ARGS, line, sizeof(line));
  unsigned module = (unsigned)strtoul(line, NULL, 10);
  CHECK(module > 0);
  return module;
}

/* --- Running one case on one way ------------------------------------------ */

struct plain_case_args {
  size_t which;
  int fd;
};

static void
plain_case(void *arg)
{
  const struct plain_case_args *a = arg;
  struct conf_obs o = {a->fd};
  cubeb *ctx = NULL;
  int r = cubeb_init(&ctx, "conformance", "pulse");
  if (r != CUBEB_OK) {
    conf_note(&o, "context-init=%d", r);
    return;
  }
  conf_cases[a->which].run(ctx, &o);
  cubeb_destroy(ctx);
}

E2E_CLIENT(remote_case)
{
  struct conf_obs o = {arg};
  size_t which = strtoul(getenv(CONF_ENV_CASE), NULL, 10);
  CHECK(which < conf_case_count);
  conf_cases[which].run(ctx, &o);
}

static const char *
level_class(float peak)
{
  if (peak < 0)
    return "unmeasured";
  double ratio = peak / CONF_AMPLITUDE;
  printf("  (level: peak %.3f, %.2f of the sine played at volume 1)\n", peak,
         ratio);
  if (ratio < 0.05)
    return "silent";
  if (ratio > 0.4 && ratio < 0.6)
    return "half";
  if (ratio > 0.9 && ratio < 1.1)
    return "full";
  return "other";
}

static float
wav_peak(const char *path)
{
  struct aipc_sound_data wav;
  if (aipc_sound_load(path, 8, &wav, NULL, 0) != 0)
    return -1;
  float peak = 0;
  for (uint64_t i = 0; i < wav.frames * wav.channels; i++)
    if (fabsf(wav.samples[i]) > peak)
      peak = fabsf(wav.samples[i]);
  aipc_sound_data_clear(&wav);
  return peak;
}

/* Appends `a` and `b` to `text`. */
static void
append(char *text, size_t len, const char *a, const char *b)
{
  size_t used = strlen(text);
  snprintf(text + used, len - used, "%s%s", a, b);
}

/* Runs case `which` on way `w` in a process of its own and fills `text`
 * with its observation, and how the process ended. */
static void
run_case(const struct way *w, size_t which, int recorder, char *text,
         size_t len)
{
  const struct conf_case *c = &conf_cases[which];
  char number[16];
  snprintf(number, sizeof(number), "%zu", which);
  CHECK(setenv(CONF_ENV_CASE, number, 1) == 0);
  CHECK(setenv(CONF_ENV_OUT_DEVICE, w->out_device, 1) == 0);
  bool recording = c->measures_output && w->on_pulse;
  if (recording) {
    char ok = 0;
    CHECK(write(recorder, "r", 1) == 1);
    CHECK(read(recorder, &ok, 1) == 1);
    CHECK(ok == 'k');
  }

  int obs[2];
  CHECK(pipe2(obs, O_CLOEXEC) == 0);
  struct e2e e;
  pid_t pid;
  if (w->kind == WAY_REMOTE) {
    e2e_start(&e, w->backend);
    pid = e2e_spawn_keeping(&e, remote_case, obs[1]);
  } else {
    struct plain_case_args a = {which, obs[1]};
    pid = test_fork(plain_case, &a);
  }
  close(obs[1]);
  size_t used = 0;
  ssize_t n;
  while (used < len - 1 && (n = read(obs[0], text + used, len - 1 - used)) > 0)
    used += (size_t)n;
  text[used] = '\0';
  close(obs[0]);
  int status = test_wait(pid);
  char end[32];
  if (WIFEXITED(status))
    snprintf(end, sizeof(end), "%d", WEXITSTATUS(status));
  else
    snprintf(end, sizeof(end), "signal:%d", WTERMSIG(status));
  append(text, len, "exit=", end);

  float peak = -1;
  if (recording) {
    CHECK(write(recorder, "s", 1) == 1);
    CHECK(read(recorder, &peak, sizeof(peak)) == sizeof(peak));
  }
  if (w->kind == WAY_REMOTE) {
    e2e_stop_server(&e);
    if (c->measures_output && !w->on_pulse)
      peak = wav_peak(e.wav);
    e2e_finish(&e);
  }
  if (c->measures_output)
    append(text, len, " level=", level_class(peak));
}

/* --- Comparing ------------------------------------------------------------ */

static bool
is_known(const char *case_name, const char *way, const char *token)
{
  size_t key = strcspn(token, "= ");
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if (known[i].case_name && !strcmp(known[i].case_name, case_name) &&
        !strcmp(known[i].way, way) && strlen(known[i].key) == key &&
        !strncmp(known[i].key, token, key))
      return true;
  return false;
}

/* The observation without the tokens of known differences; returns how
 * many it left out. */
static int
strip_known(const char *case_name, const char *way, const char *text, char *out,
            size_t len)
{
  char copy[2048];
  snprintf(copy, sizeof(copy), "%s", text);
  out[0] = '\0';
  int left_out = 0;
  char *save = NULL;
  for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
    if (is_known(case_name, way, t))
      left_out++;
    else
      append(out, len, t, " ");
  return left_out;
}

enum verdict { SAME, KNOWN, DIFFERS, STALE };

static enum verdict
compare(const char *case_name, const char *way, const char *reference,
        const char *observed)
{
  char a[2048], b[2048];
  int listed = strip_known(case_name, way, reference, a, sizeof(a)) +
               strip_known(case_name, way, observed, b, sizeof(b));
  if (strcmp(a, b) != 0)
    return DIFFERS;
  if (!listed)
    return SAME;
  return strcmp(reference, observed) != 0 ? KNOWN : STALE;
}

static const char *const verdict_text[] = {"PASS", "known", "DIFFERS",
                                           "STALE-KNOWN"};

TEST_TIMEOUT(conformance_remote_ways_behave_as_libcubeb, 280)
{
  unsigned module = ensure_sink();
  int rec[2];
  test_socketpair(rec);
  pid_t recorder = test_fork(recorder_main, rec);
  close(rec[1]);

  /* The plain way first: its processes fork from this one, which runs
   * no server (and no thread) yet. */
  static char obs[32][WAY_COUNT][2048];
  CHECK(conf_case_count <= 32);
  for (size_t w = 0; w < WAY_COUNT; w++)
    for (size_t i = 0; i < conf_case_count; i++) {
      run_case(&ways[w], i, rec[0], obs[i][w], sizeof(obs[i][w]));
      printf("%-20s %-16s %s\n", conf_cases[i].name, ways[w].name, obs[i][w]);
      fflush(stdout);
    }
  close(rec[0]);
  test_wait_ok(recorder);
  if (module) {
    char args[64], line[64];
    snprintf(args, sizeof(args), "unload-module %u", module);
    pactl(args, line, sizeof(line));
  }

  printf("\n%-20s", "case");
  for (size_t w = 0; w < WAY_COUNT; w++)
    printf(" %-16s", ways[w].name);
  printf("\n");
  int failures = 0;
  for (size_t i = 0; i < conf_case_count; i++) {
    printf("%-20s %-16s", conf_cases[i].name, "reference");
    for (size_t w = 1; w < WAY_COUNT; w++) {
      enum verdict v =
          compare(conf_cases[i].name, ways[w].name, obs[i][0], obs[i][w]);
      failures += v == DIFFERS || v == STALE;
      printf(" %-16s", verdict_text[v]);
    }
    printf("\n");
  }
  printf("\n");
  for (size_t i = 0; i < conf_case_count; i++)
    for (size_t w = 1; w < WAY_COUNT; w++) {
      enum verdict v =
          compare(conf_cases[i].name, ways[w].name, obs[i][0], obs[i][w]);
      if (v == SAME)
        continue;
      printf("%s on %s: %s\n  libcubeb: %s\n  %s: %s\n", conf_cases[i].name,
             ways[w].name, verdict_text[v], obs[i][0], ways[w].name, obs[i][w]);
      for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
        if (known[k].case_name &&
            !strcmp(known[k].case_name, conf_cases[i].name) &&
            !strcmp(known[k].way, ways[w].name))
          printf("  known (%s): %s\n", known[k].key, known[k].reason);
    }
  fflush(stdout);
  CHECK_INT(failures, ==, 0);
}
