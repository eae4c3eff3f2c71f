/* SPDX-License-Identifier: ISC */
/*
 * aipc demo: what its parts share. demo.c is the parent (the server,
 * the progress, the verdict), demo-client.c the sandboxed client
 * process, demo-mix.c the check of the virtual device's output file.
 *
 * A client reports on its stdout, a pipe, when it is done:
 *   played=N expected=N drained=0|1 input=N peak=F policy=N rate=N
 *       latency=N callbacks=N max_request=N late=K
 * then K lines "late AT_NS LATE_NS GAP_NS": its callbacks that came
 * latest, AT_NS on CLOCK_MONOTONIC, LATE_NS after the previous
 * callback's frames would have been played (that callback's time plus
 * its frames' duration), GAP_NS after the previous callback.
 */
#ifndef AIPC_DEMO_H
#define AIPC_DEMO_H

#include "aipc.h"

#include <audioipc/server.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DEMO_MAX_CLIENTS 32
/* Beyond the playing time, how long clients may take before we kill
 * them. */
#define DEMO_GRACE_S 30
/* The latest callbacks a client reports. */
#define DEMO_LATE_MAX 4

/* Exit statuses of a demo client, for the parent's report. */
enum {
  CLIENT_EXIT_SANDBOX = 10,
  CLIENT_EXIT_CONTEXT = 11,
  CLIENT_EXIT_STREAM = 12,
  CLIENT_EXIT_NOT_DRAINED = 13,
  CLIENT_EXIT_SHORT = 14,
  CLIENT_EXIT_NO_INPUT = 15,
  CLIENT_EXIT_NOT_STOPPED = 16,
  CLIENT_EXIT_ERRORED = 17,
  CLIENT_EXIT_NO_CONNECTION = 126, /* from spawn.c, before exec */
  CLIENT_EXIT_NO_EXEC = 127,
};

/* One of a client's late callbacks (see the report above). */
struct demo_late {
  int64_t at_ns, late_ns, gap_ns;
};

/* The tone of client `index` (0-based): 310, 440, 570, ... Hz, 130 Hz
 * apart, none a low harmonic of another. */
double demo_client_freq(unsigned index);

/* Each client's gain with `count` clients, as the client parses it: the
 * mix of all of them stays below 0.8. */
double demo_client_gain(unsigned count);

/* Frames of `seconds` at `rate`. */
uint64_t demo_frames_for(double seconds, uint32_t rate);

/* --- The parent's state (demo.c, demo-report.c) -------------------------- */

/* The misses the server counted for one stream between two of the
 * parent's looks at its statistics. */
struct demo_miss_event {
  int64_t from_ns, to_ns; /* CLOCK_MONOTONIC */
  uint64_t misses;
  uint64_t device_late; /* the virtual device's late wake-ups meanwhile */
};
#define DEMO_EVENTS_MAX 8

/* What a client said in its report. */
struct demo_report {
  bool valid;
  unsigned long long played, expected, input, callbacks;
  int drained, policy;
  double peak;
  unsigned rate, latency, nlate;
  long max_request;
  struct demo_late late[DEMO_LATE_MAX];
};

struct demo_client {
  unsigned index; /* 1-based, as shown */
  double freq;
  bool duplex;
  pid_t pid;
  int report_fd;
  char report_text[1024];
  size_t report_len;
  bool exited;
  int status;
  bool have_stats;
  AudioIpcStreamStats stats;
  struct demo_report report;
  uint64_t misses_seen;
  unsigned nevents;
  struct demo_miss_event events[DEMO_EVENTS_MAX];
};

struct demo {
  struct aipc_backend backend;
  unsigned count;
  double seconds;
  uint64_t frames; /* each client's */
  bool is_virtual, fast_clock;
  struct demo_client clients[DEMO_MAX_CLIENTS];
  AudioIpcStreamStats *stats;
  size_t stats_cap;
  int stats_count;
  uint64_t device_late; /* the virtual device's late wake-ups so far */
  bool tty;
  bool drawn;
  int64_t start_ns, next_line_ns, looked_ns;
};

/* How a client's run went. */
enum demo_verdict {
  DEMO_OK,       /* every frame it played reached the server in time */
  DEMO_GLITCHED, /* the server missed deadlines: silence, nothing lost */
  DEMO_FAILED,   /* lost or corrupted audio, an error or a crash */
};

/* --- demo-report.c ---------------------------------------------------------
 */

/* The verdict on client `c`; a failure's reason goes to `why`. */
enum demo_verdict demo_client_verdict(const struct demo *d,
                                      const struct demo_client *c, char *why,
                                      size_t size);
/* Parses the client's report text into c->report. */
void demo_parse_report(struct demo_client *c);
/* The server's statistics per stream, with each stream's latency. */
void demo_print_table(const struct demo *d);
/* How each client ended, and each glitch with its figures. Returns the
 * number of clients that failed; adds their glitches to *glitches. */
unsigned demo_print_outcomes(const struct demo *d, unsigned *glitches);

/* --- demo-mix.c ----------------------------------------------------------- */

/* What one client contributed, for the check of the mix. */
struct demo_mix_tone {
  double freq, gain;
  uint64_t misses; /* the server's count for the client's stream */
};

/* The verdict on the mix. */
struct demo_mix_result {
  bool checked; /* false: not a stereo file at the demo's rate */
  uint64_t frames;
  unsigned blocks, exact, explained; /* blocks; exact ones; the others */
  unsigned tones_missing;            /* tones heard in no exact block */
  double block_ms;
  char problem[160]; /* "" when the mix holds what the clients played */
};

/*
 * Reads the virtual device's output file at `path` and checks, block by
 * block (100 ms), that it holds exactly the sum of the clients' tones,
 * each at its gain or absent: a block may differ only where a stream
 * starts, ends or missed (told period by period where `period`, the
 * frames of each request, is known, else by counting); and that each
 * tone is heard, and the file
 * holds at least `frames` frames (each client played that many, misses
 * included as silence). Returns 0 with *out filled (out->problem says
 * what is wrong, if anything), or -1 if the file cannot be read
 * (reported on stderr).
 */
int demo_mix_check(const char *path, uint32_t rate, uint32_t period,
                   uint64_t frames, const struct demo_mix_tone *tones,
                   unsigned count, struct demo_mix_result *out);

#endif
