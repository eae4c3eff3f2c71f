/* SPDX-License-Identifier: ISC */
/*
 * aipc, the command-line tool: shared pieces of its subcommands.
 *
 * Process model. Subcommands that need a server without --connect start
 * one in this process and run their client part in a child that is
 * forked and at once re-executed as "aipc _client CMD ARGS..." (a child
 * forked from a process whose server threads run may call only
 * async-signal-safe functions before exec). The child inherits nothing
 * but stdio and its connection, at fd AIPC_CHILD_CONN_FD.
 */
#ifndef AIPC_TOOL_H
#define AIPC_TOOL_H

#include "fdpass.h"
#include "sound-file.h"

#include <audioipc/server.h>
#include <cubeb/cubeb.h>
#include <pthread.h>
#include <semaphore.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Exit statuses of every subcommand. */
enum {
  AIPC_EXIT_OK = 0,
  AIPC_EXIT_FAILURE = 1,
  AIPC_EXIT_USAGE = 2,
};

/* Where a re-executed client child finds its connection. */
#define AIPC_CHILD_CONN_FD 3

/* The hidden subcommand that runs a client part in a child. */
#define AIPC_CHILD_COMMAND "_client"

/* --- main.c --------------------------------------------------------------- */

/* True in a re-executed client child. */
extern bool aipc_in_child;

/* This program's arguments as main() got them (for re-executing). */
extern int aipc_argc;
extern char **aipc_argv;

/* --- util.c --------------------------------------------------------------- */

/* Prints "aipc CMD: MESSAGE" and "see aipc CMD --help" to stderr (not
 * `usage`, which --help prints); returns AIPC_EXIT_USAGE. */
int aipc_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports the option getopt_long() just rejected (it returned '?' or
 * ':') as a usage error. */
int aipc_bad_option(const char *cmd, const char *usage, int c, char **argv);

/* Parses a whole decimal number in [min, max]. Returns 0 or -EINVAL. */
int aipc_parse_uint(const char *text, unsigned min, unsigned max,
                    unsigned *out);

/* Parses a whole number of seconds or a decimal one ("2", "0.5") in
 * (0, 3600]. Returns 0 or -EINVAL. */
int aipc_parse_seconds(const char *text, double *out);

/* The path of this program's executable, read once at start-up. */
const char *aipc_exe_path(void);

/* Describes a wait status: "exit 0", "killed by SIGSYS (seccomp)", ... */
void aipc_describe_status(int status, char *buf, size_t size);

/* Monotonic time in nanoseconds. */
int64_t aipc_tool_now_ns(void);

/* The tone every client plays: a sine of `freq` Hz at `gain`. Keeps
 * its phase between calls. Runs on audio threads: no allocation. */
struct aipc_tone {
  double phase, step, gain;
};
void aipc_tone_init(struct aipc_tone *tone, double freq, uint32_t rate,
                    double gain);
/* Writes `frames` frames of `channels` interleaved float samples. */
void aipc_tone_fill(struct aipc_tone *tone, float *out, long frames,
                    uint32_t channels);

/* Waits for a stream to finish: its state callback reports here. */
struct aipc_waiter {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int drained, errored, stopped;
};
int aipc_waiter_init(struct aipc_waiter *w);
void aipc_waiter_destroy(struct aipc_waiter *w);
/* A cubeb_state_callback whose user pointer is the waiter. */
void aipc_waiter_state_cb(cubeb_stream *stream, void *user, cubeb_state state);
/* Waits until DRAINED or ERROR is reported or `timeout_ms` passes.
 * Returns CUBEB_STATE_DRAINED, CUBEB_STATE_ERROR or -1 on timeout. */
int aipc_waiter_wait(struct aipc_waiter *w, int timeout_ms);

/* --- backend.c ------------------------------------------------------------ */

/* A started in-process server and what its backend says about itself. */
struct aipc_backend {
  void *server;
  char name[512]; /* the backend name given to the server, or "" */
  char id[64];    /* cubeb's id of the backend the server runs */
  uint32_t rate;  /* the backend's preferred rate */
  cubeb *probe;   /* our own client of the server, kept open */
};

