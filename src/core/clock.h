/* SPDX-License-Identifier: ISC */
/* Monotonic time in nanoseconds, and conversions for the syscalls. */
#ifndef AIPC_CLOCK_H
#define AIPC_CLOCK_H

#include <stdint.h>
#include <time.h>

#define AIPC_NSEC_PER_SEC INT64_C(1000000000)
#define AIPC_NSEC_PER_MSEC INT64_C(1000000)
#define AIPC_NSEC_PER_USEC INT64_C(1000)

static inline int64_t
aipc_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * AIPC_NSEC_PER_SEC + ts.tv_nsec;
}

static inline struct timespec
aipc_timespec_from_ns(int64_t ns)
{
  struct timespec ts = {.tv_sec = (time_t)(ns / AIPC_NSEC_PER_SEC),
                        .tv_nsec = (long)(ns % AIPC_NSEC_PER_SEC)};
  return ts;
}

#endif
