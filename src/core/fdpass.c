/* SPDX-License-Identifier: ISC */
#include "fdpass.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
aipc_recv_fd(int sock)
{
  char byte;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof(control.buf)};
  ssize_t n;
  do
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  bool has_fd = c && c->cmsg_level == SOL_SOCKET &&
                c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len == CMSG_LEN(sizeof(int));
  int fd = -1;
  if (has_fd)
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  if (msg.msg_flags & MSG_CTRUNC) {
    /* More than one fd: the kernel closed those that did not fit. */
    if (has_fd)
      close(fd);
    return -EMSGSIZE;
  }
  if (n == 0)
    return -EPIPE;
  return has_fd ? fd : -ENOMSG;
}

int
aipc_send_fd(int sock, int fd)
{
  char byte = fd >= 0 ? 'C' : 'E';
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(fd));
  }
  ssize_t n;
  do
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}
