/* SPDX-License-Identifier: ISC */
/*
 * tone-check: does a sound file (any that libsndfile reads) hold each
 * of the given tones?
 *
 *   tone-check FILE [--frames MIN:MAX] HZ...
 *
 * For each HZ, measures the amplitude of that frequency over the whole
 * file (channels averaged) with a Goertzel filter, and compares it with
 * the amplitude at HZ - 65 and HZ + 65, where nothing was played (the
 * tests' tones are 130 Hz apart). A tone is present if its amplitude is
 * at least 0.01 and 20 times the larger reference. Exits 0 if every tone
 * is present (and the frame count is within MIN..MAX), 1 if not, 2 for
 * bad arguments or an unreadable file.
 */
#include "../tone.h"
#include "sound-file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFERENCE_OFFSET_HZ 65.0
#define MIN_AMPLITUDE 0.01
#define MIN_RATIO 20.0

static int
usage(void)
{
  fprintf(stderr, "usage: tone-check FILE.wav [--frames MIN:MAX] HZ...\n");
  return 2;
}

int
main(int argc, char **argv)
{
  if (argc < 3)
    return usage();
  const char *path = argv[1];
  int first = 2;
  unsigned long long min_frames = 0, max_frames = ~0ULL;
  if (strcmp(argv[2], "--frames") == 0) {
    if (argc < 5 || sscanf(argv[3], "%llu:%llu", &min_frames, &max_frames) != 2)
      return usage();
    first = 4;
  }

  struct aipc_sound_data wav;
  char why[AIPC_SOUND_WHY_MAX];
  int r = aipc_sound_load(path, 32, &wav, why, sizeof(why));
  if (r < 0) {
    fprintf(stderr, "tone-check: cannot read %s: %s\n", path, why);
    return 2;
  }
  float *mono = malloc(wav.frames * sizeof(*mono));
  if (!mono) {
    fprintf(stderr, "tone-check: out of memory\n");
    aipc_sound_data_clear(&wav);
    return 2;
  }
  for (uint64_t i = 0; i < wav.frames; i++) {
    double sum = 0.0;
    for (uint32_t c = 0; c < wav.channels; c++)
      sum += wav.samples[i * wav.channels + c];
    mono[i] = (float)(sum / wav.channels);
  }

  int status = 0;
  printf("%s: %llu frames, %u channels, %u Hz\n", path,
         (unsigned long long)wav.frames, wav.channels, wav.rate);
  if (wav.frames < min_frames || wav.frames > max_frames) {
    printf("  frame count outside %llu..%llu\n", min_frames, max_frames);
    status = 1;
  }
  for (int i = first; i < argc; i++) {
    char *end;
    double freq = strtod(argv[i], &end);
    if (*end || !(freq > REFERENCE_OFFSET_HZ) || freq >= wav.rate / 2.0) {
      fprintf(stderr, "tone-check: bad frequency %s\n", argv[i]);
      status = 2;
      break;
    }
    double a = test_tone_amplitude(mono, 1, wav.frames, freq, wav.rate);
    double below = test_tone_amplitude(mono, 1, wav.frames,
                                       freq - REFERENCE_OFFSET_HZ, wav.rate);
    double above = test_tone_amplitude(mono, 1, wav.frames,
                                       freq + REFERENCE_OFFSET_HZ, wav.rate);
    double ref = below > above ? below : above;
    bool present = a >= MIN_AMPLITUDE && a >= MIN_RATIO * ref;
    printf("  %7.1f Hz: amplitude %.4f, reference %.6f: %s\n", freq, a, ref,
           present ? "present" : "MISSING");
    if (!present)
      status = 1;
  }
  free(mono);
  aipc_sound_data_clear(&wav);
  return status;
}
