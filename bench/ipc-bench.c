/* SPDX-License-Identifier: ISC */
/*
 * ipc-bench: round-trip latency between two processes, three ways.
 *
 *   rpc    a PING through the RPC layer (aipc_rpc_client against an
 *          aipc_session in a forked server), as every control call pays;
 *   raw    24 bytes each way with blocking send()/recv() on a
 *          SOCK_SEQPACKET socketpair: the floor the RPC layer builds on,
 *          so rpc/raw is what the library itself costs;
 *   futex  a ping/pong on a pair of aipc_wake words in a sealed memfd, the
 *          path the audio threads use: what a wake-up costs without a
 *          socket.
 *
 * Each runs with both processes pinned to one CPU ("same": every round
 * trip is a context switch) and unpinned ("any": the peers may run in
 * parallel on different CPUs). The parent times every round trip with
 * CLOCK_MONOTONIC after a warm-up and reports percentiles in microseconds.
 */
#include "clock.h"
#include "protocol.h"
#include "rpc.h"
#include "shm.h"
#include "wake.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define WARMUP 1000
#define ITERATIONS_DEFAULT 20000
#define ITERATIONS_QUICK 2000
#define ITERATIONS_MAX 10000000
/* No single round trip may take longer; a stuck peer is an error. */
#define TIMEOUT_NS (5 * AIPC_NSEC_PER_SEC)
#define RAW_MSG_SIZE 24

enum mode { MODE_RPC, MODE_RAW, MODE_FUTEX, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = {"rpc", "raw", "futex"};

enum pinning { PIN_SAME, PIN_ANY, PIN_COUNT };
static const char *const pin_names[PIN_COUNT] = {"same", "any"};

struct bench {
  enum mode mode;
  enum pinning pinning;
  const cpu_set_t *cpus; /* affinity of both processes */
  int warmup;
  int n;
  int64_t *samples; /* n round trips, in ns */
};

struct stats {
  int n;
  double p50, p99, p999, max; /* microseconds */
};

static void
fail(const struct bench *b, const char *what, int error)
{
  fprintf(stderr, "ipc-bench: %s/%s: %s: %s\n", mode_names[b->mode],
          pin_names[b->pinning], what, strerror(-error));
}

static int
set_affinity(const cpu_set_t *cpus)
{
  return sched_setaffinity(0, sizeof(*cpus), cpus) < 0 ? -errno : 0;
}

/*
 * Forks a child with the bench's affinity that runs fn(arg) and exits
 * with its status. The child closes `close_fd` (the parent's end of a
 * socket, or -1) so that it sees the parent hang up, and dies with the
 * parent.
 */
static int
spawn(const struct bench *b, int (*fn)(void *arg), void *arg, int close_fd,
      pid_t *out)
{
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    if (close_fd >= 0)
      close(close_fd);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
      _exit(1);
    int r = set_affinity(b->cpus);
    if (r < 0) {
      fail(b, "child sched_setaffinity", r);
      _exit(1);
    }
    _exit(fn(arg) < 0 ? 1 : 0);
  }
  *out = pid;
  return 0;
}

/* Waits for the child; kills it first if `kill_it`. Returns 0 if it
 * exited cleanly. */
static int
reap(const struct bench *b, pid_t pid, bool kill_it)
{
  if (kill_it)
    kill(pid, SIGKILL);
  int status;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    fail(b, "waitpid", -errno);
    return -errno;
  }
  if (kill_it)
    return 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "ipc-bench: %s/%s: child ended with status 0x%x\n",
            mode_names[b->mode], pin_names[b->pinning], (unsigned)status);
    return -ECHILD;
  }
  return 0;
}

static void
record(struct bench *b, int i, int64_t t0, int64_t t1)
{
  if (i >= b->warmup)
    b->samples[i - b->warmup] = t1 - t0;
}

/* --- rpc --------------------------------------------------------------- */

struct rpc_server {
  const struct bench *bench;
  int fd; /* taken by the session */
  struct aipc_loop *loop;
  struct aipc_session *session;
  int error;
};

