/* SPDX-License-Identifier: ISC */
#include "mixer.h"

#include <math.h>
#include <string.h>

/* Bit numbers of cubeb_channel. */
enum {
  FL,
  FR,
  FC,
  LFE,
  BL,
  BR,
  FLC,
  FRC,
  BC,
  SL,
  SR,
  NAMED = 18,
};

#define BIT(c) (1u << (c))
#define FRONT_PAIR (BIT(FL) | BIT(FR))

static const double HALF_POWER = M_SQRT1_2; /* -3 dB */

/* A pair is whole or absent. */
static bool
paired(uint32_t layout, uint32_t pair)
{
  uint32_t bits = layout & pair;
  return bits == 0 || bits == pair;
}

static bool
sane(uint32_t layout)
{
  return (layout & (FRONT_PAIR | BIT(FC))) && paired(layout, FRONT_PAIR) &&
         paired(layout, BIT(SL) | BIT(SR)) &&
         paired(layout, BIT(BL) | BIT(BR)) &&
         paired(layout, BIT(FLC) | BIT(FRC)) &&
         __builtin_popcount(layout) < AIPC_MIXER_MAX_CHANNELS;
}

/* A lone channel other than front left counts as mono. */
static uint32_t
cleaned(uint32_t layout)
{
  if (layout && layout != BIT(FL) && !(layout & (layout - 1)))
    return BIT(FC);
  return layout;
}

/* Folds the input's back or side pair `from` (left, then right) into
 * the output's back centre or `other` pair, whichever comes first as
 * libcubeb tries them, else into the front. */
static void
fold_pair(double m[NAMED][NAMED], uint32_t in, uint32_t out, int from,
          int other, bool centre_first)
{
  bool centre = out & BIT(BC);
  if (centre && (centre_first || !(out & BIT(other)))) {
    m[BC][from] += HALF_POWER;
    m[BC][from + 1] += HALF_POWER;
  } else if (out & BIT(other)) {
    double level = in & BIT(other) ? HALF_POWER : 1.0;
    m[other][from] += level;
    m[other + 1][from + 1] += level;
  } else if (out & BIT(FL)) {
    /* libcubeb mixes with no matrix encoding: left to left. */
    m[FL][from] += HALF_POWER;
    m[FR][from + 1] += HALF_POWER;
  } else if (out & BIT(FC)) {
    m[FC][from] += HALF_POWER * HALF_POWER;
    m[FC][from + 1] += HALF_POWER * HALF_POWER;
  }
}

/* libcubeb's matrix, by channel name. */
static void
named_matrix(double m[NAMED][NAMED], uint32_t in, uint32_t out)
{
  memset(m, 0, sizeof(double[NAMED][NAMED]));
  for (int i = 0; i < NAMED; i++) {
    if (in & out & BIT(i))
      m[i][i] = 1.0;
  }
  uint32_t missing = in & ~out;
  if ((missing & BIT(FC)) && (out & FRONT_PAIR) == FRONT_PAIR) {
    m[FL][FC] += HALF_POWER;
    m[FR][FC] += HALF_POWER;
  }
  if ((missing & FRONT_PAIR) && (out & BIT(FC))) {
    m[FC][FL] += HALF_POWER;
    m[FC][FR] += HALF_POWER;
    if (in & BIT(FC))
      m[FC][FC] = 1.0;
  }
  if (missing & BIT(BC)) {
    if (out & BIT(BL)) {
      m[BL][BC] += HALF_POWER;
      m[BR][BC] += HALF_POWER;
    } else if (out & BIT(SL)) {
      m[SL][BC] += HALF_POWER;
      m[SR][BC] += HALF_POWER;
    } else if (out & BIT(FL)) {
      m[FL][BC] += HALF_POWER * HALF_POWER;
      m[FR][BC] += HALF_POWER * HALF_POWER;
    } else if (out & BIT(FC)) {
      m[FC][BC] += HALF_POWER * HALF_POWER;
    }
  }
  if (missing & BIT(BL))
    fold_pair(m, in, out, BL, SL, true);
  if (missing & BIT(SL))
    fold_pair(m, in, out, SL, BL, false);
  if (missing & BIT(FLC)) {
    if (out & BIT(FL)) {
      m[FL][FLC] += 1.0;
      m[FR][FRC] += 1.0;
    } else if (out & BIT(FC)) {
      m[FC][FLC] += HALF_POWER;
      m[FC][FRC] += HALF_POWER;
    }
  }
  if (missing & BIT(LFE)) {
    if (out & BIT(FC)) {
      m[FC][LFE] += 1.0;
    } else if (out & BIT(FL)) {
      m[FL][LFE] += HALF_POWER;
      m[FR][LFE] += HALF_POWER;
    }
  }
}

