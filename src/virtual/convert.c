/* SPDX-License-Identifier: ISC */
#include "convert.h"

#include "mixer.h"
#include "resample.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct aipc_convert {
  struct aipc_convert_params p;
  /* Output: stream channels to device channels; input: the reverse. */
  struct aipc_mixer mixer;
  struct aipc_resampler *resampler; /* NULL at the device's rate */
  uint32_t max_frames;
  /* Output: the pushed frames mixed to the device's channels, before
   * resampling. Input: the device's period (the area). */
  float *stage;
  /* Frames of the device's channels: at the device's rate for output,
   * at the stream's for input. */
  float *queue;
  uint32_t queued, queue_cap;
  uint64_t pushed, mixed; /* output: stream frames in, device frames out */
};

cubeb_channel_layout
aipc_convert_device_layout(uint32_t channels)
{
  static const cubeb_channel_layout layouts[] = {
      CUBEB_LAYOUT_UNDEFINED, CUBEB_LAYOUT_MONO,     CUBEB_LAYOUT_STEREO,
      CUBEB_LAYOUT_3F,        CUBEB_LAYOUT_QUAD,     CUBEB_LAYOUT_3F2,
      CUBEB_LAYOUT_3F2_LFE,   CUBEB_LAYOUT_3F3R_LFE, CUBEB_LAYOUT_3F4_LFE,
  };
  return channels < sizeof(layouts) / sizeof(layouts[0])
             ? layouts[channels]
             : CUBEB_LAYOUT_UNDEFINED;
}

static bool
is_s16(cubeb_sample_format format)
{
  return format == CUBEB_SAMPLE_S16LE || format == CUBEB_SAMPLE_S16BE;
}

static bool
is_native(cubeb_sample_format format)
{
  return format == CUBEB_SAMPLE_S16NE || format == CUBEB_SAMPLE_FLOAT32NE;
}

size_t
aipc_convert_sample_bytes(cubeb_sample_format format)
{
  return is_s16(format) ? sizeof(int16_t) : sizeof(float);
}

/* The stream's side has its layout. The device's output has its own;
 * its input, a generator or a file, has none (see convert.h). */
static void
mixer_for(struct aipc_mixer *m, const struct aipc_convert_params *p)
{
  if (p->direction == AIPC_CONVERT_OUTPUT)
    aipc_mixer_init(m, p->channels, p->layout, p->device_channels,
                    aipc_convert_device_layout(p->device_channels));
  else
    aipc_mixer_init(m, p->device_channels, CUBEB_LAYOUT_UNDEFINED, p->channels,
                    p->layout);
}

bool
aipc_convert_needed(const struct aipc_convert_params *p)
{
  if (p->rate != p->device_rate || !is_native(p->format))
    return true;
  if (p->channels != p->device_channels)
    return true;
  struct aipc_mixer m;
  mixer_for(&m, p);
  return !aipc_mixer_is_identity(&m);
}

static uint32_t
frames_at(uint64_t frames, uint32_t to_rate, uint32_t from_rate)
{
  return (uint32_t)((frames * to_rate + from_rate - 1) / from_rate);
}

int
aipc_convert_new(struct aipc_convert **out, const struct aipc_convert_params *p)
{
  if (p->channels < 1 || p->channels > AIPC_MIXER_MAX_CHANNELS ||
      p->device_channels < 1 || p->device_channels > AIPC_MIXER_MAX_CHANNELS ||
      p->period < 1 || p->rate < 1 || p->device_rate < 1)
    return -EINVAL;
  struct aipc_convert *c = calloc(1, sizeof(*c));
  if (!c)
    return -ENOMEM;
  c->p = *p;
  mixer_for(&c->mixer, p);
  bool output = p->direction == AIPC_CONVERT_OUTPUT;
  int r = 0;
  c->max_frames = frames_at(p->period, p->rate, p->device_rate);
  uint32_t dc = p->device_channels;
  size_t stage_frames = output ? c->max_frames : p->period;
  c->queue_cap = p->period;
  if (p->rate != p->device_rate) {
    uint32_t from = output ? p->rate : p->device_rate;
    uint32_t to = output ? p->device_rate : p->rate;
    r = aipc_resampler_new(&c->resampler, dc, from, to, AIPC_RESAMPLER_QUALITY);
    if (r < 0)
      goto fail;
    /* What a period leaves over (less than one input frame's worth),
     * one push, and the resampler's tail when the stream drains. */
    uint32_t step = frames_at(1, to, from);
    uint32_t tail = frames_at(aipc_resampler_latency(c->resampler), to, from);
    c->queue_cap =
        output ? p->period + 2 * step + tail + 4 : 2 * c->max_frames + step + 4;
  }
  c->stage = calloc(stage_frames * dc, sizeof(float));
  c->queue = calloc((size_t)c->queue_cap * dc, sizeof(float));
  if (!c->stage || !c->queue) {
    r = -ENOMEM;
    goto fail;
  }
  *out = c;
  return 0;

fail:
  aipc_convert_destroy(c);
  return r;
}

void
aipc_convert_destroy(struct aipc_convert *c)
{
  if (!c)
    return;
  aipc_resampler_destroy(c->resampler);
  free(c->stage);
  free(c->queue);
  free(c);
}

uint32_t
aipc_convert_max_frames(const struct aipc_convert *c)
{
  return c->max_frames;
}

uint32_t
aipc_convert_latency(const struct aipc_convert *c)
{
  if (!c->resampler)
    return c->p.period;
  uint32_t delay = aipc_resampler_latency(c->resampler);
  if (c->p.direction == AIPC_CONVERT_INPUT)
    delay = frames_at(delay, c->p.rate, c->p.device_rate);
  return c->max_frames + delay;
}

