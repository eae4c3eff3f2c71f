/* SPDX-License-Identifier: ISC */
/*
 * WAV files for the virtual device: a writer that keeps the header valid
 * while it appends (so a crashed process leaves a readable file), and a
 * reader that loads a whole file as float samples.
 *
 * Samples are little-endian on disk and in host order in memory; the
 * build refuses big-endian hosts rather than swap.
 */
#ifndef AIPC_WAV_H
#define AIPC_WAV_H

#include <stdbool.h>
#include <stdint.h>

struct aipc_wav_writer;

/* Creates (or truncates) `path` and writes a header for zero frames of
 * 32-bit IEEE float samples (`is_float`) or 16-bit PCM. The fd is
 * close-on-exec. Returns 0 or -errno; *writer is set only on success. */
int aipc_wav_writer_new(struct aipc_wav_writer **writer, const char *path,
                        bool is_float, uint32_t channels, uint32_t rate);

/* Appends `frames` frames of interleaved samples in the format given to
 * _new (float or int16_t). Returns 0, -EFBIG once the data chunk would
 * exceed what a WAV header can describe (nothing is written then), or
 * another -errno from write(). */
int aipc_wav_writer_append(struct aipc_wav_writer *writer, const void *samples,
                           uint32_t frames);

/* Rewrites the header's sizes for the frames appended so far. */
int aipc_wav_writer_sync(struct aipc_wav_writer *writer);

/* Syncs the header, closes the file and frees the writer (also when the
 * sync fails). Returns 0 or the -errno of the failing step. */
int aipc_wav_writer_destroy(struct aipc_wav_writer *writer);

/* A whole WAV file, converted to float. Owns `samples`. */
struct aipc_wav_data {
  float *samples; /* frames * channels, interleaved */
  uint64_t frames;
  uint32_t channels;
  uint32_t rate;
};

/* Reads 32-bit float or 16-bit PCM WAV (plain or WAVE_FORMAT_EXTENSIBLE)
 * with 1..max_channels channels and at least one frame. Returns 0 or a
 * negative errno; aipc_wav_strerror() describes the failure. */
int aipc_wav_read(const char *path, uint32_t max_channels,
                  struct aipc_wav_data *data);

/* Frees what aipc_wav_read allocated and zeroes *data. */
void aipc_wav_data_clear(struct aipc_wav_data *data);

/* A message for an error returned by aipc_wav_read or the writer. */
const char *aipc_wav_strerror(int err);

#endif
