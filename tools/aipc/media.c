/* SPDX-License-Identifier: ISC */
/*
 * The far end of aipc play and aipc record: a sound file through
 * libsndfile (sound-file.h), or raw audio on stdin or stdout.
 */
#include "aipc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static size_t
sample_bytes(cubeb_sample_format format)
{
  return format == CUBEB_SAMPLE_S16LE || format == CUBEB_SAMPLE_S16BE ? 2 : 4;
}

/* libsndfile's channel names, as cubeb's. */
static const cubeb_channel channel_bits[SF_CHANNEL_MAP_MAX] = {
    [SF_CHANNEL_MAP_MONO] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_LEFT] = CHANNEL_FRONT_LEFT,
    [SF_CHANNEL_MAP_RIGHT] = CHANNEL_FRONT_RIGHT,
    [SF_CHANNEL_MAP_CENTER] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_FRONT_LEFT] = CHANNEL_FRONT_LEFT,
    [SF_CHANNEL_MAP_FRONT_RIGHT] = CHANNEL_FRONT_RIGHT,
    [SF_CHANNEL_MAP_FRONT_CENTER] = CHANNEL_FRONT_CENTER,
    [SF_CHANNEL_MAP_REAR_CENTER] = CHANNEL_BACK_CENTER,
    [SF_CHANNEL_MAP_REAR_LEFT] = CHANNEL_BACK_LEFT,
    [SF_CHANNEL_MAP_REAR_RIGHT] = CHANNEL_BACK_RIGHT,
    [SF_CHANNEL_MAP_LFE] = CHANNEL_LOW_FREQUENCY,
    [SF_CHANNEL_MAP_FRONT_LEFT_OF_CENTER] = CHANNEL_FRONT_LEFT_OF_CENTER,
    [SF_CHANNEL_MAP_FRONT_RIGHT_OF_CENTER] = CHANNEL_FRONT_RIGHT_OF_CENTER,
    [SF_CHANNEL_MAP_SIDE_LEFT] = CHANNEL_SIDE_LEFT,
    [SF_CHANNEL_MAP_SIDE_RIGHT] = CHANNEL_SIDE_RIGHT,
    [SF_CHANNEL_MAP_TOP_CENTER] = CHANNEL_TOP_CENTER,
    [SF_CHANNEL_MAP_TOP_FRONT_LEFT] = CHANNEL_TOP_FRONT_LEFT,
    [SF_CHANNEL_MAP_TOP_FRONT_RIGHT] = CHANNEL_TOP_FRONT_RIGHT,
    [SF_CHANNEL_MAP_TOP_FRONT_CENTER] = CHANNEL_TOP_FRONT_CENTER,
    [SF_CHANNEL_MAP_TOP_REAR_LEFT] = CHANNEL_TOP_BACK_LEFT,
    [SF_CHANNEL_MAP_TOP_REAR_RIGHT] = CHANNEL_TOP_BACK_RIGHT,
    [SF_CHANNEL_MAP_TOP_REAR_CENTER] = CHANNEL_TOP_BACK_CENTER,
};

/* Mono and stereo by their count; more channels by the file's channel
 * map (a WAVE_FORMAT_EXTENSIBLE mask, a CAF layout), which cubeb can
 * name only when its channels come in cubeb's order. */
static cubeb_channel_layout
layout_of(SNDFILE *file, uint32_t channels)
{
  if (channels <= 2)
    return channels == 1 ? CUBEB_LAYOUT_MONO : CUBEB_LAYOUT_STEREO;
  int map[AIPC_STREAM_MAX_CHANNELS];
  if (!file || sf_command(file, SFC_GET_CHANNEL_MAP_INFO, map,
                          (int)(channels * sizeof(int))) != SF_TRUE)
    return CUBEB_LAYOUT_UNDEFINED;
  unsigned layout = 0;
  for (uint32_t c = 0; c < channels; c++) {
    unsigned bit = map[c] > 0 && map[c] < SF_CHANNEL_MAP_MAX
                       ? (unsigned)channel_bits[map[c]]
                       : 0;
    if (bit == 0 || bit <= layout)
      return CUBEB_LAYOUT_UNDEFINED;
    layout |= bit;
  }
  return (cubeb_channel_layout)layout;
}

