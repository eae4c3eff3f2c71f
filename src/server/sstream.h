/* SPDX-License-Identifier: ISC */
/*
 * A server stream's insides, shared by its lifetime and guard (stream.c)
 * and its data path (datapath.c). Nothing else sees them.
 */
#ifndef AIPC_SSTREAM_H
#define AIPC_SSTREAM_H

#include "server-private.h"

#include "shm.h"
#include "stream-shm.h"
#include "virtual.h"

#include <stdatomic.h>

struct aipc_sstream {
  struct aipc_client *client;
  uint32_t id;
  cubeb_stream *backend;
  struct aipc_shm shm;
  struct aipc_stream_layout layout;
  struct aipc_stream_ctl *ctl;
  uint8_t *input_area, *output_area;
  uint32_t in_frame_bytes, out_frame_bytes;
  int64_t deadline_ns; /* per callback */
  /* What the backend does beyond cubeb's contract. */
  bool stop_waits_for_drain; /* pulse: its destroy ends a drain instead */
  long error_return;         /* for a failed client callback */

  /* The client's thread only. */
  bool started; /* the backend was started and not stopped since */
  bool device_changed_registered;

  /* Shared with the backend's threads. */
  atomic_bool failed;    /* the backend reported CUBEB_STATE_ERROR */
  atomic_bool draining;  /* the audio thread began a drain; not DRAINED yet */
  atomic_bool starting;  /* the client's thread is in the backend's start */
  atomic_bool cancelled; /* the stream goes: ask the client nothing more */

  /* Buffered (render-ahead, see stream-shm.h): the ring is the input or
   * output area, of layout.frames_max frames; a duplex stream has both,
   * and its output runs `ahead` frames behind its input. */
  bool buffered, duplex;
  uint8_t *ring; /* duplex: the output's; its input's is input_area */
  uint32_t ahead; /* output frames rendered ahead (taken from the latency) */
  atomic_bool drained;     /* the backend reported DRAINED since the start */
  uint64_t silence_played; /* duplex: the silence before each start's output */
  uint64_t last_position;  /* reported to the client */

  /* Audio thread only (and the client's thread while the stream is
   * stopped). */
  uint32_t ring_pos; /* output: frames played; input-only: frames written */
  uint32_t in_pos;   /* duplex: input frames written (its server_pos) */
  uint32_t seq;
  /* The last request missed its deadline, still unanswered; for a
   * buffered stream: the ring ran dry, and has had nothing since. */
  bool awaiting;
  bool drain_deferred; /* a drain met a start: drain at the next callback */
  int64_t asked_at;
  uint32_t asked_frames;
  bool split_asked;        /* split_begin asked the client this period */
  const void *split_input; /* a buffered stream's, from split_begin */

  struct aipc_stream_stats *stats;
  struct aipc_stats_registry *registry;
};

/* --- datapath.c: the backend's threads -------------------------------- */

/* The backend's data and state callbacks; `user` is the stream. */
long aipc_sstream_data_callback(cubeb_stream *backend, void *user,
                                const void *input, void *output, long nframes);
void aipc_sstream_state_callback(cubeb_stream *backend, void *user,
                                 cubeb_state state);
/* Tells the client, and the statistics, of a state. Any thread,
 * real-time safe. */
void aipc_sstream_raise_state(struct aipc_sstream *stream, cubeb_state state);
/* Wakes a buffered stream's client to fill (or drain) its ring. */
void aipc_sstream_poke(struct aipc_sstream *stream);
/* The virtual device's split-phase service of the same (virtual.h). */
extern const struct aipc_virtual_split aipc_sstream_split;

#endif
