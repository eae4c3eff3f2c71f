/* SPDX-License-Identifier: ISC */
#include "sound-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Loading more than this is a mistake, not a test signal. */
#define LOAD_MAX_SAMPLES ((uint64_t)64 << 20)
#define LOAD_CHUNK_FRAMES 4096
/* What a header may take of a 32-bit RIFF size (fmt, fact, PEAK). */
#define HEADER_ALLOWANCE 4096

struct container {
  const char *ext;
  int major;
  const char *name;
  bool compressed;
};

static const struct container containers[] = {
    {"wav", SF_FORMAT_WAV, "WAV", false},
    {"w64", SF_FORMAT_W64, "W64", false},
    {"rf64", SF_FORMAT_RF64, "RF64", false},
    {"aiff", SF_FORMAT_AIFF, "AIFF", false},
    {"aif", SF_FORMAT_AIFF, "AIFF", false},
    {"au", SF_FORMAT_AU, "AU", false},
    {"snd", SF_FORMAT_AU, "AU", false},
    {"caf", SF_FORMAT_CAF, "CAF", false},
    {"flac", SF_FORMAT_FLAC, "FLAC", true},
    {"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, "Ogg", true},
    {"oga", SF_FORMAT_OGG | SF_FORMAT_VORBIS, "Ogg", true},
    {"opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, "Ogg", true},
};

static const struct {
  int subtype;
  const char *name;
} subtypes[] = {
    {SF_FORMAT_PCM_U8, "u8"},         {SF_FORMAT_PCM_S8, "s8"},
    {SF_FORMAT_PCM_16, "s16"},        {SF_FORMAT_PCM_24, "s24"},
    {SF_FORMAT_PCM_32, "s32"},        {SF_FORMAT_FLOAT, "f32"},
    {SF_FORMAT_DOUBLE, "f64"},        {SF_FORMAT_ULAW, "u-law"},
    {SF_FORMAT_ALAW, "A-law"},        {SF_FORMAT_VORBIS, "Vorbis"},
    {SF_FORMAT_OPUS, "Opus"},         {SF_FORMAT_IMA_ADPCM, "IMA ADPCM"},
    {SF_FORMAT_MS_ADPCM, "MS ADPCM"},
};

static void __attribute__((format(printf, 3, 4)))
say(char *why, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, size, fmt, ap);
  va_end(ap);
}

/* libsndfile's message for the failure of `file` (NULL: of the last
 * open), without its final full stop. */
static void
say_sndfile(SNDFILE *file, char *why, size_t size)
{
  if (size == 0)
    return;
  say(why, size, "%s", sf_strerror(file));
  size_t len = strlen(why);
  while (len > 0 && (why[len - 1] == '.' || why[len - 1] == '\n'))
    why[--len] = '\0';
}

static const char *
subtype_name(int subtype)
{
  for (size_t i = 0; i < sizeof(subtypes) / sizeof(subtypes[0]); i++)
    if (subtypes[i].subtype == subtype)
      return subtypes[i].name;
  return NULL;
}

/* Hands `fd` to libsndfile, which closes it with the file, and when
 * the open fails (libsndfile 1.2 does, once it has the fd). */
static int
open_fd(int fd, int mode, SF_INFO *info, SNDFILE **file, char *why, size_t size)
{
  SNDFILE *f = sf_open_fd(fd, mode, info, SF_TRUE);
  if (!f) {
    say_sndfile(NULL, why, size);
    return -EINVAL;
  }
  /* Floats beyond [-1, 1] clip in integer files instead of wrapping. */
  sf_command(f, SFC_SET_CLIPPING, NULL, SF_TRUE);
  *file = f;
  return 0;
}

int
aipc_sound_open(const char *path, SNDFILE **file, SF_INFO *info, char *why,
                size_t why_size)
{
  /* Non-blocking: a FIFO opens at once (and is refused) instead of
   * waiting for a writer. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    say(why, why_size, "%s", strerror(err));
    return -err;
  }
  struct stat st;
  int r = fstat(fd, &st) < 0 ? -errno : 0;
  if (r == 0 && !S_ISREG(st.st_mode))
    r = -EINVAL;
  if (r == 0 && fcntl(fd, F_SETFL, 0) < 0)
    r = -errno;
  if (r < 0) {
    say(why, why_size, "%s",
        r == -EINVAL ? "not a regular file" : strerror(-r));
    close(fd);
    return r;
  }
  if (st.st_size == 0) {
    say(why, why_size, "empty file");
    close(fd);
    return -EINVAL;
  }
  SF_INFO in = {0};
  SNDFILE *f;
  r = open_fd(fd, SFM_READ, &in, &f, why, why_size);
  if (r < 0)
    return r;
  if (in.channels < 1 || in.samplerate < 1) {
    say(why, why_size, "%d channels at %d Hz", in.channels, in.samplerate);
    sf_close(f);
    return -EINVAL;
  }
  if (in.frames == 0) {
    say(why, why_size, "no audio frames");
    sf_close(f);
    return -EINVAL;
  }
  *file = f;
  *info = in;
  return 0;
}

static const struct container *
container_for(const char *path)
{
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  if (dot)
    for (size_t i = 0; i < sizeof(containers) / sizeof(containers[0]); i++)
      if (strcasecmp(dot + 1, containers[i].ext) == 0)
        return &containers[i];
  return &containers[0];
}

int
aipc_sound_format_for(const char *path, int subtype, uint32_t channels,
                      uint32_t rate, bool uncompressed_only, int *format,
                      char *why, size_t why_size)
{
  const struct container *c = container_for(path);
  if (uncompressed_only && c->compressed) {
    say(why, why_size,
        "%s is encoded as it is written, which allocates; write WAV "
        "(.wav) or another uncompressed container",
        c->name);
    return -EINVAL;
  }
  int f = c->major;
  if ((f & SF_FORMAT_SUBMASK) == 0)
    f |= subtype;
  SF_INFO info = {
      .samplerate = (int)rate, .channels = (int)channels, .format = f};
  if (rate > INT32_MAX || channels > INT32_MAX || !sf_format_check(&info)) {
    const char *name = subtype_name(subtype & SF_FORMAT_SUBMASK);
    info.format &= ~SF_FORMAT_ENDMASK;
    if ((subtype & SF_FORMAT_ENDMASK) && sf_format_check(&info)) {
      say(why, why_size, "%s has no choice of byte order for %s samples",
          c->name, name ? name : "these");
      return -EINVAL;
    }
    say(why, why_size, "%s cannot hold %s samples in %u channels at %u Hz",
        c->name, name ? name : "these", channels, rate);
    return -EINVAL;
  }
  *format = f;
  return 0;
}

int
aipc_sound_create(const char *path, int format, uint32_t channels,
                  uint32_t rate, SNDFILE **file, char *why, size_t why_size)
{
  int fd = open(
      path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
      0666);
  struct stat st;
  int r = fd < 0 ? -errno : fstat(fd, &st) < 0 ? -errno : 0;
  if (r == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
    r = -EINVAL;
  if (r == 0 && fcntl(fd, F_SETFL, 0) < 0)
    r = -errno;
  if (r < 0) {
    if (fd >= 0)
      close(fd);
    if (r == -ENXIO || r == -ELOOP || r == -EINVAL) {
      say(why, why_size, "not a regular file or a character device");
      return -EINVAL;
    }
    say(why, why_size, "%s", strerror(-r));
    return r;
  }
  SF_INFO info = {
      .samplerate = (int)rate, .channels = (int)channels, .format = format};
  return open_fd(fd, SFM_WRITE, &info, file, why, why_size);
}

uint64_t
aipc_sound_max_frames(int format, uint32_t channels)
{
  int major = format & SF_FORMAT_TYPEMASK;
  if (major != SF_FORMAT_WAV && major != SF_FORMAT_WAVEX &&
      major != SF_FORMAT_AIFF && major != SF_FORMAT_AU)
    return UINT64_MAX;
  uint64_t bytes;
  switch (format & SF_FORMAT_SUBMASK) {
  case SF_FORMAT_PCM_U8:
  case SF_FORMAT_PCM_S8:
  case SF_FORMAT_ULAW:
  case SF_FORMAT_ALAW:
    bytes = 1;
    break;
  case SF_FORMAT_PCM_16:
    bytes = 2;
    break;
  case SF_FORMAT_PCM_24:
    bytes = 3;
    break;
  case SF_FORMAT_DOUBLE:
    bytes = 8;
    break;
  default:
    bytes = 4;
    break;
  }
  /* Room for the header's chunks within the 32-bit sizes. */
  return (UINT32_MAX - HEADER_ALLOWANCE) / (bytes * (channels ? channels : 1));
}

int
aipc_sound_sync(SNDFILE *file, char *why, size_t why_size)
{
  sf_command(file, SFC_UPDATE_HEADER_NOW, NULL, 0);
  if (sf_error(file) != SF_ERR_NO_ERROR) {
    say_sndfile(file, why, why_size);
    return -EIO;
  }
  return 0;
}

int
aipc_sound_close(SNDFILE *file, char *why, size_t why_size)
{
  int r = sf_close(file);
  if (r != 0) {
    say(why, why_size, "%s", sf_error_number(r));
    return -EIO;
  }
  return 0;
}

int
aipc_sound_load(const char *path, uint32_t max_channels,
                struct aipc_sound_data *data, char *why, size_t why_size)
{
  SNDFILE *f;
  SF_INFO info;
  int r = aipc_sound_open(path, &f, &info, why, why_size);
  if (r < 0)
    return r;
  uint32_t channels = (uint32_t)info.channels;
  if (channels > max_channels) {
    say(why, why_size, "%u channels (at most %u here)", channels, max_channels);
    sf_close(f);
    return -ERANGE;
  }
  float *samples = NULL;
  uint64_t frames = 0, cap = 0;
  for (;;) {
    if (frames + LOAD_CHUNK_FRAMES > cap) {
      cap = cap ? 2 * cap : (uint64_t)LOAD_CHUNK_FRAMES * 4;
      if (cap * channels > LOAD_MAX_SAMPLES) {
        say(why, why_size, "too long to load (at most %llu samples)",
            (unsigned long long)LOAD_MAX_SAMPLES);
        r = -EFBIG;
        break;
      }
      float *bigger = realloc(samples, cap * channels * sizeof(float));
      if (!bigger) {
        say(why, why_size, "out of memory");
        r = -ENOMEM;
        break;
      }
      samples = bigger;
    }
    sf_count_t n =
        sf_readf_float(f, samples + frames * channels, LOAD_CHUNK_FRAMES);
    if (n <= 0)
      break;
    frames += (uint64_t)n;
  }
  if (r == 0 && sf_error(f) != SF_ERR_NO_ERROR) {
    say_sndfile(f, why, why_size);
    r = -EIO;
  }
  if (r == 0 && frames == 0) {
    say(why, why_size, "no audio frames");
    r = -ENODATA;
  }
  sf_close(f);
  if (r < 0) {
    free(samples);
    return r;
  }
  data->samples = samples;
  data->frames = frames;
  data->channels = channels;
  data->rate = (uint32_t)info.samplerate;
  return 0;
}

void
aipc_sound_data_clear(struct aipc_sound_data *data)
{
  free(data->samples);
  memset(data, 0, sizeof(*data));
}

void
aipc_sound_describe(int format, char *buf, size_t size)
{
  SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK};
  const char *container = "?";
  for (size_t i = 0; i < sizeof(containers) / sizeof(containers[0]); i++)
    if (containers[i].major == (format & SF_FORMAT_TYPEMASK) ||
        (containers[i].major & SF_FORMAT_TYPEMASK) ==
            (format & SF_FORMAT_TYPEMASK))
      container = containers[i].name;
  if (strcmp(container, "?") == 0 &&
      sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof(major)) == 0)
    container = major.name;
  if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAVEX)
    container = "WAVE_FORMAT_EXTENSIBLE";
  const char *sub = subtype_name(format & SF_FORMAT_SUBMASK);
  snprintf(buf, size, "%s %s", container, sub ? sub : "(other coding)");
}
