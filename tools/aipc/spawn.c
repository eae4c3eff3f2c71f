/* SPDX-License-Identifier: ISC */
#include "aipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * In the forked child: only async-signal-safe calls until exec, since
 * the server's threads may have held any lock when we forked. Receives
 * the connection over `sock` (the parent makes it once it knows our
 * pid), moves it to AIPC_CHILD_CONN_FD, closes everything else but stdio
 * and re-executes.
 */
static void __attribute__((noreturn))
child_exec(const char *exe, char *const argv[], int sock, int parent_sock,
           int out)
{
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* So that recvmsg sees EOF if the parent dies before sending. */
  close(parent_sock);

  int fd = aipc_recv_fd(sock);
  if (fd < 0)
    _exit(126);

  /* Out of the way of the numbers we dup2 onto first. */
  int conn = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  int stdout_copy = out >= 0 ? fcntl(out, F_DUPFD_CLOEXEC, 100) : -1;
  if (conn < 0 || (out >= 0 && stdout_copy < 0) ||
      dup2(conn, AIPC_CHILD_CONN_FD) < 0 ||
      (stdout_copy >= 0 && dup2(stdout_copy, STDOUT_FILENO) < 0))
    _exit(126);
  close_range(AIPC_CHILD_CONN_FD + 1, ~0U, 0);
  execv(exe, argv);
  _exit(127);
}

pid_t
aipc_spawn_client(const char *cmd, void *server, char *const argv[],
                  int *stdout_fd)
{
  const char *exe = aipc_exe_path();
  int sock[2] = {-1, -1}, out[2] = {-1, -1}, conn = -1;
  char **args = NULL;
  pid_t pid = -1;
  size_t n = 0;

  if (!exe)
    return -1;
  while (argv[n])
    n++;
  args = calloc(n + 1, sizeof(*args));
  if (!args) {
    fprintf(stderr, "aipc %s: cannot start a client: out of memory\n", cmd);
    return -1;
  }
  memcpy(args, argv, n * sizeof(*args));
  args[0] = (char *)exe;

  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0) {
    fprintf(stderr, "aipc %s: cannot start a client: socketpair: %s\n", cmd,
            strerror(errno));
    goto out;
  }
  if (stdout_fd && pipe2(out, O_CLOEXEC) < 0) {
    fprintf(stderr, "aipc %s: cannot start a client: pipe: %s\n", cmd,
            strerror(errno));
    goto out;
  }

  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    fprintf(stderr, "aipc %s: cannot start a client: fork: %s\n", cmd,
            strerror(errno));
    goto out;
  }
  if (pid == 0)
    child_exec(exe, args, sock[1], sock[0], out[1]);

  close(sock[1]);
  sock[1] = -1;
  if (out[1] >= 0) {
    close(out[1]);
    out[1] = -1;
  }
  conn = audioipc_server_new_client_for_pid(server, pid, 0);
  if (conn < 0) {
    fprintf(stderr, "aipc %s: cannot make a connection for client %d: %s\n",
            cmd, (int)pid, strerror(errno));
    goto kill_child;
  }
  int r = aipc_send_fd(sock[0], conn);
  if (r < 0) {
    fprintf(stderr,
            "aipc %s: cannot hand the connection to client %d: sendmsg: "
            "%s\n",
            cmd, (int)pid, strerror(-r));
    goto kill_child;
  }
  if (stdout_fd) {
    *stdout_fd = out[0];
    out[0] = -1;
  }
  goto out;

kill_child:
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  pid = -1;
out:
  if (conn >= 0)
    close(conn);
  for (int i = 0; i < 2; i++) {
    if (sock[i] >= 0)
      close(sock[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  free(args);
  return pid;
}
