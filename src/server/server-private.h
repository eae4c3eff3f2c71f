/* SPDX-License-Identifier: ISC */
/* The server's internal objects, shared by its files. */
#ifndef AIPC_SERVER_PRIVATE_H
#define AIPC_SERVER_PRIVATE_H

#include "audioipc/server.h"
#include "loop.h"
#include "rpc.h"
#include "shm.h"
#include "stream-shm.h"

#include <cubeb/cubeb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

/* Limits on what one client, one process and the server may hold (see
 * AudioIpcServerLimits). */
struct aipc_limits {
  uint32_t streams_per_client;
  uint32_t shm_per_stream; /* bytes */
  uint64_t shm_per_client; /* bytes */
  uint32_t device_tokens;  /* devices remembered per client */
  uint32_t requests_in_flight;
  uint32_t channels_max;
  uint32_t connections_per_process, connections_max;
  uint32_t streams_per_process, streams_max;
  uint64_t shm_per_process, shm_max; /* bytes */
  uint32_t promoted_per_process, promoted_max;
  uint32_t render_ahead; /* AudioIpcServerLimits.render_ahead: 0..2 */
  bool allow_monitors; /* audioipc_server_allow_monitors */
};

/* --- accounts.c -------------------------------------------------------- */

/* What an account counts. A connection has at most one backend context,
 * so contexts are counted as connections; since a stream's memfd is
 * closed once sent, a client's fds are its connection's and its
 * context's. */
enum aipc_resource {
  AIPC_RES_CONNECTIONS,
  AIPC_RES_STREAMS,
  AIPC_RES_SHM,      /* bytes */
  AIPC_RES_PROMOTED, /* real-time threads */
  AIPC_RES_COUNT,
};

struct aipc_accounts;
struct aipc_account;
int aipc_accounts_new(struct aipc_accounts **out);
void aipc_accounts_destroy(struct aipc_accounts *accounts);
/* The account of process `pid` (> 0; shared with its other connections)
 * or a new one of its own (pid 0), charged with one connection against
 * `limits`: 0, or -ENOSPC (logged, naming client number `client`). */
int aipc_account_open(struct aipc_accounts *accounts, pid_t pid,
                      const struct aipc_limits *limits, unsigned client,
                      struct aipc_account **out);
/* Gives the connection back; the account goes with its last one. */
void aipc_account_close(struct aipc_accounts *accounts,
                        struct aipc_account *account);
/* Charges `amount` of `res` against the process's and the server's
 * bounds in `limits`: 0, or -ENOSPC (logged, naming `client`). Any
 * thread but an audio thread. */
int aipc_account_charge(struct aipc_accounts *accounts,
                        struct aipc_account *account, enum aipc_resource res,
                        uint64_t amount, const struct aipc_limits *limits,
                        unsigned client);
void aipc_account_refund(struct aipc_accounts *accounts,
                         struct aipc_account *account, enum aipc_resource res,
                         uint64_t amount);
/* Whether the process may have the server ask RTKit once more now: at
 * most 4 times in 20 s (RTKit allows a user 25, for every client), else
 * -EBUSY. Records the call. */
int aipc_account_rtkit_call(struct aipc_accounts *accounts,
                            struct aipc_account *account, int64_t now);
/* What the account holds of `res`, all its connections together. */
uint64_t aipc_account_held(struct aipc_accounts *accounts,
                           struct aipc_account *account,
                           enum aipc_resource res);

struct aipc_server;
struct aipc_client;
struct aipc_sstream;

/*
 * A client that does not answer a backend callback in time gets silence:
 * it may take this long per callback, whatever the callback's length.
 * Long enough that a loaded machine's scheduling jitter does not turn
 * into silence, short enough that a stalled client holds a backend
 * thread (and on pulse its context's lock) for no longer: Chromium's
 * audio service allows a renderer the same. On a virtual device with a
 * fast clock, time means nothing to the backend and a generous bound
 * keeps results deterministic on a loaded machine.
 */
#define AIPC_DEADLINE_NS (20 * 1000 * 1000)
#define AIPC_DEADLINE_FAST_CLOCK_NS (1000 * 1000 * 1000)

/* --- stats.c ----------------------------------------------------------- */