/* True if a PulseAudio (or PipeWire-pulse) server looks reachable:
 * PULSE_SERVER is set, or $XDG_RUNTIME_DIR/pulse/native is a socket. */
bool aipc_sound_server_reachable(void);

/*
 * Starts a server on `requested` (a backend name; NULL for the default:
 * cubeb's own choice when a sound server is reachable and works, else
 * `virtual_default`), then asks the backend for its id and preferred rate
 * through an in-process client, which stays connected (and so keeps the
 * backend's device open) until aipc_backend_stop. Reports failures on stderr,
 * prefixed with `cmd`. Returns 0 or -1. Stop the server with aipc_backend_stop.
 */
int aipc_backend_start(const char *cmd, const char *requested,
                       const char *virtual_default, struct aipc_backend *b);
void aipc_backend_stop(struct aipc_backend *b);

/* Describes the backend for humans: "virtual (virtual:clock=fast)". */
void aipc_backend_describe(const struct aipc_backend *b, char *buf,
                           size_t size);

/* --- spawn.c -------------------------------------------------------------- */

/*
 * Forks a child, makes its connection with
 * audioipc_server_new_client_for_pid() and hands it over, and has the
 * child re-execute this program with `argv` (argv[0] is replaced by the
 * executable's path). The child keeps stdin and stderr, its connection at
 * AIPC_CHILD_CONN_FD and, if `stdout_fd` is not NULL, a pipe as stdout
 * whose read end (close-on-exec) goes to *stdout_fd; otherwise our
 * stdout. It is killed if this process dies. Returns the child's pid or
 * -1 (reported on stderr, prefixed with `cmd`).
 */
pid_t aipc_spawn_client(const char *cmd, void *server, char *const argv[],
                        int *stdout_fd);


/* --- connect.c ------------------------------------------------------------ */

/* Connects to an "aipc serve" socket at `path` and receives a client
 * connection from it. Returns the fd (close-on-exec, owned by the
 * caller) or -1 (reported on stderr, prefixed with `cmd`). */
int aipc_connect_serve(const char *cmd, const char *path);

/* The client part of play, record, devices and info. */
typedef int (*aipc_client_fn)(const char *cmd, cubeb *ctx, void *data);

/*
 * Runs `fn` on a remoted context. With `connect_path`, in this process
 * on a connection from that serve socket; in a re-executed child, on
 * AIPC_CHILD_CONN_FD; otherwise starts a server on `backend` (see
 * aipc_backend_start) and re-executes this program's own arguments
 * with AIPC_CHILD_COMMAND in front in a child, and waits for it.
 * Returns the exit status for the subcommand.
 */
int aipc_run_client(const char *cmd, const char *connect_path,
                    const char *backend, const char *virtual_default,
                    aipc_client_fn fn, void *data);

/* --- snapshot.c and the control socket -------------------------------- */

/*
 * "aipc serve --listen PATH" answers "aipc top" on a second socket,
 * PATH.ctl (SOCK_SEQPACKET, mode 0600, and only for a peer of the
 * server's own uid): one request, AIPC_CONTROL_TEXT or AIPC_CONTROL_JSON,
 * gets one message, the snapshot, or a message that begins with
 * AIPC_CONTROL_ERROR; then the server closes the connection. The audio
 * clients' connections have no such request.
 */
#define AIPC_CONTROL_SUFFIX ".ctl"
#define AIPC_CONTROL_TEXT "text"
#define AIPC_CONTROL_JSON "json"
#define AIPC_CONTROL_ERROR "error: "

/* Renders what `server` holds, its clients and their streams, as a table
 * or as one line of JSON, with `backend` (a description) and `rate` in
 * its heading, into a new string (*out, *len bytes; the caller frees it).
 * 0 or -errno. */
int aipc_snapshot_render(void *server, const char *backend, uint32_t rate,
                         bool json, char **out, size_t *len);

/* --- sandbox.c ------------------------------------------------------------ */

/*
 * Installs the sandbox of the demo's clients on every thread of this
 * process: a seccomp filter under which open, openat, openat2, creat,
 * socket, socketpair, connect, memfd_create, execve and execveat kill
 * the process (and so does any syscall of a foreign architecture), and
 * everything else is allowed. Sets no_new_privs. Returns 0 or -errno.
 */
