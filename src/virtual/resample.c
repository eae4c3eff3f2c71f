/* SPDX-License-Identifier: ISC */
#include "resample.h"

#include <errno.h>
#include <speex/speex_resampler.h>
#include <stdlib.h>

struct aipc_resampler {
  SpeexResamplerState *speex;
  uint64_t num, den; /* in_rate / out_rate, reduced, as speex keeps it */
  /* Frames consumed and made since the start, less whole multiples of
   * num and den (which leave the ratio's phase as it was). */
  uint64_t in_total, out_total;
  uint32_t latency;
};

static uint32_t
gcd(uint32_t a, uint32_t b)
{
  while (b) {
    uint32_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int
aipc_resampler_new(struct aipc_resampler **out, uint32_t channels,
                   uint32_t in_rate, uint32_t out_rate, int quality)
{
  if (channels == 0 || in_rate == 0 || out_rate == 0 || in_rate == out_rate)
    return -EINVAL;
  struct aipc_resampler *r = calloc(1, sizeof(*r));
  if (!r)
    return -ENOMEM;
  int err = 0;
  r->speex = speex_resampler_init(channels, in_rate, out_rate, quality, &err);
  if (!r->speex) {
    free(r);
    return err == RESAMPLER_ERR_ALLOC_FAILED ? -ENOMEM : -EINVAL;
  }
  uint32_t g = gcd(in_rate, out_rate);
  r->num = in_rate / g;
  r->den = out_rate / g;
  r->latency = (uint32_t)speex_resampler_get_input_latency(r->speex);
  *out = r;
  return 0;
}

void
aipc_resampler_destroy(struct aipc_resampler *r)
{
  if (!r)
    return;
  speex_resampler_destroy(r->speex);
  free(r);
}

/* Output frames made once `in` input frames have been consumed. */
static uint64_t
made_by(const struct aipc_resampler *r, uint64_t in)
{
  return (in * r->den + r->num - 1) / r->num;
}

uint32_t
aipc_resampler_output_for(const struct aipc_resampler *r, uint32_t in_frames)
{
  return (uint32_t)(made_by(r, r->in_total + in_frames) - r->out_total);
}

uint32_t
aipc_resampler_input_for(const struct aipc_resampler *r, uint32_t out_frames)
{
  if (out_frames == 0)
    return 0;
  /* The least total T with made_by(T) >= target: T * den > (target - 1)
   * * num. */
  uint64_t target = r->out_total + out_frames;
  uint64_t total = (target - 1) * r->num / r->den + 1;
  return total > r->in_total ? (uint32_t)(total - r->in_total) : 0;
}

uint32_t
aipc_resampler_process(struct aipc_resampler *r, const float *in,
                       uint32_t in_frames, float *out, uint32_t out_room)
{
  spx_uint32_t in_len = in_frames, out_len = out_room;
  speex_resampler_process_interleaved_float(r->speex, in, &in_len, out,
                                            &out_len);
  r->in_total += in_len;
  r->out_total += out_len;
  uint64_t turns = r->in_total / r->num;
  if (r->out_total / r->den < turns)
    turns = r->out_total / r->den;
  r->in_total -= turns * r->num;
  r->out_total -= turns * r->den;
  return out_len;
}

uint32_t
aipc_resampler_latency(const struct aipc_resampler *r)
{
  return r->latency;
}

uint64_t
aipc_resampler_input_played(const struct aipc_resampler *r, uint64_t out_frames)
{
  uint64_t passed =
      out_frames / r->den * r->num + out_frames % r->den * r->num / r->den;
  return passed > r->latency ? passed - r->latency : 0;
}
