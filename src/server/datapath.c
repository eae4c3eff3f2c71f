/* SPDX-License-Identifier: ISC */
/*
 * A server stream's data path, on the backend's audio thread: no
 * allocation, no lock, no syscall but the futex. A synchronous stream asks
 * the client for every callback and waits for its answer; a buffered one
 * (render-ahead) copies what the client rendered ahead into the ring, or
 * copies its input there, and wakes the client without waiting, unless
 * the ring lacks what the callback needs. Either way every wait ends by
 * one deadline per callback, whatever the client writes.
 */
#include "sstream.h"

#include "clock.h"
#include "protocol.h"
#include "rt.h"

#include <string.h>

/* --- The data path (the backend's audio thread) --------------------------- */

/* Waits for the client's answer to request `seq`, until the deadline. */
static bool
await_response(struct aipc_stream_ctl *ctl, uint32_t seq, int64_t deadline)
{
  /* An honest client changes the word once per request. One that keeps
   * changing it to other values would have us spin until the deadline
   * (each futex wait returns at once), so after a few such changes it
   * counts as not answering. */
  int changes = 0;
  uint32_t v;
  while ((v = aipc_wake_load(&ctl->response)) != seq) {
    if (changes++ > 4 || aipc_now_ns() >= deadline ||
        aipc_wake_wait(&ctl->response, v, deadline) < 0)
      return aipc_wake_load(&ctl->response) == seq;
  }
  return true;
}

/* Counts one wait (lock-free; clock_gettime is a vDSO call, not a
 * syscall). */
static void
count_wait(struct aipc_stream_stats *st, int64_t since)
{
  int64_t us = (aipc_now_ns() - since) / AIPC_NSEC_PER_USEC;
  uint32_t bucket = us < AIPC_WAIT_BUCKETS ? (uint32_t)us : AIPC_WAIT_BUCKETS;
  atomic_fetch_add_explicit(&st->wait_hist[bucket], 1, memory_order_relaxed);
  unsigned max = atomic_load_explicit(&st->wait_max_us, memory_order_relaxed);
  unsigned now = us > UINT32_MAX ? UINT32_MAX : (unsigned)us;
  while (now > max && !atomic_compare_exchange_weak_explicit(
                          &st->wait_max_us, &max, now, memory_order_relaxed,
                          memory_order_relaxed))
    ;
}

/* What collect() makes of a request. */
enum {
  ANSWER_MISSED = -1, /* late, or out of range: play silence */
  ANSWER_FAILED = -2, /* the client's callback failed: CUBEB_STATE_ERROR */
};

/*
 * Asks the client for `chunk` frames, with `in` (or NULL) as their input.
 * Returns false, asking nothing, while the client has not answered a
 * request that missed its deadline, or once the stream is going.
 */
static bool
ask(struct aipc_sstream *s, const uint8_t *in, uint32_t chunk)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  if (atomic_load_explicit(&s->cancelled, memory_order_relaxed))
    return false;
  if (s->awaiting) {
    if (aipc_wake_load(&ctl->response) != s->seq)
      return false;
    s->awaiting = false;
  }
  if (in)
    memcpy(s->input_area, in, (size_t)chunk * s->in_frame_bytes);
  atomic_store_explicit(&ctl->frames, chunk, memory_order_relaxed);
  s->seq++;
  s->asked_at = aipc_now_ns();
  s->asked_frames = chunk;
  aipc_wake_publish(&ctl->request, s->seq);
  return true;
}

/* Waits for the answer to the last request, until `deadline`, and copies
 * its frames to `out` (or NULL). Returns the frame count, or one of the
 * ANSWER_ values. */
static int32_t
collect(struct aipc_sstream *s, uint8_t *out, int64_t deadline)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  uint32_t chunk = s->asked_frames;
  if (aipc_wake_load(&ctl->response) != s->seq)
    atomic_fetch_add_explicit(&s->stats->sleeps, 1, memory_order_relaxed);
  bool answered = await_response(ctl, s->seq, deadline);
  count_wait(s->stats, s->asked_at);
  if (!answered) {
    s->awaiting = true;
    return ANSWER_MISSED;
  }
  /* Read the client's answer once; it may change under us. */
  int32_t got = atomic_load_explicit(&ctl->result, memory_order_acquire);
  if (got < 0)
    return ANSWER_FAILED;
  if ((uint32_t)got > chunk)
    return ANSWER_MISSED;
  if (out)
    memcpy(out, s->output_area, (size_t)got * s->out_frame_bytes);
  atomic_fetch_add_explicit(&s->stats->frames, (uint64_t)got,
                            memory_order_relaxed);
  return got;
}

