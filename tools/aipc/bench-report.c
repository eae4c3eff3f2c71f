/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: the design's targets, and the results as a table or as
 * one JSON object.
 */
#include "bench.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

/* Targets of issue 5. */
#define TARGET_OVERHEAD_P50 1.5
#define TARGET_OVERHEAD_P999 5.0
#define TARGET_SOCKET_RATIO 3.0
#define TARGET_CPU_US 6.0
#define TARGET_RPC_RATIO 2.0
#define TARGET_SHM_RATIO 2.0

/* Targets of issue 13 (render-ahead), on PulseAudio. */
#define TARGET_PULSE_WAIT_RATIO 0.1
#define TARGET_ONE_CLIENT_RATIO 0.98
#define TARGET_LOADED_MISS_RATIO 0.1
#define TARGET_PULSE_CPU_RATIO 1.0

/* A target "value <= factor x base" (or >=); an absolute one has base 1. */
struct target {
  const char *name, *rule;
  double value, factor, base;
  bool at_least;
  double limit, ratio; /* factor x base; value / base */
  bool skipped;        /* nothing to measure it on (no PulseAudio) */
};

#define NTARGETS 13

static struct target
target(const char *name, const char *rule, double value, double factor,
       double base, bool at_least)
{
  return (struct target){.name = name,
                         .rule = rule,
                         .value = value,
                         .factor = factor,
                         .base = base,
                         .at_least = at_least,
                         .limit = factor * base,
                         .ratio = bench_ratio(value, base)};
}

/* The worst ratio, buffered to synchronous, of a figure of the PulseAudio
 * cases (each synchronous case is followed by its buffered twin). */
static double
worst_pulse_ratio(const struct bench_pulse *pr, int figure)
{
  double worst = 0;
  for (int i = 0; i + 1 < BENCH_PULSE_CASES; i += 2) {
    const struct bench_pulse_case *sync = &pr->cases[i],
                                  *ra = &pr->cases[i + 1];
    double a = figure == 0 ? ra->p50 : figure == 1 ? ra->p99 : ra->cpu_us;
    double b = figure == 0 ? sync->p50 : figure == 1 ? sync->p99 : sync->cpu_us;
    /* A wait below the statistics' 1 us resolution counts as 1 us. */
    if (figure < 2) {
      a = a < 1 ? 1 : a;
      b = b < 1 ? 1 : b;
    }
    double x = bench_ratio(a, b);
    if (x > worst)
      worst = x;
  }
  return worst;
}

static void
pulse_targets(const struct bench_pulse *pr, struct target t[5])
{
  t[0] = target("pulse_wait_p50_ratio",
                "pulse_wait_p50: buffered / synchronous <= 0.1 (worst case)",
                worst_pulse_ratio(pr, 0), TARGET_PULSE_WAIT_RATIO, 1, false);
  t[1] = target("pulse_wait_p99_ratio",
                "pulse_wait_p99: buffered / synchronous <= 0.1 (worst case)",
                worst_pulse_ratio(pr, 1), TARGET_PULSE_WAIT_RATIO, 1, false);
  double slowest = fmin(pr->one_client[1].slowest_fps, BENCH_RATE);
  t[2] = target("pulse_one_client_fps",
                "pulse_one_client_fps >= 0.98 x in-process libcubeb's", slowest,
                TARGET_ONE_CLIENT_RATIO, pr->inprocess_slowest_fps, true);
  t[3] = target("pulse_loaded_misses",
                "pulse_loaded_misses: buffered <= 0.1 x synchronous",
                (double)pr->loaded[1].misses, TARGET_LOADED_MISS_RATIO,
                (double)pr->loaded[0].misses, false);
  t[4] = target("pulse_cpu_ratio",
                "pulse_cpu_us/cb: buffered / synchronous <= 1 (worst case)",
                worst_pulse_ratio(pr, 2), TARGET_PULSE_CPU_RATIO, 1, false);
  for (int i = 0; i < 5; i++)
    t[i].skipped = !pr->ran;
}

