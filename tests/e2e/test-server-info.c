/* SPDX-License-Identifier: ISC */
/*
 * audioipc_server_get_clients and audioipc_server_get_streams: what the
 * server tells its embedder of its clients and their live streams, with
 * a real client process stepping its stream through its states.
 */
#include "harness.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define FAST "virtual:clock=fast,rate=48000,channels=2,period=128,out=%s"

/* The client and the test take turns over a socketpair: the client says
 * where it is, the test looks and answers. */
enum step { STEP_MADE = 'm', STEP_STARTED = 's', STEP_STOPPED = 'x' };

static void
say(int fd, char c)
{
  CHECK_INT(write(fd, &c, 1), ==, 1);
}

static char
hear(int fd)
{
  char c = 0;
  CHECK_INT(read(fd, &c, 1), ==, 1);
  return c;
}

/* What the client saw of its stream, to set against the server's
 * account. */
struct seen {
  atomic_uint_fast64_t frames; /* produced by the data callback */
  atomic_int state;            /* the last state callback's */
};

static long
count_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)in;
  struct seen *seen = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&seen->frames, (uint64_t)n);
  return n;
}

static void
note_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct seen *seen = user;
  atomic_store(&seen->state, (int)state);
}

/* Tells the test how many frames the callback produced, once the
 * stream has stopped. */
static void
say_frames(int fd, struct seen *seen)
{
  uint64_t frames = atomic_load(&seen->frames);
  CHECK_INT(write(fd, &frames, sizeof(frames)), ==, sizeof(frames));
}

/* A duplex stream, mono in and stereo out, made, started, stopped and
 * destroyed, a turn at each step. */
E2E_CLIENT(step_through_states)
{
  int fd = arg;
  cubeb_stream_params in = E2E_MONO_IN, out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  struct seen seen = {.state = -1};
  CHECK_INT(cubeb_stream_init(ctx, &stm, "steps", NULL, &in, NULL, &out, 256,
                              count_cb, note_state, &seen),
            ==, CUBEB_OK);
  say(fd, STEP_MADE);
  hear(fd);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  say(fd, STEP_STARTED);
  hear(fd);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  /* The client's last state is the one the server shows. */
  while (atomic_load(&seen.state) != CUBEB_STATE_STOPPED)
    usleep(1000);
  say(fd, STEP_STOPPED);
  say_frames(fd, &seen);
  hear(fd);
  cubeb_stream_destroy(stm);
  close(fd);
}

/* The client of `pid` among the server's, or fails. */
static AudioIpcClientInfo
find_client(void *server, pid_t pid)
{
  AudioIpcClientInfo clients[8];
  int n = audioipc_server_get_clients(server, clients, 8);
  CHECK(n >= 1 && n <= 8);
  for (int i = 0; i < n; i++)
    if (clients[i].pid == pid)
      return clients[i];
  test_fail(__FILE__, __LINE__, "no client with pid %d", (int)pid);
}

/* The one live stream, which must be client `client`'s. */
static AudioIpcStreamInfo
only_stream(void *server, unsigned client)
{
  AudioIpcStreamInfo streams[4];
  CHECK_INT(audioipc_server_get_streams(server, streams, 4), ==, 1);
  CHECK_INT(streams[0].stats.client, ==, client);
  CHECK_INT(streams[0].stats.active, ==, 1);
  return streams[0];
}

/* The stream's state once the event has been raised: the client is told
 * from the server's thread, so the step's answer may come a moment
 * before. Bounded by the test's timeout. */
static AudioIpcStreamInfo
stream_in_state(void *server, unsigned client, int state)
{
  AudioIpcStreamInfo s;
  while ((s = only_stream(server, client)).state != state)
    usleep(1000);
  return s;
}

