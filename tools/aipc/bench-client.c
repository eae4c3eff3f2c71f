/* SPDX-License-Identifier: ISC */
/*
 * aipc bench's child processes: the audioipc clients whose callbacks the
 * server's statistics time, and the raw peers of the baselines. See
 * bench.h for the modes and what they report.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"
#include "shm.h"

#include <audioipc/client.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Callbacks counted in "streams" mode before the mean period is timed. */
#define WARM_FRACTION 10
/* Callbacks each stream of "rss" runs before the last reading. */
#define RSS_RUN_CALLBACKS 20
#define RPC_WARMUP 500

struct client;

struct stream {
  struct client *client;
  cubeb_stream *stream;
  _Atomic uint64_t callbacks;
  int64_t prev_ns;           /* callback thread only */
  _Atomic int64_t warm_ns;   /* when callback `warm` ran */
  _Atomic int64_t target_ns; /* when callback `target` ran */
  struct aipc_wake first;    /* 1 once the first callback ran */
  _Atomic int64_t first_ns;
};

struct client {
  cubeb *ctx;
  uint32_t nstreams;
  uint64_t target, warm;
  int64_t period_ns;
  atomic_int measuring;
  atomic_int errors;
  atomic_int fifo; /* -1 until a callback looked */
  /* Streams that had `target` callbacks; the last one to get there
   * publishes the count, which wakes the main thread once. */
  struct aipc_wake reached;
  _Atomic uint32_t *jitter;
  struct stream streams[BENCH_MAX_STREAMS_PER_CLIENT];
};

/* Audio thread: writes the frames and keeps a few counts; no syscall but
 * one sched_getscheduler on the first callback. */
static long
data_cb(cubeb_stream *stm, void *user, const void *input, void *output,
        long nframes)
{
  (void)stm;
  (void)input;
  struct stream *s = user;
  struct client *c = s->client;
  int64_t now = aipc_now_ns();
  memset(output, 0, (size_t)nframes * BENCH_FRAME_BYTES);
  uint64_t n = atomic_load_explicit(&s->callbacks, memory_order_relaxed) + 1;
  if (n == 1) {
    atomic_store(&s->first_ns, now);
    aipc_wake_publish(&s->first, 1);
    int expected = -1;
    atomic_compare_exchange_strong(
        &c->fifo, &expected,
        (sched_getscheduler(0) & ~SCHED_RESET_ON_FORK) == SCHED_FIFO);
  }
  if (n == c->warm)
    atomic_store(&s->warm_ns, now);
  if (n == c->target) {
    atomic_store(&s->target_ns, now);
    uint32_t k = atomic_fetch_add(&c->reached.value, 1) + 1;
    if (k == c->nstreams)
      aipc_wake_publish(&c->reached, k);
  }
  if (c->jitter && atomic_load_explicit(&c->measuring, memory_order_relaxed) &&
      s->prev_ns) {
    int64_t d = now - s->prev_ns - c->period_ns;
    if (d < 0)
      d = -d;
    int64_t us = d / AIPC_NSEC_PER_USEC;
    uint32_t b =
        us < BENCH_JITTER_BUCKETS ? (uint32_t)us : BENCH_JITTER_BUCKETS;
    atomic_fetch_add_explicit(&c->jitter[b], 1, memory_order_relaxed);
  }
  s->prev_ns = now;
  atomic_store_explicit(&s->callbacks, n, memory_order_release);
  return nframes;
}

static void
state_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm;
  struct stream *s = user;
  if (state == CUBEB_STATE_ERROR)
    atomic_fetch_add(&s->client->errors, 1);
}

static int
stream_new(struct client *c, struct stream *s, uint32_t latency)
{
  cubeb_stream_params out = {.format = CUBEB_SAMPLE_FLOAT32NE,
                             .rate = BENCH_RATE,
                             .channels = BENCH_CHANNELS,
                             .layout = CUBEB_LAYOUT_STEREO};
  *s = (struct stream){.client = c};
  int r = cubeb_stream_init(c->ctx, &s->stream, "aipc bench", NULL, NULL, NULL,
                            &out, latency, data_cb, state_cb, s);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc bench client: cubeb_stream_init: cubeb error %d\n",
            r);
    s->stream = NULL;
    return -1;
  }
  return 0;
}