static void
fill_silence(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  if (out)
    memset(out + (size_t)done * s->out_frame_bytes, 0,
           (size_t)(nframes - done) * s->out_frame_bytes);
}

/* Silence for the rest of a callback whose client missed. */
static long
play_silence(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  atomic_fetch_add_explicit(&s->stats->misses, 1, memory_order_relaxed);
  fill_silence(s, out, done, nframes);
  return nframes;
}

/*
 * The client answered `done` of `nframes` frames: the stream drains. A
 * backend with output then drains what it has (pulse arms a timer, and
 * asserts if a start lets another short answer in before it fired). So a
 * drain and the client thread's start must not cross: each side raises
 * its flag, then reads the other's. If a start is under way, the drain
 * waits for the next callback, and this one is padded with silence.
 */
static long
drain(struct aipc_sstream *s, uint8_t *out, long done, long nframes)
{
  if (!out)
    return done; /* input only: the backend just stops calling */
  atomic_store(&s->draining, true);
  if (atomic_load(&s->starting)) {
    atomic_store(&s->draining, false);
    s->drain_deferred = true;
    fill_silence(s, out, done, nframes);
    return nframes;
  }
  return done;
}

/*
 * The backend's data callback, on its audio thread: no allocation, no
 * lock, no syscall but the futex. Serves the backend's request in chunks
 * of at most frames_max, all before one deadline; a client that misses
 * it gets silence for the rest of the callback, and no new request until
 * it has answered.
 */
static long
serve(struct aipc_sstream *s, const uint8_t *in, uint8_t *out, long nframes)
{
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  if (s->drain_deferred) {
    s->drain_deferred = false;
    return drain(s, out, 0, nframes);
  }
  long done = 0;
  /* Every chunk of the callback shares one deadline. */
  int64_t deadline = aipc_now_ns() + s->deadline_ns;
  while (done < nframes) {
    uint32_t chunk = (uint32_t)(nframes - done);
    if (chunk > s->layout.frames_max)
      chunk = s->layout.frames_max;
    if (!ask(s, in ? in + (size_t)done * s->in_frame_bytes : NULL, chunk))
      return play_silence(s, out, done, nframes);
    int32_t got = collect(
        s, out ? out + (size_t)done * s->out_frame_bytes : NULL, deadline);
    if (got == ANSWER_FAILED)
      return s->error_return;
    if (got == ANSWER_MISSED)
      return play_silence(s, out, done, nframes);
    done += got;
    if ((uint32_t)got < chunk)
      return drain(s, out, done, nframes);
  }
  return nframes;
}

/* --- Buffered streams (render-ahead) ------------------------------------- */

/* Tells the client there is room in the ring (or input in it): a syscall
 * only if its thread sleeps. Any thread; the word is the client's to
 * scribble on, and any change of it wakes the client. */
void
aipc_sstream_poke(struct aipc_sstream *s)
{
  aipc_wake_publish(&s->ctl->request, aipc_wake_load(&s->ctl->request) + 1);
}

/* The frames of the ring between the server's position and the client's,
 * or UINT32_MAX if the client's position is not within the ring. Reads
 * the client's word once. */
static uint32_t
ring_span(struct aipc_sstream *s)
{
  uint32_t pos = aipc_wake_load(&s->ctl->client_pos);
  uint32_t span = s->out_frame_bytes ? pos - s->ring_pos : s->ring_pos - pos;
  /* A duplex client renders only what it was given input for. */
  if (s->duplex && s->in_pos - pos > s->layout.frames_max)
    return UINT32_MAX;
  return span <= s->layout.frames_max ? span : UINT32_MAX;
}

/*
 * A buffered output stream's callback: copies what the client rendered
 * ahead, and waits (until `deadline`) only for what the ring lacks. The
 * client bumps `response` after each piece it renders and at its end, so
 * that is the word to wait on; a wait that brings nothing new, more than
 * a few times in a row, counts as a miss, so a client that keeps bumping
 * it cannot make the audio thread spin. After a miss the callbacks wait
 * no more (they play what the ring has) until the client has rendered
 * again: one that stalls costs one deadline, not one per callback. At
 * the client's end (its callback answered short or failed) the stream
 * drains or fails, once the ring is empty.
 */
