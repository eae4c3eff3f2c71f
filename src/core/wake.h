/* SPDX-License-Identifier: ISC */
/*
 * Cross-process wake-ups on a word in shared memory.
 *
 * A struct aipc_wake holds a value that one side publishes and the other
 * waits to change, plus a count of waiters, so publishing makes a syscall
 * only when someone is actually asleep. On Linux it is a futex (shared,
 * not FUTEX_PRIVATE); a port to another system replaces wake.c.
 *
 * Real-time safe: publish and wait make no syscall other than the futex.
 * The peer may scribble on the struct; the functions below stay bounded
 * (a wait always ends by its deadline) whatever it writes.
 */
#ifndef AIPC_WAKE_H
#define AIPC_WAKE_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>

struct aipc_wake {
  _Atomic uint32_t value;
  _Atomic uint32_t waiters;
};
static_assert(sizeof(struct aipc_wake) == 8, "wake word layout");

static inline uint32_t
aipc_wake_load(const struct aipc_wake *w)
{
  return atomic_load_explicit(&((struct aipc_wake *)w)->value,
                              memory_order_acquire);
}

/* Stores `value` and wakes every waiter, if there is one. */
void aipc_wake_publish(struct aipc_wake *w, uint32_t value);

/* Adds `delta` to the value, returns the new value, and wakes every
 * waiter if it is now zero (a countdown). */
uint32_t aipc_wake_sub(struct aipc_wake *w, uint32_t delta);

/*
 * Waits while the value equals `old`, until `deadline_ns` (monotonic, as
 * aipc_now_ns(); negative: no deadline). Returns 0 once the value differs
 * (it may have changed and changed back: callers re-check their own
 * condition), or -ETIMEDOUT.
 */
int aipc_wake_wait(struct aipc_wake *w, uint32_t old, int64_t deadline_ns);

/* Words aipc_wake_wait_any takes at most (the kernel's futex_waitv). */
#define AIPC_WAKE_ANY_MAX 128

/*
 * Waits while every words[i] holds old[i] (n at most AIPC_WAKE_ANY_MAX),
 * with no deadline. Returns 0 once one differs (or spuriously: callers
 * re-check), or -ENOSYS on kernels before 5.16, which lack futex_waitv.
 */
int aipc_wake_wait_any(struct aipc_wake *const *words, const uint32_t *old,
                       unsigned n);

#endif