int
aipc_media_open(const struct aipc_stream_args *a, uint32_t rate,
                uint32_t channels, struct aipc_media *m)
{
  *m = (struct aipc_media){.fd = -1};
  char why[AIPC_SOUND_WHY_MAX];
  if (strcmp(a->path, "-") == 0) {
    m->raw = true;
    m->fd = a->input ? STDOUT_FILENO : STDIN_FILENO;
    m->rate = a->rate;
    m->channels = a->channels;
    m->format = a->format->cubeb;
    m->frame_bytes = sample_bytes(m->format) * m->channels;
    m->layout = layout_of(NULL, m->channels);
    return 0;
  }
  if (!a->input) {
    SF_INFO info;
    if (aipc_sound_open(a->path, &m->file, &info, why, sizeof(why)) < 0)
      goto fail;
    if (info.channels > AIPC_STREAM_MAX_CHANNELS ||
        info.samplerate < AIPC_STREAM_MIN_RATE ||
        info.samplerate > AIPC_STREAM_MAX_RATE) {
      snprintf(why, sizeof(why),
               "%d channels at %d Hz (a stream has 1 to %d channels at "
               "%d to %d Hz)",
               info.channels, info.samplerate, AIPC_STREAM_MAX_CHANNELS,
               AIPC_STREAM_MIN_RATE, AIPC_STREAM_MAX_RATE);
      sf_close(m->file);
      m->file = NULL;
      goto fail;
    }
    m->rate = (uint32_t)info.samplerate;
    m->channels = (uint32_t)info.channels;
    m->sf_format = info.format;
    m->frames = (uint64_t)info.frames;
  } else {
    const struct aipc_sample_format *f =
        a->format ? a->format : aipc_sample_format_find("f32");
    int format;
    int r = aipc_sound_format_for(a->path, f->subtype | f->endian, channels,
                                  rate, false, &format, why, sizeof(why));
    if (r < 0 && !a->format) /* FLAC has no float: then s24 */
      r = aipc_sound_format_for(a->path, SF_FORMAT_PCM_24, channels, rate,
                                false, &format, why, sizeof(why));
    if (r == 0)
      r = aipc_sound_create(a->path, format, channels, rate, &m->file, why,
                            sizeof(why));
    if (r < 0)
      goto fail;
    m->rate = rate;
    m->channels = channels;
    m->sf_format = format;
    /* An integer file gets s16 samples when it holds no more: those
     * pass bit for bit. */
    m->shorts = (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16 ||
                (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_U8 ||
                (format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_S8;
  }
  m->format = m->shorts ? CUBEB_SAMPLE_S16NE : CUBEB_SAMPLE_FLOAT32NE;
  m->frame_bytes = sample_bytes(m->format) * m->channels;
  m->layout = layout_of(a->input ? NULL : m->file, m->channels);
  return 0;
fail:
  fprintf(stderr, "aipc %s: %s: %s\n", a->cmd, a->path, why);
  return -1;
}

int64_t
aipc_media_read(struct aipc_media *m, void *buf, size_t bytes)
{
  if (m->file) {
    sf_count_t frames = (sf_count_t)(bytes / m->frame_bytes);
    sf_count_t n = sf_readf_float(m->file, buf, frames);
    if (n < 0 || (n < frames && sf_error(m->file) != SF_ERR_NO_ERROR))
      return -EIO;
    return (int64_t)n * (int64_t)m->frame_bytes;
  }
  for (;;) {
    ssize_t n = read(m->fd, buf, bytes);
    if (n >= 0)
      return n;
    if (errno != EINTR || aipc_session_stop_signal())
      return -errno;
  }
}

int
aipc_media_write(struct aipc_media *m, const void *buf, size_t bytes)
{
  if (m->file) {
    sf_count_t frames = (sf_count_t)(bytes / m->frame_bytes);
    sf_count_t n = m->shorts ? sf_writef_short(m->file, buf, frames)
                             : sf_writef_float(m->file, buf, frames);
    return n == frames ? 0 : -EIO;
  }
  const uint8_t *p = buf;
  while (bytes > 0) {
    ssize_t n = write(m->fd, p, bytes);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    p += n;
    bytes -= (size_t)n;
  }
  return 0;
}

const char *
aipc_media_strerror(const struct aipc_media *m, int err)
{
  if (m->file && err == -EIO)
    return sf_strerror(m->file);
  if (err == -EFBIG)
    return "full: WAV, AIFF and AU count at most 4 GiB; record to .w64, "
           ".rf64 or .caf for more";
  return strerror(-err);
}

void
aipc_media_describe(const struct aipc_media *m, char *buf, size_t size)
{
  char kind[64];
  if (m->raw)
    snprintf(kind, sizeof(kind), "raw %s",
             m->format == CUBEB_SAMPLE_S16LE       ? "s16le"
             : m->format == CUBEB_SAMPLE_S16BE     ? "s16be"
             : m->format == CUBEB_SAMPLE_FLOAT32LE ? "f32le"
                                                   : "f32be");
  else
    aipc_sound_describe(m->sf_format, kind, sizeof(kind));
  snprintf(buf, size, "%s, %u channel%s at %u Hz", kind, m->channels,
           m->channels == 1 ? "" : "s", m->rate);
}

int
aipc_media_close(struct aipc_media *m, const char *cmd, const char *path)
{
  int r = 0;
  if (m->file) {
    char why[AIPC_SOUND_WHY_MAX];
    r = aipc_sound_close(m->file, why, sizeof(why));
    if (r < 0)
      fprintf(stderr, "aipc %s: finishing %s: %s\n", cmd, path, why);
    m->file = NULL;
  }
  return r;
}

/* Samples of raw formats in either byte order, scaled in place. */
void
aipc_scale_samples(cubeb_sample_format format, void *buf, size_t bytes,
                   double gain)
{
  bool swap = format == CUBEB_SAMPLE_S16BE || format == CUBEB_SAMPLE_FLOAT32BE;
  if (format == CUBEB_SAMPLE_S16LE || format == CUBEB_SAMPLE_S16BE) {
    uint16_t *p = buf;
    for (size_t i = 0; i < bytes / 2; i++) {
      uint16_t u = swap ? __builtin_bswap16(p[i]) : p[i];
      long v = lrint((int16_t)u * gain);
      u = (uint16_t)(int16_t)(v > INT16_MAX   ? INT16_MAX
                              : v < INT16_MIN ? INT16_MIN
                                              : v);
      p[i] = swap ? __builtin_bswap16(u) : u;
    }
    return;
  }
  uint32_t *p = buf;
  for (size_t i = 0; i < bytes / 4; i++) {
    uint32_t u = swap ? __builtin_bswap32(p[i]) : p[i];
    float f;
    memcpy(&f, &u, sizeof(f));
    f = (float)(f * gain);
    memcpy(&u, &f, sizeof(u));
    p[i] = swap ? __builtin_bswap32(u) : u;
  }
}
