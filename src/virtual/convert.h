/* SPDX-License-Identifier: ISC */
/*
 * What stands between a virtual-device stream and the device when their
 * formats differ: sample format (s16 or float32, either endianness),
 * channels (up- and down-mixing by libcubeb's layout rules) and rate
 * (resample.h). One conversion serves one direction of one stream.
 *
 * Output: the stream's frames are converted to float, mixed to the
 * device's channels, resampled to the device's rate and queued; each
 * period the device takes `period` frames of the queue into its mix.
 * Input: each period the device's `period` frames (float, the device's
 * input channels) are resampled to the stream's rate and queued; the
 * stream's callback takes them, mixed to its channels and format. The
 * input (a generator or a file) has no layout, so libcubeb's rules for
 * an undefined one apply: channel i to channel i, mono to the first two.
 *
 * Only _new and _destroy allocate; the rest runs on the clock thread.
 */
#ifndef AIPC_CONVERT_H
#define AIPC_CONVERT_H

#include <cubeb/cubeb.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* Float to s16 as v * 32768, rounded and clipped (NaN is 0): the inverse
 * of s16's v / 32768, so s16 passes a float path unchanged. */
static inline int16_t
aipc_sample_to_s16(float v)
{
  float scaled = v * 32768.0f;
  if (isnan(scaled))
    return 0;
  if (scaled <= -32768.0f)
    return INT16_MIN;
  if (scaled >= 32767.0f)
    return INT16_MAX;
  return (int16_t)lrintf(scaled);
}

/* The layout the device has with `channels` (1..8) channels: mono,
 * stereo, 3F, quad, 3F2, 3F2_LFE (5.1), 3F3R_LFE (6.1), 3F4_LFE (7.1). */
cubeb_channel_layout aipc_convert_device_layout(uint32_t channels);

/* Bytes of one sample of `format`. */
size_t aipc_convert_sample_bytes(cubeb_sample_format format);

enum aipc_convert_direction {
  AIPC_CONVERT_OUTPUT, /* stream to device */
  AIPC_CONVERT_INPUT,  /* device to stream */
};

struct aipc_convert_params {
  enum aipc_convert_direction direction;
  cubeb_sample_format format; /* the stream's, any of the four */
  uint32_t rate;              /* the stream's */
  uint32_t channels;          /* the stream's, 1..32 */
  cubeb_channel_layout layout;
  uint32_t device_rate;
  uint32_t device_channels; /* 1..32, of this direction */
  uint32_t period;          /* device frames per period */
};

/* Whether a stream with `p` needs a conversion: whether its rate, format
 * (float32 or s16 in host order need none), channels or layout differ
 * from the device's in a way that changes a sample. */
bool aipc_convert_needed(const struct aipc_convert_params *p);

struct aipc_convert;

/* Returns 0, -EINVAL or -ENOMEM; *out is set only on success. */
int aipc_convert_new(struct aipc_convert **out,
                     const struct aipc_convert_params *p);

void aipc_convert_destroy(struct aipc_convert *c);

/* The most stream frames one period asks of the stream's callback. */
uint32_t aipc_convert_max_frames(const struct aipc_convert *c);

/* Stream frames between the callback and the device: one period, plus
 * the resampler's delay. */
uint32_t aipc_convert_latency(const struct aipc_convert *c);

/* Output: the stream frames to ask for so that the queue holds a period
 * (0 when it already does). */
uint32_t aipc_convert_out_wanted(const struct aipc_convert *c);

/* Output: queues `frames` frames of `buf` (in the stream's format and
 * channels); `last` also pushes out what the resampler holds, so that
 * every frame queued so far reaches the queue. */
void aipc_convert_out_push(struct aipc_convert *c, const void *buf,
                           uint32_t frames, bool last);

/* Output: adds at most a period of the queue, times `volume`, to `mix`
 * (interleaved, the device's channels). Returns the frames added. */
uint32_t aipc_convert_out_mix(struct aipc_convert *c, float *mix, float volume);

/* Output: whether the queue is empty. */
bool aipc_convert_out_empty(const struct aipc_convert *c);

/* Output: the stream frames pushed whose sound has gone to the mix. */
uint64_t aipc_convert_out_played(const struct aipc_convert *c);

/* Input: where the device writes a period of its input (float, the
 * device's input channels), before aipc_convert_in_capture. */
float *aipc_convert_in_area(struct aipc_convert *c);

/* Input: queues the period written to the area. */
void aipc_convert_in_capture(struct aipc_convert *c);

/* Input: stream frames queued. */
uint32_t aipc_convert_in_available(const struct aipc_convert *c);

/* Input: takes `frames` queued frames into `buf` in the stream's format
 * and channels (silence past what is queued). */
void aipc_convert_in_pull(struct aipc_convert *c, void *buf, uint32_t frames);

#endif
