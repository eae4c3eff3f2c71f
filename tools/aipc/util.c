/* SPDX-License-Identifier: ISC */
#include "aipc.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
aipc_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
  (void)usage; /* the one wrong thing is enough; --help has the rest */
  va_list ap;
  fprintf(stderr, "aipc %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nsee aipc %s --help\n", cmd);
  return AIPC_EXIT_USAGE;
}

int
aipc_bad_option(const char *cmd, const char *usage, int c, char **argv)
{
  /* A long option is the word getopt just passed (up to any "=");
   * a short one is optopt, since the word may be a cluster. */
  const char *word = optind > 0 ? argv[optind - 1] : "";
  char text[3] = {'-', (char)optopt, '\0'};
  int len = (int)strcspn(word, "=");
  if (strncmp(word, "--", 2) != 0) {
    word = text;
    len = 2;
  }
  if (c == ':')
    return aipc_usage_error(cmd, usage, "option %.*s needs a value", len, word);
  return aipc_usage_error(cmd, usage, "unknown option %.*s", len, word);
}

int
aipc_parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
  char *end;
  if (!text || *text < '0' || *text > '9')
    return -EINVAL;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno || *end || v < min || v > max)
    return -EINVAL;
  *out = (unsigned)v;
  return 0;
}

int
aipc_parse_seconds(const char *text, double *out)
{
  char *end;
  if (!text || ((*text < '0' || *text > '9') && *text != '.'))
    return -EINVAL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || *end || !(v > 0.0) || v > 3600.0)
    return -EINVAL;
  *out = v;
  return 0;
}

const char *
aipc_exe_path(void)
{
  static char path[PATH_MAX];
  if (path[0])
    return path;
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0 || (size_t)n >= sizeof(path) - 1) {
    fprintf(stderr,
            "aipc: cannot find its own executable: readlink "
            "/proc/self/exe: %s\n",
            n < 0 ? strerror(errno) : "path too long");
    path[0] = '\0';
    return NULL;
  }
  path[n] = '\0';
  return path;
}

void
aipc_describe_status(int status, char *buf, size_t size)
{
  if (WIFEXITED(status)) {
    snprintf(buf, size, "exit %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *name = sigabbrev_np(sig);
    snprintf(buf, size, "killed by SIG%s%s%s", name ? name : "?",
             sig == SIGSYS ? " (seccomp)" : "",
             WCOREDUMP(status) ? ", core dumped" : "");
  } else {
    snprintf(buf, size, "wait status %#x", (unsigned)status);
  }
}

int64_t
aipc_tool_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
aipc_tone_init(struct aipc_tone *tone, double freq, uint32_t rate, double gain)
{
  tone->phase = 0.0;
  tone->step = 2.0 * M_PI * freq / (double)rate;
  tone->gain = gain;
}

/* Audio thread. */
void
aipc_tone_fill(struct aipc_tone *tone, float *out, long frames,
               uint32_t channels)
{
  for (long i = 0; i < frames; i++) {
    float v = (float)(tone->gain * sin(tone->phase));
    for (uint32_t c = 0; c < channels; c++)
      out[(size_t)i * channels + c] = v;
    tone->phase += tone->step;
    if (tone->phase >= 2.0 * M_PI)
      tone->phase -= 2.0 * M_PI;
  }
}

int
aipc_waiter_init(struct aipc_waiter *w)
{
  pthread_condattr_t attr;
  int r = pthread_condattr_init(&attr);
  if (r)
    return -r;
  r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (r == 0)
    r = pthread_cond_init(&w->cond, &attr);
  pthread_condattr_destroy(&attr);
  if (r)
    return -r;
  r = pthread_mutex_init(&w->lock, NULL);
  if (r) {
    pthread_cond_destroy(&w->cond);
    return -r;
  }
  w->drained = w->errored = w->stopped = 0;
  return 0;
}

void
aipc_waiter_destroy(struct aipc_waiter *w)
{
  pthread_cond_destroy(&w->cond);
  pthread_mutex_destroy(&w->lock);
}

/* On the client library's thread. */
void
aipc_waiter_state_cb(cubeb_stream *stream, void *user, cubeb_state state)
{
  (void)stream;
  struct aipc_waiter *w = user;
  pthread_mutex_lock(&w->lock);
  if (state == CUBEB_STATE_DRAINED)
    w->drained = 1;
  else if (state == CUBEB_STATE_ERROR)
    w->errored = 1;
  else if (state == CUBEB_STATE_STOPPED)
    w->stopped = 1;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

int
aipc_waiter_wait(struct aipc_waiter *w, int timeout_ms)
{
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  int r = 0, result;
  pthread_mutex_lock(&w->lock);
  while (!w->errored && !w->drained && r != ETIMEDOUT)
    r = pthread_cond_timedwait(&w->cond, &w->lock, &until);
  result = w->errored   ? CUBEB_STATE_ERROR
           : w->drained ? CUBEB_STATE_DRAINED
                        : -1;
  pthread_mutex_unlock(&w->lock);
  return result;
}
