/* SPDX-License-Identifier: ISC */
#include "wake.h"

#include "clock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void
futex_wake_all(_Atomic uint32_t *addr)
{
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void
aipc_wake_publish(struct aipc_wake *w, uint32_t value)
{
  /* Sequentially consistent store then load, against the waiter's
   * increment then load: one of us sees the other. */
  atomic_store(&w->value, value);
  if (atomic_load(&w->waiters) != 0)
    futex_wake_all(&w->value);
}

uint32_t
aipc_wake_sub(struct aipc_wake *w, uint32_t delta)
{
  uint32_t now = atomic_fetch_sub(&w->value, delta) - delta;
  if (now == 0 && atomic_load(&w->waiters) != 0)
    futex_wake_all(&w->value);
  return now;
}

int
aipc_wake_wait(struct aipc_wake *w, uint32_t old, int64_t deadline_ns)
{
  if (atomic_load(&w->value) != old)
    return 0;
  struct timespec ts = aipc_timespec_from_ns(deadline_ns);
  int r = 0;
  atomic_fetch_add(&w->waiters, 1);
  while (atomic_load(&w->value) == old) {
    if (deadline_ns >= 0 && aipc_now_ns() >= deadline_ns) {
      r = -ETIMEDOUT;
      break;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    long s =
        syscall(SYS_futex, (uint32_t *)&w->value, FUTEX_WAIT_BITSET, old,
                deadline_ns >= 0 ? &ts : NULL, NULL, FUTEX_BITSET_MATCH_ANY);
    if (s < 0 && errno == ETIMEDOUT) {
      r = atomic_load(&w->value) == old ? -ETIMEDOUT : 0;
      break;
    }
  }
  atomic_fetch_sub(&w->waiters, 1);
  return r;
}

/* aipc_wake_wait_any, with room for n entries at `waiters`. */
static int
wait_any(struct futex_waitv *waiters, struct aipc_wake *const *words,
         const uint32_t *old, unsigned n)
{
  for (unsigned i = 0; i < n; i++)
    atomic_fetch_add(&words[i]->waiters, 1);
  /* After counting ourselves in, as in aipc_wake_wait: a publisher that
   * missed our count stored before we load here. */
  bool changed = false;
  for (unsigned i = 0; i < n; i++) {
    changed |= atomic_load(&words[i]->value) != old[i];
    waiters[i] = (struct futex_waitv){
        .val = old[i], .uaddr = (uintptr_t)&words[i]->value, .flags = FUTEX_32};
  }
  int r = 0;
  if (!changed &&
      syscall(SYS_futex_waitv, waiters, n, 0, NULL, CLOCK_MONOTONIC) < 0 &&
      errno == ENOSYS)
    r = -ENOSYS;
  for (unsigned i = 0; i < n; i++)
    atomic_fetch_sub(&words[i]->waiters, 1);
  return r;
}

static __attribute__((noinline)) int
wait_any_many(struct aipc_wake *const *words, const uint32_t *old, unsigned n)
{
  struct futex_waitv waiters[AIPC_WAKE_ANY_MAX];
  return wait_any(waiters, words, old, n);
}

int
aipc_wake_wait_any(struct aipc_wake *const *words, const uint32_t *old,
                   unsigned n)
{
  if (n == 0 || n > AIPC_WAKE_ANY_MAX)
    return -EINVAL;
  /* Most waits are on a word or two (a thread with one stream): a small
   * array keeps such a thread's stack, and so its memory, small. */
  if (n > 4)
    return wait_any_many(words, old, n);
  struct futex_waitv waiters[4];
  return wait_any(waiters, words, old, n);
}
