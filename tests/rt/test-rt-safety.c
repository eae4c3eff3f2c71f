/* SPDX-License-Identifier: ISC */
/*
 * Real-time safety: counts calls to malloc, calloc, realloc, free and
 * pthread_mutex_lock made inside the library's real-time sections (the
 * server's part of every audio callback and of every state callback a
 * backend makes, the client's callback thread outside the user's
 * callback) and fails on any. The counting functions
 * interpose glibc's, in the server (this process) and in the client
 * processes (this program, re-executed).
 *
 * Not built under sanitizers, whose runtimes own malloc.
 */
#include "../e2e/harness.h"
#include "rt.h"
#include "sound-file.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static int (*real_mutex_lock)(pthread_mutex_t *m);

__attribute__((constructor)) static void
find_real_functions(void)
{
  /* POSIX allows this conversion; ISO C does not, hence the memcpy. */
  void *sym = dlsym(RTLD_NEXT, "pthread_mutex_lock");
  memcpy(&real_mutex_lock, &sym, sizeof(sym));
}

/* The project builds with hidden visibility; these must be seen by the
 * libraries to interpose glibc's and to bind the hooks. */
#define EXPORT __attribute__((visibility("default")))

static _Thread_local int rt_depth;
static atomic_long rt_sections, rt_allocs, rt_frees, rt_locks;

EXPORT void
aipc_rt_hook_enter(void)
{
  if (rt_depth++ == 0)
    atomic_fetch_add_explicit(&rt_sections, 1, memory_order_relaxed);
}

EXPORT void
aipc_rt_hook_leave(void)
{
  rt_depth--;
}

EXPORT void *
malloc(size_t size)
{
  if (rt_depth)
    atomic_fetch_add(&rt_allocs, 1);
  return __libc_malloc(size);
}

EXPORT void *
calloc(size_t n, size_t size)
{
  if (rt_depth)
    atomic_fetch_add(&rt_allocs, 1);
  return __libc_calloc(n, size);
}

EXPORT void *
realloc(void *p, size_t size)
{
  if (rt_depth)
    atomic_fetch_add(&rt_allocs, 1);
  return __libc_realloc(p, size);
}

EXPORT void
free(void *p)
{
  if (rt_depth && p)
    atomic_fetch_add(&rt_frees, 1);
  __libc_free(p);
}

EXPORT int
pthread_mutex_lock(pthread_mutex_t *m)
{
  if (rt_depth)
    atomic_fetch_add(&rt_locks, 1);
  if (!real_mutex_lock) /* only while the constructor runs dlsym */
    find_real_functions();
  return real_mutex_lock(m);
}

static void
report(const char *who)
{
  printf("%s: %ld real-time sections; inside them %ld allocations, %ld frees, "
         "%ld mutex locks\n",
         who, atomic_load(&rt_sections), atomic_load(&rt_allocs),
         atomic_load(&rt_frees), atomic_load(&rt_locks));
  fflush(stdout);
}

static void
check_clean(void)
{
  CHECK(atomic_load(&rt_sections) > 0); /* the hooks are wired up */
  CHECK_INT(atomic_load(&rt_allocs), ==, 0);
  CHECK_INT(atomic_load(&rt_frees), ==, 0);
  CHECK_INT(atomic_load(&rt_locks), ==, 0);
}

struct player {
  atomic_long frames;
  long drain_after; /* frames; 0: never */
  atomic_int drained;
};

static long
data_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm;
  struct player *p = user;
  const float *input = in;
  float *output = out;
  for (long i = 0; output && i < n; i++)
    output[2 * i] = output[2 * i + 1] = input ? input[i] : 0.25f;
  long total = atomic_fetch_add(&p->frames, n) + n;
  return p->drain_after && total >= p->drain_after ? n / 2 : n;
}

static void
state_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  CHECK(state != CUBEB_STATE_ERROR);
  if (state == CUBEB_STATE_DRAINED)
    atomic_fetch_add(&((struct player *)user)->drained, 1);
}

/* Plays an output, an input and a duplex stream for about a second of
 * audio each: the first two render ahead (buffered), the duplex one
 * answers each callback. */
