/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: what the parent and its child processes (bench-client.c)
 * agree on, and, below, what the parent's parts share.
 *
 * The parent: bench.c (options, the order of the measurements),
 * bench-floor.c (the futex floor, the socket baselines), bench-datapath.c
 * (the remote callback overhead on the fast clock), bench-realtime.c
 * (real-time pacing of 64 streams), bench-control.c (control calls,
 * start-up, memory), bench-pulse.c (PulseAudio), bench-report.c (the
 * targets, the table and the JSON), bench-group.c (the client children
 * and what they report) and bench-util.c (clocks, pinning, percentiles).
 *
 * Every child is this program re-executed as
 *   aipc _client bench-client MODE ARGS...
 * from a fork that ran only async-signal-safe calls before exec.
 *
 * Client modes, on a remoted context whose connection is at
 * AIPC_CHILD_CONN_FD (started with aipc_spawn_client):
 *   streams N LATENCY PERIOD TARGET JITTER
 *       N output streams (48 kHz stereo float) of LATENCY frames whose
 *       callback writes the frames. Commands arrive as SIGUSR1, each
 *       answered by a line: the first starts the streams ("started"); with
 *       JITTER 1 the second starts measuring the callback intervals
 *       against PERIOD frames ("measuring"); the last stops. With TARGET
 *       above 0 the child says "done" once every stream had TARGET
 *       callbacks (and reports the mean period it saw).
 *   rpc N       N timed cubeb_stream_get_position calls on a stream that
 *               is not started
 *   startup N   N streams, one after another: init + start until the
 *               first data callback
 *   rss N       resident memory before and after making N streams
 *   minlat      the server's backend (cubeb_get_backend_id) and
 *               cubeb_get_min_latency for those streams' parameters
 *
 * Peer modes, not audioipc clients, with one fd at AIPC_CHILD_CONN_FD:
 *   peer-futex ROUNDS    a sealed memfd of BENCH_FUTEX_SHM_SIZE: answers
 *                        each ping with a pong
 *   peer-futex-fifo ROUNDS   the same at SCHED_FIFO priority 10, as the
 *                        client library's callback threads run
 *   peer-socket          a SOCK_SEQPACKET socket: answers each
 *                        BENCH_SOCKET_MSG_SIZE message with one as big
 *   peer-echo            a SOCK_SEQPACKET socket: answers each
 *                        BENCH_RPC_REQUEST_SIZE message with
 *                        BENCH_RPC_REPLY_SIZE bytes
 * Each peer pins itself to CPU N when given --cpu N as its last
 * arguments.
 *
 * Children report on stdout, one item per line: "ready", "started",
 * "measuring", "done", "sample NS", "jitter US COUNT", "cycle_ns NS",
 * "cpu_ns NS", "fifo 0|1", "rss_kib BEFORE CREATED RUNNING",
 * "backend NAME", "min_latency FRAMES", "errors N",
 * and "end" last.
 */
#ifndef AIPC_BENCH_H
#define AIPC_BENCH_H

#include "wake.h"

#include <audioipc/server.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_CHILD_NAME "bench-client"

/* Every stream of the bench: 48 kHz stereo float32. */
#define BENCH_RATE 48000
#define BENCH_CHANNELS 2
#define BENCH_FRAME_BYTES (BENCH_CHANNELS * 4)

/* Streams one client process may run. */
#define BENCH_MAX_STREAMS_PER_CLIENT 64

/* The futex floor: a ping and a pong word in a sealed memfd. */
struct bench_pingpong {
  struct aipc_wake ping;
  struct aipc_wake pong;
};
#define BENCH_FUTEX_SHM_SIZE 4096

/* The socket baseline: a 16-byte header and 128 frames of stereo float
 * each way, as the original design sends per callback. */
#define BENCH_SOCKET_HEADER_SIZE 16
#define BENCH_SOCKET_FRAMES 128
#define BENCH_SOCKET_MSG_SIZE                                                  \
  (BENCH_SOCKET_HEADER_SIZE + BENCH_SOCKET_FRAMES * BENCH_FRAME_BYTES)

/* The sizes of a STREAM_GET_POSITION request (header and a u32 stream
 * id) and of its reply (header and a u64). */
#define BENCH_RPC_REQUEST_SIZE 20
#define BENCH_RPC_REPLY_SIZE 24

/* Callback interval jitter: 1 us buckets; the last one holds the rest. */
#define BENCH_JITTER_BUCKETS 100000

/* No wait of a child, or for a child, lasts longer than this. */
#define BENCH_CHILD_TIMEOUT_NS (120 * INT64_C(1000000000))

/* --- The parent's parts ----------------------------------------------------
 */

/* Client processes of one measurement, and the streams the server may
 * report at once. */
#define BENCH_MAX_CLIENTS 8
#define BENCH_STATS_MAX 512
/* The server's wait percentiles stop at this bucket ("1 us resolution up
 * to 4 ms"); the maximum is exact. */
#define BENCH_WAIT_CAP_US 4096

