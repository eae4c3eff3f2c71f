/* SPDX-License-Identifier: ISC */
/*
 * Markers around the library's real-time sections: the server's part of a
 * backend audio callback and the client's callback thread outside the
 * user's callback. Nothing in them may allocate, lock a mutex or make a
 * syscall other than the futex.
 *
 * The markers call two weak hooks that production programs leave
 * undefined (then each marker costs one predictable branch); the
 * real-time safety test defines them to count what happens inside.
 */
#ifndef AIPC_RT_H
#define AIPC_RT_H

void aipc_rt_hook_enter(void) __attribute__((weak));
void aipc_rt_hook_leave(void) __attribute__((weak));

static inline void
aipc_rt_enter(void)
{
  if (aipc_rt_hook_enter)
    aipc_rt_hook_enter();
}

static inline void
aipc_rt_leave(void)
{
  if (aipc_rt_hook_leave)
    aipc_rt_hook_leave();
}

#endif
