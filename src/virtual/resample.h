/* SPDX-License-Identifier: ISC */
/*
 * Sample-rate conversion for the virtual device: libspeexdsp's resampler
 * (the one libcubeb uses), with exact frame accounting on top.
 *
 * Speex steps through its input by in_rate / out_rate per output frame
 * and makes an output frame as soon as the input it starts at has
 * arrived, so once all input is consumed it has made exactly
 * ceil(in_total * out_rate / in_rate) output frames. That lets the
 * device ask a stream for exactly the frames one period needs. The
 * output lags by the filter: AIPC_RESAMPLER_QUALITY's half filter
 * length, aipc_resampler_latency() input frames.
 *
 * Only _new and _destroy allocate; the rest may run on the clock thread.
 */
#ifndef AIPC_RESAMPLE_H
#define AIPC_RESAMPLE_H

#include <stdint.h>

/* SPEEX_RESAMPLER_QUALITY_DESKTOP: what libcubeb's desktop backends
 * (WASAPI, AudioUnit, JACK) ask of its resampler. */
#define AIPC_RESAMPLER_QUALITY 5

struct aipc_resampler;

/* A resampler of `channels` interleaved float channels from `in_rate` to
 * `out_rate` (both 1..INT32_MAX, different), at speex quality `quality`
 * (0..10). Returns 0 or -ENOMEM/-EINVAL; *out is set only on success. */
int aipc_resampler_new(struct aipc_resampler **out, uint32_t channels,
                       uint32_t in_rate, uint32_t out_rate, int quality);

void aipc_resampler_destroy(struct aipc_resampler *r);

/* Output frames that `in_frames` more input frames make. */
uint32_t aipc_resampler_output_for(const struct aipc_resampler *r,
                                   uint32_t in_frames);

/* The fewest input frames that make at least `out_frames` more output
 * frames (0 for 0). */
uint32_t aipc_resampler_input_for(const struct aipc_resampler *r,
                                  uint32_t out_frames);

/* Resamples `in_frames` frames of `in` (NULL: silence) into `out`, which
 * has room for `out_room` frames: at least aipc_resampler_output_for
 * (in_frames), so that all input is consumed. Returns the frames
 * written. */
uint32_t aipc_resampler_process(struct aipc_resampler *r, const float *in,
                                uint32_t in_frames, float *out,
                                uint32_t out_room);

/* The filter's delay: input frames the output lags by (speex's input
 * latency, half its filter length). */
uint32_t aipc_resampler_latency(const struct aipc_resampler *r);

/* Input frames played, of those consumed, once `out_frames` output
 * frames have gone out: the ones the output has moved past, less the
 * filter's delay. */
uint64_t aipc_resampler_input_played(const struct aipc_resampler *r,
                                     uint64_t out_frames);

#endif