struct bench_params {
  bool quick;
  int warmup;
  int floor_iterations;
  int socket_iterations;
  uint32_t pinned_periods; /* callbacks of the pinned 1-stream case */
  uint32_t case_periods;   /* callbacks per stream of the other cases */
  double realtime_seconds, settle_seconds;
  int rpc_iterations;
  int startup_streams;
  int rss_streams;
  double pulse_seconds;  /* the measured window of each PulseAudio case */
  double loaded_seconds; /* of the loaded PulseAudio cases */
};

/* Percentiles of round trips, microseconds. */
struct bench_lat {
  int n;
  double p50, p99, p999, max;
};

struct bench_case {
  uint32_t period, streams, clients;
  double p50, p99, p999, max, p99_median; /* microseconds */
  uint64_t misses, callbacks;
  double cycle_us; /* a whole period, as the clients saw it */
  double seconds;
  bool fifo;
};

struct bench_realtime {
  uint32_t streams, clients;
  unsigned pool_size; /* of each client's context */
  double seconds;
  uint64_t periods, late_wakes;
  uint64_t misses, misses_total, misses_run;
  double jitter_p50, jitter_p99, jitter_p999, jitter_max;
  double cpu_per_stream_cycle, cpu_steady;
  double server_cpu_ms, clients_cpu_ms, bench_cpu_ms;
  double window_server_cpu_ms, window_clients_cpu_ms;
  double sys_share; /* of the run's CPU time, in the kernel */
  uint64_t span_periods;
  double sleeps_per_period; /* the device thread's, collecting answers */
  bool fifo;
};

/* One PulseAudio case: the waits as in struct bench_case; callbacks,
 * frames and misses over the streams' lives; CPU and the slowest stream's
 * frame rate over the window. */
struct bench_pulse_case {
  uint32_t latency, streams, clients;
  bool buffered; /* render-ahead (else each callback waits for its answer) */
  double p50, p99, max; /* microseconds */
  uint64_t misses, callbacks, frames;
  double cpu_us;      /* server + clients, per stream and callback */
  double slowest_fps; /* frames per second of the slowest stream */
  double seconds;     /* the measured window */
};

/* Streams per PulseAudio case, and the cases: at the minimum latency and
 * at 256 frames, synchronous and buffered. */
#define BENCH_PULSE_COUNTS 3
#define BENCH_PULSE_CASES (2 * BENCH_PULSE_COUNTS * 2)
/* The one-client case (32 streams of 256 frames in one process) and the
 * loaded one (8 streams, every CPU busy, no real-time threads). */
#define BENCH_PULSE_ONE_CLIENT_STREAMS 32
#define BENCH_PULSE_LOADED_STREAMS 8

struct bench_pulse {
  bool ran; /* false: no PulseAudio reachable */
  uint32_t min_latency;
  struct bench_pulse_case cases[BENCH_PULSE_CASES];
  struct bench_pulse_case one_client[2]; /* synchronous, buffered */
  double inprocess_slowest_fps;          /* plain libcubeb in this process */
  struct bench_pulse_case loaded[2];     /* synchronous, buffered */
};

struct bench_results {
  int cpu, ncpus;
  struct bench_lat floor_same, floor_any, floor_fifo;
  struct bench_lat socket_same, socket_any;
  struct bench_lat rpc_raw, rpc_position, rpc_raw_same, rpc_position_same;
  struct bench_case pinned;
  struct bench_case cases[8];
  unsigned ncases;
  struct bench_realtime rt, rt_pooled;
  struct bench_lat start_ms;
  uint32_t shm_bytes, largest_callback_bytes;
  double rss_kib_per_stream, rss_kib_per_stream_running;
  struct bench_pulse pulse;
  double seconds;
};

enum {
  BENCH_GOT_READY = 1 << 0,
  BENCH_GOT_STARTED = 1 << 1,
  BENCH_GOT_MEASURING = 1 << 2,
  BENCH_GOT_DONE = 1 << 3,
  BENCH_GOT_END = 1 << 4,
};

/* An audioipc client child and what it reported on its stdout. */
struct bench_child {
  pid_t pid;
  int fd; /* -1 at EOF */
  char line[256];
  size_t len;
  unsigned got;
  int64_t *samples;
  size_t nsamples, cap;
  double cycle_ns;
  int64_t cpu_ns;
  int fifo;
  long rss[3];
  long min_latency;
  char backend[32];
};

struct bench_group {
  const char *what;
  unsigned n;
  struct bench_child c[BENCH_MAX_CLIENTS];
  uint64_t *jitter; /* merged histogram, BENCH_JITTER_BUCKETS + 1, or NULL */
};

/* --- bench-util.c ----------------------------------------------------------
 */

/* Progress lines on stderr ("aipc bench: ..."), when this is true. */
extern bool bench_show_progress;
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CPU time of getrusage(`who`): user + system, or system only. */
int64_t bench_rusage_ns(int who);
int64_t bench_rusage_sys_ns(int who);
/* This thread's CPU time. */
int64_t bench_thread_cpu_ns(void);
/* Sleeps until CLOCK_MONOTONIC time `t`. */
void bench_sleep_until(int64_t t);
/* Pins this thread (and what it starts from now on) to `cpu`, or lets it
 * run on `any` if cpu < 0. Returns 0 or -1 (reported). */
