/* SPDX-License-Identifier: ISC */
#include "tone.h"

#include <math.h>

double
test_tone_amplitude(const float *x, size_t stride, uint64_t frames, double freq,
                    uint32_t rate)
{
  double w = 2.0 * M_PI * freq / rate;
  double coeff = 2.0 * cos(w);
  double s1 = 0.0, s2 = 0.0;
  for (uint64_t i = 0; i < frames; i++) {
    double s = x[i * stride] + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return frames ? 2.0 * sqrt(power > 0.0 ? power : 0.0) / (double)frames : 0.0;
}