/* Wait times are counted per microsecond up to this, then in one bucket. */
#define AIPC_WAIT_BUCKETS 4096

/* What a stream is, fixed when it is made. */
struct aipc_stream_shape {
  uint32_t in_channels, out_channels; /* 0: no such direction */
  uint32_t rate, format, latency_frames;
};

/* Counters of one stream. The audio thread only adds to them. */
struct aipc_stream_stats {
  unsigned client;
  pid_t pid;
  uint32_t stream;
  struct aipc_stream_shape shape;
  atomic_int state;      /* the last cubeb_state told the client, or -1 */
  atomic_uint ring_frames, ahead_frames; /* set once the stream exists */
  atomic_uint shm_bytes; /* set once the region exists */
  atomic_uint_fast64_t callbacks, frames, misses, sleeps;
  atomic_uint wait_max_us;
  atomic_uint wait_hist[AIPC_WAIT_BUCKETS + 1];
  struct aipc_stream_stats *next; /* registry's, under its lock */
};

struct aipc_stats_registry;
int aipc_stats_registry_new(struct aipc_stats_registry **out);
void aipc_stats_registry_destroy(struct aipc_stats_registry *registry);
struct aipc_stream_stats *aipc_stats_new(struct aipc_stats_registry *registry,
                                         unsigned client, pid_t pid,
                                         uint32_t stream,
                                         const struct aipc_stream_shape *shape);
/* The stream is gone: keep its numbers among the recently retired. */
void aipc_stats_retire(struct aipc_stats_registry *registry,
                       struct aipc_stream_stats *stats);
/* The stream never ran (its creation failed): forget it. */
void aipc_stats_discard(struct aipc_stats_registry *registry,
                        struct aipc_stream_stats *stats);
/* Copies out up to `max` streams' statistics, live ones first; returns
 * how many there are. */
int aipc_stats_export(struct aipc_stats_registry *registry,
                      AudioIpcStreamStats *out, size_t max);
/* The same, with what each stream is, for the live ones only. */
int aipc_stats_export_live(struct aipc_stats_registry *registry,
                           AudioIpcStreamInfo *out, size_t max);

/* --- server.c ---------------------------------------------------------- */

/* Makes a cubeb context on the server's backend (or hands out the shared
 * one), and gives it back. */
int aipc_server_cubeb_init(struct aipc_server *server, cubeb **ctx);
void aipc_server_cubeb_release(struct aipc_server *server, cubeb *ctx);
/* The embedder's hooks, for the threads the server starts. */
const struct aipc_thread_hooks *
aipc_server_thread_hooks(const struct aipc_server *server);
const struct aipc_limits *aipc_server_limits(const struct aipc_server *server);
/* Whether every client shares one cubeb context (AUDIOIPC_SHARED_CONTEXT). */
bool aipc_server_context_is_shared(const struct aipc_server *server);
/* How long the server's streams wait for their clients (see above). */
int64_t aipc_server_deadline(const struct aipc_server *server);
struct aipc_stats_registry *aipc_server_stats(struct aipc_server *server);
struct aipc_accounts *aipc_server_accounts(struct aipc_server *server);
struct aipc_rtkit *aipc_server_rtkit(struct aipc_server *server);
struct aipc_event_queue *aipc_server_events(struct aipc_server *server);
/* Loop thread: the client numbered `number`, or NULL if it has gone. */
struct aipc_client *aipc_server_find_client(struct aipc_server *server,
                                            unsigned number);
/* Called by a client once it is fully torn down. */
void aipc_server_client_gone(struct aipc_server *server,
                             struct aipc_client *client);

/* --- events.c --------------------------------------------------------- */

/* Client events raised on any thread and sent from the loop thread. */
struct aipc_event_queue;
/* Not from the loop thread. */
int aipc_event_queue_new(struct aipc_server *server, struct aipc_loop *loop,
                         struct aipc_event_queue **out);
/* Not from the loop thread; nothing may push any more. */
void aipc_event_queue_destroy(struct aipc_event_queue *queue);
/* Queues event `opcode` (arguments as for aipc_client_deliver_event) for
 * client number `client`. Any thread, real-time safe. False if the queue
 * was full and the event was dropped (counted, and logged later). */
