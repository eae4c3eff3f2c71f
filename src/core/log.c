/* SPDX-License-Identifier: ISC */
#include "log.h"

#include "utf8.h"

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

/*
 * Copies `in` to `out` (at most `cap` bytes, NUL included) with every
 * byte that could forge a line or drive a terminal written as \xNN: C0
 * and C1 controls, DEL, and whatever is not UTF-8. Messages carry what
 * clients sent (names, the protocol trace), and none of ours has such a
 * byte. Returns the length written.
 */
static size_t
escape(const char *in, char *out, size_t cap)
{
  const unsigned char *p = (const unsigned char *)in;
  size_t len = 0;
  while (*p && len + 5 <= cap) {
    uint32_t cp;
    unsigned n = aipc_utf8_next(p, &cp);
    if (n > 0 && cp >= 0x20 && cp != 0x7f && (cp < 0x80 || cp > 0x9f)) {
      memcpy(out + len, p, n);
      len += n;
      p += n;
    } else {
      len += (size_t)snprintf(out + len, cap - len, "\\x%02x", *p++);
    }
  }
  out[len] = '\0';
  return len;
}

void
aipc_log(enum aipc_log_level level, const char *fmt, ...)
{
  static const char *const names[] = {"error", "warning", "info", "debug"};
  char thread[16] = "";
  pthread_getname_np(pthread_self(), thread, sizeof(thread));

  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(message, sizeof(message), fmt, ap);
  va_end(ap);
  if (m < 0)
    return;

  /* One write per line, so lines from several threads do not interleave. */
  char line[1024];
  int n = snprintf(line, sizeof(line), "audioipc[%d %s] %s: ", (int)getpid(),
                   thread, names[level]);
  if (n < 0 || (size_t)n >= sizeof(line) - 2)
    return;
  size_t len = (size_t)n + escape(message, line + n, sizeof(line) - 1 - n);
  line[len++] = '\n';
  ssize_t unused = write(STDERR_FILENO, line, len);
  (void)unused;
}
