/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "clock.h"
#include "shm.h"
#include "wake.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

struct pingpong {
  struct aipc_wake ping;
  struct aipc_wake pong;
  struct aipc_wake countdown;
};

static struct pingpong *
shared_pingpong(struct aipc_shm *shm)
{
  CHECK_INT(aipc_shm_create("wake", 4096, shm), ==, 0);
  return shm->base;
}

#define ROUNDS 10000

/* The responder answers each ping value with the same pong value. */
static void
responder(void *arg)
{
  struct pingpong *pp = arg;
  for (uint32_t i = 1; i <= ROUNDS; i++) {
    uint32_t v;
    while ((v = aipc_wake_load(&pp->ping)) != i)
      CHECK_INT(aipc_wake_wait(&pp->ping, v, -1), ==, 0);
    aipc_wake_publish(&pp->pong, i);
  }
}

TEST(wake_ping_pong_across_processes)
{
  struct aipc_shm shm;
  struct pingpong *pp = shared_pingpong(&shm);
  pid_t pid = test_fork(responder, pp);
  for (uint32_t i = 1; i <= ROUNDS; i++) {
    aipc_wake_publish(&pp->ping, i);
    uint32_t v;
    while ((v = aipc_wake_load(&pp->pong)) != i)
      CHECK_INT(aipc_wake_wait(&pp->pong, v, -1), ==, 0);
  }
  test_wait_ok(pid);
  aipc_shm_release(&shm);
}

TEST(wake_wait_times_out_at_its_deadline)
{
  struct aipc_shm shm;
  struct pingpong *pp = shared_pingpong(&shm);
  int64_t deadline = aipc_now_ns() + 20 * AIPC_NSEC_PER_MSEC;
  CHECK_INT(aipc_wake_wait(&pp->ping, 0, deadline), ==, -ETIMEDOUT);
  CHECK(aipc_now_ns() >= deadline);
  /* A deadline already past returns at once; a changed value returns 0. */
  CHECK_INT(aipc_wake_wait(&pp->ping, 0, 0), ==, -ETIMEDOUT);
  CHECK_INT(aipc_wake_wait(&pp->ping, 1, 0), ==, 0);
  CHECK_INT(atomic_load(&pp->ping.waiters), ==, 0);
  aipc_shm_release(&shm);
}

struct sleeper {
  struct pingpong *pp;
  int result;
};

static void *
sleep_on_ping(void *arg)
{
  struct sleeper *s = arg;
  s->result = aipc_wake_wait(&s->pp->ping, 0, -1);
  return NULL;
}

TEST(wake_counts_waiters_so_publish_can_skip_the_syscall)
{
  struct aipc_shm shm;
  struct pingpong *pp = shared_pingpong(&shm);
  CHECK_INT(atomic_load(&pp->ping.waiters), ==, 0);
  struct sleeper s = {pp, 1};
  pthread_t t;
  CHECK(pthread_create(&t, NULL, sleep_on_ping, &s) == 0);
  while (atomic_load(&pp->ping.waiters) == 0)
    usleep(100);
  aipc_wake_publish(&pp->ping, 1);
  pthread_join(t, NULL);
  CHECK_INT(s.result, ==, 0);
  CHECK_INT(atomic_load(&pp->ping.waiters), ==, 0);
  aipc_shm_release(&shm);
}

static void
count_down_children(void *arg)
{
  struct pingpong *pp = arg;
  /* Wait for the go signal, then take one off the countdown. */
  uint32_t v;
  while ((v = aipc_wake_load(&pp->ping)) == 0)
    aipc_wake_wait(&pp->ping, v, -1);
  aipc_wake_sub(&pp->countdown, 1);
}

TEST(wake_countdown_wakes_at_zero)
{
  struct aipc_shm shm;
  struct pingpong *pp = shared_pingpong(&shm);
  enum { N = 6 };
  atomic_store(&pp->countdown.value, N);
  pid_t pids[N];
  for (int i = 0; i < N; i++)
    pids[i] = test_fork(count_down_children, pp);
  aipc_wake_publish(&pp->ping, 1);
  uint32_t v;
  while ((v = aipc_wake_load(&pp->countdown)) != 0)
    CHECK_INT(aipc_wake_wait(&pp->countdown, v, -1), ==, 0);
  for (int i = 0; i < N; i++)
    test_wait_ok(pids[i]);
  aipc_shm_release(&shm);
}