/* Sample `i` of `buf`, in `format`, as float. */
static float
load(cubeb_sample_format format, const void *buf, size_t i)
{
  bool swap = !is_native(format);
  if (is_s16(format)) {
    uint16_t v;
    memcpy(&v, (const uint8_t *)buf + 2 * i, 2);
    if (swap)
      v = __builtin_bswap16(v);
    return (float)(int16_t)v / 32768.0f;
  }
  uint32_t v;
  memcpy(&v, (const uint8_t *)buf + 4 * i, 4);
  if (swap)
    v = __builtin_bswap32(v);
  float f;
  memcpy(&f, &v, 4);
  return f;
}

static void
store(cubeb_sample_format format, void *buf, size_t i, float f)
{
  bool swap = !is_native(format);
  if (is_s16(format)) {
    uint16_t v = (uint16_t)aipc_sample_to_s16(f);
    if (swap)
      v = __builtin_bswap16(v);
    memcpy((uint8_t *)buf + 2 * i, &v, 2);
    return;
  }
  uint32_t v;
  memcpy(&v, &f, 4);
  if (swap)
    v = __builtin_bswap32(v);
  memcpy((uint8_t *)buf + 4 * i, &v, 4);
}

uint32_t
aipc_convert_out_wanted(const struct aipc_convert *c)
{
  uint32_t need = c->p.period > c->queued ? c->p.period - c->queued : 0;
  uint32_t frames =
      c->resampler ? aipc_resampler_input_for(c->resampler, need) : need;
  return frames < c->max_frames ? frames : c->max_frames;
}

void
aipc_convert_out_push(struct aipc_convert *c, const void *buf, uint32_t frames,
                      bool last)
{
  uint32_t sc = c->p.channels, dc = c->p.device_channels;
  if (frames > c->max_frames)
    frames = c->max_frames;
  float *to = c->resampler ? c->stage : c->queue + (size_t)c->queued * dc;
  if (!c->resampler && frames > c->queue_cap - c->queued)
    frames = c->queue_cap - c->queued;
  float in[AIPC_MIXER_MAX_CHANNELS];
  for (uint32_t f = 0; f < frames; f++) {
    for (uint32_t ch = 0; ch < sc; ch++)
      in[ch] = load(c->p.format, buf, (size_t)f * sc + ch);
    aipc_mixer_frame(&c->mixer, in, to + (size_t)f * dc);
  }
  c->pushed += frames;
  if (!c->resampler) {
    c->queued += frames;
    return;
  }
  c->queued += aipc_resampler_process(c->resampler, c->stage, frames,
                                      c->queue + (size_t)c->queued * dc,
                                      c->queue_cap - c->queued);
  if (last)
    c->queued += aipc_resampler_process(
        c->resampler, NULL, aipc_resampler_latency(c->resampler),
        c->queue + (size_t)c->queued * dc, c->queue_cap - c->queued);
}

/* Drops the first `frames` frames of the queue. */
static void
dequeue(struct aipc_convert *c, uint32_t frames)
{
  size_t dc = c->p.device_channels;
  c->queued -= frames;
  memmove(c->queue, c->queue + frames * dc, c->queued * dc * sizeof(float));
}

uint32_t
aipc_convert_out_mix(struct aipc_convert *c, float *mix, float volume)
{
  uint32_t frames = c->queued < c->p.period ? c->queued : c->p.period;
  size_t samples = (size_t)frames * c->p.device_channels;
  for (size_t i = 0; i < samples; i++)
    mix[i] += c->queue[i] * volume;
  dequeue(c, frames);
  c->mixed += frames;
  return frames;
}

bool
aipc_convert_out_empty(const struct aipc_convert *c)
{
  return c->queued == 0;
}

uint64_t
aipc_convert_out_played(const struct aipc_convert *c)
{
  uint64_t played = c->resampler
                        ? aipc_resampler_input_played(c->resampler, c->mixed)
                        : c->mixed;
  return played < c->pushed ? played : c->pushed;
}

float *
aipc_convert_in_area(struct aipc_convert *c)
{
  return c->stage;
}

void
aipc_convert_in_capture(struct aipc_convert *c)
{
  size_t dc = c->p.device_channels;
  float *to = c->queue + c->queued * dc;
  uint32_t room = c->queue_cap - c->queued;
  if (c->resampler) {
    c->queued +=
        aipc_resampler_process(c->resampler, c->stage, c->p.period, to, room);
    return;
  }
  uint32_t frames = c->p.period < room ? c->p.period : room;
  memcpy(to, c->stage, frames * dc * sizeof(float));
  c->queued += frames;
}

uint32_t
aipc_convert_in_available(const struct aipc_convert *c)
{
  return c->queued;
}

void
aipc_convert_in_pull(struct aipc_convert *c, void *buf, uint32_t frames)
{
  uint32_t sc = c->p.channels, dc = c->p.device_channels;
  float silence[AIPC_MIXER_MAX_CHANNELS] = {0};
  float out[AIPC_MIXER_MAX_CHANNELS];
  for (uint32_t f = 0; f < frames; f++) {
    const float *in = f < c->queued ? c->queue + (size_t)f * dc : silence;
    aipc_mixer_frame(&c->mixer, in, out);
    for (uint32_t ch = 0; ch < sc; ch++)
      store(c->p.format, buf, (size_t)f * sc + ch, out[ch]);
  }
  dequeue(c, frames < c->queued ? frames : c->queued);
}