static void
rpc_server_request(void *data, struct aipc_request *req)
{
  if (req->opcode != AIPC_OP_PING) {
    aipc_request_fail(req, -EOPNOTSUPP);
    return;
  }
  struct aipc_ping reply = *(const struct aipc_ping *)req->body;
  aipc_request_reply(req, &reply, NULL, 0);
}

static void
rpc_server_attach(void *data)
{
  /* As the audioipc server's sessions: the owner's thread reads. */
  static const struct aipc_session_handlers handlers = {.request =
                                                            rpc_server_request};
  static const struct aipc_session_params params = {.owner_reads = true};
  struct rpc_server *s = data;
  s->error = aipc_session_new(s->loop, s->fd, &aipc_protocol, &params,
                              &handlers, s, &s->session);
  s->fd = -1;
}

static void
rpc_server_detach(void *data)
{
  struct rpc_server *s = data;
  aipc_session_destroy(s->session);
  s->session = NULL;
}

/* Child: serves one connection until the client hangs up. */
static int
rpc_server_run(void *arg)
{
  struct rpc_server *s = arg;
  int r = aipc_loop_new("bench-server", NULL, &s->loop);
  if (r < 0) {
    fail(s->bench, "server aipc_loop_new", r);
    close(s->fd);
    return r;
  }
  r = aipc_loop_invoke(s->loop, rpc_server_attach, s);
  if (r < 0) {
    close(s->fd);
  } else {
    r = s->error;
  }
  if (r < 0) {
    fail(s->bench, "server aipc_session_new", r);
  } else {
    while (aipc_session_read(s->session, -1) == 0)
      ;
    aipc_loop_invoke(s->loop, rpc_server_detach, s);
  }
  aipc_loop_destroy(s->loop);
  return r;
}

static int
run_rpc(struct bench *b)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    fail(b, "socketpair", -errno);
    return -errno;
  }
  struct rpc_server server = {.bench = b, .fd = sv[1]};
  pid_t pid;
  int r = spawn(b, rpc_server_run, &server, sv[0], &pid);
  close(sv[1]);
  if (r < 0) {
    fail(b, "fork", r);
    close(sv[0]);
    return r;
  }

  struct aipc_loop *loop = NULL;
  struct aipc_rpc_client *client = NULL;
  const char *what = "aipc_loop_new";
  r = aipc_loop_new("bench-client", NULL, &loop);
  if (r < 0) {
    close(sv[0]);
    goto out;
  }
  what = "aipc_rpc_client_new";
  r = aipc_rpc_client_new(loop, sv[0], &aipc_protocol, NULL, NULL, &client);
  if (r < 0)
    goto out;
  what = "aipc_rpc_hello";
  r = aipc_rpc_hello(client, "ipc-bench", TIMEOUT_NS);
  if (r < 0)
    goto out;

  what = "aipc_rpc_call(PING)";
  for (int i = 0; i < b->warmup + b->n; i++) {
    struct aipc_ping req = {.value = (uint64_t)i + 1}, reply = {0};
    int64_t t0 = aipc_now_ns();
    r = aipc_rpc_call(client, AIPC_OP_PING, &req, &reply, NULL, TIMEOUT_NS);
    int64_t t1 = aipc_now_ns();
    if (r < 0)
      goto out;
    if (reply.value != req.value) {
      r = -EBADMSG;
      goto out;
    }
    record(b, i, t0, t1);
  }

out:
  if (r < 0)
    fail(b, what, r);
  if (client)
    aipc_rpc_client_destroy(client);
  if (loop)
    aipc_loop_destroy(loop);
  int rr = reap(b, pid, r < 0);
  return r < 0 ? r : rr;
}

/* --- raw --------------------------------------------------------------- */

struct raw_server {
  const struct bench *bench;
  int fd;
};

