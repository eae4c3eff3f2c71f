/* SPDX-License-Identifier: ISC */
/*
 * Shared memory regions: sealed memfds made by the server, mapped by both
 * sides. The seals (no grow, no shrink, no further seals) mean the peer
 * can never shrink the file under our mapping and fault us with SIGBUS.
 */
#ifndef AIPC_SHM_H
#define AIPC_SHM_H

#include <stddef.h>

struct aipc_shm {
  void *base;
  size_t size;
  int fd; /* kept so it can be sent; -1 after aipc_shm_close_fd */
};

/* Makes a zero-filled region of `size` bytes, backed (preallocated) up
 * front, sealed and mapped. `name` shows in /proc for debugging. */
int aipc_shm_create(const char *name, size_t size, struct aipc_shm *out);

/*
 * Maps a region received from the peer. Takes `fd` (also on failure).
 * Fails with -EPERM unless the fd is sealed against growing, shrinking
 * and further seals, and with -EBADMSG unless it is exactly `size` bytes.
 */
int aipc_shm_import(int fd, size_t size, struct aipc_shm *out);

/* Closes the fd but keeps the mapping. */
void aipc_shm_close_fd(struct aipc_shm *shm);

/* Unmaps and closes. Safe on a zeroed or already-released struct. */
void aipc_shm_release(struct aipc_shm *shm);

#endif