static void
scribbler(void *arg)
{
  struct pingpong *pp = arg;
  int64_t end = aipc_now_ns() + 50 * AIPC_NSEC_PER_MSEC;
  uint32_t x = 0;
  while (aipc_now_ns() < end) {
    atomic_store(&pp->pong.value, ++x);
    atomic_store(&pp->pong.waiters, x * 7919u);
  }
}

/* A hostile peer changing the word and the waiter count all the time
 * cannot make a waiter with a deadline outlive it by much. */
TEST(wake_wait_is_bounded_against_a_scribbling_peer)
{
  struct aipc_shm shm;
  struct pingpong *pp = shared_pingpong(&shm);
  pid_t pid = test_fork(scribbler, pp);
  for (int i = 0; i < 100; i++) {
    int64_t deadline = aipc_now_ns() + AIPC_NSEC_PER_MSEC;
    uint32_t v = aipc_wake_load(&pp->pong);
    int r = aipc_wake_wait(&pp->pong, v, deadline);
    CHECK(r == 0 || r == -ETIMEDOUT);
  }
  test_wait_ok(pid);
  aipc_shm_release(&shm);
}

/* The words of wait_any: many, in shared memory, each published by
 * another process in turn. */
struct many {
  struct aipc_wake words[AIPC_WAKE_ANY_MAX];
  struct aipc_wake done;
};

static void
publish_each_in_turn(void *arg)
{
  struct many *m = arg;
  for (unsigned i = 0; i < AIPC_WAKE_ANY_MAX; i++) {
    /* Until the waiter sleeps on every word again. */
    while (atomic_load(&m->words[i].waiters) == 0)
      usleep(50);
    aipc_wake_publish(&m->words[i], 1);
    uint32_t v;
    while ((v = aipc_wake_load(&m->done)) != i + 1)
      aipc_wake_wait(&m->done, v, -1);
  }
}

TEST(wake_wait_any_wakes_on_whichever_word_changes)
{
  struct aipc_shm shm;
  CHECK_INT(aipc_shm_create("many", 8192, &shm), ==, 0);
  struct many *m = shm.base;
  struct aipc_wake *words[AIPC_WAKE_ANY_MAX];
  uint32_t old[AIPC_WAKE_ANY_MAX] = {0};
  for (unsigned i = 0; i < AIPC_WAKE_ANY_MAX; i++)
    words[i] = &m->words[i];

  /* One already differs: no sleep, and no waiter left counted. */
  atomic_store(&m->words[5].value, 7);
  CHECK_INT(aipc_wake_wait_any(words, old, AIPC_WAKE_ANY_MAX), ==, 0);
  atomic_store(&m->words[5].value, 0);
  CHECK_INT(aipc_wake_wait_any(words, old, 0), ==, -EINVAL);
  CHECK_INT(aipc_wake_wait_any(words, old, AIPC_WAKE_ANY_MAX + 1), ==, -EINVAL);

  pid_t pid = test_fork(publish_each_in_turn, m);
  for (unsigned i = 0; i < AIPC_WAKE_ANY_MAX; i++) {
    while (aipc_wake_load(&m->words[i]) == 0)
      CHECK_INT(aipc_wake_wait_any(words, old, AIPC_WAKE_ANY_MAX), ==, 0);
    for (unsigned j = i + 1; j < AIPC_WAKE_ANY_MAX; j++)
      CHECK_INT(aipc_wake_load(&m->words[j]), ==, 0);
    old[i] = 1;
    aipc_wake_publish(&m->done, i + 1);
  }
  test_wait_ok(pid);
  for (unsigned i = 0; i < AIPC_WAKE_ANY_MAX; i++)
    CHECK_INT(atomic_load(&m->words[i].waiters), ==, 0);
  aipc_shm_release(&shm);
}