int aipc_sandbox_enter(void);

/* True if `what` names one of the calls the sandbox forbids ("open",
 * "socket", "memfd_create", ...: the syscall names). */
bool aipc_sandbox_try_known(const char *what);

/* Before aipc_sandbox_enter: makes what the attempt at `what` needs (a
 * socket for "connect"). Returns an fd or -1 if it needs nothing. */
int aipc_sandbox_try_prepare(const char *what);

/* Makes the forbidden call named `what`, with `prepared` from
 * aipc_sandbox_try_prepare. Returns only if the sandbox did not stop the
 * call: with the call's result. */
long aipc_sandbox_try(const char *what, int prepared);

/* --- stream.c: the options of play and record --------------------------- */

/* A sample format named on the command line (--format). */
struct aipc_sample_format {
  const char *name; /* "s16", "s16le", "f32be", "s24", ... */
  int subtype;      /* libsndfile's, for a file: SF_FORMAT_PCM_16 ... */
  int endian;       /* SF_ENDIAN_FILE (the container's), _LITTLE, _BIG */
  bool raw;         /* cubeb carries it, so raw audio may have it */
  cubeb_sample_format cubeb; /* for raw audio */
};

/* The command line of play or record. */
struct aipc_stream_args {
  const char *cmd; /* "play" or "record" */
  bool input;      /* record */
  const char *connect, *backend, *device;
  const char *path;    /* a file, or "-": raw audio on stdin (play) or stdout */
  unsigned tone;       /* play: a sine of this many Hz instead of a file */
  double seconds;      /* 0: to the file's end, or until SIGINT/SIGTERM */
  double volume;       /* 0..1 */
  unsigned latency_ms; /* 0: the backend's minimum */
  unsigned rate, channels;                 /* 0: not given */
  const struct aipc_sample_format *format; /* NULL: not given */
};

/* What a stream may have (libcubeb's bounds; the server's channels_max
 * by default, server.h). */
#define AIPC_STREAM_MIN_RATE 1000
#define AIPC_STREAM_MAX_RATE 192000
#define AIPC_STREAM_MAX_CHANNELS 8

/* Raw audio's defaults (--rate, --channels, --format), the same both
 * ways so that "aipc record - | aipc play -" needs no options. */
#define AIPC_RAW_RATE 48000
#define AIPC_RAW_CHANNELS 2
#define AIPC_RAW_FORMAT "s16le"

/* The format named `name`, or NULL. */
const struct aipc_sample_format *aipc_sample_format_find(const char *name);

/*
 * Parses play's (`input` false) or record's command line into *a, with
 * `usage` for --help; raw audio ("-") gets the AIPC_RAW_* defaults.
 * Returns true to go on, or false with *status set: AIPC_EXIT_OK after
 * --help, AIPC_EXIT_USAGE after a usage error (one line naming it, then
 * "see aipc CMD --help", on stderr).
 */
bool aipc_stream_parse(const char *cmd, bool input, const char *usage, int argc,
                       char **argv, struct aipc_stream_args *a, int *status);

/* --- media.c -------------------------------------------------------------- */

/* One end of play or record: a sound file, or raw audio on stdin
 * (play) or stdout (record). Main thread only. */
struct aipc_media {
  SNDFILE *file; /* NULL for raw audio */
  int fd;        /* raw audio's */
  bool raw;
  bool shorts; /* a file written from s16 samples, else from float */
  cubeb_sample_format format; /* of the samples we move: the stream's */
  uint32_t rate, channels;
  cubeb_channel_layout layout; /* a file's, from its channel map */
  size_t frame_bytes;
  int sf_format;   /* a file's libsndfile format */
  uint64_t frames; /* a file read: as libsndfile counts them */
};

/* Opens a->path: for play, the file (its rate, channels; float samples)
 * or stdin (a's raw rate, channels, format); for record, creates the
 * file (container from its name, a->format's sample type, by default
 * f32 or, where the container has no float, s24) at `rate` and
 * `channels`, or takes stdout. Returns 0, or -1 after one line on
 * stderr naming the file and what is wrong with it. */
int aipc_media_open(const struct aipc_stream_args *a, uint32_t rate,
                    uint32_t channels, struct aipc_media *m);
