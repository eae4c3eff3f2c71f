/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: does the virtual device's mix hold what the clients played?
 *
 * Each client plays a sine of its own frequency at its gain, the same in
 * both channels, and the device sums them (bit for bit: float, volume
 * 1). So in every block of the file where no stream starts, ends or
 * missed a deadline, a least-squares fit of the clients' frequencies
 * (a cosine and a sine each) leaves nothing but rounding, and each
 * frequency's amplitude is its client's gain or 0. A block where a
 * stream's sound begins or stops part-way does not fit: the exact
 * blocks on either side of it then differ by that tone, and each such
 * change explains one block. Another block that does not fit is
 * explained only by a miss of one of the streams around it (at most two
 * blocks per missed request: the silence may straddle two). Anything
 * else that does not fit is audio the software changed.
 */
#include "demo.h"
#include "sound-file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounding of float samples (about 1e-7) and of 16-bit ones (1.5e-5). */
#define MIX_TOLERANCE 1e-4
#define MIX_BLOCK_S 0.1
#define MIX_UNKNOWNS_MAX (2 * DEMO_MAX_CLIENTS)
/* Runs of blocks that do not fit are explained period by period when
 * at most this many tones are heard around them. */
#define MIX_REFINE_TONES 5

/* Solves the symmetric positive definite system g x = b (n unknowns,
 * g row-major) by Cholesky, in place. Returns -1 if g is singular. */