/* Waits for the parent's next command (SIGUSR1, blocked since start-up),
 * at most `timeout_ns` (then returns 0); returns 1 for a command, -1 on
 * failure. */
static int
wait_command(int64_t timeout_ns)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  struct timespec ts = aipc_timespec_from_ns(timeout_ns);
  for (;;) {
    int r = sigtimedwait(&set, NULL, &ts);
    if (r == SIGUSR1)
      return 1;
    if (r < 0 && errno == EAGAIN)
      return 0;
    if (r < 0 && errno != EINTR) {
      fprintf(stderr, "aipc bench client: sigtimedwait: %s\n", strerror(errno));
      return -1;
    }
  }
}

/* As wait_command, failing when the parent says nothing for long. */
static int
expect_command(void)
{
  int r = wait_command(BENCH_CHILD_TIMEOUT_NS);
  if (r == 0)
    fprintf(stderr, "aipc bench client: no command from the bench\n");
  return r == 1 ? 0 : -1;
}

static bool
all_reached(const struct client *c, uint64_t count)
{
  for (uint32_t i = 0; i < c->nstreams; i++)
    if (atomic_load_explicit(&c->streams[i].callbacks, memory_order_acquire) <
        count)
      return false;
  return true;
}

static void
destroy_streams(struct client *c)
{
  for (uint32_t i = 0; i < c->nstreams; i++)
    if (c->streams[i].stream)
      cubeb_stream_destroy(c->streams[i].stream);
}

static int
stop_streams(struct client *c)
{
  int status = 0;
  for (uint32_t i = 0; i < c->nstreams; i++)
    if (cubeb_stream_stop(c->streams[i].stream) != CUBEB_OK) {
      fprintf(stderr, "aipc bench client: cubeb_stream_stop failed\n");
      status = -1;
    }
  return status;
}

static int
start_streams(struct client *c)
{
  for (uint32_t i = 0; i < c->nstreams; i++)
    if (cubeb_stream_start(c->streams[i].stream) != CUBEB_OK) {
      fprintf(stderr, "aipc bench client: cubeb_stream_start failed\n");
      return -1;
    }
  return 0;
}

static int
make_streams(struct client *c, uint32_t n, uint32_t latency)
{
  for (uint32_t i = 0; i < n; i++) {
    if (stream_new(c, &c->streams[i], latency) < 0)
      return -1;
    c->nstreams = i + 1;
  }
  return 0;
}

/* "streams N LATENCY PERIOD TARGET JITTER" */
static int
run_streams(struct client *c, char **args)
{
  unsigned n, latency, period, target, jitter;
  if (aipc_parse_uint(args[0], 1, BENCH_MAX_STREAMS_PER_CLIENT, &n) < 0 ||
      aipc_parse_uint(args[1], 1, 96000, &latency) < 0 ||
      aipc_parse_uint(args[2], 1, 96000, &period) < 0 ||
      aipc_parse_uint(args[3], 0, 100000000, &target) < 0 ||
      aipc_parse_uint(args[4], 0, 1, &jitter) < 0)
    return -1;
  c->target = target;
  /* At least 1, and below target unless target is 1. */
  c->warm = target / WARM_FRACTION ? target / WARM_FRACTION : 1;
  c->period_ns = (int64_t)period * AIPC_NSEC_PER_SEC / BENCH_RATE;
  if (jitter) {
    c->jitter = calloc(BENCH_JITTER_BUCKETS + 1, sizeof(*c->jitter));
    if (!c->jitter)
      return -1;
  }
  int status = -1;
  if (make_streams(c, n, latency) < 0)
    goto out;
  printf("ready\n");
  if (expect_command() < 0 || start_streams(c) < 0)
    goto out;
  printf("started\n");
  int64_t cpu0 = 0;
  if (jitter) {
    if (expect_command() < 0)
      goto out;
    cpu0 = bench_rusage_ns(RUSAGE_SELF);
    atomic_store(&c->measuring, 1);
    printf("measuring\n");
  }
  if (target) {
    /* Sleeps until the last stream gets there: no polling to disturb
     * the measurement. */
    int64_t deadline = aipc_now_ns() + BENCH_CHILD_TIMEOUT_NS;
    uint32_t v;
    while ((v = aipc_wake_load(&c->reached)) < c->nstreams)
      if (aipc_wake_wait(&c->reached, v, deadline) < 0) {
        fprintf(stderr, "aipc bench client: streams too slow\n");
        goto out;
      }
    double sum = 0;
    for (uint32_t i = 0; i < c->nstreams; i++) {
      struct stream *s = &c->streams[i];
      sum += (double)(atomic_load(&s->target_ns) - atomic_load(&s->warm_ns)) /
             (double)(target - c->warm);
    }
    printf("cycle_ns %.1f\n", target > c->warm ? sum / c->nstreams : 0.0);
    printf("done\n");
  }
  if (expect_command() < 0)
    goto out;
  atomic_store(&c->measuring, 0);
  if (jitter)
    printf("cpu_ns %lld\n", (long long)(bench_rusage_ns(RUSAGE_SELF) - cpu0));
  status = stop_streams(c);
  if (c->jitter)
    for (uint32_t b = 0; b <= BENCH_JITTER_BUCKETS; b++) {
      uint32_t count = atomic_load(&c->jitter[b]);
      if (count)
        printf("jitter %u %u\n", b, count);
    }
  printf("fifo %d\n", atomic_load(&c->fifo) == 1);
out:
  destroy_streams(c);
  free(c->jitter);
  return status;
}

