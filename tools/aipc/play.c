/* SPDX-License-Identifier: ISC */
/*
 * aipc play: a sound file, raw audio from stdin or a tone, through a
 * server. The main thread reads ahead into a ring; the data callback
 * only copies out of it.
 */
#include "aipc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Read ahead: a short file is all in the ring before the stream starts,
 * so that a fast clock cannot outrun the reads. */
#define PLAY_RING_SECONDS 10
#define PLAY_POLL_MS 20
#define PLAY_GRACE_MS 20000
#define PLAY_TONE_GAIN 0.25
/* Raw input read ahead before the stream starts (or all, if less). */
#define PLAY_RAW_START_MS 200

static const char play_usage[] =
    "usage: aipc play [OPTIONS] (FILE | - | --tone HZ)\n"
    "\n"
    "Plays a sound file to its end (any container and sample type "
    "libsndfile\nreads: WAV, FLAC, Ogg, AIFF, ...; u8 to f64, any rate and "
    "1 to 8 channels,\nconverted by the server where the device needs), raw "
    "audio from stdin (-)\nto its end, or a sine tone, and waits until it "
    "has drained. SIGINT or\nSIGTERM stops it (exit status 0).\n"
    "\n"
    "Options:\n"
    "  --connect PATH   use the server of \"aipc serve --listen PATH\"; "
    "without it\n"
    "                   a server runs in this process and the client part "
    "in a\n"
    "                   child process\n"
    "  --backend NAME   the in-process server's backend (default: cubeb's "
    "default\n"
    "                   when a sound server is reachable, else "
    "virtual:clock=realtime)\n"
    "  --device ID      play on the output device of this id (see aipc "
    "devices)\n"
    "  --volume V       the stream's volume, 0 to 1 (default 1)\n"
    "  --latency MS     the stream's latency (default: the backend's "
    "minimum)\n"
    "  --tone HZ        play a sine of HZ Hz (1..24000) instead of a file\n"
    "  --seconds S      stop after S seconds (default for --tone: 2)\n"
    "  --rate HZ        raw input's rate (default 48000)\n"
    "  --channels N     raw input's channels, 1 to 8 (default 2)\n"
    "  --format F       raw input's samples: s16le (default), s16be, f32le, "
    "f32be\n"
    "  -h, --help       show this help\n";

struct player {
  struct aipc_session session;
  struct aipc_media media;
  struct aipc_tone tone;
  bool is_tone;
  size_t frame_bytes;
};

/* Audio thread: copies out of the ring (or computes the tone), and pads
 * with silence only while more is to come. */
static long
play_data_cb(cubeb_stream *stream, void *user, const void *input, void *output,
             long nframes)
{
  (void)stream;
  (void)input;
  struct aipc_session *s = user;
  struct player *p = s->user;
  uint64_t moved = atomic_load_explicit(&s->moved, memory_order_relaxed);
  uint64_t left = s->limit - moved;
  size_t want = left < (uint64_t)nframes ? (size_t)left : (size_t)nframes;
  size_t got = want;
  if (p->is_tone) {
    aipc_tone_fill(&p->tone, output, (long)want, p->media.channels);
  } else {
    bool eof = atomic_load_explicit(&s->eof, memory_order_acquire);
    size_t whole = aipc_ring_used(&s->ring) / p->frame_bytes;
    got = whole < want ? whole : want;
    aipc_ring_pop(&s->ring, output, got * p->frame_bytes);
    if (got < want && !eof) {
      memset((uint8_t *)output + got * p->frame_bytes, 0,
             (want - got) * p->frame_bytes);
      atomic_fetch_add_explicit(&s->gaps, want - got, memory_order_relaxed);
      got = want;
    }
    sem_post(&s->wake);
  }
  atomic_store_explicit(&s->moved, moved + got, memory_order_relaxed);
  return (long)got; /* fewer than asked: drain */
}

/* Reads what fits into the ring. Returns 0, or -1 after a line on
 * stderr. Sets the end when the input has none left. */
static int
refill(struct player *p, const struct aipc_stream_args *a)
{
  struct aipc_session *s = &p->session;
  uint8_t chunk[16384];
  while (!atomic_load(&s->eof)) {
    size_t room = s->ring.size - aipc_ring_used(&s->ring);
    size_t len = room < sizeof(chunk) ? room : sizeof(chunk);
    len -= len % p->frame_bytes;
    if (len == 0)
      return 0;
    int64_t n = aipc_media_read(&p->media, chunk, len);
    if (n == -EINTR)
      return 0; /* a signal: the caller sees it */
    if (n < 0) {
      fprintf(stderr, "aipc %s: %s: %s\n", a->cmd, a->path,
              aipc_media_strerror(&p->media, (int)n));
      return -1;
    }
    /* Raw input may end in a partial frame: it is dropped. */
    if (n == 0)
      atomic_store_explicit(&s->eof, true, memory_order_release);
    aipc_ring_push(&s->ring, chunk, (size_t)n);
    /* A pipe gave what it had: come back later, unless the stream is
     * yet to start and has less than PLAY_RAW_START_MS. */
    if ((size_t)n < len && !p->media.file &&
        (s->stream || aipc_ring_used(&s->ring) >= (size_t)p->media.rate *
                                                      PLAY_RAW_START_MS / 1000 *
                                                      p->frame_bytes))
      return 0;
  }
  return 0;
}

