/* SPDX-License-Identifier: ISC */
/*
 * The shared memory of one stream: a control block of atomic words, then
 * the input area, then the output area. The server makes it (a sealed
 * memfd) and tells the client the offsets; both sides check them.
 *
 * A synchronous stream (duplex, or render-ahead off) makes one request per
 * callback (or chunk of one): the server writes the input and `frames`,
 * then publishes a new `request` sequence number; the client runs the
 * user callback on the areas, stores its frame count in `result` and
 * publishes the same number in `response`. The server reads `result`
 * once, and only after `response` matched.
 *
 * A buffered stream (render-ahead: output only or input only, and duplex
 * if the embedder opted in) has a ring of frames_max frames (a power of
 * two) in its area; a duplex one has two, slot k of the output made from
 * slot k of the input, its output `ahead` frames behind. Each side counts
 * the frames it has passed through the ring, mod 2^32: `server_pos` (the
 * frames the backend consumed, or for input and duplex the frames it
 * wrote) and `client_pos` (the frames the client wrote, or consumed;
 * duplex: turned from input into output); frame k lives
 * at slot k mod frames_max. The server keeps its own count and only
 * publishes it; it reads the client's once per look and checks it against
 * the ring. After each callback it bumps `request` to tell the client
 * there is room (or input); the client fills (or drains) the ring,
 * publishes `client_pos` and then bumps `response` for news, the word the
 * server waits on when the ring lacks what a callback needs. A callback
 * that returned short or failed is told by `end` (AIPC_RING_END_*),
 * effective at `end_pos` for output.
 * At each start the client sets its count to the server's, which drops
 * whatever was rendered ahead of the last stop.
 */
#ifndef AIPC_STREAM_SHM_H
#define AIPC_STREAM_SHM_H

#include "wake.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct aipc_stream_ctl {
  struct aipc_wake request;  /* written by the server */
  struct aipc_wake response; /* written by the client */
  _Atomic uint32_t frames;   /* frames asked for by the current request */
  _Atomic int32_t result;    /* frames the client produced, or < 0 */
  /* Buffered streams only. */
  struct aipc_wake server_pos; /* written by the server */
  struct aipc_wake client_pos; /* written by the client */
  _Atomic uint32_t end;        /* client: an AIPC_RING_END_ value */
  _Atomic uint32_t end_pos;    /* client: client_pos when `end` was set */
};

/* How a buffered stream's client callback ended. */
enum {
  AIPC_RING_END_NONE,
  AIPC_RING_END_SHORT, /* returned fewer frames: drain */
  AIPC_RING_END_ERROR, /* failed */
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

/* Copies `n` frames from ring slot `pos` on (wrapping) to `dst`. */
static inline void
aipc_ring_read(const uint8_t *ring, uint32_t slots, uint32_t frame_bytes,
               uint32_t pos, uint8_t *dst, uint32_t n)
{
  uint32_t at = pos & (slots - 1);
  uint32_t first = n < slots - at ? n : slots - at;
  memcpy(dst, ring + (size_t)at * frame_bytes, (size_t)first * frame_bytes);
  memcpy(dst + (size_t)first * frame_bytes, ring,
         (size_t)(n - first) * frame_bytes);
}

/* Copies `n` frames from `src` to ring slot `pos` on (wrapping). */
static inline void
aipc_ring_write(uint8_t *ring, uint32_t slots, uint32_t frame_bytes,
                uint32_t pos, const uint8_t *src, uint32_t n)
{
  uint32_t at = pos & (slots - 1);
  uint32_t first = n < slots - at ? n : slots - at;
  memcpy(ring + (size_t)at * frame_bytes, src, (size_t)first * frame_bytes);
  memcpy(ring, src + (size_t)first * frame_bytes,
         (size_t)(n - first) * frame_bytes);
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
