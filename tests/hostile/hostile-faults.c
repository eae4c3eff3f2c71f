/* SPDX-License-Identifier: ISC */
/*
 * Faults: a client killed mid-stream, a client stopped for seconds, and
 * the server stopped under its clients. Timings are printed, not
 * asserted; the deadlines only catch hangs.
 */
#include "fixture.h"
#include "hostile.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* --- SIGKILL -------------------------------------------------------------- */

static int
compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Kills a playing client; returns the milliseconds until the server
 * had closed every fd of it (its streams' memory and its connection:
 * the last step of its teardown). */
static double
kill_player(struct fixture *f, bool measure_heap)
{
  int ctl;
  unsigned number;
  pid_t pid = fixture_spawn_player(f, &ctl, &number);
  AudioIpcStreamStats before = fixture_stats(f, number, 1);
  CHECK(before.active);

  double start = fixture_now_ms();
  CHECK(kill(pid, SIGKILL) == 0);
  close(ctl);
  while (test_count_fds() != f->fds) {
    if (fixture_now_ms() - start > 20000)
      test_fail(__FILE__, __LINE__,
                "the killed client's fds were not reclaimed in 20 s");
  }
  double fds_ms = fixture_now_ms() - start;
  double all_ms = measure_heap ? fixture_wait_baseline(f, "SIGKILL") : 0;
  int status = test_wait(pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK(!fixture_stats(f, number, 1).active);
  if (measure_heap)
    printf("  killed client %u: fds reclaimed %.2f ms after SIGKILL, heap "
           "back within %.2f ms more\n",
           number, fds_ms, all_ms);
  return fds_ms;
}

static void
killed_case(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  kill_player(&f, false);
  fixture_baseline(&f);
  enum { ROUNDS = 8 };
  double ms[ROUNDS];
  for (int i = 0; i < ROUNDS; i++)
    ms[i] = kill_player(&f, true);
  qsort(ms, ROUNDS, sizeof(ms[0]), compare_doubles);
  printf("  reclaim after SIGKILL: min %.2f ms, median %.2f ms, max %.2f ms "
         "(%d kills)\n",
         ms[0], ms[ROUNDS / 2], ms[ROUNDS - 1], ROUNDS);
  fixture_check(&f, "SIGKILL mid-stream");
  fixture_finish(&f);
}

TEST(fault_client_killed_mid_stream_is_reclaimed)
{
  killed_case(NULL);
}

TEST(pulse_fault_client_killed_mid_stream_is_reclaimed)
{
  killed_case("pulse");
}

/* --- SIGSTOP
 * ------------------------------------------------------------------ */

#define STOP_MS 5000.0

static void
stopped_case(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  int ctl;
  unsigned victim;
  pid_t pid = fixture_spawn_player(&f, &ctl, &victim);
  AudioIpcStreamStats before = fixture_stats(&f, victim, 1);
  CHECK_INT(before.misses, ==, 0);
  uint64_t honest_before = fixture_honest_frames(&f);

  CHECK(kill(pid, SIGSTOP) == 0);
  int stopped;
  CHECK(waitpid(pid, &stopped, WUNTRACED) == pid && WIFSTOPPED(stopped));
  double start = fixture_now_ms();
  AudioIpcStreamStats at_stop = fixture_stats(&f, victim, 1);
  /* Meanwhile the others play on, and the stopped one misses. */
  while (fixture_now_ms() - start < STOP_MS) {
    fixture_honest_frames(&f);
    usleep(50000);
  }
  AudioIpcStreamStats stopped_stats = fixture_stats(&f, victim, 1);
  uint64_t honest = fixture_honest_frames(&f) - honest_before;
  /* At most the request in flight when it stopped was answered (a
   * request holds max(latency, 512) frames at most). */
  CHECK(stopped_stats.frames <= at_stop.frames + 512);
  CHECK(stopped_stats.misses > at_stop.misses);
  CHECK(stopped_stats.callbacks > at_stop.callbacks + 100);
  printf("  stopped client: %llu callbacks served as silence in %.0f ms; "
         "honest stream +%llu frames, 0 misses\n",
         (unsigned long long)(stopped_stats.misses - at_stop.misses), STOP_MS,
         (unsigned long long)honest);

  CHECK(kill(pid, SIGCONT) == 0);
  double resumed = fixture_now_ms();
  uint64_t frames;
  while ((frames = fixture_stats(&f, victim, 1).frames) <
         stopped_stats.frames + 10 * FIXTURE_PERIOD) {
    if (fixture_now_ms() - resumed > 20000)
      test_fail(__FILE__, __LINE__, "the resumed client does not play");
    usleep(1000);
  }
  printf("  resumed client plays again %.1f ms after SIGCONT\n",
         fixture_now_ms() - resumed);
  /* And keeps playing: no more misses once it has caught up. */
  AudioIpcStreamStats caught_up = fixture_stats(&f, victim, 1);
  usleep(200000);
  AudioIpcStreamStats later = fixture_stats(&f, victim, 1);
  CHECK(later.frames > caught_up.frames);
  CHECK_INT(later.misses, ==, caught_up.misses);

  CHECK(write(ctl, "q", 1) == 1);
  char c;
  CHECK(read(ctl, &c, 1) == 1 && c == 'd');
  close(ctl);
  test_wait_ok(pid);
  fixture_check(&f, "SIGSTOP for 5 s");
  fixture_finish(&f);
}

TEST_TIMEOUT(fault_client_stopped_plays_silence_then_resumes, 90)
{
  stopped_case(NULL);
}

TEST_TIMEOUT(pulse_fault_client_stopped_plays_silence_then_resumes, 90)
{
  stopped_case("pulse");
}

/* --- The server stops
 * ---------------------------------------------------------- */

struct doomed {
  atomic_int callbacks;
  atomic_int errors;
};

static long
doomed_data(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)in;
  struct doomed *d = user;
  memset(out, 0, (size_t)n * 2 * sizeof(float));
  atomic_fetch_add(&d->callbacks, 1);
  return n;
}

