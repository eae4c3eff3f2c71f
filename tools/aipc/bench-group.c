/* SPDX-License-Identifier: ISC */
/*
 * aipc bench: its audioipc client children, as a group per measurement:
 * spawning them, commanding them (SIGUSR1), reading their reports
 * (bench.h lists the lines) and the server's statistics of their
 * streams.
 */
#include "aipc.h"
#include "bench.h"
#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int
bench_reap(pid_t pid, const char *what, bool kill_it)
{
  if (kill_it)
    kill(pid, SIGKILL);
  int status;
  pid_t r;
  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    fprintf(stderr, "aipc bench: %s: waitpid: %s\n", what, strerror(errno));
    return -1;
  }
  if (kill_it || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
    return 0;
  char text[96];
  aipc_describe_status(status, text, sizeof(text));
  fprintf(stderr, "aipc bench: %s: child %d ended with %s\n", what, (int)pid,
          text);
  return -1;
}

static int
handle_line(struct bench_group *g, struct bench_child *c, const char *line)
{
  static const struct {
    const char *word;
    unsigned bit;
  } acks[] = {{"ready", BENCH_GOT_READY},
              {"started", BENCH_GOT_STARTED},
              {"measuring", BENCH_GOT_MEASURING},
              {"done", BENCH_GOT_DONE},
              {"end", BENCH_GOT_END}};
  for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++)
    if (strcmp(line, acks[i].word) == 0) {
      c->got |= acks[i].bit;
      return 0;
    }
  long long v;
  unsigned b, count;
  if (sscanf(line, "sample %lld", &v) == 1) {
    if (c->nsamples == c->cap) {
      size_t cap = c->cap ? 2 * c->cap : 1024;
      int64_t *grown = realloc(c->samples, cap * sizeof(*grown));
      if (!grown)
        return -ENOMEM;
      c->samples = grown;
      c->cap = cap;
    }
    c->samples[c->nsamples++] = v;
    return 0;
  }
  if (sscanf(line, "jitter %u %u", &b, &count) == 2) {
    if (g->jitter && b <= BENCH_JITTER_BUCKETS)
      g->jitter[b] += count;
    return 0;
  }
  if (sscanf(line, "cycle_ns %lf", &c->cycle_ns) == 1 ||
      sscanf(line, "fifo %d", &c->fifo) == 1 ||
      sscanf(line, "min_latency %ld", &c->min_latency) == 1 ||
      sscanf(line, "backend %31s", c->backend) == 1 ||
      sscanf(line, "rss_kib %ld %ld %ld", &c->rss[0], &c->rss[1], &c->rss[2]) ==
          3)
    return 0;
  if (sscanf(line, "cpu_ns %lld", &v) == 1) {
    c->cpu_ns = v;
    return 0;
  }
  if (strncmp(line, "errors ", 7) == 0) {
    fprintf(stderr, "aipc bench: %s: client %d: %s\n", g->what, (int)c->pid,
            line);
    return 0;
  }
  fprintf(stderr, "aipc bench: %s: client %d said \"%s\"\n", g->what,
          (int)c->pid, line);
  return -EBADMSG;
}

/* Reads what the child has written; returns -1 on bad output. */
static int
child_read(struct bench_group *g, struct bench_child *c)
{
  char buf[4096];
  ssize_t n = read(c->fd, buf, sizeof(buf));
  if (n < 0 && errno == EINTR)
    return 0;
  if (n <= 0) {
    close(c->fd);
    c->fd = -1;
    return 0;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (c->len + 1 >= sizeof(c->line)) {
        fprintf(stderr, "aipc bench: %s: client %d wrote a long line\n",
                g->what, (int)c->pid);
        return -1;
      }
      c->line[c->len++] = buf[i];
      continue;
    }
    c->line[c->len] = '\0';
    c->len = 0;
    if (handle_line(g, c, c->line) < 0)
      return -1;
  }
  return 0;
}