int bench_pin(int cpu, const cpu_set_t *any);
/* Sorts `ns` (nanoseconds) and returns its percentiles in `unit` ns. */
struct bench_lat bench_summarize(int64_t *ns, size_t n, double unit);
/* The bucket holding the nearest-rank percentile (`permille` of 1000) of
 * a histogram of `total` entries. */
double bench_hist_rank(const uint64_t *hist, size_t buckets, uint64_t total,
                       int permille);
/* a / b, or 0 when b is not positive. */
double bench_ratio(double a, double b);
/* A server on `backend`, or NULL (reported). */
void *bench_server_start(const char *backend);
/* Whether the streams of clients made from now on render ahead. */
int bench_set_render_ahead(void *server, bool on);

/* --- bench-group.c ---------------------------------------------------------
 */

/* Waits for a child (killing it first if `kill_it`); returns 0 if it
 * exited 0. */
int bench_reap(pid_t pid, const char *what, bool kill_it);
/* Starts a client "aipc _client bench-client ARGS..." of `server` in
 * `g` (at most 12 arguments, NULL-terminated). */
int bench_group_spawn(struct bench_group *g, void *server, char *const args[]);
/* Reads the children's reports until each has said `bit` (BENCH_GOT_*). */
int bench_group_wait(struct bench_group *g, unsigned bit);
/* Sends the next command (SIGUSR1) to every child. */
void bench_group_command(struct bench_group *g);
/* Starts `n` clients running `args` on `server`, starts their streams,
 * lets them settle for p->settle_seconds, then has them measure. */
int bench_group_start_measuring(const struct bench_params *p,
                                struct bench_group *g, void *server,
                                char *const args[], unsigned n);
/* Waits for every child's "end" and reaps them all; with `kill_them`
 * (after a failure) kills them first. Frees what they reported. */
int bench_group_finish(struct bench_group *g, bool kill_them);
/* The statistics of the streams of `g`'s clients (at most
 * BENCH_STATS_MAX); returns their number or -1. */
int bench_group_stats(void *server, const struct bench_group *g,
                      AudioIpcStreamStats *out);
/* The counters of the group's streams (callbacks, frames, misses,
 * sleeps), summed into *total. Returns the number of streams, or -1. */
int bench_group_sum_stats(void *server, const struct bench_group *g,
                          AudioIpcStreamStats *total);

/* --- The measurements: each returns 0 or -1 (reported on stderr) ---------- */

/* bench-floor.c: futex ping-pong with a peer process, pinned to `cpu`
 * unless it is negative, the peer at SCHED_FIFO if `fifo`. */
int bench_measure_futex(const struct bench_params *p, int cpu, bool fifo,
                        const cpu_set_t *any, struct bench_lat *out);
/* bench-floor.c: round trips of `req` bytes out and `reply` back over a
 * SOCK_SEQPACKET socketpair to a peer running `mode`. */
int bench_measure_socket(const char *what, const char *mode, size_t req,
                         size_t reply, int warmup, int iterations, int cpu,
                         const cpu_set_t *any, struct bench_lat *out);

/* bench-datapath.c: `streams` streams of `period` frames over up to
 * BENCH_MAX_CLIENTS clients on a fresh server with the fast clock, each
 * until it had `target` callbacks; the server (and with it the clients)
 * pinned to `cpu` unless it is negative. */
int bench_run_case(const struct bench_params *p, uint32_t period,
                   uint32_t streams, uint32_t target, int cpu,
                   const cpu_set_t *any, struct bench_case *out);
/* bench-datapath.c: folds the streams' statistics into one line: the
 * median of the p50s, the largest p99, p99.9 and maximum, the sums. */
void bench_aggregate(const AudioIpcStreamStats *s, int n,
                     struct bench_case *out);

/* bench-realtime.c: 64 streams of 128 frames on the real-time clock,
 * each client's context with `pool_size`. */
int bench_run_realtime(const struct bench_params *p, unsigned pool_size,
                       struct bench_realtime *rt);

/* bench-control.c: cubeb_stream_get_position through a fresh server,
 * pinned with its client to `cpu` unless it is negative. */
int bench_run_rpc(const struct bench_params *p, int cpu, const cpu_set_t *any,
                  struct bench_lat *out);
/* bench-control.c: stream start-up and memory per stream, into `res`. */
int bench_run_misc(const struct bench_params *p, struct bench_results *res);

/* bench-pulse.c: the PulseAudio cases, if one is reachable (else
 * out->ran stays false and it returns 0). */
int bench_run_pulse(const struct bench_params *p, int ncpus,
                    struct bench_pulse *out);

/* --- bench-report.c --------------------------------------------------------
 */

void bench_print_table(const struct bench_params *p,
                       const struct bench_results *r);
void bench_print_json(const struct bench_params *p,
                      const struct bench_results *r);

#endif