static void
targets(const struct bench_results *r, struct target t[NTARGETS])
{
  double cb50 = r->pinned.p50, cb999 = r->pinned.p999;
  t[0] = target("callback_overhead_p50",
                "callback_overhead_p50_us <= 1.5 x floor_futex_p50_us", cb50,
                TARGET_OVERHEAD_P50, r->floor_same.p50, false);
  t[1] = target("callback_overhead_p999",
                "callback_overhead_p999_us <= 5 x floor_futex_p999_us", cb999,
                TARGET_OVERHEAD_P999, r->floor_same.p999, false);
  t[2] = target("socket_baseline_p50",
                "socket_baseline_p50_us >= 3 x callback_overhead_p50_us",
                r->socket_same.p50, TARGET_SOCKET_RATIO, cb50, true);
  t[3] = target("realtime64_misses", "realtime64_misses == 0, both runs",
                (double)(r->rt.misses + r->rt_pooled.misses), 0, 1, false);
  t[4] = target("cpu_us_per_stream_cycle", "cpu_us_per_stream_cycle <= 6",
                r->rt.cpu_per_stream_cycle, TARGET_CPU_US, 1, false);
  t[5] = target("cpu_us_per_stream_cycle_pooled",
                "cpu_us_per_stream_cycle_pooled <= 6",
                r->rt_pooled.cpu_per_stream_cycle, TARGET_CPU_US, 1, false);
  t[6] = target("rpc_position_p50", "rpc_position_p50_us <= 2 x rpc_raw_p50_us",
                r->rpc_position.p50, TARGET_RPC_RATIO, r->rpc_raw.p50, false);
  t[7] =
      target("shm_bytes_per_stream",
             "shm_bytes_per_stream <= 2 x largest_callback_bytes", r->shm_bytes,
             TARGET_SHM_RATIO, r->largest_callback_bytes, false);
  pulse_targets(&r->pulse, t + 8);
}

static bool
holds(const struct target *t)
{
  return t->at_least ? t->value >= t->limit : t->value <= t->limit;
}

static void
wait_text(double us, char *buf, size_t size)
{
  snprintf(buf, size, us >= BENCH_WAIT_CAP_US ? "%.0f+" : "%.0f", us);
}

static void
print_lat_row(const char *name, const struct bench_lat *l)
{
  printf("  %-40s %7d %8.2f %8.2f %8.2f %8.2f\n", name, l->n, l->p50, l->p99,
         l->p999, l->max);
}

static void
print_pulse_case(const struct bench_pulse_case *c)
{
  char p50[16], p99[16];
  wait_text(c->p50, p50, sizeof(p50));
  wait_text(c->p99, p99, sizeof(p99));
  printf("  %7u %7u %7u %-5s %7s %7s %7.0f %7llu %10llu %9.1f %10.2f %9.0f\n",
         c->latency, c->streams, c->clients, c->buffered ? "ahead" : "sync",
         p50, p99, c->max, (unsigned long long)c->misses,
         (unsigned long long)c->callbacks,
         bench_ratio((double)c->frames, (double)c->callbacks), c->cpu_us,
         c->slowest_fps);
}

static void
print_pulse(const struct bench_pulse *pr)
{
  if (!pr->ran) {
    printf("\npulse: skipped (no PulseAudio reachable)\n");
    return;
  }
  printf("\nPulseAudio: 48 kHz stereo float streams at cubeb's minimum "
         "latency (%u frames)\nand at 256, over up to %d clients, %.1f s "
         "each, each case synchronous (sync)\nand rendering ahead (ahead): "
         "the time the backend's audio thread spent in the\nserver's "
         "callback (µs), misses, callbacks and frames in the window, CPU "
         "(server\n+ clients, not the daemon's) per stream callback, the "
         "slowest stream's frames/s\n",
         pr->min_latency, BENCH_MAX_CLIENTS, pr->cases[0].seconds);
  printf("  %7s %7s %7s %-5s %7s %7s %7s %7s %10s %9s %10s %9s\n", "latency",
         "streams", "clients", "mode", "p50", "p99", "max", "misses",
         "callbacks", "frames/cb", "cpu_us/cb", "slowest/s");
  for (int i = 0; i < BENCH_PULSE_CASES; i++)
    print_pulse_case(&pr->cases[i]);
  printf("  one client, %d streams:\n", BENCH_PULSE_ONE_CLIENT_STREAMS);
  for (int i = 0; i < 2; i++)
    print_pulse_case(&pr->one_client[i]);
  printf("  plain libcubeb in this process, %d streams of 256 frames: the "
         "slowest %.0f frames/s\n",
         BENCH_PULSE_ONE_CLIENT_STREAMS, pr->inprocess_slowest_fps);
  printf("  every CPU busy (normal priority), callback threads not "
         "real-time, %.1f s:\n",
         pr->loaded[0].seconds);
  for (int i = 0; i < 2; i++)
    print_pulse_case(&pr->loaded[i]);
}