static long
ring_play(struct aipc_sstream *s, uint8_t *out, long nframes, int64_t deadline)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  int64_t since = aipc_now_ns();
  long done = 0, r = nframes;
  int idle = 0;
  bool slept = false;
  while (done < nframes) {
    uint32_t news = aipc_wake_load(&ctl->response);
    uint32_t span = ring_span(s);
    if (span == UINT32_MAX) {
      r = play_silence(s, out, done, nframes);
      break;
    }
    if (span > 0) {
      uint32_t n =
          (uint32_t)(nframes - done) < span ? (uint32_t)(nframes - done) : span;
      aipc_ring_read(s->ring, s->layout.frames_max, s->out_frame_bytes,
                     s->ring_pos, out + (size_t)done * s->out_frame_bytes, n);
      s->ring_pos += n;
      done += n;
      if (!s->duplex) /* a duplex stream's server_pos is its input's */
        aipc_wake_publish(&ctl->server_pos, s->ring_pos);
      idle = 0;
      s->awaiting = false; /* it renders again */
      continue;
    }
    uint32_t end = atomic_load_explicit(&ctl->end, memory_order_acquire);
    if (end != AIPC_RING_END_NONE &&
        atomic_load_explicit(&ctl->end_pos, memory_order_relaxed) ==
            s->ring_pos) {
      r = end == AIPC_RING_END_SHORT ? drain(s, out, done, nframes)
                                     : s->error_return;
      break;
    }
    if (!slept)
      atomic_fetch_add_explicit(&s->stats->sleeps, 1, memory_order_relaxed);
    slept = true;
    aipc_sstream_poke(s);
    if (s->awaiting ||
        atomic_load_explicit(&s->cancelled, memory_order_relaxed) ||
        idle++ > 4 || aipc_now_ns() >= deadline ||
        aipc_wake_wait(&ctl->response, news, deadline) < 0) {
      s->awaiting = true;
      r = play_silence(s, out, done, nframes);
      break;
    }
  }
  atomic_fetch_add_explicit(&s->stats->frames, (uint64_t)done,
                            memory_order_relaxed);
  count_wait(s->stats, since);
  if (r == nframes)
    aipc_sstream_poke(s); /* room for the client to render ahead again */
  return r;
}

/* The room in a buffered input stream's ring, once the client has made
 * room for `nframes` or `deadline` passed. */
static uint32_t
ring_room(struct aipc_sstream *s, uint32_t nframes, int64_t deadline)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  for (int idle = 0;; idle++) {
    uint32_t news = aipc_wake_load(&ctl->response);
    uint32_t used = ring_span(s);
    uint32_t room = used == UINT32_MAX ? 0 : s->layout.frames_max - used;
    if (room >= nframes || used == UINT32_MAX || idle > 4 ||
        aipc_now_ns() >= deadline)
      return room;
    aipc_sstream_poke(s);
    if (aipc_wake_wait(&ctl->response, news, deadline) < 0)
      return room;
  }
}

/*
 * A buffered input stream's callback: copies the input into the ring and
 * wakes the client, never waiting, unless `wait_for_room` (the virtual
 * device's fast clock, where time means nothing and the device must not
 * outrun its clients): then it waits, until `deadline`, for the client to
 * make room. What finds no room (the client fell behind) is dropped and
 * counted as a miss. The client's end takes effect here, one callback
 * after its callback returned it.
 */
static long
ring_record(struct aipc_sstream *s, const uint8_t *in, long nframes,
            bool wait_for_room, int64_t deadline)
{
  struct aipc_stream_ctl *ctl = s->ctl;
  int64_t since = aipc_now_ns();
  uint32_t end = atomic_load_explicit(&ctl->end, memory_order_acquire);
  if (end != AIPC_RING_END_NONE) {
    count_wait(s->stats, since);
    return end == AIPC_RING_END_SHORT ? 0 : s->error_return;
  }
  uint32_t room = ring_room(s, wait_for_room ? (uint32_t)nframes : 0, deadline);
  uint32_t n = (uint32_t)nframes < room ? (uint32_t)nframes : room;
  aipc_ring_write(s->ring, s->layout.frames_max, s->in_frame_bytes, s->ring_pos,
                  in, n);
  s->ring_pos += n;
  aipc_wake_publish(&ctl->server_pos, s->ring_pos);
  if (n < (uint32_t)nframes)
    atomic_fetch_add_explicit(&s->stats->misses, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->stats->frames, n, memory_order_relaxed);
  aipc_sstream_poke(s);
  count_wait(s->stats, since);
  return nframes;
}

/*
 * A buffered duplex stream's callback: its input goes into the input
 * ring, for the client to turn into output `ahead` frames later; the
 * output is what the client made of earlier input (ring_play). Input that
 * finds no room, because the output fell that far behind, is dropped and
 * counted as a miss. Both positions are the server's own here.
 */
