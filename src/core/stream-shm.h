/* SPDX-License-Identifier: ISC */
/*
 * The shared memory of one stream: a control block of atomic words, then
 * the input area, then the output area. The server makes it (a sealed
 * memfd) and tells the client the offsets; both sides check them.
 *
 * One request per callback (or chunk of one): the server writes the input
 * and `frames`, then publishes a new `request` sequence number; the client
 * runs the user callback on the areas, stores its frame count in `result`
 * and publishes the same number in `response`. The server reads `result`
 * once, and only after `response` matched.
 */
#ifndef AIPC_STREAM_SHM_H
#define AIPC_STREAM_SHM_H

#include "wake.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

struct aipc_stream_ctl {
  struct aipc_wake request;  /* written by the server */
  struct aipc_wake response; /* written by the client */
  _Atomic uint32_t frames;   /* frames asked for by the current request */
  _Atomic int32_t result;    /* frames the client produced, or < 0 */
};

#define AIPC_STREAM_CTL_SIZE 64
#define AIPC_STREAM_AREA_ALIGN 64
static_assert(sizeof(struct aipc_stream_ctl) <= AIPC_STREAM_CTL_SIZE,
              "control block fits its slot");

struct aipc_stream_layout {
  uint32_t frames_max;
  uint32_t input_offset, input_bytes; /* bytes 0 if no input */
  uint32_t output_offset, output_bytes;
  uint32_t size;
};

static inline uint64_t
aipc_align_up(uint64_t n, uint64_t to)
{
  return (n + to - 1) / to * to;
}

/* Lays out a stream's region for requests of up to `frames_max` frames.
 * -EOVERFLOW if it would not fit 32 bits. */
static inline int
aipc_stream_layout(uint32_t frames_max, uint32_t in_frame_bytes,
                   uint32_t out_frame_bytes, struct aipc_stream_layout *out)
{
  uint64_t in_bytes = (uint64_t)frames_max * in_frame_bytes;
  uint64_t out_bytes = (uint64_t)frames_max * out_frame_bytes;
  uint64_t in_off = AIPC_STREAM_CTL_SIZE;
  uint64_t out_off = aipc_align_up(in_off + in_bytes, AIPC_STREAM_AREA_ALIGN);
  uint64_t size = aipc_align_up(out_off + out_bytes, 4096);
  if (size > UINT32_MAX)
    return -EOVERFLOW;
  *out = (struct aipc_stream_layout){.frames_max = frames_max,
                                     .input_offset = (uint32_t)in_off,
                                     .input_bytes = (uint32_t)in_bytes,
                                     .output_offset = (uint32_t)out_off,
                                     .output_bytes = (uint32_t)out_bytes,
                                     .size = (uint32_t)size};
  return 0;
}

/* True if a peer's description of a region is exactly `layout`. */
static inline bool
aipc_stream_layout_matches(const struct aipc_stream_layout *layout,
                           uint32_t size, uint32_t input_offset,
                           uint32_t output_offset)
{
  return size == layout->size && input_offset == layout->input_offset &&
         output_offset == layout->output_offset;
}

#endif