static void
print_realtime(const struct bench_realtime *rt)
{
  printf("\nreal-time pacing: %u streams of 128 frames, %u clients, "
         "clock=realtime, %.1f s;\n  %s\n",
         rt->streams, rt->clients, rt->seconds,
         rt->pool_size ? "one callback thread per client (pool_size 1)"
                       : "a callback thread per stream (pool_size 0)");
  printf("  periods %llu, late wake-ups (>1 ms) %llu\n",
         (unsigned long long)rt->periods, (unsigned long long)rt->late_wakes);
  printf("  misses away from late wake-ups %llu; all misses in the window "
         "%llu; in the whole run %llu\n",
         (unsigned long long)rt->misses, (unsigned long long)rt->misses_total,
         (unsigned long long)rt->misses_run);
  printf("  callback interval jitter (µs): p50 %.0f, p99 %.0f, p99.9 %.0f, "
         "max %.0f%s\n",
         rt->jitter_p50, rt->jitter_p99, rt->jitter_p999, rt->jitter_max,
         rt->jitter_max >= BENCH_JITTER_BUCKETS ? "+" : "");
  printf("  CPU per stream and cycle: %.2f µs over the clients' lives "
         "(server %.0f ms,\n    clients %.0f ms, %llu periods, %.0f%% in the "
         "kernel); %.2f µs in the window\n    (server %.0f ms, clients %.0f "
         "ms)\n",
         rt->cpu_per_stream_cycle, rt->server_cpu_ms, rt->clients_cpu_ms,
         (unsigned long long)rt->span_periods, rt->sys_share * 100,
         rt->cpu_steady, rt->window_server_cpu_ms, rt->window_clients_cpu_ms);
  printf("  the device thread slept %.2f times per period to collect the "
         "%u answers\n",
         rt->sleeps_per_period, rt->streams);
  printf("  client callback threads SCHED_FIFO: %s\n", rt->fifo ? "yes" : "no");
}

void
bench_print_table(const struct bench_params *p, const struct bench_results *r)
{
  printf("aipc bench%s: %d CPUs; \"pinned\": both processes on CPU %d\n\n",
         p->quick ? " --quick" : "", r->ncpus, r->cpu);
  printf("round trips (µs)                           %7s %8s %8s %8s %8s\n",
         "n", "p50", "p99", "p99.9", "max");
  print_lat_row("floor: futex ping-pong, pinned", &r->floor_same);
  print_lat_row("floor: futex ping-pong, unpinned", &r->floor_any);
  print_lat_row("futex ping-pong, pinned, peer SCHED_FIFO", &r->floor_fifo);
  print_lat_row("socket baseline: 1 KiB each way, pinned", &r->socket_same);
  print_lat_row("socket baseline: 1 KiB each way, unpinned", &r->socket_any);
  print_lat_row("get_position through the server", &r->rpc_position);
  print_lat_row("raw 20/24-byte socket round trip", &r->rpc_raw);
  print_lat_row("get_position through the server, pinned",
                &r->rpc_position_same);
  print_lat_row("raw 20/24-byte round trip, pinned", &r->rpc_raw_same);

  printf("\nremote callback overhead: the server's wait per callback (µs), "
         "clock=fast;\nover streams: median p50, worst stream's p99 and "
         "p99.9, largest max\n");
  printf("  %6s %7s %7s %7s %7s %7s %7s %7s %9s %9s %10s\n", "period",
         "streams", "clients", "p50", "p99", "p99.9", "max", "misses",
         "cycle_us", "us/stream", "callbacks");
  for (unsigned i = 0; i <= r->ncases; i++) {
    const struct bench_case *c = i == 0 ? &r->pinned : &r->cases[i - 1];
    char p50[16], p99[16], p999[16];
    wait_text(c->p50, p50, sizeof(p50));
    wait_text(c->p99, p99, sizeof(p99));
    wait_text(c->p999, p999, sizeof(p999));
    printf("  %6u %7u %7u %7s %7s %7s %7.0f %7llu %9.1f %9.2f %10llu%s\n",
           c->period, c->streams, c->clients, p50, p99, p999, c->max,
           (unsigned long long)c->misses, c->cycle_us, c->cycle_us / c->streams,
           (unsigned long long)c->callbacks, i == 0 ? "  pinned" : "");
  }
  printf("  (waits in whole us, rounded down; \"%d+\": at least %d us, the "
         "statistics' last bucket)\n",
         BENCH_WAIT_CAP_US, BENCH_WAIT_CAP_US);

  print_realtime(&r->rt);
  print_realtime(&r->rt_pooled);

  printf("\nstream start-up (init + start -> first callback): p50 %.2f ms, "
         "max %.2f ms over %d\n",
         r->start_ms.p50, r->start_ms.max, r->start_ms.n);
  printf("memory per stream (512 frames, stereo float): shared %u bytes "
         "(largest callback %u bytes);\n  client RSS +%.1f KiB created, "
         "+%.1f KiB running\n",
         r->shm_bytes, r->largest_callback_bytes, r->rss_kib_per_stream,
         r->rss_kib_per_stream_running);

  print_pulse(&r->pulse);

  struct target t[NTARGETS];
  targets(r, t);
  printf("\ntargets %48s %9s %9s %13s\n", "", "value", "limit", "ratio");
  for (int i = 0; i < NTARGETS; i++)
    printf("  %-54s %9.2f %9.2f %6.2f %2s %4.2f  %s\n", t[i].rule, t[i].value,
           t[i].limit, t[i].ratio, t[i].at_least ? ">=" : "<=", t[i].factor,
           t[i].skipped   ? "skipped (no PulseAudio)"
           : holds(&t[i]) ? "holds"
                          : "DOES NOT HOLD");
  printf("\n(took %.1f s)\n", r->seconds);
}

