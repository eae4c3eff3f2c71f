/* SPDX-License-Identifier: ISC */
#include "fixture.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIXTURE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIXTURE_ASAN 1
#endif
#endif

#ifdef FIXTURE_ASAN
/* From <sanitizer/allocator_interface.h>, which gcc does not ship. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* The heap may differ from its baseline by this much (allocator
 * bookkeeping, lazily grown tables); a leak per request or per stream
 * shows up far above it in the cases that repeat thousands of times.
 * ASan counts the bytes handed out exactly; glibc's count moves more. */
#ifdef FIXTURE_ASAN
#define HEAP_TOLERANCE (16 * 1024)
#else
#define HEAP_TOLERANCE (64 * 1024)
#endif
/* On a real backend, more: libpulse keeps freed objects in static free
 * lists (PA_STATIC_FLIST) that grow to the most it ever had at once, and
 * alsa-lib caches its configuration; both depend on the peak load, not
 * on the number of requests, which a leak of ours would follow. */
#define BACKEND_HEAP_TOLERANCE (192 * 1024)
/* Teardown is asynchronous; this only catches a server that never
 * finishes it. */
#define SETTLE_DEADLINE_MS 20000.0

size_t
fixture_heap_tolerance(void)
{
  return HEAP_TOLERANCE;
}

double
fixture_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

size_t
fixture_heap_bytes(void)
{
#ifdef FIXTURE_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

/* --- The honest client ---------------------------------------------------- */

struct player {
  atomic_uint_fast64_t frame;
  atomic_int callbacks;
  atomic_int errors;
};

static long
player_data(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  (void)in;
  struct player *p = user;
  float *samples = out;
  uint64_t frame = atomic_load(&p->frame);
  for (long i = 0; i < n; i++, frame++)
    for (uint32_t ch = 0; ch < 2; ch++)
      samples[i * 2 + ch] = e2e_sample(frame, ch);
  atomic_store(&p->frame, frame);
  atomic_fetch_add(&p->callbacks, 1);
  return n;
}

static void
player_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct player *p = user;
  if (state == CUBEB_STATE_ERROR)
    atomic_fetch_add(&p->errors, 1);
}

E2E_CLIENT(honest_player)
{
  int ctl = arg;
  struct player p = {.callbacks = 0};
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = FIXTURE_RATE,
                                .channels = 2,
                                .layout = CUBEB_LAYOUT_STEREO};
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "honest", NULL, NULL, NULL, &params,
                              FIXTURE_PERIOD, player_data, player_state, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(stm), ==, CUBEB_OK);
  while (atomic_load(&p.callbacks) < 8)
    usleep(1000);
  CHECK(write(ctl, "p", 1) == 1);
  char c = 0;
  while (read(ctl, &c, 1) == 1 && c != 'q')
    ;
  CHECK_INT(atomic_load(&p.errors), ==, 0);
  CHECK_INT(cubeb_stream_stop(stm), ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  CHECK(write(ctl, "d", 1) == 1);
  close(ctl);
}

/* --- Setting up ----------------------------------------------------------- */

void
fixture_connect(struct fixture *f, struct raw *r, unsigned *number)
{
  int fd = audioipc_server_new_client(f->e.server, 0);
  CHECK(fd >= 0);
  raw_init(r, fd);
  f->clients_made++;
  if (number)
    *number = f->clients_made;
}

pid_t
fixture_spawn(struct fixture *f, e2e_client_fn fn, int fd, unsigned *number)
{
  pid_t pid = e2e_spawn_keeping(&f->e, fn, fd);
  f->clients_made++;
  if (number)
    *number = f->clients_made;
  return pid;
}

pid_t
fixture_spawn_player(struct fixture *f, int *ctl, unsigned *number)
{
  int sv[2];
  test_socketpair(sv);
  pid_t pid = fixture_spawn(f, honest_player, sv[1], number);
  close(sv[1]);
  char c;
  CHECK(read(sv[0], &c, 1) == 1 && c == 'p');
  *ctl = sv[0];
  return pid;
}

AudioIpcStreamStats
fixture_stats(struct fixture *f, unsigned client, uint32_t stream)
{
  static AudioIpcStreamStats all[512];
  int n = audioipc_server_get_stream_stats(f->e.server, all, 512);
  CHECK(n >= 0);
  for (int i = 0; i < n && i < 512; i++)
    if (all[i].client == client && all[i].stream == stream)
      return all[i];
  test_fail(__FILE__, __LINE__, "no statistics for stream %u of client %u",
            stream, client);
}

int
fixture_live_streams(struct fixture *f)
{
  static AudioIpcStreamStats all[512];
  int n = audioipc_server_get_stream_stats(f->e.server, all, 512);
  CHECK(n >= 0);
  int live = 0;
  for (int i = 0; i < n && i < 512; i++)
    live += all[i].active != 0;
  return live;
}

uint64_t
fixture_honest_frames(struct fixture *f)
{
  AudioIpcStreamStats s = fixture_stats(f, f->honest, 1);
  CHECK(s.active);
  if (s.misses != 0)
    test_fail(__FILE__, __LINE__,
              "the honest stream missed %llu deadline(s) (%llu callbacks, "
              "longest wait %u us)",
              (unsigned long long)s.misses, (unsigned long long)s.callbacks,
              s.wait_max_us);
  return s.frames;
}

