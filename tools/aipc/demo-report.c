/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: the verdict on each client, and the report of it.
 *
 * What the machine does and what the software does are told apart. A
 * deadline miss (the server's callback had no answer from the client in
 * time and played silence in its place, counted in the stream's
 * statistics) is what a late wake-up of a loaded machine makes: it is a
 * glitch, reported with its figures, and not a failure. A failure is
 * software losing or corrupting audio: frames the client produced that
 * did not reach the server and that no miss explains (each miss costs
 * at most the one request that was late), a stream error, a client that
 * crashed or did not drain; and, on the virtual device, a mix that does
 * not hold exactly the clients' tones (demo-mix.c).
 */
#include "demo.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static const char *
client_exit_reason(int code)
{
  switch (code) {
  case CLIENT_EXIT_SANDBOX:
    return "could not install the seccomp filter";
  case CLIENT_EXIT_CONTEXT:
    return "could not set up the remote context";
  case CLIENT_EXIT_STREAM:
    return "could not open or start its stream";
  case CLIENT_EXIT_NOT_DRAINED:
    return "its stream did not drain in time";
  case CLIENT_EXIT_ERRORED:
    return "its stream reported an error";
  case CLIENT_EXIT_SHORT:
    return "did not play every frame";
  case CLIENT_EXIT_NO_INPUT:
    return "received no input on its duplex stream";
  case CLIENT_EXIT_NOT_STOPPED:
    return "a forbidden call was not stopped";
  case CLIENT_EXIT_NO_CONNECTION:
    return "did not receive its connection";
  case CLIENT_EXIT_NO_EXEC:
    return "could not re-execute aipc";
  default:
    return "see its messages above";
  }
}

/* The callback thread's scheduling, as the client saw it. It cannot
 * change any itself (the sandbox says EPERM), so real-time priority came
 * through the server: directly, or from RTKit (which grants SCHED_RR). */
static const char *
policy_name(int policy)
{
  switch (policy & ~SCHED_RESET_ON_FORK) {
  case SCHED_FIFO:
    return "real-time callbacks (SCHED_FIFO, granted by the server)";
  case SCHED_RR:
    return "real-time callbacks (SCHED_RR, granted by RTKit for the server)";
  default:
    return "callbacks at normal priority";
  }
}

void
demo_parse_report(struct demo_client *c)
{
  struct demo_report *r = &c->report;
  *r = (struct demo_report){.policy = -1};
  const char *text = c->report_text;
  int used = 0;
  if (sscanf(text,
             "played=%llu expected=%llu drained=%d input=%llu peak=%lf "
             "policy=%d rate=%u latency=%u callbacks=%llu max_request=%ld "
             "late=%u\n%n",
             &r->played, &r->expected, &r->drained, &r->input, &r->peak,
             &r->policy, &r->rate, &r->latency, &r->callbacks, &r->max_request,
             &r->nlate, &used) != 11 ||
      used == 0 || r->nlate > DEMO_LATE_MAX || r->rate == 0)
    return;
  text += used;
  for (unsigned i = 0; i < r->nlate; i++) {
    long long at, late, gap;
    if (sscanf(text, "late %lld %lld %lld\n%n", &at, &late, &gap, &used) != 3)
      return;
    r->late[i] =
        (struct demo_late){.at_ns = at, .late_ns = late, .gap_ns = gap};
    text += used;
  }
  r->valid = true;
}

static double
frames_ms(unsigned long long frames, unsigned rate)
{
  return rate ? (double)frames * 1000.0 / rate : 0.0;
}