static void
json_lat(const char *prefix, const struct bench_lat *l)
{
  printf(", \"%s_n\": %d, \"%s_p50_us\": %.3f, \"%s_p99_us\": %.3f, "
         "\"%s_p999_us\": %.3f, \"%s_max_us\": %.3f",
         prefix, l->n, prefix, l->p50, prefix, l->p99, prefix, l->p999, prefix,
         l->max);
}

static void
json_case(const struct bench_case *c)
{
  printf("{\"period\": %u, \"streams\": %u, \"clients\": %u, \"p50_us\": %.0f, "
         "\"p99_us\": %.0f, \"p999_us\": %.0f, \"max_us\": %.0f, "
         "\"misses\": %llu, \"p99_median_us\": %.1f, \"callbacks\": %llu, "
         "\"cycle_us\": %.3f, \"cycle_us_per_stream\": %.3f, "
         "\"client_fifo\": %s, \"seconds\": %.3f}",
         c->period, c->streams, c->clients, c->p50, c->p99, c->p999, c->max,
         (unsigned long long)c->misses, c->p99_median,
         (unsigned long long)c->callbacks, c->cycle_us,
         c->cycle_us / c->streams, c->fifo ? "true" : "false", c->seconds);
}

static void
json_pulse_case(const char *sep, const struct bench_pulse_case *c)
{
  printf("%s{\"latency\": %u, \"streams\": %u, \"clients\": %u, "
         "\"render_ahead\": %s, \"p50_us\": %.0f, \"p99_us\": %.0f, "
         "\"max_us\": %.0f, \"misses\": %llu, \"callbacks\": %llu, "
         "\"frames\": %llu, \"cpu_us_per_stream_callback\": %.3f, "
         "\"slowest_fps\": %.0f, \"seconds\": %.3f}",
         sep, c->latency, c->streams, c->clients,
         c->buffered ? "true" : "false", c->p50, c->p99, c->max,
         (unsigned long long)c->misses, (unsigned long long)c->callbacks,
         (unsigned long long)c->frames, c->cpu_us, c->slowest_fps, c->seconds);
}

static void
json_pulse(const struct bench_pulse *pr)
{
  if (!pr->ran) {
    printf(", \"pulse\": null");
    return;
  }
  printf(", \"pulse\": {\"min_latency_frames\": %u, \"by_streams\": [",
         pr->min_latency);
  for (int i = 0; i < BENCH_PULSE_CASES; i++)
    json_pulse_case(i ? ", " : "", &pr->cases[i]);
  printf("], \"one_client\": [");
  for (int i = 0; i < 2; i++)
    json_pulse_case(i ? ", " : "", &pr->one_client[i]);
  printf("], \"inprocess_slowest_fps\": %.0f, \"loaded\": [",
         pr->inprocess_slowest_fps);
  for (int i = 0; i < 2; i++)
    json_pulse_case(i ? ", " : "", &pr->loaded[i]);
  printf("]}");
}