static void
doomed_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct doomed *d = user;
  if (state == CUBEB_STATE_ERROR)
    atomic_fetch_add(&d->errors, 1);
}

/* Plays two streams until the server goes away; each must hear of it
 * once, and every call must fail after. */
E2E_CLIENT(play_until_server_stops)
{
  int ctl = arg;
  struct doomed d = {.callbacks = 0};
  cubeb_stream_params params = E2E_STEREO_OUT;
  cubeb_stream *stm[2];
  for (int i = 0; i < 2; i++) {
    CHECK_INT(cubeb_stream_init(ctx, &stm[i], "doomed", NULL, NULL, NULL,
                                &params, FIXTURE_PERIOD, doomed_data,
                                doomed_state, &d),
              ==, CUBEB_OK);
    CHECK_INT(cubeb_stream_start(stm[i]), ==, CUBEB_OK);
  }
  while (atomic_load(&d.callbacks) < 16)
    usleep(1000);
  CHECK(write(ctl, "p", 1) == 1);
  while (atomic_load(&d.errors) < 2)
    usleep(1000);
  uint64_t position;
  CHECK_INT(cubeb_stream_get_position(stm[0], &position), ==, CUBEB_ERROR);
  CHECK_INT(cubeb_stream_stop(stm[1]), ==, CUBEB_ERROR);
  uint32_t rate;
  CHECK_INT(cubeb_get_preferred_sample_rate(ctx, &rate), ==, CUBEB_ERROR);
  usleep(50000);
  CHECK_INT(atomic_load(&d.errors), ==, 2);
  for (int i = 0; i < 2; i++)
    cubeb_stream_destroy(stm[i]);
  close(ctl);
}

static void
stop_under_clients(bool report)
{
  struct fixture f;
  memset(&f, 0, sizeof(f));
  e2e_start(&f.e, FIXTURE_BACKEND);

  enum { CLIENTS = 3 };
  pid_t pids[CLIENTS];
  int ctls[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    int sv[2];
    test_socketpair(sv);
    pids[i] = fixture_spawn(&f, play_until_server_stops, sv[1], NULL);
    close(sv[1]);
    ctls[i] = sv[0];
  }
  for (int i = 0; i < CLIENTS; i++) {
    char c;
    CHECK(read(ctls[i], &c, 1) == 1 && c == 'p');
  }
  /* Raw clients in awkward states: one mid-handshake, one whose started
   * stream never answers, one with a request queued behind another. */
  struct raw shy, mute;
  fixture_connect(&f, &shy, NULL);
  fixture_connect(&f, &mute, NULL);
  raw_greet(&mute);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int id = raw_stream_init(&mute, &q, NULL, NULL);
  CHECK(id > 0);
  CHECK_INT(raw_stream_call(&mute, AIPC_OP_STREAM_START, (uint32_t)id), ==, 0);
  struct aipc_stream_ref ref = {(uint32_t)id};
  raw_send_body(&mute, AIPC_OP_STREAM_GET_POSITION, &ref);
  raw_send_body(&mute, AIPC_OP_STREAM_STOP, &ref);

  double start = fixture_now_ms();
  audioipc_server_stop(f.e.server);
  f.e.server = NULL;
  if (report)
    printf("  audioipc_server_stop returned after %.1f ms with %d clients "
           "playing\n",
           fixture_now_ms() - start, CLIENTS);
  raw_expect_hangup(&shy);
  raw_expect_hangup(&mute);
  raw_close(&shy);
  raw_close(&mute);
  for (int i = 0; i < CLIENTS; i++) {
    test_wait_ok(pids[i]);
    close(ctls[i]);
  }
  e2e_finish(&f.e);
}

