/* SPDX-License-Identifier: ISC */
/*
 * The conformance cases: each written once against the cubeb API, run on
 * a context of any kind (libcubeb's own, or one of ours), and reporting
 * what it saw as "observation" tokens, `key=value`, that do not depend
 * on the backend: return codes, state sequences, yes/no facts, coarse
 * classes of numbers. test-conformance.c runs every case on each way and
 * compares the observations.
 */
#ifndef AIPC_TEST_CONFORMANCE_CASES_H
#define AIPC_TEST_CONFORMANCE_CASES_H

#include <cubeb/cubeb.h>
#include <stdbool.h>
#include <stddef.h>

/* Where a case writes its tokens: one write per token, so that what a
 * case saw before it died still reaches the parent. */
struct conf_obs {
  int fd;
};

void conf_note(struct conf_obs *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct conf_case {
  const char *name;
  void (*run)(cubeb *ctx, struct conf_obs *o);
  /* The case plays CONF_AMPLITUDE at half volume on the device named by
   * CONF_ENV_OUT_DEVICE; the way measures what reached the device. */
  bool measures_output;
};

extern const struct conf_case conf_cases[];
extern const size_t conf_case_count;

/* The peak of the sine the output-measuring case plays, at volume 1. */
#define CONF_AMPLITUDE 0.5f

/* The environment variable naming (by device_id) the output device the
 * way can measure. */
#define CONF_ENV_OUT_DEVICE "AIPC_CONF_OUT_DEVICE"

#endif