/* The real-time run's fields; `suffix` follows each name. */
static void
json_realtime(const char *suffix, const struct bench_realtime *rt)
{
  const char *x = suffix;
  printf(", \"realtime64_misses%s\": %llu, \"realtime64_misses_total%s\": %llu"
         ", \"realtime64_misses_run%s\": %llu"
         ", \"realtime64_late_wakes%s\": %llu",
         x, (unsigned long long)rt->misses, x,
         (unsigned long long)rt->misses_total, x,
         (unsigned long long)rt->misses_run, x,
         (unsigned long long)rt->late_wakes);
  printf(", \"realtime64_periods%s\": %llu, \"realtime64_seconds%s\": %.3f"
         ", \"realtime64_pool_size%s\": %u",
         x, (unsigned long long)rt->periods, x, rt->seconds, x, rt->pool_size);
  printf(", \"realtime64_jitter_p50_us%s\": %.0f"
         ", \"realtime64_jitter_p99_us%s\": %.0f"
         ", \"realtime64_jitter_p999_us%s\": %.0f"
         ", \"realtime64_jitter_max_us%s\": %.0f"
         ", \"realtime64_client_fifo%s\": %s",
         x, rt->jitter_p50, x, rt->jitter_p99, x, rt->jitter_p999, x,
         rt->jitter_max, x, rt->fifo ? "true" : "false");
  printf(", \"cpu_us_per_stream_cycle%s\": %.3f"
         ", \"cpu_us_per_stream_cycle_window%s\": %.3f"
         ", \"realtime64_server_cpu_ms%s\": %.1f"
         ", \"realtime64_clients_cpu_ms%s\": %.1f"
         ", \"realtime64_window_server_cpu_ms%s\": %.1f"
         ", \"realtime64_window_clients_cpu_ms%s\": %.1f"
         ", \"realtime64_cpu_sys_share%s\": %.3f"
         ", \"realtime64_run_periods%s\": %llu"
         ", \"realtime64_sleeps_per_period%s\": %.3f",
         x, rt->cpu_per_stream_cycle, x, rt->cpu_steady, x, rt->server_cpu_ms,
         x, rt->clients_cpu_ms, x, rt->window_server_cpu_ms, x,
         rt->window_clients_cpu_ms, x, rt->sys_share, x,
         (unsigned long long)rt->span_periods, x, rt->sleeps_per_period);
}

void
bench_print_json(const struct bench_params *p, const struct bench_results *r)
{
  printf("{\"quick\": %s, \"cpus\": %d, \"pinned_cpu\": %d, "
         "\"wait_cap_us\": %d",
         p->quick ? "true" : "false", r->ncpus, r->cpu, BENCH_WAIT_CAP_US);
  json_lat("floor_futex", &r->floor_same);
  json_lat("floor_futex_any", &r->floor_any);
  json_lat("floor_futex_fifo", &r->floor_fifo);
  printf(", \"callback_overhead_p50_us\": %.0f, "
         "\"callback_overhead_p99_us\": %.0f, "
         "\"callback_overhead_p999_us\": %.0f, "
         "\"callback_overhead_max_us\": %.0f, "
         "\"callback_overhead_callbacks\": %llu, "
         "\"callback_overhead_misses\": %llu",
         r->pinned.p50, r->pinned.p99, r->pinned.p999, r->pinned.max,
         (unsigned long long)r->pinned.callbacks,
         (unsigned long long)r->pinned.misses);
  printf(", \"by_streams\": [");
  for (unsigned i = 0; i < r->ncases; i++) {
    if (i)
      printf(", ");
    json_case(&r->cases[i]);
  }
  printf("]");
  json_lat("socket_baseline", &r->socket_same);
  json_lat("socket_baseline_any", &r->socket_any);
  json_realtime("", &r->rt);
  json_realtime("_pooled", &r->rt_pooled);
  json_lat("rpc_position", &r->rpc_position);
  json_lat("rpc_raw", &r->rpc_raw);
  json_lat("rpc_position_pinned", &r->rpc_position_same);
  json_lat("rpc_raw_pinned", &r->rpc_raw_same);
  printf(", \"stream_start_ms_p50\": %.3f, \"stream_start_ms_max\": %.3f, "
         "\"stream_start_n\": %d",
         r->start_ms.p50, r->start_ms.max, r->start_ms.n);
  printf(", \"shm_bytes_per_stream\": %u, \"largest_callback_bytes\": %u, "
         "\"client_rss_kib_per_stream\": %.1f, "
         "\"client_rss_kib_per_stream_running\": %.1f",
         r->shm_bytes, r->largest_callback_bytes, r->rss_kib_per_stream,
         r->rss_kib_per_stream_running);
  json_pulse(&r->pulse);
  struct target t[NTARGETS];
  targets(r, t);
  printf(", \"targets\": {");
  for (int i = 0; i < NTARGETS; i++)
    printf("%s\"%s\": {\"rule\": \"%s\", \"value\": %.3f, \"limit\": %.3f, "
           "\"ratio\": %.3f, \"factor\": %.2f, \"holds\": %s}",
           i ? ", " : "", t[i].name, t[i].rule, t[i].value, t[i].limit,
           t[i].ratio, t[i].factor,
           t[i].skipped   ? "null"
           : holds(&t[i]) ? "true"
                          : "false");
  printf("}, \"seconds\": %.1f}\n", r->seconds);
}