/* Child: echoes every message until the parent hangs up. */
static int
raw_server_run(void *arg)
{
  struct raw_server *s = arg;
  uint8_t buf[RAW_MSG_SIZE];
  for (;;) {
    ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
    if (n == 0)
      return 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fail(s->bench, "server recv", -errno);
      return -errno;
    }
    if (send(s->fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
      fail(s->bench, "server send", n < 0 ? -errno : -EIO);
      return -EIO;
    }
  }
}

static int
run_raw(struct bench *b)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    fail(b, "socketpair", -errno);
    return -errno;
  }
  struct raw_server server = {.bench = b, .fd = sv[1]};
  pid_t pid;
  int r = spawn(b, raw_server_run, &server, sv[0], &pid);
  close(sv[1]);
  if (r < 0) {
    fail(b, "fork", r);
    close(sv[0]);
    return r;
  }

  const char *what = "setsockopt(SO_RCVTIMEO)";
  struct timeval tv = {.tv_sec = TIMEOUT_NS / AIPC_NSEC_PER_SEC};
  if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
    r = -errno;
    goto out;
  }
  for (int i = 0; i < b->warmup + b->n; i++) {
    uint8_t msg[RAW_MSG_SIZE] = {0}, reply[RAW_MSG_SIZE];
    uint64_t seq = (uint64_t)i + 1;
    memcpy(msg, &seq, sizeof(seq));
    int64_t t0 = aipc_now_ns();
    ssize_t n = send(sv[0], msg, sizeof(msg), MSG_NOSIGNAL);
    if (n != (ssize_t)sizeof(msg)) {
      what = "send";
      r = n < 0 ? -errno : -EIO;
      goto out;
    }
    do {
      n = recv(sv[0], reply, sizeof(reply), 0);
    } while (n < 0 && errno == EINTR);
    int64_t t1 = aipc_now_ns();
    if (n != (ssize_t)sizeof(reply)) {
      what = "recv";
      if (n == 0)
        r = -ECONNRESET;
      else if (n < 0)
        r = errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
      else
        r = -EBADMSG;
      goto out;
    }
    if (memcmp(msg, reply, sizeof(msg)) != 0) {
      what = "recv";
      r = -EBADMSG;
      goto out;
    }
    record(b, i, t0, t1);
  }

out:
  if (r < 0)
    fail(b, what, r);
  close(sv[0]);
  int rr = reap(b, pid, r < 0);
  return r < 0 ? r : rr;
}

/* --- futex ------------------------------------------------------------- */

struct pingpong {
  struct aipc_wake ping;
  struct aipc_wake pong;
};

struct futex_server {
  struct pingpong *pp;
  uint32_t rounds;
};

/* Child: answers each ping value with the same pong value. It dies with
 * the parent, so it can wait without a deadline. */
static int
futex_server_run(void *arg)
{
  struct futex_server *s = arg;
  for (uint32_t i = 1; i <= s->rounds; i++) {
    uint32_t v;
    while ((v = aipc_wake_load(&s->pp->ping)) != i)
      aipc_wake_wait(&s->pp->ping, v, -1);
    aipc_wake_publish(&s->pp->pong, i);
  }
  return 0;
}

static int
run_futex(struct bench *b)
{
  struct aipc_shm shm;
  int r = aipc_shm_create("ipc-bench", 4096, &shm);
  if (r < 0) {
    fail(b, "aipc_shm_create", r);
    return r;
  }
  struct pingpong *pp = shm.base;
  struct futex_server server = {.pp = pp,
                                .rounds = (uint32_t)(b->warmup + b->n)};
  pid_t pid;
  r = spawn(b, futex_server_run, &server, -1, &pid);
  if (r < 0) {
    fail(b, "fork", r);
    aipc_shm_release(&shm);
    return r;
  }

  for (int i = 0; i < b->warmup + b->n; i++) {
    uint32_t seq = (uint32_t)i + 1, v;
    int64_t t0 = aipc_now_ns();
    aipc_wake_publish(&pp->ping, seq);
    while ((v = aipc_wake_load(&pp->pong)) != seq) {
      r = aipc_wake_wait(&pp->pong, v, t0 + TIMEOUT_NS);
      if (r < 0)
        goto out;
    }
    int64_t t1 = aipc_now_ns();
    record(b, i, t0, t1);
  }

out:
  if (r == -ETIMEDOUT)
    fprintf(stderr, "ipc-bench: %s/%s: no pong within %d s\n",
            mode_names[b->mode], pin_names[b->pinning],
            (int)(TIMEOUT_NS / AIPC_NSEC_PER_SEC));
  else if (r < 0)
    fail(b, "aipc_wake_wait(pong)", r);
  int rr = reap(b, pid, r < 0);
  aipc_shm_release(&shm);
  return r < 0 ? r : rr;
}

