/* SPDX-License-Identifier: ISC */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRED_SEALS (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

static int
map(int fd, size_t size, struct aipc_shm *out)
{
  void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED)
    return -errno;
  *out = (struct aipc_shm){.base = base, .size = size, .fd = fd};
  return 0;
}

int
aipc_shm_create(const char *name, size_t size, struct aipc_shm *out)
{
  if (size == 0)
    return -EINVAL;
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  int r;
  if (ftruncate(fd, (off_t)size) < 0) {
    r = -errno;
    goto fail;
  }
  /* Allocate the pages now, so touching them later cannot fail. */
  r = posix_fallocate(fd, 0, (off_t)size);
  if (r != 0) {
    r = -r;
    goto fail;
  }
  if (fcntl(fd, F_ADD_SEALS, REQUIRED_SEALS) < 0) {
    r = -errno;
    goto fail;
  }
  r = map(fd, size, out);
  if (r < 0)
    goto fail;
  return 0;

fail:
  close(fd);
  return r;
}

int
aipc_shm_import(int fd, size_t size, struct aipc_shm *out)
{
  int r;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS) {
    r = -EPERM;
    goto fail;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    r = -errno;
    goto fail;
  }
  if (size == 0 || st.st_size < 0 || (size_t)st.st_size != size) {
    r = -EBADMSG;
    goto fail;
  }
  r = map(fd, size, out);
  if (r < 0)
    goto fail;
  return 0;

fail:
  close(fd);
  return r;
}

void
aipc_shm_close_fd(struct aipc_shm *shm)
{
  if (shm->fd >= 0)
    close(shm->fd);
  shm->fd = -1;
}

void
aipc_shm_release(struct aipc_shm *shm)
{
  if (!shm->base)
    return;
  munmap(shm->base, shm->size);
  if (shm->fd >= 0)
    close(shm->fd);
  *shm = (struct aipc_shm){.base = NULL, .size = 0, .fd = -1};
}