static long
ring_duplex(struct aipc_sstream *s, const uint8_t *in, uint8_t *out,
            long nframes, int64_t deadline)
{
  uint32_t room = s->layout.frames_max - (s->in_pos - s->ring_pos);
  uint32_t n = (uint32_t)nframes < room ? (uint32_t)nframes : room;
  aipc_ring_write(s->input_area, s->layout.frames_max, s->in_frame_bytes,
                  s->in_pos, in, n);
  s->in_pos += n;
  aipc_wake_publish(&s->ctl->server_pos, s->in_pos);
  if (n < (uint32_t)nframes)
    atomic_fetch_add_explicit(&s->stats->misses, 1, memory_order_relaxed);
  return ring_play(s, out, nframes, deadline);
}

/* A buffered stream's callback, before `deadline`. */
static long
ring_serve(struct aipc_sstream *s, const uint8_t *in, uint8_t *out,
           long nframes, int64_t deadline, bool wait_for_room)
{
  atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
  if (s->drain_deferred) {
    s->drain_deferred = false;
    return drain(s, out, 0, nframes);
  }
  if (atomic_load_explicit(&s->cancelled, memory_order_relaxed)) {
    fill_silence(s, out, 0, nframes); /* going: no client to miss */
    return nframes;
  }
  if (s->duplex && in && out)
    return ring_duplex(s, in, out, nframes, deadline);
  return out ? ring_play(s, out, nframes, deadline)
             : ring_record(s, in, nframes, wait_for_room, deadline);
}

/* --- The backend's callbacks ---------------------------------------------- */

long
aipc_sstream_data_callback(cubeb_stream *backend, void *user, const void *input,
                           void *output, long nframes)
{
  (void)backend;
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  long r = s->buffered ? ring_serve(s, input, output, nframes,
                                    aipc_now_ns() + s->deadline_ns, false)
                       : serve(s, input, output, nframes);
  aipc_rt_leave();
  return r;
}

/*
 * Split-phase service for the virtual device, which asks every stream of
 * a period before it collects any answer, so that the clients run in
 * parallel and the device thread sleeps about once per period; every
 * stream of the period shares the device's deadline. A buffered stream
 * has nothing to ask: its end is its whole callback.
 */
static void
split_begin(void *user, const void *input, long frames)
{
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  if (s->buffered)
    s->split_input = input;
  else
    s->split_asked = ask(s, input, (uint32_t)frames);
  aipc_rt_leave();
}

static long
split_end(void *user, void *output, long frames, int64_t device_deadline)
{
  struct aipc_sstream *s = user;
  aipc_rt_enter();
  /* The device's deadline, shared by the period's streams, within the
   * server's own. */
  int64_t deadline =
      (s->buffered ? aipc_now_ns() : s->asked_at) + s->deadline_ns;
  if (device_deadline >= 0 && device_deadline < deadline)
    deadline = device_deadline;
  long r;
  if (s->buffered) {
    r = ring_serve(s, s->split_input, output, frames, deadline,
                   device_deadline < 0);
  } else {
    atomic_fetch_add_explicit(&s->stats->callbacks, 1, memory_order_relaxed);
    int32_t got = s->split_asked ? collect(s, output, deadline) : ANSWER_MISSED;
    if (got == ANSWER_FAILED)
      r = s->error_return;
    else if (got == ANSWER_MISSED)
      r = play_silence(s, output, 0, frames);
    else
      r = got;
  }
  aipc_rt_leave();
  return r;
}

const struct aipc_virtual_split aipc_sstream_split = {
    .begin = split_begin,
    .end = split_end,
};

void
aipc_sstream_state_callback(cubeb_stream *backend, void *user,
                            cubeb_state state)
{
  (void)backend;
  struct aipc_sstream *s = user;
  /* Often on the backend's audio thread: real-time safe (see events.c). */
  aipc_rt_enter();
  if (state == CUBEB_STATE_DRAINED) {
    atomic_store(&s->draining, false);
    atomic_store(&s->drained, true);
  } else if (state == CUBEB_STATE_ERROR)
    atomic_store(&s->failed, true);
  /* The stop before a destroy is ours: libcubeb's destroy calls no
   * state callback, so the client hears none. */
  if (!atomic_load(&s->cancelled))
    aipc_sstream_raise_state(s, state);
  aipc_rt_leave();
}

void
aipc_sstream_raise_state(struct aipc_sstream *s, cubeb_state state)
{
  atomic_store(&s->stats->state, (int)state);
  aipc_client_raise_event(s->client, AIPC_OP_STREAM_STATE_EVENT, s->id,
                          (uint32_t)state);
}