/* --- statistics and output --------------------------------------------- */

static int
compare_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, `permille` of 1000. */
static double
percentile_us(const int64_t *sorted, int n, int permille)
{
  int64_t rank = ((int64_t)n * permille + 999) / 1000;
  if (rank < 1)
    rank = 1;
  return (double)sorted[rank - 1] / (double)AIPC_NSEC_PER_USEC;
}

static struct stats
summarize(int64_t *samples, int n)
{
  qsort(samples, (size_t)n, sizeof(*samples), compare_i64);
  return (struct stats){
      .n = n,
      .p50 = percentile_us(samples, n, 500),
      .p99 = percentile_us(samples, n, 990),
      .p999 = percentile_us(samples, n, 999),
      .max = (double)samples[n - 1] / (double)AIPC_NSEC_PER_USEC,
  };
}

static double
ratio(double a, double b)
{
  return b > 0 ? a / b : 0;
}

static void
print_table(struct stats results[MODE_COUNT][PIN_COUNT], int n, int cpu,
            int ncpus)
{
  printf("round-trip latency in microseconds, %d iterations after %d "
         "warm-up\n"
         "same: both processes on CPU %d; any: unpinned (%d CPUs)\n\n",
         n, WARMUP, cpu, ncpus);
  printf("%-6s %-4s %8s %9s %9s %9s %9s\n", "case", "cpus", "n", "p50", "p99",
         "p99.9", "max");
  for (int m = 0; m < MODE_COUNT; m++)
    for (int p = 0; p < PIN_COUNT; p++) {
      const struct stats *s = &results[m][p];
      printf("%-6s %-4s %8d %9.2f %9.2f %9.2f %9.2f\n", mode_names[m],
             pin_names[p], s->n, s->p50, s->p99, s->p999, s->max);
    }
  printf("\n");
  printf(
      "rpc/raw p50:   same %5.2fx   any %5.2fx\n",
      ratio(results[MODE_RPC][PIN_SAME].p50, results[MODE_RAW][PIN_SAME].p50),
      ratio(results[MODE_RPC][PIN_ANY].p50, results[MODE_RAW][PIN_ANY].p50));
  printf(
      "raw/futex p50: same %5.2fx   any %5.2fx\n",
      ratio(results[MODE_RAW][PIN_SAME].p50, results[MODE_FUTEX][PIN_SAME].p50),
      ratio(results[MODE_RAW][PIN_ANY].p50, results[MODE_FUTEX][PIN_ANY].p50));
}

static void
print_json(struct stats results[MODE_COUNT][PIN_COUNT], int n, int cpu,
           int ncpus)
{
  printf("{\"iterations\": %d, \"warmup\": %d, \"pinned_cpu\": %d, "
         "\"cpus\": %d",
         n, WARMUP, cpu, ncpus);
  for (int m = 0; m < MODE_COUNT; m++)
    for (int p = 0; p < PIN_COUNT; p++) {
      const struct stats *s = &results[m][p];
      const char *mn = mode_names[m], *pn = pin_names[p];
      printf(", \"%s_%s_n\": %d", mn, pn, s->n);
      printf(", \"%s_%s_p50_us\": %.3f", mn, pn, s->p50);
      printf(", \"%s_%s_p99_us\": %.3f", mn, pn, s->p99);
      printf(", \"%s_%s_p999_us\": %.3f", mn, pn, s->p999);
      printf(", \"%s_%s_max_us\": %.3f", mn, pn, s->max);
    }
  for (int p = 0; p < PIN_COUNT; p++) {
    printf(", \"rpc_raw_p50_ratio_%s\": %.3f", pin_names[p],
           ratio(results[MODE_RPC][p].p50, results[MODE_RAW][p].p50));
    printf(", \"raw_futex_p50_ratio_%s\": %.3f", pin_names[p],
           ratio(results[MODE_RAW][p].p50, results[MODE_FUTEX][p].p50));
  }
  printf("}\n");
}