/* "minlat": the server's backend and cubeb's minimum latency for the
 * bench's streams. */
static int
run_minlat(struct client *c, char **args)
{
  (void)args;
  cubeb_stream_params params = {.format = CUBEB_SAMPLE_FLOAT32NE,
                                .rate = BENCH_RATE,
                                .channels = BENCH_CHANNELS,
                                .layout = CUBEB_LAYOUT_STEREO};
  uint32_t frames = 0;
  int r = cubeb_get_min_latency(c->ctx, &params, &frames);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc bench client: cubeb_get_min_latency: cubeb error %d\n", r);
    return -1;
  }
  printf("backend %s\n", cubeb_get_backend_id(c->ctx));
  printf("min_latency %u\n", frames);
  return 0;
}

/* "rpc N" */
static int
run_rpc(struct client *c, char **args)
{
  unsigned n;
  if (aipc_parse_uint(args[0], 1, 10000000, &n) < 0)
    return -1;
  int64_t *samples = malloc((size_t)n * sizeof(*samples));
  if (!samples)
    return -1;
  int status = -1;
  if (make_streams(c, 1, 128) < 0)
    goto out;
  for (unsigned i = 0; i < RPC_WARMUP + n; i++) {
    uint64_t position;
    int64_t t0 = aipc_now_ns();
    int r = cubeb_stream_get_position(c->streams[0].stream, &position);
    int64_t t1 = aipc_now_ns();
    if (r != CUBEB_OK) {
      fprintf(stderr,
              "aipc bench client: cubeb_stream_get_position: cubeb error "
              "%d\n",
              r);
      goto out;
    }
    if (i >= RPC_WARMUP)
      samples[i - RPC_WARMUP] = t1 - t0;
  }
  for (unsigned i = 0; i < n; i++)
    printf("sample %lld\n", (long long)samples[i]);
  status = 0;
out:
  destroy_streams(c);
  free(samples);
  return status;
}

/* "startup N" */
static int
run_startup(struct client *c, char **args)
{
  unsigned n;
  if (aipc_parse_uint(args[0], 1, 1000, &n) < 0)
    return -1;
  for (unsigned i = 0; i < n; i++) {
    struct stream *s = &c->streams[0];
    int64_t t0 = aipc_now_ns();
    if (stream_new(c, s, 128) < 0)
      return -1;
    c->nstreams = 1;
    int r = cubeb_stream_start(s->stream);
    int64_t deadline = t0 + 10 * AIPC_NSEC_PER_SEC;
    while (r == CUBEB_OK && aipc_wake_load(&s->first) == 0)
      if (aipc_wake_wait(&s->first, 0, deadline) < 0)
        r = CUBEB_ERROR;
    if (r == CUBEB_OK)
      printf("sample %lld\n", (long long)(atomic_load(&s->first_ns) - t0));
    else
      fprintf(stderr, "aipc bench client: stream %u did not start\n", i);
    if (r == CUBEB_OK && cubeb_stream_stop(s->stream) != CUBEB_OK)
      r = CUBEB_ERROR;
    cubeb_stream_destroy(s->stream);
    c->nstreams = 0;
    if (r != CUBEB_OK)
      return -1;
  }
  return 0;
}

