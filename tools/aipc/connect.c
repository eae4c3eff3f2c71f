/* SPDX-License-Identifier: ISC */
#include "aipc.h"

#include <audioipc/client.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int
aipc_connect_serve(const char *cmd, const char *path)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) {
    fprintf(stderr,
            "aipc %s: cannot connect to %s: the path is longer than "
            "a Unix socket address allows\n",
            cmd, path);
    return -1;
  }
  memcpy(addr.sun_path, path, strlen(path) + 1);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    fprintf(stderr, "aipc %s: cannot make a socket: %s\n", cmd,
            strerror(errno));
    return -1;
  }
  if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    fprintf(stderr, "aipc %s: cannot connect to %s: %s\n", cmd, path,
            strerror(errno));
    close(sock);
    return -1;
  }

  int fd = aipc_recv_fd(sock);
  close(sock);
  if (fd == -EMSGSIZE)
    fprintf(stderr,
            "aipc %s: %s sent more than one fd: not an aipc serve socket\n",
            cmd, path);
  else if (fd == -EPIPE || fd == -ENOMSG)
    fprintf(stderr, "aipc %s: the server at %s sent no connection (%s)\n", cmd,
            path,
            fd == -EPIPE ? "it closed the socket"
                         : "it could not make one; see its output");
  else if (fd < 0)
    fprintf(stderr, "aipc %s: cannot receive a connection from %s: %s\n", cmd,
            path, strerror(-fd));
  if (fd < 0)
    return -1;
  return fd;
}

/* Takes `fd`. */
static int
run_on_fd(const char *cmd, int fd, aipc_client_fn fn, void *data)
{
  char name[64];
  snprintf(name, sizeof(name), "aipc-%s", cmd);
  AudioIpcInitParams params = {.server_connection = fd};
  cubeb *ctx;
  int r = audioipc_client_init(&ctx, name, &params);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc %s: cannot set up the remote context: "
            "audioipc_client_init failed (cubeb error %d)\n",
            cmd, r);
    return AIPC_EXIT_FAILURE;
  }
  int status = fn(cmd, ctx, data);
  cubeb_destroy(ctx);
  return status;
}

/* The client child, while we wait for it; and a signal that came
 * before it was known. */
static atomic_int child_pid, pending_signal;

/* SIGINT and SIGTERM go on to the client child, which finishes its work
 * (a recording its file) and exits; we wait for it and stop the server
 * after. Dying now would kill the child (spawn.c: PR_SET_PDEATHSIG). */
static void
forward_signal(int sig)
{
  pending_signal = sig;
  if (child_pid > 0)
    kill((pid_t)atomic_load(&child_pid), sig);
}

static int
run_in_child(const char *cmd, const char *backend, const char *virtual_default)
{
  struct aipc_backend b;
  if (aipc_backend_start(cmd, backend, virtual_default, &b) < 0)
    return AIPC_EXIT_FAILURE;

  /* Our own arguments, with the hidden command in front. */
  char **argv = calloc((size_t)aipc_argc + 2, sizeof(*argv));
  if (!argv) {
    fprintf(stderr, "aipc %s: cannot start a client: out of memory\n", cmd);
    aipc_backend_stop(&b);
    return AIPC_EXIT_FAILURE;
  }
  argv[0] = aipc_argv[0];
  argv[1] = (char *)AIPC_CHILD_COMMAND;
  for (int i = 1; i < aipc_argc; i++)
    argv[i + 1] = aipc_argv[i];

  int status = AIPC_EXIT_FAILURE;
  struct sigaction sa = {.sa_handler = forward_signal}, old_int, old_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  pid_t pid = aipc_spawn_client(cmd, b.server, argv, NULL);
  free(argv);
  if (pid > 0) {
    atomic_store(&child_pid, pid);
    if (atomic_load(&pending_signal))
      kill(pid, atomic_load(&pending_signal));
    int ws;
    pid_t r;
    while ((r = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
      ;
    if (r < 0) {
      fprintf(stderr, "aipc %s: cannot wait for the client process: %s\n", cmd,
              strerror(errno));
    } else if (WIFEXITED(ws)) {
      status = WEXITSTATUS(ws);
    } else {
      char what[96];
      aipc_describe_status(ws, what, sizeof(what));
      fprintf(stderr, "aipc %s: the client process %d was %s\n", cmd, (int)pid,
              what);
    }
  }
  atomic_store(&child_pid, 0);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  aipc_backend_stop(&b);
  return status;
}

int
aipc_run_client(const char *cmd, const char *connect_path, const char *backend,
                const char *virtual_default, aipc_client_fn fn, void *data)
{
  if (aipc_in_child) {
    if (fcntl(AIPC_CHILD_CONN_FD, F_GETFD) < 0) {
      fprintf(stderr, "aipc %s: no connection at fd %d: %s\n", cmd,
              AIPC_CHILD_CONN_FD, strerror(errno));
      return AIPC_EXIT_FAILURE;
    }
    return run_on_fd(cmd, AIPC_CHILD_CONN_FD, fn, data);
  }
  if (connect_path) {
    int fd = aipc_connect_serve(cmd, connect_path);
    if (fd < 0)
      return AIPC_EXIT_FAILURE;
    return run_on_fd(cmd, fd, fn, data);
  }
  return run_in_child(cmd, backend, virtual_default);
}