enum demo_verdict
demo_client_verdict(const struct demo *d, const struct demo_client *c,
                    char *why, size_t size)
{
  char status[96];
  aipc_describe_status(c->status, status, sizeof(status));
  if (!c->exited || !WIFEXITED(c->status)) {
    snprintf(why, size, "crashed: %s", status);
    return DEMO_FAILED;
  }
  if (WEXITSTATUS(c->status) != 0) {
    snprintf(why, size, "%s: %s", status,
             client_exit_reason(WEXITSTATUS(c->status)));
    return DEMO_FAILED;
  }
  const struct demo_report *r = &c->report;
  if (!r->valid) {
    snprintf(why, size, "exited 0 without its report");
    return DEMO_FAILED;
  }
  if (!c->have_stats) {
    snprintf(why, size, "the server saw no stream");
    return DEMO_FAILED;
  }
  unsigned long long counted = c->stats.frames, played = r->played;
  if (played != d->frames || counted > played) {
    snprintf(why, size,
             "the server counted %llu frames of the %llu it played (%llu "
             "expected): corrupt counts",
             counted, played, (unsigned long long)d->frames);
    return DEMO_FAILED;
  }
  /* A miss drops at most the one request that came late; a miss while
   * that request is still unanswered asks for nothing. */
  unsigned long long lost = played - counted;
  unsigned long long budget =
      (unsigned long long)c->stats.misses * (unsigned long long)r->max_request;
  if (lost > budget) {
    snprintf(why, size,
             "lost audio: the server counted %llu of %llu frames; %llu "
             "frames (%.1f ms) lost that %llu deadline misses do not explain",
             counted, played, lost - budget, frames_ms(lost - budget, r->rate),
             (unsigned long long)c->stats.misses);
    return DEMO_FAILED;
  }
  return c->stats.misses ? DEMO_GLITCHED : DEMO_OK;
}

void
demo_print_table(const struct demo *d)
{
  /* "µ" takes two bytes and one column. */
  printf("\n%6s %8s %6s %14s %10s %10s  %-23s %6s %8s\n", "client", "pid",
         "stream", "tone", "callbacks", "frames", "wait p50/p99/max (µs)",
         "misses", "latency");
  for (unsigned i = 0; i < d->count; i++) {
    const struct demo_client *c = &d->clients[i];
    char tone[32], latency[24] = "?";
    snprintf(tone, sizeof(tone), "%.0f Hz%s", c->freq,
             c->duplex ? " duplex" : "");
    if (c->report.valid)
      snprintf(latency, sizeof(latency), "%u", c->report.latency);
    bool any = false;
    for (int k = 0; k < d->stats_count; k++) {
      const AudioIpcStreamStats *s = &d->stats[k];
      if (s->client_pid != c->pid)
        continue;
      char wait[48];
      snprintf(wait, sizeof(wait), "%u/%u/%u", s->wait_p50_us, s->wait_p99_us,
               s->wait_max_us);
      printf("%6u %8d %6u %14s %10llu %10llu  %-22s %6llu %8s\n", c->index,
             (int)c->pid, s->stream, tone, (unsigned long long)s->callbacks,
             (unsigned long long)s->frames, wait, (unsigned long long)s->misses,
             latency);
      any = true;
    }
    if (!any)
      printf("%6u %8d %6s %14s  (the server saw no stream)\n", c->index,
             (int)c->pid, "-", tone);
  }
  printf("\n");
}

/* What the server's deadline was for a request of `request` frames. */
static void
deadline_text(const struct demo *d, long request, unsigned rate, char *buf,
              size_t size)
{
  if (d->is_virtual && d->fast_clock)
    snprintf(buf, size, "1 s (the fast clock)");
  else if (d->is_virtual)
    snprintf(buf, size,
             "20 ms after the period's time, or one period (%.1f ms) from "
             "the ask while the device catches up after a late wake-up",
             frames_ms((unsigned long long)request, rate));
  else
    snprintf(buf, size, "20 ms from the backend's callback");
}

/* The client's latest callback within [from, to], or NULL. */
static const struct demo_late *
late_within(const struct demo_report *r, int64_t from, int64_t to)
{
  const struct demo_late *best = NULL;
  for (unsigned i = 0; i < r->nlate; i++) {
    const struct demo_late *e = &r->late[i];
    if (e->at_ns >= from && e->at_ns <= to &&
        (!best || e->late_ns > best->late_ns))
      best = e;
  }
  return best;
}

