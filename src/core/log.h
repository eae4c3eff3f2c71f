/* SPDX-License-Identifier: ISC */
/*
 * Logging for the library's own threads. Messages go to stderr with a
 * prefix naming the process and thread. AUDIOIPC_DEBUG (a comma-separated
 * list) turns on optional output: "debug" for debug messages, "protocol"
 * for a decoded trace of every message sent and received.
 *
 * Not for audio threads: aipc_log formats and writes synchronously.
 */
#ifndef AIPC_LOG_H
#define AIPC_LOG_H

#include <stdbool.h>

enum aipc_log_level {
  AIPC_LOG_ERROR,
  AIPC_LOG_WARN,
  AIPC_LOG_INFO,
  AIPC_LOG_DEBUG,
};

enum aipc_debug_topic {
  AIPC_DEBUG_MESSAGES = 1u << 0, /* "debug" */
  AIPC_DEBUG_PROTOCOL = 1u << 1, /* "protocol" */
};

void aipc_log(enum aipc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True if AUDIOIPC_DEBUG names the topic. Read once, then cached. */
bool aipc_debug_enabled(enum aipc_debug_topic topic);

#define aipc_error(...) aipc_log(AIPC_LOG_ERROR, __VA_ARGS__)
#define aipc_warn(...) aipc_log(AIPC_LOG_WARN, __VA_ARGS__)
#define aipc_info(...) aipc_log(AIPC_LOG_INFO, __VA_ARGS__)
#define aipc_debug(...)                                                        \
  do {                                                                         \
    if (aipc_debug_enabled(AIPC_DEBUG_MESSAGES))                               \
      aipc_log(AIPC_LOG_DEBUG, __VA_ARGS__);                                   \
  } while (0)

#endif
