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

#include <audioipc/server.h>
#include <cubeb/cubeb.h>
#include <pthread.h>
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
