/* SPDX-License-Identifier: ISC */
/* Tone measurement for the tests that check converted or mixed audio. */
#ifndef AIPC_TEST_TONE_H
#define AIPC_TEST_TONE_H

#include <stddef.h>
#include <stdint.h>

/* The amplitude of `freq` (as a sine's peak value) in the `frames`
 * samples x[0], x[stride], x[2 * stride]... at `rate`: a Goertzel
 * filter over them all. */
double test_tone_amplitude(const float *x, size_t stride, uint64_t frames,
                           double freq, uint32_t rate);

#endif
