/* SPDX-License-Identifier: ISC */
#include "../runner.h"
#include "conn.h"
#include "protocol.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

TEST(shm_create_is_sealed_zeroed_and_close_on_exec)
{
  struct aipc_shm shm;
  CHECK_INT(aipc_shm_create("test", 12345, &shm), ==, 0);
  CHECK(shm.size == 12345);
  CHECK(fcntl(shm.fd, F_GETFD) & FD_CLOEXEC);
  int seals = fcntl(shm.fd, F_GET_SEALS);
  CHECK(seals & F_SEAL_GROW);
  CHECK(seals & F_SEAL_SHRINK);
  CHECK(seals & F_SEAL_SEAL);
  const uint8_t *p = shm.base;
  for (size_t i = 0; i < shm.size; i++)
    CHECK(p[i] == 0);
  CHECK(ftruncate(shm.fd, 100) < 0 && errno == EPERM);
  CHECK(ftruncate(shm.fd, 1 << 20) < 0 && errno == EPERM);
  CHECK(fcntl(shm.fd, F_ADD_SEALS, F_SEAL_WRITE) < 0);
  aipc_shm_release(&shm);
  aipc_shm_release(&shm); /* harmless twice */
}

TEST(shm_import_checks_seals_and_size)
{
  struct aipc_shm shm, imported;
  CHECK_INT(aipc_shm_create("test", 4096, &shm), ==, 0);
  CHECK_INT(aipc_shm_import(dup(shm.fd), 8192, &imported), ==, -EBADMSG);
  CHECK_INT(aipc_shm_import(dup(shm.fd), 0, &imported), ==, -EBADMSG);
  CHECK_INT(aipc_shm_import(dup(shm.fd), 4096, &imported), ==, 0);
  aipc_shm_release(&imported);
  aipc_shm_release(&shm);

  /* Unsealed memfds, partly sealed ones and ordinary files are refused. */
  int fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  CHECK(ftruncate(fd, 4096) == 0);
  CHECK_INT(aipc_shm_import(dup(fd), 4096, &imported), ==, -EPERM);
  CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  CHECK_INT(aipc_shm_import(fd, 4096, &imported), ==, -EPERM);
  int pipefd[2];
  CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
  close(pipefd[1]);
  CHECK_INT(aipc_shm_import(pipefd[0], 4096, &imported), ==, -EPERM);
}

struct peer {
  int sock;
};

/* The peer receives the region, checks what the creator wrote, tries to
 * shrink and grow it (both must fail), and writes its answer. */
static void
peer_main(void *arg)
{
  struct peer *p = arg;
  struct aipc_conn *c;
  CHECK_INT(aipc_conn_new(p->sock, &aipc_protocol, "peer", &c), ==, 0);
  struct aipc_msg *msg;
  int r;
  while ((r = aipc_conn_recv(c, &msg)) == -EAGAIN)
    usleep(100);
  CHECK_INT(r, ==, 0);
  int fd = aipc_msg_take_fd(msg, 0);
  aipc_msg_free(msg);
  CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);
  CHECK(ftruncate(fd, 1 << 24) < 0 && errno == EPERM);
  CHECK(fallocate(fd, 0, 0, 1 << 24) < 0);
  struct aipc_shm shm;
  CHECK_INT(aipc_shm_import(fd, 65536, &shm), ==, 0);
  uint8_t *bytes = shm.base;
  CHECK(strcmp((char *)bytes, "from the creator") == 0);
  strcpy((char *)bytes + 60000, "from the peer");
  aipc_shm_release(&shm);
  aipc_conn_send(c, AIPC_OP_PING, 2, NULL, 0, NULL, 0);
  aipc_conn_destroy(c);
}

TEST(shm_peer_cannot_resize_and_sees_the_same_bytes)
{
  int sv[2];
  test_socketpair(sv);
  struct peer peer = {.sock = sv[1]};
  pid_t pid = test_fork(peer_main, &peer);
  close(sv[1]);

  struct aipc_shm shm;
  CHECK_INT(aipc_shm_create("shared", 65536, &shm), ==, 0);
  strcpy(shm.base, "from the creator");
  struct aipc_conn *c;
  CHECK_INT(aipc_conn_new(sv[0], &aipc_protocol, "creator", &c), ==, 0);
  CHECK_INT(aipc_conn_send(c, AIPC_OP_PING, 1, NULL, 0, &shm.fd, 1), ==, 0);
  test_wait_ok(pid);
  CHECK(strcmp((char *)shm.base + 60000, "from the peer") == 0);
  /* Still the full size: touching the last byte does not fault. */
  ((volatile uint8_t *)shm.base)[65535] = 1;
  aipc_conn_destroy(c);
  aipc_shm_release(&shm);
}
