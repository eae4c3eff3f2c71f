/* SPDX-License-Identifier: ISC */
#include "wav.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "WAV samples are copied to and from disk in host order");

#define WAV_FORMAT_PCM 1
#define WAV_FORMAT_IEEE_FLOAT 3
#define WAV_FORMAT_EXTENSIBLE 0xfffe

/* Loading a file bigger than this is a mistake, not a test signal. */
#define WAV_READ_MAX_BYTES (256u << 20)

/* Float files carry the fact chunk that non-PCM formats require. */
#define HEADER_BYTES_PCM 44
#define HEADER_BYTES_FLOAT 58

struct aipc_wav_writer {
  int fd;
  bool is_float;
  uint32_t channels;
  uint32_t rate;
  uint64_t frames;
};

static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
  return p + 4;
}

static uint8_t *
put_tag(uint8_t *p, const char tag[4])
{
  memcpy(p, tag, 4);
  return p + 4;
}

static uint16_t
get_u16(const uint8_t *p)
{
  return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get_u32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint32_t
header_bytes(const struct aipc_wav_writer *w)
{
  return w->is_float ? HEADER_BYTES_FLOAT : HEADER_BYTES_PCM;
}

static uint32_t
frame_bytes(const struct aipc_wav_writer *w)
{
  return w->channels * (w->is_float ? 4 : 2);
}

static uint32_t
build_header(const struct aipc_wav_writer *w, uint8_t *buf)
{
  uint32_t align = frame_bytes(w);
  /* append() keeps frames small enough for every size to fit. */
  uint32_t data = (uint32_t)(w->frames * align);
  uint8_t *p = buf;
  p = put_tag(p, "RIFF");
  p = put_u32(p, header_bytes(w) - 8 + data);
  p = put_tag(p, "WAVE");
  p = put_tag(p, "fmt ");
  p = put_u32(p, w->is_float ? 18 : 16);
  p = put_u16(p, w->is_float ? WAV_FORMAT_IEEE_FLOAT : WAV_FORMAT_PCM);
  p = put_u16(p, (uint16_t)w->channels);
  p = put_u32(p, w->rate);
  p = put_u32(p, w->rate * align);
  p = put_u16(p, (uint16_t)align);
  p = put_u16(p, w->is_float ? 32 : 16);
  if (w->is_float) {
    p = put_u16(p, 0); /* cbSize */
    p = put_tag(p, "fact");
    p = put_u32(p, 4);
    p = put_u32(p, (uint32_t)w->frames);
  }
  p = put_tag(p, "data");
  p = put_u32(p, data);
  return (uint32_t)(p - buf);
}

static int
write_all(int fd, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int
aipc_wav_writer_sync(struct aipc_wav_writer *w)
{
  uint8_t buf[HEADER_BYTES_FLOAT];
  uint32_t len = build_header(w, buf);
  ssize_t n;
  do {
    n = pwrite(w->fd, buf, len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  return n == (ssize_t)len ? 0 : -EIO;
}

int
aipc_wav_writer_new(struct aipc_wav_writer **writer, const char *path,
                    bool is_float, uint32_t channels, uint32_t rate)
{
  if (channels == 0 || channels > UINT16_MAX / 4 || rate == 0 ||
      (uint64_t)rate * channels * 4 > UINT32_MAX)
    return -EINVAL;
  struct aipc_wav_writer *w = calloc(1, sizeof(*w));
  if (!w)
    return -ENOMEM;
  w->is_float = is_float;
  w->channels = channels;
  w->rate = rate;
  /* Not through a symlink, and a regular file or a character device
   * (/dev/null) only: not a FIFO, whose open would wait for a reader. */
  w->fd = open(
      path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
      0666);
  struct stat st;
  int r = w->fd < 0 ? -errno : fstat(w->fd, &st) < 0 ? -errno : 0;
  if (r == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
    r = -EINVAL;
  if (r == 0 && fcntl(w->fd, F_SETFL, 0) < 0)
    r = -errno;
  if (r < 0) {
    if (w->fd >= 0)
      close(w->fd);
    free(w);
    return r == -ENXIO || r == -ELOOP ? -EINVAL : r;
  }
  uint8_t buf[HEADER_BYTES_FLOAT];
  uint32_t len = build_header(w, buf);
  r = write_all(w->fd, buf, len);
  if (r < 0) {
    close(w->fd);
    free(w);
    return r;
  }
  *writer = w;
  return 0;
}

int
aipc_wav_writer_append(struct aipc_wav_writer *w, const void *samples,
                       uint32_t frames)
{
  uint64_t limit = (UINT32_MAX - header_bytes(w)) / frame_bytes(w);
  if (frames > limit - w->frames)
    return -EFBIG;
  int r = write_all(w->fd, samples, (size_t)frames * frame_bytes(w));
  if (r < 0)
    return r;
  w->frames += frames;
  return 0;
}

int
aipc_wav_writer_destroy(struct aipc_wav_writer *w)
{
  int r = aipc_wav_writer_sync(w);
  if (close(w->fd) < 0 && r == 0)
    r = -errno;
  free(w);
  return r;
}

static int
read_file(const char *path, uint8_t **out, size_t *out_len)
{
  /* Non-blocking: a FIFO opens at once (and is refused below) instead of
   * waiting for a writer. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return -errno;
  int r = 0;
  uint8_t *buf = NULL;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    r = -errno;
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    r = -EINVAL;
    goto out;
  }
  if (st.st_size > (off_t)WAV_READ_MAX_BYTES) {
    r = -EFBIG;
    goto out;
  }
  size_t len = (size_t)st.st_size;
  buf = malloc(len ? len : 1);
  if (!buf) {
    r = -ENOMEM;
    goto out;
  }
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = -errno;
      goto out;
    }
    if (n == 0)
      break; /* shrank since fstat: parse what there is */
    got += (size_t)n;
  }
  *out = buf;
  *out_len = got;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return r;
}

struct wav_format {
  uint16_t tag;
  uint16_t channels;
  uint32_t rate;
  uint16_t align;
  uint16_t bits;
};

static int
parse_fmt(const uint8_t *p, uint32_t size, struct wav_format *fmt)
{
  if (size < 16)
    return -EPROTO;
  fmt->tag = get_u16(p);
  fmt->channels = get_u16(p + 2);
  fmt->rate = get_u32(p + 4);
  fmt->align = get_u16(p + 12);
  fmt->bits = get_u16(p + 14);
  if (fmt->tag == WAV_FORMAT_EXTENSIBLE) {
    /* The sub-format GUID starts with the plain format tag. */
    if (size < 40)
      return -EPROTO;
    fmt->tag = get_u16(p + 24);
  }
  return 0;
}

static int
parse(const uint8_t *buf, size_t len, uint32_t max_channels,
      struct aipc_wav_data *data)
{
  if (len < 12 || memcmp(buf, "RIFF", 4) != 0 ||
      memcmp(buf + 8, "WAVE", 4) != 0)
    return -EPROTO;
  struct wav_format fmt = {0};
  bool have_fmt = false;
  const uint8_t *samples = NULL;
  size_t samples_len = 0;
  size_t pos = 12;
  while (len - pos >= 8) {
    const uint8_t *chunk = buf + pos;
    uint32_t size = get_u32(chunk + 4);
    size_t avail = len - pos - 8;
    if (memcmp(chunk, "fmt ", 4) == 0) {
      if (size > avail)
        return -EPROTO;
      int r = parse_fmt(chunk + 8, size, &fmt);
      if (r < 0)
        return r;
      have_fmt = true;
    } else if (memcmp(chunk, "data", 4) == 0) {
      /* A writer that died before fixing the header up leaves a size
       * that is too small or too big; trust the file's length then. */
      samples = chunk + 8;
      samples_len = size == 0 || size > avail ? avail : size;
      break;
    }
    if (size > avail)
      return -EPROTO;
    pos += 8 + (size_t)size;
    if ((size & 1) && pos < len)
      pos++; /* chunks are padded to even sizes */
  }
  if (!have_fmt)
    return -EPROTO;
  bool is_float = fmt.tag == WAV_FORMAT_IEEE_FLOAT && fmt.bits == 32;
  bool is_s16 = fmt.tag == WAV_FORMAT_PCM && fmt.bits == 16;
  if (!is_float && !is_s16)
    return -ENOTSUP;
  if (fmt.channels == 0 || fmt.channels > max_channels)
    return -ERANGE;
  if (fmt.align != fmt.channels * fmt.bits / 8 || fmt.rate == 0)
    return -EPROTO;
  if (!samples || samples_len < fmt.align)
    return -ENODATA;

  uint64_t frames = samples_len / fmt.align;
  size_t count = (size_t)frames * fmt.channels;
  float *out = malloc(count * sizeof(float));
  if (!out)
    return -ENOMEM;
  if (is_float) {
    memcpy(out, samples, count * sizeof(float));
  } else {
    for (size_t i = 0; i < count; i++)
      out[i] = (float)(int16_t)get_u16(samples + 2 * i) / 32768.0f;
  }
  data->samples = out;
  data->frames = frames;
  data->channels = fmt.channels;
  data->rate = fmt.rate;
  return 0;
}

int
aipc_wav_read(const char *path, uint32_t max_channels,
              struct aipc_wav_data *data)
{
  uint8_t *buf = NULL;
  size_t len = 0;
  int r = read_file(path, &buf, &len);
  if (r < 0)
    return r;
  r = parse(buf, len, max_channels, data);
  free(buf);
  return r;
}

void
aipc_wav_data_clear(struct aipc_wav_data *data)
{
  free(data->samples);
  memset(data, 0, sizeof(*data));
}

const char *
aipc_wav_strerror(int err)
{
  switch (err) {
  case -EPROTO:
    return "not a valid WAV file";
  case -ENOTSUP:
    return "unsupported sample format (need 32-bit float or 16-bit PCM)";
  case -ERANGE:
    return "unsupported channel count";
  case -ENODATA:
    return "no audio data";
  case -EFBIG:
    return "file too big";
  default:
    return strerror(-err);
  }
}