TEST(server_info_follows_a_stream_through_its_states)
{
  struct e2e e;
  e2e_start(&e, FAST);
  e.trusted_pids = true;
  int sv[2];
  test_socketpair(sv);
  pid_t pid = e2e_spawn_keeping(&e, step_through_states, sv[1]);
  close(sv[1]);

  CHECK_INT(hear(sv[0]), ==, STEP_MADE);
  AudioIpcClientInfo c = find_client(e.server, pid);
  CHECK_INT(c.uid, ==, geteuid());
  AudioIpcStreamInfo s = only_stream(e.server, c.client);
  CHECK_INT(s.stats.client_pid, ==, pid);
  CHECK_INT(s.stats.stream, ==, 1);
  CHECK_INT(s.input_channels, ==, 1);
  CHECK_INT(s.output_channels, ==, 2);
  CHECK_INT(s.rate, ==, 48000);
  CHECK_INT(s.format, ==, CUBEB_SAMPLE_FLOAT32NE);
  CHECK_INT(s.latency_frames, ==, 256);
  CHECK_INT(s.state, ==, -1);
  CHECK_INT(s.stats.callbacks, ==, 0);
  CHECK(s.stats.shm_bytes > 0);
  say(sv[0], 'n');

  CHECK_INT(hear(sv[0]), ==, STEP_STARTED);
  s = stream_in_state(e.server, c.client, CUBEB_STATE_STARTED);
  while ((s = only_stream(e.server, c.client)).stats.callbacks == 0)
    usleep(1000);
  say(sv[0], 'n');

  CHECK_INT(hear(sv[0]), ==, STEP_STOPPED);
  uint64_t frames = 0;
  CHECK_INT(read(sv[0], &frames, sizeof(frames)), ==, sizeof(frames));
  s = stream_in_state(e.server, c.client, CUBEB_STATE_STOPPED);
  /* The same frames, but for what went by around the stop: a request
   * the client's thread answered with silence once stopping, or one
   * answered late (a request is at most 512 frames here). */
  CHECK(frames > 0);
  CHECK_INT(s.stats.frames, <=, frames + 2 * 512);
  CHECK_INT(s.stats.frames + 2 * 512, >=, frames);
  say(sv[0], 'n');

  test_wait_ok(pid);
  close(sv[0]);
  /* Live streams only; the client leaves the list once torn down. */
  AudioIpcStreamInfo none[1];
  while (audioipc_server_get_streams(e.server, none, 1) != 0)
    usleep(1000);
  AudioIpcClientInfo clients[8];
  int n;
  for (;;) {
    n = audioipc_server_get_clients(e.server, clients, 8);
    bool gone = true;
    for (int i = 0; i < n; i++)
      gone &= clients[i].pid != pid;
    if (gone)
      break;
    usleep(1000);
  }
  /* The stream's statistics outlive it, as before. */
  AudioIpcStreamStats stats[4];
  CHECK_INT(audioipc_server_get_stream_stats(e.server, stats, 4), ==, 1);
  CHECK_INT(stats[0].active, ==, 0);
  e2e_finish(&e);
}

E2E_CLIENT(hold_a_stream)
{
  int fd = arg;
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  struct seen seen = {.state = -1};
  CHECK_INT(cubeb_stream_init(ctx, &stm, "held", NULL, NULL, NULL, &out, 512,
                              count_cb, note_state, &seen),
            ==, CUBEB_OK);
  say(fd, STEP_MADE);
  hear(fd);
  cubeb_stream_destroy(stm);
  close(fd);
}

/* A client made without a pid has none and no uid; the counts are
 * returned whatever `max` says, and nothing is written past it. */
TEST(server_info_without_a_pid_and_beyond_max)
{
  struct e2e e;
  e2e_start(&e, FAST);
  CHECK_INT(audioipc_server_get_clients(NULL, NULL, 0), ==, -1);
  CHECK_INT(audioipc_server_get_streams(NULL, NULL, 0), ==, -1);
  int sv[2][2];
  pid_t pids[2];
  /* One after the other, so that the second client's stream is the
   * newer. */
  for (int i = 0; i < 2; i++) {
    test_socketpair(sv[i]);
    pids[i] = e2e_spawn_keeping(&e, hold_a_stream, sv[i][1]);
    close(sv[i][1]);
    CHECK_INT(hear(sv[i][0]), ==, STEP_MADE);
  }

  AudioIpcClientInfo clients[3];
  memset(clients, 0xa5, sizeof(clients));
  int n = audioipc_server_get_clients(e.server, clients, 1);
  CHECK_INT(n, ==, 2);
  CHECK_INT(clients[0].pid, ==, 0);
  CHECK_INT(clients[0].uid, ==, (uid_t)-1);
  CHECK_INT(clients[1].client, ==, 0xa5a5a5a5u); /* untouched */
  CHECK_INT(audioipc_server_get_clients(e.server, clients, 3), ==, 2);
  CHECK(clients[0].client != clients[1].client);
  CHECK_INT(audioipc_server_get_clients(e.server, NULL, 0), ==, 2);

  AudioIpcStreamInfo streams[3];
  memset(streams, 0xa5, sizeof(streams));
  CHECK_INT(audioipc_server_get_streams(e.server, streams, 1), ==, 2);
  CHECK_INT(streams[0].output_channels, ==, 2);
  CHECK_INT(streams[0].input_channels, ==, 0);
  CHECK_INT(streams[0].latency_frames, ==, 512);
  CHECK_INT(streams[1].rate, ==, 0xa5a5a5a5u); /* untouched */
  CHECK_INT(audioipc_server_get_streams(e.server, streams, 3), ==, 2);
  /* Newest first; clients oldest first. */
  CHECK_INT(streams[0].stats.client, ==, clients[1].client);
  CHECK_INT(streams[1].stats.client, ==, clients[0].client);

  for (int i = 0; i < 2; i++) {
    say(sv[i][0], 'n');
    test_wait_ok(pids[i]);
    close(sv[i][0]);
  }
  e2e_finish(&e);
}
