/* SPDX-License-Identifier: ISC */
/*
 * sound-tool: sound files for the aipc tool's tests, through libsndfile
 * (not through the code under test).
 *
 *   sound-tool gen PATH CONTAINER SAMPLES RATE CHANNELS FRAMES HZ
 *       writes a sine of HZ at amplitude 0.5 in every channel; CONTAINER
 *       is wav, wavex (WAVE_FORMAT_EXTENSIBLE), w64, aiff, au, caf, flac
 *       or ogg; SAMPLES u8, s8, s16, s24, s32, f32, f64 or vorbis
 *   sound-tool info PATH
 *       prints "CONTAINER SAMPLES RATE CHANNELS FRAMES" as libsndfile
 *       reads the header (names as above, in hex if unknown)
 *   sound-tool same A B
 *       exit 0 if A and B hold the same frames, read as float, bit for
 *       bit; else says where they differ
 *   sound-tool peak PATH
 *       prints the largest absolute sample, read as float
 *   sound-tool count PATH
 *       prints how many frames can be read (of a file still being
 *       written, whose header may not say)
 *
 * Exit status 0, 1 (not the same), 2 (bad arguments, unreadable file).
 */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *name;
  int format;
} containers[] = {
    {"wav", SF_FORMAT_WAV},   {"wavex", SF_FORMAT_WAVEX},
    {"w64", SF_FORMAT_W64},   {"aiff", SF_FORMAT_AIFF},
    {"au", SF_FORMAT_AU},     {"caf", SF_FORMAT_CAF},
    {"flac", SF_FORMAT_FLAC}, {"ogg", SF_FORMAT_OGG},
};

