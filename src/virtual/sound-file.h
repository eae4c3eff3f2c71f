/* SPDX-License-Identifier: ISC */
/*
 * Sound files through libsndfile, for the virtual device (in=, out=)
 * and the aipc tool: opening them without the traps of a path (a FIFO
 * that would block the open, a symlink in place of an output), choosing
 * a container from a file name, loading a whole file as float.
 *
 * Failures come with a message in a caller's buffer: one line, no
 * newline, saying what is wrong with the file (libsndfile's own words
 * where it has them), meant to follow "PATH: ".
 */
#ifndef AIPC_SOUND_FILE_H
#define AIPC_SOUND_FILE_H

#include <sndfile.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a failure message. */
#define AIPC_SOUND_WHY_MAX 256

/* Opens `path` for reading, whatever its container and sample type
 * (everything libsndfile reads). A regular file only: a FIFO is refused
 * at once, never waited on. A file without a single frame is refused.
 * The fd is close-on-exec. Returns 0 and sets *file and *info, or a
 * negative errno with `why`. */
int aipc_sound_open(const char *path, SNDFILE **file, SF_INFO *info, char *why,
                    size_t why_size);

/*
 * The libsndfile format to write `path` in: the container its name ends
 * in (.wav, .w64, .rf64, .aiff/.aif, .au/.snd, .caf, .flac, .ogg/.oga,
 * .opus; anything else is WAV), with the sample type `subtype`
 * (SF_FORMAT_PCM_16, SF_FORMAT_FLOAT, ..., with an SF_ENDIAN_* byte
 * order or not), except in Ogg, whose coding (Vorbis, Opus) is its own.
 * `uncompressed_only` refuses FLAC and Ogg, whose encoders allocate as they go.
 * Checks that the container takes the subtype, `channels` and `rate`. Returns 0
 * and sets *format, or -EINVAL with `why`.
 */
int aipc_sound_format_for(const char *path, int subtype, uint32_t channels,
                          uint32_t rate, bool uncompressed_only, int *format,
                          char *why, size_t why_size);

/* Creates (or truncates) `path` in `format` (from aipc_sound_format_for)
 * and writes its header. Not through a symlink; a regular file or a
 * character device (/dev/null) only. The fd is close-on-exec. Returns 0
 * and sets *file, or a negative errno with `why`. */
int aipc_sound_create(const char *path, int format, uint32_t channels,
                      uint32_t rate, SNDFILE **file, char *why,
                      size_t why_size);

/* The most frames a file of `format` can say it holds: WAV, AIFF and
 * AU count their bytes in 32 bits (a little under 4 GiB of samples);
 * UINT64_MAX for the others (W64, RF64, CAF, FLAC, Ogg). */
uint64_t aipc_sound_max_frames(int format, uint32_t channels);

/* Rewrites the header of a file being written for the frames written so
 * far, so that a process that dies leaves a valid file. No allocation:
 * a seek and a write, on an uncompressed container. Returns 0 or -EIO
 * with `why`. */
int aipc_sound_sync(SNDFILE *file, char *why, size_t why_size);

/* Finishes (header, encoder's last pages) and closes `file`; it is gone
 * also on failure. Returns 0 or -EIO with `why`. */
int aipc_sound_close(SNDFILE *file, char *why, size_t why_size);

/* A whole sound file, as float. Owns `samples`. */
struct aipc_sound_data {
  float *samples; /* frames * channels, interleaved */
  uint64_t frames;
  uint32_t channels;
  uint32_t rate;
};

/* Reads all of `path` (aipc_sound_open's rules) with 1..max_channels
 * channels and at most 256 MiB of samples, integer samples scaled to
 * [-1, 1) (s16 v is v / 32768, exactly). A data chunk shorter than its
 * header says gives the frames that are there. Returns 0 or a negative
 * errno with `why`. */
int aipc_sound_load(const char *path, uint32_t max_channels,
                    struct aipc_sound_data *data, char *why, size_t why_size);

/* Frees what aipc_sound_load allocated and zeroes *data. */
void aipc_sound_data_clear(struct aipc_sound_data *data);

/* A short name of a file's container and sample type: "WAV s16",
 * "FLAC s24", "Ogg Vorbis". */
void aipc_sound_describe(int format, char *buf, size_t size);

#endif