static void
add_term(struct aipc_mixer *m, uint32_t out, uint32_t in, float coef)
{
  uint8_t n = m->terms[out]++;
  m->source[out][n] = (uint8_t)in;
  m->coef[out][n] = coef;
}

/* Channel i to channel i; mono to the first two. */
static void
channel_order(struct aipc_mixer *m)
{
  if (m->in_channels == 1 && m->out_channels >= 2) {
    add_term(m, 0, 0, 1.0f);
    add_term(m, 1, 0, 1.0f);
    return;
  }
  for (uint32_t c = 0; c < m->in_channels && c < m->out_channels; c++)
    add_term(m, c, c, 1.0f);
}

static bool
layouts_apply(uint32_t in_channels, uint32_t in, uint32_t out_channels,
              uint32_t out)
{
  return (uint32_t)__builtin_popcount(in) == in_channels &&
         (uint32_t)__builtin_popcount(out) == out_channels &&
         sane(cleaned(in)) && sane(cleaned(out));
}

void
aipc_mixer_init(struct aipc_mixer *m, uint32_t in_channels,
                cubeb_channel_layout in_layout, uint32_t out_channels,
                cubeb_channel_layout out_layout)
{
  memset(m, 0, sizeof(*m));
  m->in_channels = in_channels;
  m->out_channels = out_channels;
  if (!layouts_apply(in_channels, in_layout, out_channels, out_layout)) {
    channel_order(m);
    return;
  }
  uint32_t in = cleaned(in_layout), out = cleaned(out_layout);
  double named[NAMED][NAMED];
  named_matrix(named, in, out);
  uint32_t o = 0;
  for (uint32_t i = 0; i < 32; i++) {
    if (!(out & BIT(i)))
      continue;
    uint32_t s = 0;
    for (uint32_t j = 0; j < 32; j++) {
      if (!(in & BIT(j)))
        continue;
      double coef = i < NAMED && j < NAMED
                        ? named[i][j]
                        : (double)(i == j && (in & out & BIT(i)));
      if (coef != 0.0)
        add_term(m, o, s, (float)coef);
      s++;
    }
    o++;
  }
}

bool
aipc_mixer_is_identity(const struct aipc_mixer *m)
{
  if (m->in_channels != m->out_channels)
    return false;
  for (uint32_t c = 0; c < m->out_channels; c++) {
    if (m->terms[c] != 1 || m->source[c][0] != c || m->coef[c][0] != 1.0f)
      return false;
  }
  return true;
}

void
aipc_mixer_frame(const struct aipc_mixer *m, const float *in, float *out)
{
  for (uint32_t c = 0; c < m->out_channels; c++) {
    uint32_t n = m->terms[c];
    if (n == 0) {
      out[c] = 0.0f;
      continue;
    }
    float v = m->coef[c][0] * in[m->source[c][0]];
    for (uint32_t t = 1; t < n; t++)
      v += m->coef[c][t] * in[m->source[c][t]];
    out[c] = v;
  }
}