static int
play_client(const char *cmd, cubeb *ctx, void *data)
{
  const struct aipc_stream_args *a = data;
  struct player p = {0};
  int status = AIPC_EXIT_FAILURE;
  if (a->tone) {
    p.is_tone = true;
    p.media.channels = 2;
    p.media.format = CUBEB_SAMPLE_FLOAT32NE;
    p.media.frame_bytes = 2 * sizeof(float);
    p.media.layout = CUBEB_LAYOUT_STEREO;
    if (cubeb_get_preferred_sample_rate(ctx, &p.media.rate) != CUBEB_OK ||
        p.media.rate == 0)
      p.media.rate = 48000;
    aipc_tone_init(&p.tone, a->tone, p.media.rate, PLAY_TONE_GAIN);
  } else if (aipc_media_open(a, 0, 0, &p.media) < 0) {
    return AIPC_EXIT_FAILURE;
  }
  uint32_t rate = p.media.rate;
  p.frame_bytes = p.media.frame_bytes;
  size_t ring =
      p.is_tone ? 0 : (size_t)rate * PLAY_RING_SECONDS * p.frame_bytes;
  int r = aipc_session_init(&p.session, ring);
  if (r < 0) {
    fprintf(stderr, "aipc %s: cannot set up the stream: %s\n", cmd,
            strerror(-r));
    aipc_media_close(&p.media, cmd, a->path);
    return AIPC_EXIT_FAILURE;
  }
  struct aipc_session *s = &p.session;
  s->user = &p;
  double seconds = a->seconds > 0 ? a->seconds : p.is_tone ? 2.0 : 0;
  s->limit = seconds > 0 ? (uint64_t)llround(seconds * rate) : UINT64_MAX;
  if (!p.is_tone && refill(&p, a) < 0)
    goto out;

  cubeb_stream_params params = {.format = p.media.format,
                                .rate = rate,
                                .channels = p.media.channels,
                                .layout = p.media.layout};
  if (aipc_session_open(s, a, ctx, &params, play_data_cb) < 0)
    goto out;
  /* A file's length bounds the wait; stdin's does not. */
  uint64_t expect = s->limit != UINT64_MAX ? s->limit
                    : p.media.file         ? p.media.frames
                                           : 0;
  int64_t deadline =
      expect ? aipc_tool_now_ns() +
                   (int64_t)(expect * 1000 / rate + PLAY_GRACE_MS) * 1000000
             : INT64_MAX;
  int end = -1;
  while ((end = atomic_load(&s->state)) < 0 && !aipc_session_stop_signal() &&
         aipc_tool_now_ns() < deadline) {
    aipc_session_wait(s, PLAY_POLL_MS);
    if (!p.is_tone && refill(&p, a) < 0)
      goto out;
  }
  int sig = aipc_session_stop_signal();
  cubeb_stream_destroy(s->stream);
  s->stream = NULL;
  uint64_t played = atomic_load(&s->moved);
  if (!sig && end != CUBEB_STATE_DRAINED) {
    fprintf(stderr, "aipc %s: the stream %s after %llu frames\n", cmd,
            end == CUBEB_STATE_ERROR ? "failed" : "did not drain in time",
            (unsigned long long)played);
    goto out;
  }
  char what[160];
  if (p.is_tone)
    snprintf(what, sizeof(what), "a %u Hz tone at %u Hz", a->tone, rate);
  else
    aipc_media_describe(&p.media, what, sizeof(what));
  printf("aipc %s: played %llu frames (%.2f s) of %s (%s)%s\n", cmd,
         (unsigned long long)played, (double)played / rate,
         p.is_tone                   ? "--tone"
         : strcmp(a->path, "-") == 0 ? "stdin"
                                     : a->path,
         what, sig ? ", stopped by a signal" : "");
  uint64_t gaps = atomic_load(&s->gaps);
  if (gaps)
    fprintf(stderr,
            "aipc %s: %llu frames of silence where the input came too "
            "slowly\n",
            cmd, (unsigned long long)gaps);
  status = AIPC_EXIT_OK;

out:
  aipc_session_destroy(s);
  aipc_media_close(&p.media, cmd, a->path);
  return status;
}

int
aipc_play_main(int argc, char **argv)
{
  struct aipc_stream_args a;
  int status;
  if (!aipc_stream_parse("play", false, play_usage, argc, argv, &a, &status))
    return status;
  return aipc_run_client("play", a.connect, a.backend, "virtual:clock=realtime",
                         play_client, &a);
}
