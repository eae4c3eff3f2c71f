/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: what a callback costs through audioipc, next to the floor
 * (a bare futex round trip between two processes) and the original
 * design (a socket message each way per callback); real-time pacing of
 * 64 streams; control calls; stream start-up; memory.
 *
 * Both sides are real processes: the servers run in this process, their
 * clients (and the baselines' peers) are children re-executed as
 * "aipc _client bench-client MODE ..." (bench-client.c; bench.h lists
 * the modes and this program's parts). This file holds the options and
 * the order of the measurements; each part says how it measures.
 */
#include "bench.h"
#include "aipc.h"
#include "clock.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char bench_usage[] =
    "usage: aipc bench [--quick] [--json]\n"
    "\n"
    "Measures audioipc on this machine, with a server in this process and "
    "its\nclients in child processes, on the virtual device:\n"
    "  - the floor: a futex ping-pong between two processes over shared "
    "memory,\n    pinned to one CPU and unpinned;\n"
    "  - the remote callback overhead: how long the server's audio thread "
    "waits\n    per callback for a client whose callback only writes the "
    "frames\n    (clock=fast, 48 kHz stereo float), 1 stream pinned like "
    "the floor,\n    then 1..64 streams over up to 8 clients at 128 and 512 "
    "frames;\n"
    "  - the original design's baseline: a 1 KiB socket message each way "
    "per\n    callback, pinned;\n"
    "  - real-time pacing: 64 streams of 128 frames, clock=realtime, 8 "
    "clients,\n    10 s: misses, late wake-ups, callback jitter, CPU per "
    "stream and cycle;\n    once with a callback thread per stream, once "
    "with one per client\n    (pool_size 1);\n"
    "  - cubeb_stream_get_position through the server next to a raw "
    "socket\n    round trip of the same size; stream start-up; shared and "
    "resident\n    memory per stream;\n"
    "  - on PulseAudio, if PULSE_SERVER is set and reachable: 1, 8 and 32 "
    "streams\n    over up to 8 clients at cubeb's minimum latency, 3 s "
    "each.\n"
    "Then shows, for each target of the design, the ratio and whether it "
    "holds.\nA target that does not hold is reported, not an error.\n"
    "\n"
    "Options:\n"
    "  --quick     much shorter runs (a smoke test), the same figures\n"
    "  --json      print one JSON object instead of the table\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 when every measurement ran, 1 on an error, 2 for bad "
    "arguments.\n";

static void
set_params(struct bench_params *p, bool quick)
{
  *p = (struct bench_params){.quick = quick,
                             .warmup = quick ? 200 : 1000,
                             .floor_iterations = quick ? 2000 : 20000,
                             .socket_iterations = quick ? 2000 : 20000,
                             .pinned_periods = quick ? 2000 : 20000,
                             .case_periods = quick ? 300 : 5000,
                             .realtime_seconds = quick ? 1.0 : 10.0,
                             .settle_seconds = quick ? 0.2 : 0.5,
                             .rpc_iterations = quick ? 500 : 5000,
                             .startup_streams = quick ? 5 : 20,
                             .rss_streams = 16,
                             .pulse_seconds = quick ? 0.5 : 3.0,
                             .loaded_seconds = quick ? 0.5 : 30.0};
}

static int
run_all(const struct bench_params *p, struct bench_results *res)
{
  cpu_set_t any;
  if (sched_getaffinity(0, sizeof(any), &any) < 0) {
    fprintf(stderr, "aipc bench: sched_getaffinity: %s\n", strerror(errno));
    return -1;
  }
  int cpu = 0;
  while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &any))
    cpu++;
  if (cpu == CPU_SETSIZE)
    return -1;
  res->cpu = cpu;
  res->ncpus = CPU_COUNT(&any);

  bench_progress("floor: futex ping-pong");
  if (bench_measure_futex(p, cpu, false, &any, &res->floor_same) < 0 ||
      bench_measure_futex(p, -1, false, &any, &res->floor_any) < 0 ||
      bench_measure_futex(p, cpu, true, &any, &res->floor_fifo) < 0)
    return -1;
  bench_progress("socket baseline");
  if (bench_measure_socket("socket baseline", "peer-socket",
                           BENCH_SOCKET_MSG_SIZE, BENCH_SOCKET_MSG_SIZE,
                           p->warmup, p->socket_iterations, cpu, &any,
                           &res->socket_same) < 0 ||
      bench_measure_socket("socket baseline", "peer-socket",
                           BENCH_SOCKET_MSG_SIZE, BENCH_SOCKET_MSG_SIZE,
                           p->warmup, p->socket_iterations, -1, &any,
                           &res->socket_any) < 0)
    return -1;
  bench_progress("raw request/response");
  if (bench_measure_socket("raw request/response", "peer-echo",
                           BENCH_RPC_REQUEST_SIZE, BENCH_RPC_REPLY_SIZE,
                           p->warmup, p->rpc_iterations, -1, &any,
                           &res->rpc_raw) < 0 ||
      bench_measure_socket("raw request/response", "peer-echo",
                           BENCH_RPC_REQUEST_SIZE, BENCH_RPC_REPLY_SIZE,
                           p->warmup, p->rpc_iterations, cpu, &any,
                           &res->rpc_raw_same) < 0)
    return -1;

  if (bench_run_case(p, 128, 1, p->pinned_periods, cpu, &any, &res->pinned) < 0)
    return -1;
  static const uint32_t periods[] = {128, 512}, streams[] = {1, 8, 32, 64};
  for (size_t i = 0; i < 2; i++)
    for (size_t k = 0; k < 4; k++)
      if (bench_run_case(p, periods[i], streams[k], p->case_periods, -1, &any,
                         &res->cases[res->ncases++]) < 0)
        return -1;

  if (bench_run_realtime(p, 0, &res->rt) < 0 ||
      bench_run_realtime(p, 1, &res->rt_pooled) < 0 ||
      bench_run_rpc(p, -1, &any, &res->rpc_position) < 0 ||
      bench_run_rpc(p, cpu, &any, &res->rpc_position_same) < 0 ||
      bench_run_misc(p, res) < 0 ||
      bench_run_pulse(p, res->ncpus, &res->pulse) < 0)
    return -1;
  return 0;
}

int
aipc_bench_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"quick", no_argument, NULL, 'q'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool quick = false, json = false;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'q':
      quick = true;
      break;
    case 'j':
      json = true;
      break;
    case 'h':
      fputs(bench_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("bench", bench_usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error("bench", bench_usage, "unexpected argument %s",
                            argv[optind]);

  signal(SIGPIPE, SIG_IGN);
  bench_show_progress = isatty(STDERR_FILENO);
  struct bench_params p;
  set_params(&p, quick);
  struct bench_results *res = calloc(1, sizeof(*res));
  if (!res) {
    fprintf(stderr, "aipc bench: out of memory\n");
    return AIPC_EXIT_FAILURE;
  }
  int64_t t0 = aipc_now_ns();
  int r = run_all(&p, res);
  res->seconds = (double)(aipc_now_ns() - t0) / 1e9;
  if (r == 0) {
    if (json)
      bench_print_json(&p, res);
    else
      bench_print_table(&p, res);
  }
  free(res);
  return r == 0 ? AIPC_EXIT_OK : AIPC_EXIT_FAILURE;
}
