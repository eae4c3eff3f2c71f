/* SPDX-License-Identifier: ISC */
/* The client's objects: a cubeb context and its streams, remoted. */
#ifndef AIPC_CLIENT_PRIVATE_H
#define AIPC_CLIENT_PRIVATE_H

#include "cubeb-ops.h"
#include "loop.h"
#include "rpc.h"
#include "shm.h"
#include "stream-shm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* No call waits longer than this for a server that is alive but stuck. */
#define AIPC_CALL_TIMEOUT_NS (10 * INT64_C(1000000000))

/* Whose asserts the application would meet in-process (contract.c). */
enum aipc_backend_rules { AIPC_RULES_OTHER, AIPC_RULES_PULSE, AIPC_RULES_ALSA };

struct cubeb {
  const struct cubeb_ops *ops; /* first, as libcubeb expects */
  struct aipc_loop *loop;
  struct aipc_rpc_client *rpc;
  char *backend_id;
  enum aipc_backend_rules rules; /* of backend_id */
  struct aipc_thread_hooks hooks;
  size_t pool_size; /* 0: a callback thread per stream */

  /* Callback threads (callback.c). */
  pthread_mutex_t pool_lock; /* guards these and each thread's streams */
  struct aipc_cb_thread *pool;
  size_t pool_threads;
  atomic_uint threads_made; /* for their names */

  /* Changed on the loop thread only, so events can walk it unlocked;
   * `lock` lets other threads read it. */
  pthread_mutex_t lock;
  struct cubeb_stream *streams;
  size_t nstreams;
  bool dead; /* the server is gone */

  cubeb_device_collection_changed_callback collection_cb[2]; /* in, out */
  void *collection_user[2];
};

struct cubeb_stream {
  cubeb *context; /* first two members, as libcubeb expects */
  void *user_ptr;

  uint32_t id;
  cubeb_data_callback data_cb;
  cubeb_state_callback state_cb;
  cubeb_device_changed_callback device_changed_cb;

  struct aipc_shm shm;
  struct aipc_stream_ctl *ctl;
  void *input_area, *output_area;
  uint32_t frames_max; /* per request, or the ring's */
  uint32_t in_frame_bytes, out_frame_bytes;
  bool buffered; /* render-ahead: the only area is a ring (stream-shm.h) */

  struct aipc_cb_thread *cb; /* the thread that serves it */
  unsigned cb_slot;          /* its place there */
  bool cb_pooled;
  uint32_t last_request; /* the thread's: the last request answered */
  atomic_bool running;   /* the user's data callback may run */
  /* What libcubeb's backends assert on (contract.c): started and not yet
   * stopped, drained or failed; answered short, not yet DRAINED. */
  atomic_bool started;
  atomic_bool draining;
  struct aipc_wake in_user;  /* 1 while the data callback runs */
  bool error_reported;       /* loop thread only */
  struct cubeb_stream *next; /* in context->streams */
};

/* --- contract.c: libcubeb's preconditions on the caller's side --------- */

/* Which of the user's callbacks the calling thread runs. A callback
 * thread is in AIPC_CB_DATA for its whole life. */
enum aipc_callback_kind {
  AIPC_CB_NONE,
  AIPC_CB_DATA,
  AIPC_CB_STATE_EDGE, /* STARTED, STOPPED */
  AIPC_CB_STATE_END,  /* DRAINED, ERROR */
  AIPC_CB_COLLECTION,
  AIPC_CB_DEVICE,
};
bool aipc_client_in_callback(void);
void aipc_client_set_callback(enum aipc_callback_kind kind);

enum aipc_backend_rules aipc_backend_rules_of(const char *backend_id);

/* Ends the process as libcubeb would: `call` broke its contract so. */
_Noreturn void aipc_client_breach(const cubeb *ctx, const char *call,
                                  const char *what);
/* For a call the application makes: if it comes from one of our
 * callbacks, returns true (the call must fail, not wait for our own
 * thread), or ends the process where the backend would abort on it
 * (`takes_lock`: the backend takes its context's lock for it). */
bool aipc_client_reentry(const cubeb *ctx, const char *call, bool takes_lock);

/* Calls the server; returns a negative errno (already logged if odd). */
int aipc_client_call(cubeb *ctx, uint16_t opcode, const void *request,
                     void *reply, struct aipc_msg **reply_msg);

/* callback.c: most streams a callback thread serves. */
#define AIPC_CB_STREAMS 64

struct aipc_cb_thread;
/* Gives `s` (mapped, not yet started) a callback thread: its own, or
 * with pool_size one of the context's; a new thread gets real-time
 * priority. Returns 0 or -errno. */
int aipc_callbacks_attach(cubeb *ctx, cubeb_stream *s);
/* Takes `s` off its thread; returns once the thread no longer touches
 * it. The server must have stopped asking (STREAM_DESTROY answered). */
void aipc_callbacks_detach(cubeb *ctx, cubeb_stream *s);
/* Ends the pool's threads, once no stream is left. */
void aipc_callbacks_shutdown(cubeb *ctx);

/* stream.c */
int aipc_client_stream_init(cubeb *ctx, cubeb_stream **stream, char const *name,
                            cubeb_devid input_device,
                            cubeb_stream_params *input,
                            cubeb_devid output_device,
                            cubeb_stream_params *output, unsigned latency,
                            cubeb_data_callback data_cb,
                            cubeb_state_callback state_cb, void *user_ptr);
void aipc_client_stream_destroy(cubeb_stream *stream);
int aipc_client_stream_start(cubeb_stream *stream);
int aipc_client_stream_stop(cubeb_stream *stream);
int aipc_client_stream_get_position(cubeb_stream *stream, uint64_t *position);
int aipc_client_stream_get_latency(cubeb_stream *stream, uint32_t *latency);
int aipc_client_stream_get_input_latency(cubeb_stream *stream,
                                         uint32_t *latency);
int aipc_client_stream_set_volume(cubeb_stream *stream, float volume);
int aipc_client_stream_set_name(cubeb_stream *stream, char const *name);
int aipc_client_stream_get_current_device(cubeb_stream *stream,
                                          cubeb_device **const device);
int aipc_client_stream_device_destroy(cubeb_stream *stream,
                                      cubeb_device *device);
int aipc_client_stream_register_device_changed(
    cubeb_stream *stream, cubeb_device_changed_callback callback);
/* Loop thread: a stream event arrived. */
void aipc_client_stream_event(cubeb *ctx, const struct aipc_msg *msg);
/* Loop thread: the server is gone. */
void aipc_client_streams_lost(cubeb *ctx);

#endif