static void
print_glitches(const struct demo *d, const struct demo_client *c)
{
  const struct demo_report *r = &c->report;
  unsigned long long lost = r->played - c->stats.frames;
  char deadline[160];
  deadline_text(d, r->max_request, r->rate, deadline, sizeof(deadline));
  unsigned long long misses = c->stats.misses;
  printf("  glitch: client %u's stream %u (%.0f Hz) missed %llu deadline%s: "
         "the server played %llu callback%s of silence (up to %.1f ms) in "
         "its place and dropped the %llu frames (%.1f ms) that came too "
         "late; it waited at most %.1f ms for an answer; the deadline: %s\n",
         c->index, c->stats.stream, c->freq, misses, misses == 1 ? "" : "s",
         misses, misses == 1 ? "" : "s",
         frames_ms(misses * (unsigned long long)r->max_request, r->rate), lost,
         frames_ms(lost, r->rate), c->stats.wait_max_us / 1000.0, deadline);
  uint64_t shown = 0;
  for (unsigned i = 0; i < c->nevents; i++) {
    const struct demo_miss_event *e = &c->events[i];
    shown += e->misses;
    printf("    %llu at %.1f-%.1f s:", (unsigned long long)e->misses,
           (double)(e->from_ns - d->start_ns) / 1e9,
           (double)(e->to_ns - d->start_ns) / 1e9);
    /* The request that missed may have reached the client a little
     * before the server looked. */
    const struct demo_late *l =
        late_within(r, e->from_ns - 100000000, e->to_ns);
    if (l)
      printf(" its callback came %.1f ms late (%.1f ms after the one before, "
             "whose request was %.1f ms) at %.3f s;",
             (double)l->late_ns / 1e6, (double)l->gap_ns / 1e6,
             frames_ms((unsigned long long)r->max_request, r->rate),
             (double)(l->at_ns - d->start_ns) / 1e9);
    else
      printf(" none of its %u latest callbacks was then;", r->nlate);
    if (d->is_virtual && !d->fast_clock)
      printf(" the device ran %llu period%s late meanwhile (its thread woke "
             "late, or waited out a deadline)\n",
             (unsigned long long)e->device_late,
             e->device_late == 1 ? "" : "s");
    else
      printf("\n");
  }
  if (shown < c->stats.misses)
    printf("    %llu more, at later times not listed\n",
           (unsigned long long)(c->stats.misses - shown));
}

unsigned
demo_print_outcomes(const struct demo *d, unsigned *glitches)
{
  unsigned failed = 0;
  for (unsigned i = 0; i < d->count; i++) {
    const struct demo_client *c = &d->clients[i];
    const struct demo_report *r = &c->report;
    char detail[200] = "", why[200];
    if (r->valid) {
      int len = snprintf(detail, sizeof(detail), "; played %llu frames%s; %s",
                         r->played, r->drained ? ", saw DRAINED" : "",
                         policy_name(r->policy));
      if (c->duplex && len > 0 && (size_t)len < sizeof(detail))
        snprintf(detail + len, sizeof(detail) - (size_t)len,
                 "; received %llu input frames (peak %.3f)", r->input, r->peak);
    }
    enum demo_verdict v = demo_client_verdict(d, c, why, sizeof(why));
    if (v == DEMO_FAILED) {
      failed++;
      printf("client %u (pid %d): FAILED: %s%s\n", c->index, (int)c->pid, why,
             detail);
      continue;
    }
    printf("client %u (pid %d): ok: exited 0 under the seccomp filter%s%s\n",
           c->index, (int)c->pid, detail,
           v == DEMO_GLITCHED ? "; glitched (below)" : "");
    if (v == DEMO_GLITCHED) {
      (*glitches)++;
      print_glitches(d, c);
    }
  }
  return failed;
}