/* Resident memory of this process in KiB. */
static long
rss_kib(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long size, resident = -1;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
      resident = -1;
    fclose(f);
  }
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* "rss N": streams of 512 frames, the size shm_bytes_per_stream is
 * reported for. */
static int
run_rss(struct client *c, char **args)
{
  unsigned n;
  if (aipc_parse_uint(args[0], 1, BENCH_MAX_STREAMS_PER_CLIENT, &n) < 0)
    return -1;
  int status = -1;
  long before = rss_kib();
  if (make_streams(c, n, 512) < 0)
    goto out;
  long created = rss_kib();
  if (start_streams(c) < 0)
    goto out;
  int64_t deadline = aipc_now_ns() + 10 * AIPC_NSEC_PER_SEC;
  while (!all_reached(c, RSS_RUN_CALLBACKS) && aipc_now_ns() < deadline) {
    struct timespec ts = {.tv_nsec = 1000000};
    nanosleep(&ts, NULL);
  }
  long running = rss_kib();
  if (stop_streams(c) < 0 || !all_reached(c, RSS_RUN_CALLBACKS))
    goto out;
  printf("rss_kib %ld %ld %ld\n", before, created, running);
  status = 0;
out:
  destroy_streams(c);
  return status;
}

/* --- Peers ---------------------------------------------------------------- */

/* "peer-futex ROUNDS": answers ping i with pong i. */
static int
peer_futex(char **args)
{
  unsigned rounds;
  if (aipc_parse_uint(args[0], 1, 100000000, &rounds) < 0)
    return -1;
  struct aipc_shm shm;
  int r = aipc_shm_import(AIPC_CHILD_CONN_FD, BENCH_FUTEX_SHM_SIZE, &shm);
  if (r < 0) {
    fprintf(stderr, "aipc bench peer: aipc_shm_import: %s\n", strerror(-r));
    return -1;
  }
  struct bench_pingpong *pp = shm.base;
  for (uint32_t i = 1; i <= rounds && r == 0; i++) {
    int64_t deadline = aipc_now_ns() + BENCH_CHILD_TIMEOUT_NS;
    uint32_t v;
    while (r == 0 && (v = aipc_wake_load(&pp->ping)) != i)
      r = aipc_wake_wait(&pp->ping, v, deadline);
    if (r == 0)
      aipc_wake_publish(&pp->pong, i);
  }
  if (r < 0)
    fprintf(stderr, "aipc bench peer: no ping: %s\n", strerror(-r));
  aipc_shm_release(&shm);
  return r;
}

/* "peer-socket" and "peer-echo": answers every message until EOF. */
static int
peer_socket(size_t in_size, size_t out_size)
{
  uint8_t in[BENCH_SOCKET_MSG_SIZE], out[BENCH_SOCKET_MSG_SIZE];
  int fd = AIPC_CHILD_CONN_FD;
  struct timeval tv = {.tv_sec = BENCH_CHILD_TIMEOUT_NS / AIPC_NSEC_PER_SEC};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (;;) {
    ssize_t n = recv(fd, in, sizeof(in), 0);
    if (n == 0)
      return 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n != (ssize_t)in_size) {
      fprintf(stderr, "aipc bench peer: recv: %s\n",
              n < 0 ? strerror(errno) : "wrong size");
      return -1;
    }
    /* The header back, then the "callback" writes the frames. */
    memcpy(out, in, BENCH_SOCKET_HEADER_SIZE);
    memset(out + BENCH_SOCKET_HEADER_SIZE, 0,
           out_size - BENCH_SOCKET_HEADER_SIZE);
    if (send(fd, out, out_size, MSG_NOSIGNAL) != (ssize_t)out_size) {
      fprintf(stderr, "aipc bench peer: send: %s\n", strerror(errno));
      return -1;
    }
  }
}