static const struct {
  const char *name;
  int format;
} samples[] = {
    {"u8", SF_FORMAT_PCM_U8},  {"s8", SF_FORMAT_PCM_S8},
    {"s16", SF_FORMAT_PCM_16}, {"s24", SF_FORMAT_PCM_24},
    {"s32", SF_FORMAT_PCM_32}, {"f32", SF_FORMAT_FLOAT},
    {"f64", SF_FORMAT_DOUBLE}, {"vorbis", SF_FORMAT_VORBIS},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static SNDFILE *
open_read(const char *path, SF_INFO *info)
{
  memset(info, 0, sizeof(*info));
  SNDFILE *f = sf_open(path, SFM_READ, info);
  if (!f)
    fprintf(stderr, "sound-tool: %s: %s\n", path, sf_strerror(NULL));
  return f;
}

static int
gen(char **argv)
{
  int format = 0, sub = 0;
  for (size_t i = 0; i < COUNT(containers); i++)
    if (strcmp(argv[1], containers[i].name) == 0)
      format = containers[i].format;
  for (size_t i = 0; i < COUNT(samples); i++)
    if (strcmp(argv[2], samples[i].name) == 0)
      sub = samples[i].format;
  SF_INFO info = {.samplerate = atoi(argv[3]),
                  .channels = atoi(argv[4]),
                  .format = format | sub};
  long frames = atol(argv[5]);
  double hz = atof(argv[6]);
  if (!format || !sub || frames <= 0 || !sf_format_check(&info)) {
    fprintf(stderr, "sound-tool: cannot make %s %s %s Hz, %s channels\n",
            argv[1], argv[2], argv[3], argv[4]);
    return 2;
  }
  SNDFILE *f = sf_open(argv[0], SFM_WRITE, &info);
  if (!f) {
    fprintf(stderr, "sound-tool: %s: %s\n", argv[0], sf_strerror(NULL));
    return 2;
  }
  double *frame = calloc((size_t)info.channels, sizeof(double));
  for (long k = 0; k < frames; k++) {
    double v = 0.5 * sin(2 * M_PI * hz * (double)k / info.samplerate);
    for (int c = 0; c < info.channels; c++)
      frame[c] = v;
    if (sf_writef_double(f, frame, 1) != 1) {
      fprintf(stderr, "sound-tool: %s: %s\n", argv[0], sf_strerror(f));
      return 2;
    }
  }
  free(frame);
  return sf_close(f) == 0 ? 0 : 2;
}

static int
info_cmd(const char *path)
{
  SF_INFO info;
  SNDFILE *f = open_read(path, &info);
  if (!f)
    return 2;
  const char *c = NULL, *s = NULL;
  for (size_t i = 0; i < COUNT(containers); i++)
    if ((info.format & SF_FORMAT_TYPEMASK) == containers[i].format)
      c = containers[i].name;
  for (size_t i = 0; i < COUNT(samples); i++)
    if ((info.format & SF_FORMAT_SUBMASK) == samples[i].format)
      s = samples[i].name;
  char cbuf[16], sbuf[16];
  snprintf(cbuf, sizeof(cbuf), "0x%x", info.format & SF_FORMAT_TYPEMASK);
  snprintf(sbuf, sizeof(sbuf), "0x%x", info.format & SF_FORMAT_SUBMASK);
  printf("%s %s %d %d %lld\n", c ? c : cbuf, s ? s : sbuf, info.samplerate,
         info.channels, (long long)info.frames);
  sf_close(f);
  return 0;
}

static int
same(const char *a, const char *b)
{
  SF_INFO ia, ib;
  SNDFILE *fa = open_read(a, &ia), *fb = fa ? open_read(b, &ib) : NULL;
  if (!fa || !fb)
    return 2;
  int status = 0;
  if (ia.channels != ib.channels || ia.frames != ib.frames) {
    printf("sound-tool: %s has %d channels and %lld frames, %s %d and "
           "%lld\n",
           a, ia.channels, (long long)ia.frames, b, ib.channels,
           (long long)ib.frames);
    status = 1;
  }
  float va[64], vb[64];
  int ch = ia.channels;
  for (long long k = 0; status == 0 && k < ia.frames; k++) {
    if (ch > 64 || sf_readf_float(fa, va, 1) != 1 ||
        sf_readf_float(fb, vb, 1) != 1) {
      printf("sound-tool: cannot read frame %lld\n", k);
      status = 2;
      break;
    }
    if (memcmp(va, vb, (size_t)ch * sizeof(float)) != 0) {
      printf("sound-tool: frame %lld differs: %.9g against %.9g\n", k,
             (double)va[0], (double)vb[0]);
      status = 1;
    }
  }
  sf_close(fa);
  sf_close(fb);
  return status;
}

static int
count(const char *path)
{
  SF_INFO info;
  SNDFILE *f = open_read(path, &info);
  if (!f)
    return 2;
  float buf[4096];
  long long frames = 0;
  sf_count_t n;
  while ((n = sf_readf_float(f, buf, 4096 / info.channels)) > 0)
    frames += n;
  printf("%lld\n", frames);
  sf_close(f);
  return 0;
}

static int
peak(const char *path)
{
  SF_INFO info;
  SNDFILE *f = open_read(path, &info);
  if (!f)
    return 2;
  float buf[4096];
  double max = 0;
  sf_count_t n;
  while ((n = sf_read_float(f, buf, 4096 - 4096 % info.channels)) > 0)
    for (sf_count_t i = 0; i < n; i++)
      max = fmax(max, fabs(buf[i]));
  printf("%.4f\n", max);
  sf_close(f);
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc == 9 && strcmp(argv[1], "gen") == 0)
    return gen(argv + 2);
  if (argc == 3 && strcmp(argv[1], "info") == 0)
    return info_cmd(argv[2]);
  if (argc == 4 && strcmp(argv[1], "same") == 0)
    return same(argv[2], argv[3]);
  if (argc == 3 && strcmp(argv[1], "count") == 0)
    return count(argv[2]);
  if (argc == 3 && strcmp(argv[1], "peak") == 0)
    return peak(argv[2]);
  fprintf(stderr, "usage: sound-tool gen PATH CONTAINER SAMPLES RATE "
                  "CHANNELS FRAMES HZ | info PATH | same A B | peak PATH | "
                  "count PATH\n");
  return 2;
}