static int
solve(double *g, double *b, unsigned n)
{
  for (unsigned j = 0; j < n; j++) {
    double d = g[j * n + j];
    for (unsigned k = 0; k < j; k++)
      d -= g[j * n + k] * g[j * n + k];
    if (!(d > 0))
      return -1;
    d = sqrt(d);
    g[j * n + j] = d;
    for (unsigned i = j + 1; i < n; i++) {
      double v = g[i * n + j];
      for (unsigned k = 0; k < j; k++)
        v -= g[i * n + k] * g[j * n + k];
      g[i * n + j] = v / d;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    double v = b[i];
    for (unsigned k = 0; k < i; k++)
      v -= g[i * n + k] * b[k];
    b[i] = v / g[i * n + i];
  }
  for (unsigned i = n; i-- > 0;) {
    double v = b[i];
    for (unsigned k = i + 1; k < n; k++)
      v -= g[k * n + i] * b[k];
    b[i] = v / g[i * n + i];
  }
  return 0;
}

/* The file and what is known of it. */
struct mix {
  const struct aipc_sound_data *wav;
  const struct demo_mix_tone *tones;
  unsigned count;
  uint32_t period;
  double omega[DEMO_MAX_CLIENTS];
  uint64_t block;
  unsigned blocks;
  bool *exact;    /* per block */
  uint32_t *mask; /* per exact block: bit k if tone k is in it */
  double *coef;   /* per exact block: cosine and sine of each tone */
};

static double
sample(const struct mix *m, uint64_t t)
{
  return m->wav->samples[t * m->wav->channels];
}

/* The basis at frame t: cos and sin of each tone. */
static void
basis(const struct mix *m, uint64_t t, double *out)
{
  for (unsigned k = 0; k < m->count; k++) {
    double phase = m->omega[k] * (double)t;
    out[2 * k] = cos(phase);
    out[2 * k + 1] = sin(phase);
  }
}

static uint64_t
block_end(const struct mix *m, unsigned i)
{
  /* The last block takes the rest of the file. */
  return i + 1 == m->blocks ? m->wav->frames : (i + 1) * m->block;
}

/* Fits block i of the left channel; true if it holds exactly each tone
 * at its gain or not at all, and then the tones it holds in mask[i] and
 * their coefficients in coef. */
static bool
fit_block(struct mix *m, unsigned i)
{
  const unsigned n = 2 * m->count;
  static double g[MIX_UNKNOWNS_MAX * MIX_UNKNOWNS_MAX];
  double *b = m->coef + (size_t)i * n, phi[MIX_UNKNOWNS_MAX];
  uint64_t from = i * m->block, to = block_end(m, i);
  memset(g, 0, sizeof(double) * n * n);
  memset(b, 0, sizeof(double) * n);
  for (uint64_t t = from; t < to; t++) {
    double y = sample(m, t);
    basis(m, t, phi);
    for (unsigned r = 0; r < n; r++) {
      b[r] += phi[r] * y;
      for (unsigned c = 0; c <= r; c++)
        g[r * n + c] += phi[r] * phi[c];
    }
  }
  for (unsigned r = 0; r < n; r++)
    for (unsigned c = r + 1; c < n; c++)
      g[r * n + c] = g[c * n + r];
  if (solve(g, b, n) < 0)
    return false;
  for (uint64_t t = from; t < to; t++) {
    double fit = 0;
    basis(m, t, phi);
    for (unsigned r = 0; r < n; r++)
      fit += b[r] * phi[r];
    if (fabs(sample(m, t) - fit) > MIX_TOLERANCE)
      return false;
  }
  uint32_t here = 0;
  for (unsigned k = 0; k < m->count; k++) {
    double a = hypot(b[2 * k], b[2 * k + 1]);
    if (fabs(a - m->tones[k].gain) <= MIX_TOLERANCE)
      here |= UINT32_C(1) << k;
    else if (a > MIX_TOLERANCE)
      return false;
  }
  m->mask[i] = here;
  return true;
}

/* A tone around a run of blocks that do not fit: as the exact block
 * before it has it (variant 1) and as the one after (variant 2, or 1
 * again if the same), each the tone's exact waveform there. */
struct run_tone {
  unsigned k;
  unsigned variants;
  const double *coef[2];
  unsigned state;      /* 0: absent; else the variant heard last */
  bool heard;          /* before the run or in it */
  double wave[2][512]; /* the variants over the current segment */
};

/* The largest index of a frame of [0, len) where `combo` (a variant or 0
 * per tone, less tone `without`) leaves more than the tolerance, plus
 * one; 0 if it fits everywhere. `first` gets the first such frame (len
 * if none). */
static uint64_t
misfit(const struct mix *m, const struct run_tone *rt, unsigned n,
       const unsigned *combo, int without, uint64_t from, uint64_t len,
       uint64_t *first)
{
  uint64_t last = 0;
  *first = len;
  for (uint64_t t = 0; t < len; t++) {
    double y = sample(m, from + t);
    for (unsigned j = 0; j < n; j++)
      if (combo[j] && (int)j != without)
        y -= rt[j].wave[combo[j] - 1][t];
    if (fabs(y) > MIX_TOLERANCE) {
      if (*first == len)
        *first = t;
      last = t + 1;
    }
  }
  return last;
}

/* Finds what the segment [from, from + len) holds: each tone absent or
 * one of its variants, all through, or one of them stopping part-way
 * (a stream's last, short answer). Prefers the tones' current states.
 * Returns false if nothing fits; else the states in combo, and in
 * *stopped the tone that stopped after its part, or -1. */
static bool
fit_segment(const struct mix *m, const struct run_tone *rt, unsigned n,
            uint64_t from, uint64_t len, unsigned *combo, int *stopped)
{
  unsigned total = 1;
  for (unsigned j = 0; j < n; j++)
    total *= rt[j].variants + 1;
  uint64_t first, first2;
  *stopped = -1;
  for (unsigned j = 0; j < n; j++)
    combo[j] = rt[j].state;
  if (misfit(m, rt, n, combo, -1, from, len, &first) == 0)
    return true;
  for (unsigned c = 0; c < total; c++) {
    unsigned v = c;
    for (unsigned j = 0; j < n; j++) {
      combo[j] = v % (rt[j].variants + 1);
      v /= rt[j].variants + 1;
    }
    if (misfit(m, rt, n, combo, -1, from, len, &first) == 0)
      return true;
    for (unsigned j = 0; j < n; j++) {
      if (!combo[j])
        continue;
      uint64_t last = misfit(m, rt, n, combo, (int)j, from, len, &first2);
      if (last <= first) {
        *stopped = (int)j;
        return true;
      }
    }
  }
  return false;
}

/* Notes tone j's state in the next segment; false if it comes back, or
 * changes waveform, with no miss of its stream to explain it. */
static bool
advance(const struct mix *m, struct run_tone *t, unsigned state)
{
  bool gap = state && state != t->state && t->heard;
  if (gap && !m->tones[t->k].misses)
    return false;
  t->state = state;
  t->heard |= state != 0;
  return true;
}

/*
 * Explains the run of blocks first..last, none of which fits, between
 * the exact blocks prev and next (-1: the file's ends, where nothing
 * plays), period by period. Returns 1 if every period holds the tones
 * around it, each absent or whole, changing only where a stream starts
 * or stops and, for a stream that missed, where it came back; 0 if
 * not; -1 if it cannot tell (no period, too many tones, or a period
 * that fits nothing next to a stream that missed).
 */
static int
explain_run(const struct mix *m, unsigned first, unsigned last, int prev,
            int next)
{
  const unsigned stride = 2 * m->count;
  uint32_t before = prev >= 0 ? m->mask[prev] : 0;
  uint32_t after = next >= 0 ? m->mask[next] : 0;
  static struct run_tone rt[MIX_REFINE_TONES];
  unsigned n = 0;
  if (m->period == 0 || m->period > 512)
    return -1;
  for (unsigned k = 0; k < m->count; k++) {
    if (!((before | after) >> k & 1))
      continue;
    if (n == MIX_REFINE_TONES)
      return -1;
    struct run_tone *t = &rt[n++];
    *t = (struct run_tone){.k = k};
    if (before >> k & 1) {
      t->coef[t->variants++] = m->coef + (size_t)prev * stride + 2 * k;
      t->state = 1;
      t->heard = true;
    }
    if (after >> k & 1) {
      const double *c = m->coef + (size_t)next * stride + 2 * k;
      if (!t->variants || fabs(c[0] - t->coef[0][0]) > MIX_TOLERANCE ||
          fabs(c[1] - t->coef[0][1]) > MIX_TOLERANCE)
        t->coef[t->variants++] = c;
    }
  }
  /* A stream that missed twice in the run may come back in between with
   * a phase neither block has (its client was not asked meanwhile):
   * then the count decides. */
  bool missed = false;
  for (unsigned j = 0; j < n; j++)
    missed |= m->tones[rt[j].k].misses > 0;
  uint64_t from = first * m->block, to = block_end(m, last);
  while (from < to) {
    uint64_t end = (from / m->period + 1) * m->period;
    uint64_t len = (end < to ? end : to) - from;
    for (unsigned j = 0; j < n; j++)
      for (unsigned v = 0; v < rt[j].variants; v++)
        for (uint64_t t = 0; t < len; t++) {
          double phase = m->omega[rt[j].k] * (double)(from + t);
          rt[j].wave[v][t] =
              rt[j].coef[v][0] * cos(phase) + rt[j].coef[v][1] * sin(phase);
        }
    unsigned combo[MIX_REFINE_TONES];
    int stopped;
    if (!fit_segment(m, rt, n, from, len, combo, &stopped))
      return missed ? -1 : 0;
    for (unsigned j = 0; j < n; j++)
      if (!advance(m, &rt[j], combo[j]))
        return 0;
    if (stopped >= 0)
      rt[stopped].state = 0;
    from += len;
  }
  /* Into the next block: as its variant. */
  for (unsigned j = 0; j < n; j++)
    if ((after >> rt[j].k & 1) && !advance(m, &rt[j], rt[j].variants))
      return 0;
  return 1;
}

/*
 * Counts the blocks that do not fit and that nothing explains. Each run
 * of them is explained period by period where it can be (explain_run);
 * else, between exact blocks (or the file's ends, where no tone plays),
 * each tone that one side has and the other has not explains one block
 * and the rest need a miss of a stream heard on either side, two blocks
 * per miss at most. Fills out->exact and out->explained.
 */
static unsigned
unexplained(const struct mix *m, struct demo_mix_result *out)
{
  uint64_t budget = 0;
  for (unsigned k = 0; k < m->count; k++)
    budget += 2 * m->tones[k].misses;
  unsigned bad = 0;
  int prev = -1;
  for (unsigned i = 0; i < m->blocks;) {
    if (m->exact[i]) {
      out->exact++;
      prev = (int)i++;
      continue;
    }
    unsigned first = i, run = 0;
    while (i < m->blocks && !m->exact[i]) {
      run++;
      i++;
    }
    int next = i < m->blocks ? (int)i : -1;
    int how = explain_run(m, first, i - 1, prev, next);
    if (how >= 0) {
      out->explained += how ? run : 0;
      bad += how ? 0 : run;
      continue;
    }
    uint32_t before = prev >= 0 ? m->mask[prev] : 0;
    uint32_t after = next >= 0 ? m->mask[next] : 0;
    /* A stream that starts or ends there disturbs one block. */
    unsigned changes = (unsigned)__builtin_popcount(before ^ after);
    unsigned left = run > changes ? run - changes : 0;
    bool missed = false;
    for (unsigned k = 0; k < m->count; k++)
      missed |= ((before | after) >> k & 1) && m->tones[k].misses;
    unsigned take = missed ? (left < budget ? left : (unsigned)budget) : 0;
    budget -= take;
    out->explained += run - left + take;
    bad += left - take;
  }
  return bad;
}

/* Returns the first frame whose channels differ, or wav->frames. */
static uint64_t
channels_differ(const struct aipc_sound_data *wav)
{
  for (uint64_t t = 0; t < wav->frames; t++) {
    const float *f = wav->samples + t * wav->channels;
    for (uint32_t c = 1; c < wav->channels; c++)
      if (memcmp(&f[c], &f[0], sizeof(*f)) != 0)
        return t;
  }
  return wav->frames;
}

static void
check(const struct aipc_sound_data *wav, uint32_t rate, uint32_t period,
      uint64_t frames, const struct demo_mix_tone *tones, unsigned count,
      struct demo_mix_result *out)
{
  size_t size = sizeof(out->problem);
  struct mix m = {.wav = wav, .tones = tones, .count = count, .period = period};
  if (wav->channels != 2 || wav->rate != rate) {
    snprintf(out->problem, size, "%u channels at %u Hz, not stereo at %u Hz",
             wav->channels, wav->rate, rate);
    return;
  }
  for (unsigned k = 0; k < count; k++) {
    if (tones[k].freq >= rate / 2.0 - 50) {
      snprintf(out->problem, size, "%.0f Hz is too close to half the rate",
               tones[k].freq);
      return;
    }
    m.omega[k] = 2.0 * M_PI * tones[k].freq / rate;
  }
  out->checked = true;
  if (wav->frames < frames) {
    snprintf(out->problem, size,
             "it holds %llu frames, fewer than the %llu each client played",
             (unsigned long long)wav->frames, (unsigned long long)frames);
    return;
  }
  uint64_t differ = channels_differ(wav);
  if (differ < wav->frames) {
    snprintf(out->problem, size,
             "its channels differ at frame %llu (each tone is the same in "
             "both)",
             (unsigned long long)differ);
    return;
  }
  m.block = (uint64_t)(rate * MIX_BLOCK_S);
  m.blocks = (unsigned)(wav->frames / m.block ? wav->frames / m.block : 1);
  m.exact = calloc(m.blocks, sizeof(*m.exact));
  m.mask = calloc(m.blocks, sizeof(*m.mask));
  m.coef = calloc((size_t)m.blocks * 2 * count, sizeof(*m.coef));
  uint32_t heard = 0;
  if (!m.exact || !m.mask || !m.coef) {
    snprintf(out->problem, size, "out of memory");
    goto out;
  }
  out->blocks = m.blocks;
  for (unsigned i = 0; i < m.blocks; i++) {
    m.exact[i] = fit_block(&m, i);
    if (m.exact[i])
      heard |= m.mask[i];
  }
  unsigned bad = unexplained(&m, out);
  if (bad) {
    snprintf(out->problem, size,
             "%u of its %u blocks of %.0f ms do not hold exactly the "
             "clients' tones at their gains, and no stream starts, ends or "
             "missed there",
             bad, m.blocks, out->block_ms);
    goto out;
  }
  /* Without misses only starts and ends disturb blocks, and a stream of
   * a second or more has whole blocks of its own: each tone must be
   * heard in one. */
  uint64_t misses = 0;
  for (unsigned k = 0; k < count; k++)
    misses += tones[k].misses;
  for (unsigned k = 0; misses == 0 && frames >= rate && k < count; k++)
    out->tones_missing += !(heard >> k & 1);
  if (out->tones_missing)
    snprintf(out->problem, size,
             "%u of the clients' tones are in none of its exact blocks",
             out->tones_missing);
out:
  free(m.exact);
  free(m.mask);
  free(m.coef);
}

int
demo_mix_check(const char *path, uint32_t rate, uint32_t period,
               uint64_t frames, const struct demo_mix_tone *tones,
               unsigned count, struct demo_mix_result *out)
{
  *out = (struct demo_mix_result){.block_ms = MIX_BLOCK_S * 1000};
  struct aipc_sound_data wav;
  char why[256];
  if (aipc_sound_load(path, 32, &wav, why, sizeof(why)) < 0) {
    fprintf(stderr, "aipc demo: cannot read the mix %s: %s\n", path, why);
    return -1;
  }
  out->frames = wav.frames;
  check(&wav, rate, period, frames, tones, count, out);
  aipc_sound_data_clear(&wav);
  return 0;
}