E2E_CLIENT(play_and_count)
{
  (void)arg;
  struct player p = {.frames = 0};
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream_params in = E2E_MONO_IN;
  cubeb_stream *streams[3];
  CHECK_INT(cubeb_stream_init(ctx, &streams[0], "rt-out", NULL, NULL, NULL,
                              &out, 128, data_cb, state_cb, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_init(ctx, &streams[1], "rt-duplex", NULL, &in, NULL,
                              &out, 128, data_cb, state_cb, &p),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_init(ctx, &streams[2], "rt-in", NULL, &in, NULL, NULL,
                              128, data_cb, state_cb, &p),
            ==, CUBEB_OK);
  for (int i = 0; i < 3; i++)
    CHECK_INT(cubeb_stream_start(streams[i]), ==, CUBEB_OK);
  while (atomic_load(&p.frames) < 3 * 48000)
    usleep(1000);
  for (int i = 0; i < 3; i++) {
    CHECK_INT(cubeb_stream_stop(streams[i]), ==, CUBEB_OK);
    cubeb_stream_destroy(streams[i]);
  }

  /* One that drains: the backend reports it from its audio thread. */
  struct player d = {.frames = 0, .drain_after = 4800};
  cubeb_stream *drainer;
  CHECK_INT(cubeb_stream_init(ctx, &drainer, "rt-drain", NULL, NULL, NULL, &out,
                              128, data_cb, state_cb, &d),
            ==, CUBEB_OK);
  CHECK_INT(cubeb_stream_start(drainer), ==, CUBEB_OK);
  while (atomic_load(&d.drained) == 0)
    usleep(1000);
  CHECK_INT(cubeb_stream_stop(drainer), ==, CUBEB_OK);
  cubeb_stream_destroy(drainer);
  report("client");
  check_clean();
}

static void
run(unsigned pool_size)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,out=%s");
  e.pool_size = pool_size;
  test_wait_ok(e2e_spawn(&e, play_and_count, 0));
  report("server");
  check_clean();
  e2e_finish(&e);
}

TEST(rt_no_allocation_or_lock_in_callbacks)
{
  run(0);
}

TEST(rt_no_allocation_or_lock_in_pooled_callbacks)
{
  run(1);
}

/* What the virtual device's clock thread does with its out= file each
 * period (virtual.c, write_mix): libsndfile's writes of float and s16
 * WAV, and the header rewrite, allocate nothing and take no lock. */
TEST(rt_sound_file_writes_do_not_allocate)
{
  char dir[] = "/tmp/aipc-rt-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[64];
  snprintf(path, sizeof(path), "%s/out.wav", dir);
  static float mix[2 * 128];
  static int16_t mix16[2 * 128];
  for (int i = 0; i < 2 * 128; i++) {
    mix[i] = (float)i / 256.0f;
    mix16[i] = (int16_t)(i * 100);
  }
  for (int pass = 0; pass < 2; pass++) {
    bool is_float = pass == 0;
    char why[AIPC_SOUND_WHY_MAX];
    int format;
    CHECK_INT(aipc_sound_format_for(
                  path, is_float ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16, 2, 48000,
                  true, &format, why, sizeof(why)),
              ==, 0);
    SNDFILE *f;
    CHECK_INT(aipc_sound_create(path, format, 2, 48000, &f, why, sizeof(why)),
              ==, 0);
    atomic_store(&rt_allocs, 0);
    atomic_store(&rt_frees, 0);
    atomic_store(&rt_locks, 0);
    for (int period = 0; period < 1000; period++) {
      aipc_rt_hook_enter();
      sf_count_t n = is_float ? sf_writef_float(f, mix, 128)
                              : sf_writef_short(f, mix16, 128);
      CHECK_INT(n, ==, 128);
      if (period % 100 == 99)
        CHECK_INT(aipc_sound_sync(f, why, sizeof(why)), ==, 0);
      aipc_rt_hook_leave();
    }
    report(is_float ? "f32 WAV writes" : "s16 WAV writes");
    check_clean();
    CHECK_INT(aipc_sound_close(f, why, sizeof(why)), ==, 0);
  }
  CHECK(unlink(path) == 0);
  CHECK(rmdir(dir) == 0);
}