TEST(fault_server_stops_under_playing_clients)
{
  /* Once to warm up what a process sets up once, then measured. */
  stop_under_clients(false);
  int fds_before = test_count_fds();
  size_t heap_before = fixture_heap_bytes();
  stop_under_clients(true);
  CHECK_INT(test_count_fds(), ==, fds_before);
  long long heap_delta =
      (long long)fixture_heap_bytes() - (long long)heap_before;
  printf("  after the server stopped: heap %+lld bytes against before it "
         "started\n",
         heap_delta);
  CHECK(heap_delta <= (long long)fixture_heap_tolerance());
}

/* --- The virtual device's change hooks, from any thread ------------------- */

static atomic_bool triggers_quit;

static void *
trigger_changes(void *data)
{
  atomic_uint *calls = data;
  while (!atomic_load(&triggers_quit)) {
    audioipc_server_virtual_device_changed();
    audioipc_server_virtual_collection_changed();
    atomic_fetch_add(calls, 1);
    /* Each change is an event for every stream registered: a storm
     * faster than the clients read would rightly get them hung up on. */
    usleep(1000);
  }
  return NULL;
}

/* Streams register for device changes and go, contexts register for
 * collection changes and go, while another thread makes the device report
 * changes as fast as it can: a callback must never run on a stream or a
 * client the server has freed (ASan sees it). */
#define RACE_STREAMS 64

TEST_TIMEOUT(hostile_device_changes_race_stream_destruction, 120)
{
  struct fixture f;
  fixture_start(&f, NULL);
  atomic_uint calls = 0;
  atomic_store(&triggers_quit, false);
  pthread_t thread;
  CHECK_INT(pthread_create(&thread, NULL, trigger_changes, &calls), ==, 0);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  unsigned streams = 0;
  for (int round = 0; round < 30; round++) {
    struct raw r;
    fixture_connect(&f, &r, NULL);
    r.lax = true;
    raw_greet(&r);
    struct aipc_register_collection_changed reg = {
        .type = CUBEB_DEVICE_TYPE_INPUT | CUBEB_DEVICE_TYPE_OUTPUT,
        .enable = 1};
    CHECK_INT(
        raw_call(&r, AIPC_OP_REGISTER_COLLECTION_CHANGED, &reg, NULL, NULL), ==,
        0);
    uint32_t ids[RACE_STREAMS];
    for (int i = 0; i < RACE_STREAMS; i++) {
      int id = raw_stream_init(&r, &q, NULL, NULL);
      CHECK(id > 0);
      ids[i] = (uint32_t)id;
      struct aipc_stream_register on = {.stream = ids[i], .enable = 1};
      CHECK_INT(
          raw_call(&r, AIPC_OP_STREAM_REGISTER_DEVICE_CHANGED, &on, NULL, NULL),
          ==, 0);
    }
    /* Half go one by one, the rest with the connection. */
    for (int i = 0; i < RACE_STREAMS / 2; i++)
      CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, ids[i]), ==, 0);
    streams += RACE_STREAMS;
    /* The context goes with its registration in place. */
    raw_close(&r);
  }
  atomic_store(&triggers_quit, true);
  pthread_join(thread, NULL);
  printf("  %u streams and 30 contexts came and went during %u rounds of "
         "device and collection changes\n",
         streams, atomic_load(&calls));
  fixture_check(&f, "device changes");
  fixture_finish(&f);
}
