/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: the floor (a futex ping-pong between two processes over
 * shared memory) and the socket baselines (the original design's message
 * each way per callback; a raw round trip of a control call's size),
 * against peer children that are not audioipc clients.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"
#include "shm.h"
#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* A child re-executed as a peer, with `fd` (borrowed) at
 * AIPC_CHILD_CONN_FD and nothing else but stdio. It dies with us. */
static pid_t
spawn_peer(const char *mode, int fd, const char *arg, int cpu)
{
  const char *exe = aipc_exe_path();
  char cpu_text[16];
  char *argv[9];
  int n = 0;
  argv[n++] = (char *)exe;
  argv[n++] = (char *)AIPC_CHILD_COMMAND;
  argv[n++] = (char *)BENCH_CHILD_NAME;
  argv[n++] = (char *)mode;
  if (arg)
    argv[n++] = (char *)arg;
  if (cpu >= 0) {
    snprintf(cpu_text, sizeof(cpu_text), "%d", cpu);
    argv[n++] = "--cpu";
    argv[n++] = cpu_text;
  }
  argv[n] = NULL;
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "aipc bench: fork: %s\n", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    /* Async-signal-safe calls only, until exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(126);
    int moved = fcntl(fd, F_DUPFD, 100);
    if (moved < 0 || dup2(moved, AIPC_CHILD_CONN_FD) < 0)
      _exit(126);
    close_range(AIPC_CHILD_CONN_FD + 1, ~0U, 0);
    execv(exe, argv);
    _exit(127);
  }
  return pid;
}

int
bench_measure_futex(const struct bench_params *p, int cpu, bool fifo,
                    const cpu_set_t *any, struct bench_lat *out)
{
  struct aipc_shm shm;
  int r = aipc_shm_create("aipc-bench", BENCH_FUTEX_SHM_SIZE, &shm);
  if (r < 0) {
    fprintf(stderr, "aipc bench: aipc_shm_create: %s\n", strerror(-r));
    return -1;
  }
  int total = p->warmup + p->floor_iterations;
  int64_t *samples = malloc((size_t)p->floor_iterations * sizeof(*samples));
  char rounds[16];
  snprintf(rounds, sizeof(rounds), "%d", total);
  pid_t pid = -1;
  if (!samples || bench_pin(cpu, any) < 0 ||
      (pid = spawn_peer(fifo ? "peer-futex-fifo" : "peer-futex", shm.fd, rounds,
                        cpu)) < 0) {
    r = -1;
    goto out;
  }
  struct bench_pingpong *pp = shm.base;
  for (int i = 0; i < total && r == 0; i++) {
    uint32_t seq = (uint32_t)i + 1, v;
    int64_t t0 = aipc_now_ns();
    aipc_wake_publish(&pp->ping, seq);
    while (r == 0 && (v = aipc_wake_load(&pp->pong)) != seq)
      r = aipc_wake_wait(&pp->pong, v, t0 + BENCH_CHILD_TIMEOUT_NS);
    int64_t t1 = aipc_now_ns();
    if (i >= p->warmup)
      samples[i - p->warmup] = t1 - t0;
  }
  if (r < 0)
    fprintf(stderr, "aipc bench: futex floor: no pong: %s\n", strerror(-r));
  if (bench_reap(pid, "futex floor", r < 0) < 0)
    r = -1;
  if (r == 0)
    *out = bench_summarize(samples, (size_t)p->floor_iterations, 1e3);
out:
  bench_pin(-1, any);
  free(samples);
  aipc_shm_release(&shm);
  return r < 0 ? -1 : 0;
}

/* Round trips of `req` bytes out and `reply` bytes back over a
 * SOCK_SEQPACKET socketpair to a peer process. The request carries a
 * header and the frames a server audio thread would copy in; the reply's
 * frames are copied out, as a callback would. */
int
bench_measure_socket(const char *what, const char *mode, size_t req,
                     size_t reply, int warmup, int iterations, int cpu,
                     const cpu_set_t *any, struct bench_lat *out)
{
  static uint8_t input[BENCH_SOCKET_MSG_SIZE], output[BENCH_SOCKET_MSG_SIZE];
  uint8_t msg[BENCH_SOCKET_MSG_SIZE], back[BENCH_SOCKET_MSG_SIZE];
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    fprintf(stderr, "aipc bench: socketpair: %s\n", strerror(errno));
    return -1;
  }
  int64_t *samples = malloc((size_t)iterations * sizeof(*samples));
  struct timeval tv = {.tv_sec = BENCH_CHILD_TIMEOUT_NS / AIPC_NSEC_PER_SEC};
  pid_t pid = -1;
  int r = -1;
  if (!samples || bench_pin(cpu, any) < 0 ||
      setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
      (pid = spawn_peer(mode, sv[1], NULL, cpu)) < 0)
    goto out;
  close(sv[1]);
  sv[1] = -1;
  memset(msg, 0, sizeof(msg));
  r = 0;
  for (int i = 0; i < warmup + iterations; i++) {
    uint64_t seq = (uint64_t)i + 1;
    int64_t t0 = aipc_now_ns();
    memcpy(msg, &seq, sizeof(seq));
    memcpy(msg + BENCH_SOCKET_HEADER_SIZE, input,
           req - BENCH_SOCKET_HEADER_SIZE);
    ssize_t n = send(sv[0], msg, req, MSG_NOSIGNAL);
    if (n == (ssize_t)req) {
      do
        n = recv(sv[0], back, sizeof(back), 0);
      while (n < 0 && errno == EINTR);
    }
    if (n != (ssize_t)reply || memcmp(back, &seq, sizeof(seq)) != 0) {
      fprintf(stderr, "aipc bench: %s: %s\n", what,
              n < 0 ? strerror(errno) : "bad reply");
      r = -1;
      break;
    }
    memcpy(output, back + BENCH_SOCKET_HEADER_SIZE,
           reply - BENCH_SOCKET_HEADER_SIZE);
    int64_t t1 = aipc_now_ns();
    if (i >= warmup)
      samples[i - warmup] = t1 - t0;
  }
  /* The peer sees EOF and exits. */
  close(sv[0]);
  sv[0] = -1;
  if (bench_reap(pid, what, r < 0) < 0)
    r = -1;
  if (r == 0)
    *out = bench_summarize(samples, (size_t)iterations, 1e3);
out:
  bench_pin(-1, any);
  for (int i = 0; i < 2; i++)
    if (sv[i] >= 0)
      close(sv[i]);
  free(samples);
  return r;
}