bool aipc_event_queue_push(struct aipc_event_queue *queue, unsigned client,
                           uint16_t opcode, uint32_t a, uint32_t b);

/* --- promote.c -------------------------------------------------------- */

/* A pidfd for `pid`, or -1 (errno set). */
int aipc_pidfd_open(pid_t pid);
/* The effective uid of process `pid`, read while its pidfd `pidfd`
 * (borrowed) shows it alive, so that a recycled pid cannot answer for
 * it; or (uid_t)-1. */
uid_t aipc_process_uid(pid_t pid, int pidfd);
/* True if `tid` is a thread of process `pid`. */
bool aipc_thread_of(pid_t pid, pid_t tid);
/* The server's way to RTKit: a system bus connection, made on first use
 * and closed by aipc_rtkit_destroy. */
struct aipc_rtkit;
struct aipc_rtkit *aipc_rtkit_new(void);
void aipc_rtkit_destroy(struct aipc_rtkit *rtkit);
/* Gives thread `tid` of the client process `pid` (`pidfd` its pidfd, -1
 * if nobody vouched for it) real-time priority: directly, after lowering
 * the process's RLIMIT_RTTIME to AIPC_RTTIME_MAX_US as RTKit demands
 * (-EPERM if the server may not), or through RTKit (at most 16 calls per
 * 20 s for the whole server, else -EBUSY; it blocks on D-Bus: the
 * client's thread only). 0 or -errno. */
int aipc_promote_directly(pid_t pid, int pidfd, pid_t tid);
int aipc_promote_through_rtkit(struct aipc_rtkit *rtkit, pid_t pid, int pidfd,
                               pid_t tid);
/* Takes real-time priority back from `tid`, if it is still a thread of
 * that process (RTKit's grants may not be ours to take back; its own
 * limits bind them). */
void aipc_demote_client_thread(pid_t pid, int pidfd, pid_t tid);

/* --- client.c ---------------------------------------------------------- */

/* Loop thread. Takes fd and pidfd (the client process's, or -1), also
 * on failure. Starts the client's own thread, which reads its requests
 * and handles them one at a time; once the client hangs up, that thread
 * destroys its streams and context, then the client is freed on the loop
 * thread and the server told (aipc_server_client_gone). */
int aipc_client_new(struct aipc_server *server, struct aipc_loop *loop, int fd,
                    unsigned number, pid_t pid, int pidfd, size_t shm_area_size,
                    struct aipc_client **out);
/* Ends the connection (server stop): the client's thread then tears it
 * down. Any thread. */
void aipc_client_disconnect(struct aipc_client *client);
/* Raises an event for the client: any thread, real-time safe; it is
 * sent from the loop thread. STREAM_STATE_EVENT: stream `a`, state `b`;
 * STREAM_DEVICE_CHANGED_EVENT: stream `a`; COLLECTION_CHANGED_EVENT:
 * device types `a`. */
void aipc_client_raise_event(struct aipc_client *client, uint16_t opcode,
                             uint32_t a, uint32_t b);
/* The client's number (AudioIpcStreamStats.client). Any thread. */
unsigned aipc_client_number(const struct aipc_client *client);
/* Its number, pid and uid, fixed when it was made. Any thread. */
void aipc_client_describe(const struct aipc_client *client,
                          AudioIpcClientInfo *out);
/* Loop thread: sends an event raised so. */
void aipc_client_deliver_event(struct aipc_client *client, uint16_t opcode,
                               uint32_t a, uint32_t b);

/* --- devices.c -------------------------------------------------------- */

/* A client's device collections and tokens, on its context `ctx`
 * (borrowed; it must outlive them). The client's thread only. */
struct aipc_devices;
int aipc_devices_new(cubeb *ctx, uint32_t max_tokens, bool allow_monitors,
                     struct aipc_devices **out);
void aipc_devices_destroy(struct aipc_devices *devices);
/* Enumerates devices of `type` and answers `req` (DEVICES_REPLY) with
 * those the client may see, each with a fresh token. 0 or -errno. */
int aipc_devices_enumerate(struct aipc_devices *devices, uint32_t type,
                           struct aipc_request *req);
