/* SPDX-License-Identifier: ISC */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned debug_topics;
static pthread_once_t debug_once = PTHREAD_ONCE_INIT;

static void
parse_debug_env(void)
{
  const char *env = getenv("AUDIOIPC_DEBUG");
  if (!env)
    return;
  static const struct {
    const char *name;
    unsigned bit;
  } topics[] = {
      {"debug", AIPC_DEBUG_MESSAGES},
      {"protocol", AIPC_DEBUG_PROTOCOL},
      {"all", AIPC_DEBUG_MESSAGES | AIPC_DEBUG_PROTOCOL},
  };
  const char *p = env;
  while (*p) {
    size_t len = strcspn(p, ",");
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
      if (strlen(topics[i].name) == len && strncmp(p, topics[i].name, len) == 0)
        debug_topics |= topics[i].bit;
    }
    p += len;
    if (*p == ',')
      p++;
  }
}

bool
aipc_debug_enabled(enum aipc_debug_topic topic)
{
  pthread_once(&debug_once, parse_debug_env);
  return (debug_topics & topic) != 0;
}

void
aipc_log(enum aipc_log_level level, const char *fmt, ...)
{
  static const char *const names[] = {"error", "warning", "info", "debug"};
  char thread[16] = "";
  pthread_getname_np(pthread_self(), thread, sizeof(thread));

  /* One write per line, so lines from several threads do not interleave. */
  char line[1024];
  int n = snprintf(line, sizeof(line), "audioipc[%d %s] %s: ", (int)getpid(),
                   thread, names[level]);
  if (n < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof(line) - 2)
    len = sizeof(line) - 2;
  line[len++] = '\n';
  ssize_t unused = write(STDERR_FILENO, line, len);
  (void)unused;
}
