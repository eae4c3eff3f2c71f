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
#include "wav.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounding of float samples (about 1e-7) and of 16-bit ones (1.5e-5). */
#define MIX_TOLERANCE 1e-4
#define MIX_BLOCK_S 0.1
#define MIX_UNKNOWNS_MAX (2 * DEMO_MAX_CLIENTS)

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

/* The basis at frame t: cos and sin of each tone. */
static void
basis(const double *omega, unsigned count, uint64_t t, double *out)
{
  for (unsigned k = 0; k < count; k++) {
    double phase = omega[k] * (double)t;
    out[2 * k] = cos(phase);
    out[2 * k + 1] = sin(phase);
  }
}

/* Fits one block [from, to) of the left channel; true if it holds
 * exactly each tone at its gain or not at all, and then the tones it
 * holds in *mask (bit k for tone k). */
static bool
fit_block(const struct aipc_wav_data *wav, uint64_t from, uint64_t to,
          const double *omega, const struct demo_mix_tone *tones,
          unsigned count, uint32_t *mask)
{
  const unsigned n = 2 * count;
  static double g[MIX_UNKNOWNS_MAX * MIX_UNKNOWNS_MAX];
  double b[MIX_UNKNOWNS_MAX], phi[MIX_UNKNOWNS_MAX];
  memset(g, 0, sizeof(double) * n * n);
  memset(b, 0, sizeof(double) * n);
  for (uint64_t t = from; t < to; t++) {
    double y = wav->samples[t * wav->channels];
    basis(omega, count, t, phi);
    for (unsigned i = 0; i < n; i++) {
      b[i] += phi[i] * y;
      for (unsigned j = 0; j <= i; j++)
        g[i * n + j] += phi[i] * phi[j];
    }
  }
  for (unsigned i = 0; i < n; i++)
    for (unsigned j = i + 1; j < n; j++)
      g[i * n + j] = g[j * n + i];
  if (solve(g, b, n) < 0)
    return false;
  for (uint64_t t = from; t < to; t++) {
    double fit = 0;
    basis(omega, count, t, phi);
    for (unsigned i = 0; i < n; i++)
      fit += b[i] * phi[i];
    if (fabs(wav->samples[t * wav->channels] - fit) > MIX_TOLERANCE)
      return false;
  }
  uint32_t here = 0;
  for (unsigned k = 0; k < count; k++) {
    double a = hypot(b[2 * k], b[2 * k + 1]);
    if (fabs(a - tones[k].gain) <= MIX_TOLERANCE)
      here |= UINT32_C(1) << k;
    else if (a > MIX_TOLERANCE)
      return false;
  }
  *mask = here;
  return true;
}

/*
 * Counts the blocks that do not fit and that nothing explains. In each
 * run of them, between exact blocks (or the file's ends, where no tone
 * plays), each tone that one side has and the other has not explains
 * one block; the rest need a miss of a stream heard on either side, two
 * blocks per miss at most. Fills out->exact and out->explained.
 */
static unsigned
unexplained(const bool *exact, const uint32_t *mask, unsigned blocks,
            const struct demo_mix_tone *tones, unsigned count,
            struct demo_mix_result *out)
{
  uint64_t budget = 0;
  for (unsigned k = 0; k < count; k++)
    budget += 2 * tones[k].misses;
  unsigned bad = 0;
  uint32_t before = 0;
  for (unsigned i = 0; i < blocks;) {
    if (exact[i]) {
      out->exact++;
      before = mask[i++];
      continue;
    }
    unsigned run = 0;
    while (i < blocks && !exact[i]) {
      run++;
      i++;
    }
    uint32_t after = i < blocks ? mask[i] : 0;
    /* A stream that starts or ends there disturbs one block. */
    unsigned changes = (unsigned)__builtin_popcount(before ^ after);
    unsigned left = run > changes ? run - changes : 0;
    bool missed = false;
    for (unsigned k = 0; k < count; k++)
      missed |= ((before | after) >> k & 1) && tones[k].misses;
    unsigned take = missed ? (left < budget ? left : (unsigned)budget) : 0;
    budget -= take;
    out->explained += run - left + take;
    bad += left - take;
  }
  return bad;
}

/* Returns the first frame whose channels differ, or wav->frames. */
static uint64_t
channels_differ(const struct aipc_wav_data *wav)
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
check(const struct aipc_wav_data *wav, uint32_t rate, uint64_t frames,
      const struct demo_mix_tone *tones, unsigned count,
      struct demo_mix_result *out)
{
  size_t size = sizeof(out->problem);
  if (wav->channels != 2 || wav->rate != rate) {
    snprintf(out->problem, size, "%u channels at %u Hz, not stereo at %u Hz",
             wav->channels, wav->rate, rate);
    return;
  }
  double omega[DEMO_MAX_CLIENTS];
  for (unsigned k = 0; k < count; k++) {
    if (tones[k].freq >= rate / 2.0 - 50) {
      snprintf(out->problem, size, "%.0f Hz is too close to half the rate",
               tones[k].freq);
      return;
    }
    omega[k] = 2.0 * M_PI * tones[k].freq / rate;
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
  uint64_t block = (uint64_t)(rate * MIX_BLOCK_S);
  unsigned blocks = (unsigned)(wav->frames / block ? wav->frames / block : 1);
  bool *exact = calloc(blocks, sizeof(*exact));
  uint32_t *mask = calloc(blocks, sizeof(*mask)), heard = 0;
  if (!exact || !mask) {
    snprintf(out->problem, size, "out of memory");
    goto out;
  }
  out->blocks = blocks;
  for (unsigned i = 0; i < blocks; i++) {
    /* The last block takes the rest of the file. */
    uint64_t to = i + 1 == blocks ? wav->frames : (i + 1) * block;
    exact[i] = fit_block(wav, i * block, to, omega, tones, count, &mask[i]);
    if (exact[i])
      heard |= mask[i];
  }
  unsigned bad = unexplained(exact, mask, blocks, tones, count, out);
  if (bad) {
    snprintf(out->problem, size,
             "%u of its %u blocks of %.0f ms do not hold exactly the "
             "clients' tones at their gains, and no stream starts, ends or "
             "missed there",
             bad, blocks, out->block_ms);
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
  free(exact);
  free(mask);
}

int
demo_mix_check(const char *path, uint32_t rate, uint64_t frames,
               const struct demo_mix_tone *tones, unsigned count,
               struct demo_mix_result *out)
{
  *out = (struct demo_mix_result){.block_ms = MIX_BLOCK_S * 1000};
  struct aipc_wav_data wav;
  int r = aipc_wav_read(path, 32, &wav);
  if (r < 0) {
    fprintf(stderr, "aipc demo: cannot read the mix %s: %s\n", path,
            aipc_wav_strerror(r));
    return -1;
  }
  out->frames = wav.frames;
  check(&wav, rate, frames, tones, count, out);
  aipc_wav_data_clear(&wav);
  return 0;
}
