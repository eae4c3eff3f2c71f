/* SPDX-License-Identifier: ISC */
/*
 * audioipc client: a cubeb context whose every operation is carried to an
 * audioipc server.
 *
 * The sandboxed process receives a connection fd from its embedder (see
 * audioipc_server_new_client) and calls audioipc_client_init(). The
 * returned context is used with the ordinary cubeb API from libcubeb
 * (cubeb_stream_init, cubeb_stream_start, ...): those calls dispatch into
 * this library. The library itself opens no file, creates no socket and
 * no shared memory: everything arrives over the connection.
 */
#ifndef AUDIOIPC_CLIENT_H
#define AUDIOIPC_CLIENT_H

#include <cubeb/cubeb.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AUDIOIPC_EXPORT
#define AUDIOIPC_EXPORT __attribute__((visibility("default")))
#endif

typedef struct {
  /* The fd from audioipc_server_new_client. Taken: the library closes it,
   * also when initialisation fails. */
  int server_connection;
  /* Callback threads. 0: one per stream. N: at most N, made as streams
   * need them and kept until the context is destroyed; streams spread
   * over them, each thread serving up to 64 streams one callback after
   * another (stream_init fails beyond N x 64). A client with many streams
   * then costs one wake-up per thread per period instead of one per
   * stream; a slow callback delays the other streams of its thread.
   * Needs Linux 5.16 (futex_waitv); on older kernels 0 is used. */
  size_t pool_size;
  /* Stack size of each thread the library starts; 0: the default. */
  size_t stack_size;
  /* Called on every thread the library starts, first and last thing on
   * that thread. Either may be NULL. */
  void (*thread_create_callback)(const char *thread_name);
  void (*thread_destroy_callback)(void);
} AudioIpcInitParams;

/*
 * Connects to the server and makes a cubeb context. On success writes
 * the context to *context and returns CUBEB_OK; destroy it with
 * cubeb_destroy(). Fails with CUBEB_ERROR_INVALID_PARAMETER for NULL
 * arguments or a negative fd, and CUBEB_ERROR if the server cannot be
 * reached, speaks another protocol version (logged), or cannot make a
 * context. Any thread but the library's own callbacks.
 *
 * Semantics worth knowing: callbacks receive the real cubeb_stream
 * pointer; no data callback runs after cubeb_stream_stop() returns; when
 * the server goes away every stream's state callback gets
 * CUBEB_STATE_ERROR once and every later call fails at once; calling the
 * library from inside one of its callbacks returns CUBEB_ERROR.
 *
 * Output-only and input-only streams render ahead unless the server's
 * embedder turned it off (AudioIpcServerLimits.render_ahead): an output
 * stream's data callback runs before the backend needs its frames (a
 * quarter of the latency ahead, taken out of the backend's latency), in
 * pieces of any size up to that amount; an input stream's runs after the
 * backend delivered them. Frames rendered ahead of cubeb_stream_stop are
 * dropped, not played after it; every frame before a short return is
 * played, then DRAINED. An input callback's short or failed return takes
 * effect one backend callback later. Duplex streams answer each backend
 * callback as it comes, unless the embedder set render_ahead to 2: then
 * their output runs that amount behind their input, its first frames
 * silence (position does not count them). docs/design-notes.md,
 * "Render-ahead".
 *
 * libcubeb's preconditions hold as in-process. Where libcubeb's backend
 * (the server's: cubeb_get_backend_id) aborts an application that breaks
 * its contract, this library aborts the application's process too, with
 * one line on stderr naming the call and the breach, before anything
 * reaches the server. On "pulse": cubeb_destroy with a device collection
 * callback or its user pointer still registered; an output stream whose
 * layout's channel count is not its channels; a data callback returning
 * more frames than asked; cubeb_stream_start on a stream that is
 * draining; and, from a data, DRAINED, ERROR or collection callback, any
 * call that takes pulse's lock (start, stop, destroy, init, set_volume,
 * set_name, enumerate, register, cubeb_destroy). On "alsa":
 * cubeb_stream_destroy of a running stream, or from a callback, and
 * cubeb_destroy from a callback. docs/design-notes.md lists them all,
 * with libcubeb's asserts.
 *
 * Each stream's callback thread asks for real-time priority (see
 * AUDIOIPC_RT_PRIORITY): itself first, and if that is refused, through
 * the server, which can promote it directly or through RTKit when the
 * embedder named this process (audioipc_server_new_client_for_pid). For
 * RTKit the library lowers the process's RLIMIT_RTTIME to 200 ms if it
 * is higher: a real-time thread that runs that long without sleeping
 * then gets SIGXCPU. A refusal is logged once and is never fatal.
 */
AUDIOIPC_EXPORT int audioipc_client_init(cubeb **context,
                                         const char *context_name,
                                         const AudioIpcInitParams *params);

#ifdef __cplusplus
}
#endif

#endif