static int
pin_self(int argc, char **argv, int *used)
{
  unsigned cpu;
  *used = 0;
  if (argc < 2 || strcmp(argv[argc - 2], "--cpu") != 0)
    return 0;
  *used = 2;
  if (aipc_parse_uint(argv[argc - 1], 0, CPU_SETSIZE - 1, &cpu) < 0)
    return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) < 0) {
    fprintf(stderr, "aipc bench peer: sched_setaffinity: %s\n",
            strerror(errno));
    return -1;
  }
  return 0;
}

static int
run_peer(const char *mode, int argc, char **argv)
{
  int used;
  if (pin_self(argc, argv, &used) < 0)
    return -1;
  argc -= used;
  if (strcmp(mode, "peer-futex") == 0 && argc == 1)
    return peer_futex(argv);
  if (strcmp(mode, "peer-futex-fifo") == 0 && argc == 1) {
    /* As the client library's callback threads ask for. */
    struct sched_param param = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &param) < 0)
      fprintf(stderr, "aipc bench peer: no SCHED_FIFO: %s\n", strerror(errno));
    return peer_futex(argv);
  }
  if (strcmp(mode, "peer-socket") == 0 && argc == 0)
    return peer_socket(BENCH_SOCKET_MSG_SIZE, BENCH_SOCKET_MSG_SIZE);
  if (strcmp(mode, "peer-echo") == 0 && argc == 0)
    return peer_socket(BENCH_RPC_REQUEST_SIZE, BENCH_RPC_REPLY_SIZE);
  fprintf(stderr, "aipc bench peer: bad mode or arguments: %s\n", mode);
  return -1;
}

/* --- Entry ---------------------------------------------------------------- */

/* MODE ARGS...; a leading "pool=N" sets the context's pool_size. */
static int
run_client(const char *mode, int argc, char **argv)
{
  size_t pool_size = 0;
  if (strncmp(mode, "pool=", 5) == 0 && argc > 0) {
    pool_size = strtoul(mode + 5, NULL, 10);
    mode = argv[0];
    argc--;
    argv++;
  }
  static const struct {
    const char *name;
    int args;
    int (*run)(struct client *c, char **args);
  } modes[] = {
      {"streams", 5, run_streams}, {"rpc", 1, run_rpc},
      {"startup", 1, run_startup}, {"rss", 1, run_rss},
      {"minlat", 0, run_minlat},
  };
  size_t m = 0;
  while (m < sizeof(modes) / sizeof(modes[0]) && strcmp(modes[m].name, mode))
    m++;
  if (m == sizeof(modes) / sizeof(modes[0]) || argc != modes[m].args) {
    fprintf(stderr, "aipc bench client: bad mode or arguments: %s\n", mode);
    return -1;
  }
  struct client *c = calloc(1, sizeof(*c));
  if (!c)
    return -1;
  atomic_init(&c->fifo, -1);
  AudioIpcInitParams params = {.server_connection = AIPC_CHILD_CONN_FD,
                               .pool_size = pool_size};
  int r = audioipc_client_init(&c->ctx, "aipc-bench", &params);
  if (r != CUBEB_OK) {
    fprintf(stderr, "aipc bench client: audioipc_client_init: cubeb error %d\n",
            r);
    free(c);
    return -1;
  }
  int status = modes[m].run(c, argv);
  int errors = atomic_load(&c->errors);
  if (errors) {
    printf("errors %d\n", errors);
    status = -1;
  }
  cubeb_destroy(c->ctx);
  free(c);
  return status;
}

int
aipc_bench_client_main(int argc, char **argv)
{
  /* Before any thread exists, so that every thread inherits the mask and
   * a command cannot kill us. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (!aipc_in_child || argc < 2) {
    fprintf(stderr, "aipc: %s is internal to aipc bench\n", BENCH_CHILD_NAME);
    return AIPC_EXIT_USAGE;
  }
  const char *mode = argv[1];
  /* A peer's stdout is the bench's own: it says nothing there. */
  bool peer = strncmp(mode, "peer-", 5) == 0;
  int r = peer ? run_peer(mode, argc - 2, argv + 2)
               : run_client(mode, argc - 2, argv + 2);
  if (r == 0 && !peer)
    printf("end\n");
  fflush(stdout);
  return r == 0 ? AIPC_EXIT_OK : AIPC_EXIT_FAILURE;
}