/* Reads at most `bytes` (whole frames for a file) into `buf`. Returns
 * the bytes read (0 at the end) or a negative errno. */
int64_t aipc_media_read(struct aipc_media *m, void *buf, size_t bytes);
/* Writes `bytes` (whole frames). Returns 0 or a negative errno. */
int aipc_media_write(struct aipc_media *m, const void *buf, size_t bytes);
/* A message for an error of _read or _write. */
const char *aipc_media_strerror(const struct aipc_media *m, int err);
/* "WAV s16, 2 channels at 44100 Hz", "raw s16le, 1 channel at 8000 Hz". */
void aipc_media_describe(const struct aipc_media *m, char *buf, size_t size);
/* Finishes and closes a file (not stdin/stdout). Returns 0 or -1 after
 * saying why on stderr. */
int aipc_media_close(struct aipc_media *m, const char *cmd, const char *path);

/* Scales samples of a cubeb format in place (a recording's --volume). */
void aipc_scale_samples(cubeb_sample_format format, void *buf, size_t bytes,
                        double gain);

/* --- stream.c: the ring and the stream ---------------------------------- */

/* A single-producer, single-consumer ring of bytes between an audio
 * callback and the main thread. _push and _pop never block or
 * allocate. */
struct aipc_ring {
  uint8_t *buf;
  size_t size;
  atomic_uint_least64_t written, read;
};
int aipc_ring_init(struct aipc_ring *r, size_t bytes);
void aipc_ring_destroy(struct aipc_ring *r);
size_t aipc_ring_used(struct aipc_ring *r);
/* Copy in or out as much of `len` as there is room or data for; return
 * how much. */
size_t aipc_ring_push(struct aipc_ring *r, const void *data, size_t len);
size_t aipc_ring_pop(struct aipc_ring *r, void *data, size_t len);

/* A stream, its ring, and what the main thread waits on. */
struct aipc_session {
  cubeb_stream *stream;
  struct aipc_ring ring;
  sem_t wake;                  /* posted by callbacks and signals */
  atomic_int state;            /* CUBEB_STATE_DRAINED or _ERROR once; else -1 */
  atomic_bool eof;             /* play: the ring gets nothing more */
  atomic_uint_least64_t moved; /* frames through the data callback */
  /* Play: silent frames of an empty ring; record: frames lost to a
   * full one. */
  atomic_uint_least64_t gaps;
  uint64_t limit; /* --seconds in frames; UINT64_MAX: none */
  void *user;     /* the command's */
};

/* Sets up *s with a ring of `ring_bytes` (0: none) and makes SIGINT and
 * SIGTERM post its wake-up instead of ending the process. Returns 0 or
 * a negative errno. */
int aipc_session_init(struct aipc_session *s, size_t ring_bytes);
/* Destroys the stream (no callback runs after) and the rest. */
void aipc_session_destroy(struct aipc_session *s);
/* Opens and starts the stream of `params` on
 * a->device (an id from aipc devices; unknown: an error) with
 * a->latency_ms and, for output, a->volume. The data callback gets `s`.
 * Returns 0, or -1 after a line on stderr. */
int aipc_session_open(struct aipc_session *s, const struct aipc_stream_args *a,
                      cubeb *ctx, cubeb_stream_params *params,
                      cubeb_data_callback data_cb);
/* Waits up to `ms` for a post (a callback, a state, a signal). */
void aipc_session_wait(struct aipc_session *s, int ms);
/* The signal (SIGINT, SIGTERM) that asked us to stop, or 0. */
int aipc_session_stop_signal(void);

/* --- subcommands ---------------------------------------------------------- */

int aipc_demo_main(int argc, char **argv);
int aipc_demo_client_main(int argc, char **argv);
int aipc_serve_main(int argc, char **argv);
int aipc_play_main(int argc, char **argv);
int aipc_record_main(int argc, char **argv);
int aipc_devices_main(int argc, char **argv);
int aipc_info_main(int argc, char **argv);
int aipc_bench_main(int argc, char **argv);
int aipc_bench_client_main(int argc, char **argv);
int aipc_top_main(int argc, char **argv);

#endif