/* Loop-thread barrier: the server's loop finishes what it was doing
 * (the last step of a client's teardown runs there) before this returns. */
static void
loop_barrier(struct fixture *f)
{
  AudioIpcServerLimits limits;
  CHECK_INT(audioipc_server_get_limits(f->e.server, &limits), ==, 0);
}

/* Waits until the fd count is back at the baseline, then for the loop. */
static double
wait_fds(struct fixture *f, const char *what)
{
  double start = fixture_now_ms();
  int n;
  while ((n = test_count_fds()) != f->fds) {
    if (fixture_now_ms() - start > SETTLE_DEADLINE_MS)
      test_fail(__FILE__, __LINE__, "%s: %d fds open, baseline %d", what, n,
                f->fds);
    usleep(500);
  }
  loop_barrier(f);
  return fixture_now_ms() - start;
}

static void
warm_up(struct fixture *f)
{
  /* Fill the server's list of retired stream statistics (it keeps 256),
   * so later streams replace entries instead of adding them. */
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  for (int i = 0; i < 300; i++) {
    int id = raw_stream_init(&r, &q, NULL, NULL);
    CHECK(id > 0);
    CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, (uint32_t)id), ==, 0);
  }
  for (int i = 0; i < 6; i++) {
    struct aipc_enumerate_devices e = {.type = CUBEB_DEVICE_TYPE_OUTPUT |
                                               CUBEB_DEVICE_TYPE_INPUT};
    int error = raw_call(&r, AIPC_OP_ENUMERATE_DEVICES, &e, NULL, NULL);
    /* ALSA's fails now and then (shared audio-env notes). */
    CHECK(error == 0 || error == -EIO);
  }
  raw_close(&r);
  wait_fds(f, "warm-up");
}

void
fixture_start(struct fixture *f, const char *backend)
{
  memset(f, 0, sizeof(*f));
  f->heap_tolerance = backend ? BACKEND_HEAP_TOLERANCE : HEAP_TOLERANCE;
  e2e_start(&f->e, backend ? backend : FIXTURE_BACKEND);
  f->honest_pid = fixture_spawn_player(f, &f->honest_ctl, &f->honest);
  /* The raw clients of the cases speak the synchronous protocol (each
   * request answered); the honest player renders ahead, as clients do
   * by default. Cases of buffered streams turn it on for their own. */
  e2e_set_render_ahead(&f->e, 0);
  f->fds = test_count_fds();
  warm_up(f);
  fixture_baseline(f);
}

void
fixture_baseline(struct fixture *f)
{
  wait_fds(f, "baseline");
  f->heap = fixture_heap_bytes();
  f->honest_frames = fixture_honest_frames(f);
}

double
fixture_wait_baseline(struct fixture *f, const char *what)
{
  double start = fixture_now_ms();
  wait_fds(f, what);
  size_t heap;
  for (;;) {
    heap = fixture_heap_bytes();
    if (heap <= f->heap + f->heap_tolerance)
      break;
    if (fixture_now_ms() - start > SETTLE_DEADLINE_MS)
      test_fail(__FILE__, __LINE__, "%s: heap %zu bytes, baseline %zu", what,
                heap, f->heap);
    usleep(1000);
  }
  return fixture_now_ms() - start;
}

void
fixture_check(struct fixture *f, const char *what)
{
  /* A fresh client is served. */
  struct raw r;
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_ping ping = {.value = 42}, pong;
  CHECK_INT(raw_call(&r, AIPC_OP_PING, &ping, &pong, NULL), ==, 0);
  CHECK_INT(pong.value, ==, 42);
  raw_close(&r);

  double ms = fixture_wait_baseline(f, what);
  /* The honest stream plays on (a short case may take less than a
   * period: wait for a few). */
  double start = fixture_now_ms();
  uint64_t frames;
  while ((frames = fixture_honest_frames(f)) <
         f->honest_frames + 4 * FIXTURE_PERIOD) {
    if (fixture_now_ms() - start > SETTLE_DEADLINE_MS)
      test_fail(__FILE__, __LINE__, "%s: the honest stream stopped playing",
                what);
    usleep(1000);
  }
  long long heap_delta = (long long)fixture_heap_bytes() - (long long)f->heap;
  printf("  %-34s fds back at baseline after %.1f ms, heap %+lld bytes, "
         "honest stream +%llu frames, 0 misses\n",
         what, ms, heap_delta, (unsigned long long)(frames - f->honest_frames));
  fflush(stdout);
  f->honest_frames = frames;
}

void
fixture_finish(struct fixture *f)
{
  fixture_honest_frames(f);
  CHECK(write(f->honest_ctl, "q", 1) == 1);
  char c;
  CHECK(read(f->honest_ctl, &c, 1) == 1 && c == 'd');
  close(f->honest_ctl);
  test_wait_ok(f->honest_pid);
  e2e_finish(&f->e);
}
