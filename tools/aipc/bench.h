/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: what the parent (bench.c) and its child processes
 * (bench-client.c) agree on.
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

#include <stdint.h>

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

#endif