/* The devid a token stands for (0: NULL, the default), or -ENODEV. */
int aipc_devices_resolve(const struct aipc_devices *devices, uint64_t token,
                         cubeb_devid *out);
/* The devid for an input stream on "the default" (see devices.c), valid
 * until `hold` is destroyed with cubeb_device_collection_destroy. */
int aipc_devices_default_input(struct aipc_devices *devices, cubeb_devid *out,
                               cubeb_device_collection *hold);
bool aipc_device_is_monitor(const cubeb_device_info *info);
/* `s`, or its first AIPC_NAME_MAX bytes in `buf` (AIPC_NAME_MAX + 1). */
const char *aipc_bounded_string(const char *s, char *buf);

/* --- stream.c ---------------------------------------------------------- */

struct aipc_sstream_params {
  const char *name;
  cubeb_devid input_device, output_device;
  cubeb_stream_params *input, *output; /* NULL for an absent direction */
  uint32_t latency_frames;
  uint32_t shm_max;                /* bytes; 0: no bound but the server's */
  int64_t deadline_ns;             /* per callback */
  uint32_t render_ahead;           /* the limit's: where the stream allows */
  struct aipc_stream_stats *stats; /* taken; retired with the stream */
  struct aipc_stats_registry *registry;
};

/* The client's thread, like the rest but the data path. Creates the
 * shared memory and the backend stream. */
int aipc_sstream_new(struct aipc_client *client, cubeb *ctx, uint32_t id,
                     const struct aipc_sstream_params *params,
                     struct aipc_sstream **out);
/* From now on the stream asks its client nothing (a wait in progress ends
 * by its deadline): the stream is about to go. */
void aipc_sstream_cancel(struct aipc_sstream *stream);
void aipc_sstream_destroy(struct aipc_sstream *stream);
uint32_t aipc_sstream_id(const struct aipc_sstream *stream);
cubeb_stream *aipc_sstream_backend(const struct aipc_sstream *stream);
/* The fd of the stream's memory, for the client; the caller closes it
 * once sent (the server keeps only the mapping). */
int aipc_sstream_take_fd(struct aipc_sstream *stream);
const struct aipc_stream_layout *
aipc_sstream_layout(const struct aipc_sstream *stream);
/* Whether the stream renders ahead (a ring, see stream-shm.h). */
bool aipc_sstream_buffered(const struct aipc_sstream *stream);
/* The client's position, from the backend's: a buffered duplex stream's
 * backend also played the silence before each start's first output,
 * which the client never made. Monotonic. The client's thread. */
uint64_t aipc_sstream_position(struct aipc_sstream *stream, uint64_t backend);
/* The frames in a buffered stream's ring, part of its latency: output
 * rendered ahead and not yet played, or input not yet consumed. */
uint32_t aipc_sstream_ring_frames(const struct aipc_sstream *stream,
                                  bool output);
/* Stream names reach backends cut to this many bytes (JACK's port names
 * overflow past about 245). */
#define AIPC_STREAM_NAME_MAX 128
/* A client's stream name as a backend may take it: NULL stays NULL, one
 * that is not UTF-8 is refused (-EINVAL), a long one is cut at a
 * character boundary into `buf` (AIPC_STREAM_NAME_MAX + 1 bytes). */
int aipc_sstream_backend_name(const char *name, char *buf, const char **out);
/* Stream parameters the backend of `ctx` would fail on beyond cubeb's
 * own checks: -EINVAL, or 0. */
int aipc_sstream_check_params(cubeb *ctx, const cubeb_stream_params *in,
                              const cubeb_stream_params *out);

/* The backend guard: each request reaches libcubeb only in a state its
 * backends accept (docs/design-notes.md). Start and stop; 0 or -errno. */
int aipc_sstream_start(struct aipc_sstream *stream);
int aipc_sstream_stop(struct aipc_sstream *stream);
/* -EIO once the backend reported an error: then nothing but a stop or
 * destroy reaches it. */
int aipc_sstream_usable(const struct aipc_sstream *stream);
int aipc_sstream_register_device_changed(struct aipc_sstream *stream,
                                         bool enable);
int aipc_sstream_set_name(struct aipc_sstream *stream, const char *name);

#endif