static void
usage(FILE *f)
{
  fprintf(f,
          "usage: ipc-bench [--iterations N] [--quick] [--json]\n"
          "  --iterations N  round trips measured per case (default %d)\n"
          "  --quick         %d iterations per case\n"
          "  --json          print one JSON object instead of a table\n",
          ITERATIONS_DEFAULT, ITERATIONS_QUICK);
}

int
main(int argc, char **argv)
{
  static const struct option options[] = {
      {"iterations", required_argument, NULL, 'n'},
      {"quick", no_argument, NULL, 'q'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {0},
  };
  int n = ITERATIONS_DEFAULT;
  bool json = false, explicit_n = false;
  int c;
  while ((c = getopt_long(argc, argv, "n:qjh", options, NULL)) != -1) {
    switch (c) {
    case 'n': {
      char *end;
      errno = 0;
      long v = strtol(optarg, &end, 10);
      if (errno || *end || end == optarg || v < 1 || v > ITERATIONS_MAX) {
        fprintf(stderr, "ipc-bench: --iterations wants 1..%d, not \"%s\"\n",
                ITERATIONS_MAX, optarg);
        return 2;
      }
      n = (int)v;
      explicit_n = true;
      break;
    }
    case 'q':
      if (!explicit_n)
        n = ITERATIONS_QUICK;
      break;
    case 'j':
      json = true;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);

  cpu_set_t any, same;
  if (sched_getaffinity(0, sizeof(any), &any) < 0) {
    fprintf(stderr, "ipc-bench: sched_getaffinity: %s\n", strerror(errno));
    return 1;
  }
  /* CPU 0, or the first we may use if it is not ours. */
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &any))
    cpu++;
  if (cpu == CPU_SETSIZE) {
    fprintf(stderr, "ipc-bench: no CPU in the affinity mask\n");
    return 1;
  }
  CPU_ZERO(&same);
  CPU_SET(cpu, &same);
  const cpu_set_t *masks[PIN_COUNT] = {&same, &any};

  int64_t *samples = malloc((size_t)n * sizeof(*samples));
  if (!samples) {
    fprintf(stderr, "ipc-bench: out of memory\n");
    return 1;
  }
  static int (*const runs[MODE_COUNT])(struct bench *) = {run_rpc, run_raw,
                                                          run_futex};
  struct stats results[MODE_COUNT][PIN_COUNT];
  int status = 0;
  for (int m = 0; m < MODE_COUNT && status == 0; m++)
    for (int p = 0; p < PIN_COUNT && status == 0; p++) {
      struct bench b = {.mode = (enum mode)m,
                        .pinning = (enum pinning)p,
                        .cpus = masks[p],
                        .warmup = WARMUP,
                        .n = n,
                        .samples = samples};
      /* The parent's loop threads inherit this mask; the child sets it
       * again itself. */
      int r = set_affinity(b.cpus);
      if (r < 0) {
        fail(&b, "sched_setaffinity", r);
        status = 1;
        break;
      }
      if (runs[m](&b) < 0) {
        status = 1;
        break;
      }
      results[m][p] = summarize(samples, n);
    }
  free(samples);
  set_affinity(&any);
  if (status != 0)
    return status;

  if (json)
    print_json(results, n, cpu, CPU_COUNT(&any));
  else
    print_table(results, n, cpu, CPU_COUNT(&any));
  return 0;
}