int
bench_group_wait(struct bench_group *g, unsigned bit)
{
  int64_t deadline = aipc_now_ns() + BENCH_CHILD_TIMEOUT_NS;
  for (;;) {
    struct pollfd fds[BENCH_MAX_CLIENTS];
    struct bench_child *owner[BENCH_MAX_CLIENTS];
    nfds_t n = 0;
    bool all = true;
    for (unsigned i = 0; i < g->n; i++) {
      struct bench_child *c = &g->c[i];
      if (c->got & bit)
        continue;
      all = false;
      if (c->fd < 0) {
        fprintf(stderr, "aipc bench: %s: client %d stopped early\n", g->what,
                (int)c->pid);
        return -1;
      }
      fds[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
      owner[n++] = c;
    }
    if (all)
      return 0;
    int64_t now = aipc_now_ns();
    if (now > deadline) {
      fprintf(stderr, "aipc bench: %s: clients silent for %d s\n", g->what,
              (int)(BENCH_CHILD_TIMEOUT_NS / AIPC_NSEC_PER_SEC));
      return -1;
    }
    int r = poll(fds, n, (int)((deadline - now) / AIPC_NSEC_PER_MSEC) + 1);
    if (r < 0 && errno != EINTR) {
      fprintf(stderr, "aipc bench: poll: %s\n", strerror(errno));
      return -1;
    }
    for (nfds_t k = 0; r > 0 && k < n; k++)
      if (fds[k].revents && child_read(g, owner[k]) < 0)
        return -1;
  }
}

void
bench_group_command(struct bench_group *g)
{
  for (unsigned i = 0; i < g->n; i++)
    kill(g->c[i].pid, SIGUSR1);
}

int
bench_group_spawn(struct bench_group *g, void *server, char *const args[])
{
  char *argv[16] = {"aipc", (char *)AIPC_CHILD_COMMAND,
                    (char *)BENCH_CHILD_NAME};
  for (int i = 0; i < 12 && args[i]; i++)
    argv[3 + i] = args[i];
  struct bench_child *c = &g->c[g->n];
  *c = (struct bench_child){.fd = -1, .fifo = -1};
  c->pid = aipc_spawn_client("bench", server, argv, &c->fd);
  if (c->pid < 0)
    return -1;
  g->n++;
  return 0;
}

int
bench_group_start_measuring(const struct bench_params *p, struct bench_group *g,
                            void *server, char *const args[], unsigned n)
{
  int r = 0;
  for (unsigned i = 0; i < n && r == 0; i++)
    r = bench_group_spawn(g, server, args);
  if (r == 0)
    r = bench_group_wait(g, BENCH_GOT_READY);
  if (r == 0) {
    bench_group_command(g);
    r = bench_group_wait(g, BENCH_GOT_STARTED);
  }
  if (r == 0) {
    bench_sleep_until(aipc_now_ns() + (int64_t)(p->settle_seconds * 1e9));
    bench_group_command(g);
    r = bench_group_wait(g, BENCH_GOT_MEASURING);
  }
  return r;
}

int
bench_group_finish(struct bench_group *g, bool kill_them)
{
  int status = 0;
  if (!kill_them && bench_group_wait(g, BENCH_GOT_END) < 0) {
    status = -1;
    kill_them = true;
  }
  for (unsigned i = 0; i < g->n; i++) {
    struct bench_child *c = &g->c[i];
    if (bench_reap(c->pid, g->what, kill_them) < 0)
      status = -1;
    if (c->fd >= 0)
      close(c->fd);
    free(c->samples);
    *c = (struct bench_child){.fd = -1};
  }
  g->n = 0;
  return status;
}

static bool
group_has(const struct bench_group *g, pid_t pid)
{
  for (unsigned i = 0; i < g->n; i++)
    if (g->c[i].pid == pid)
      return true;
  return false;
}

int
bench_group_stats(void *server, const struct bench_group *g,
                  AudioIpcStreamStats *out)
{
  static AudioIpcStreamStats all[BENCH_STATS_MAX];
  int n = audioipc_server_get_stream_stats(server, all, BENCH_STATS_MAX);
  if (n < 0 || n > BENCH_STATS_MAX) {
    fprintf(stderr, "aipc bench: %s: cannot read the server's statistics\n",
            g->what);
    return -1;
  }
  int kept = 0;
  for (int i = 0; i < n; i++)
    if (group_has(g, all[i].client_pid))
      out[kept++] = all[i];
  return kept;
}

int
bench_group_sum_stats(void *server, const struct bench_group *g,
                      AudioIpcStreamStats *total)
{
  static AudioIpcStreamStats stats[BENCH_STATS_MAX];
  int n = bench_group_stats(server, g, stats);
  *total = (AudioIpcStreamStats){.client = 0};
  for (int i = 0; i < n; i++) {
    total->callbacks += stats[i].callbacks;
    total->frames += stats[i].frames;
    total->misses += stats[i].misses;
    total->sleeps += stats[i].sleeps;
  }
  return n;
}
