/* SPDX-License-Identifier: ISC */
/*
 * audioipc server: serves cubeb to sandboxed clients.
 *
 * The server owns the real audio I/O, through Debian's libcubeb (any of its
 * backends) or through the built-in virtual device ("virtual:OPTIONS", see
 * README). Each client is one connection, made with
 * audioipc_server_new_client(); the embedder hands the returned fd to the
 * sandboxed process, which passes it to audioipc_client_init().
 *
 * Every byte and fd from a client is treated as hostile: bad requests get
 * an error reply or the connection is dropped; the server and its other
 * clients carry on. What the server guarantees, whatever a client sends:
 *
 *  - libcubeb never sees a call it asserts on: each stream keeps the state
 *    libcubeb's backends require, and a request that would break it is
 *    refused or made safe (docs/design-notes.md, "The backend guard").
 *  - Every wait on a client is bounded: the backend's audio thread waits
 *    at most 20 ms per callback for a client's answer (then plays
 *    silence); each client's requests are handled on a thread of its
 *    own, so a client whose backend calls block holds up only itself; a
 *    client that hangs up is torn down, and the server stopped, in
 *    bounded time.
 *  - No client hears another: monitors (a sound server's recording of
 *    what is played) and loopback streams are refused unless the
 *    embedder allows them (audioipc_server_allow_monitors).
 *  - A client gets the backend the server was started with, or an error:
 *    libcubeb's silent fallback to another backend is refused.
 */
#ifndef AUDIOIPC_SERVER_H
#define AUDIOIPC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AUDIOIPC_EXPORT
#define AUDIOIPC_EXPORT __attribute__((visibility("default")))
#endif

typedef struct {
  /* Called on every thread the server starts, first thing on that thread,
   * with its name; and on the same thread as it ends. Either may be NULL. */
  void (*thread_create_callback)(const char *thread_name);
  void (*thread_destroy_callback)(void);
} AudioIpcServerInitParams;

/*
 * Starts a server. `context_name` names the server's cubeb contexts;
 * `backend_name` picks the backend: NULL for cubeb's default, a libcubeb
 * backend name ("pulse", "alsa", "jack", ...), or "virtual" with options
 * after a colon ("virtual:clock=fast,out=mix.wav"). `params` may be NULL.
 *
 * Each client gets a cubeb context of its own, created when it connects,
 * and a thread of its own for its requests, so clients never share a
 * backend thread or lock. Set AUDIOIPC_SHARED_CONTEXT=1 in the
 * environment to make all clients share one context instead (they then
 * share its locks too, and device-collection registration is refused).
 * A named backend that libcubeb does not give (it falls back to another
 * when the one named refuses) fails the start.
 *
 * Returns the server, or NULL if its threads could not start or the
 * backend name is not understood (the reason is logged to stderr). Any
 * thread; the server's own work runs on threads it starts.
 */
AUDIOIPC_EXPORT void *
audioipc_server_start(const char *context_name, const char *backend_name,
                      const AudioIpcServerInitParams *params);

/*
 * Makes a connection for a new client and returns the client's end: a
 * close-on-exec fd that the caller owns and hands to the client process
 * (by inheritance or SCM_RIGHTS), or -1 on failure (errno set).
 * `shm_area_size` bounds the shared memory of each of the client's
 * streams in bytes (in whole pages: below 4096 no stream can be made);
 * 0 sizes it per stream from its parameters, within the server's limits
 * (see AudioIpcServerLimits). Fails with EUSERS when the process (see
 * below) or the server has as many connections as the limits allow, and
 * with EMFILE when fewer than 48 fds are free (a reserve for the clients
 * already connected; audioipc_server_start raises the soft fd limit to
 * 4096 where the hard limit allows, a process-wide change).
 * Any thread.
 */
AUDIOIPC_EXPORT int audioipc_server_new_client(void *server,
                                               size_t shm_area_size);

/*
 * As audioipc_server_new_client, and records `pid` as the client's
 * trusted process id (a socketpair's peer credentials name the server
 * itself, so only the embedder knows it). Call it once the child exists
 * (fork first, then hand the fd over with SCM_RIGHTS): the server holds
 * on to that very process with a pidfd, so a pid recycled after the
 * child's death never stands in for it. Fails with EINVAL if pid <= 0,
 * ESRCH if no such process exists.
 *
 * Real-time priority: a client whose own attempt is refused (a sandbox,
 * no RLIMIT_RTPRIO) asks the server to promote its callback thread. The
 * server does so only for a thread of this process while it lives, never
 * for more threads than the process has live streams (all its
 * connections together) nor beyond promoted_per_process and
 * promoted_max, at AUDIOIPC_RT_PRIORITY (default 10, 0 = never):
 * directly (SCHED_FIFO) when it may, after lowering the process's
 * RLIMIT_RTTIME to 200 ms as RTKit would demand, else through RTKit on
 * the system bus (SCHED_RR; RTKit then checks the thread's owner and
 * caps the priority; at most 4 requests per process and 16 in all per
 * 20 s). A promoted thread is demoted when its client goes, and when the
 * process has had fewer streams than promoted threads for 200 ms. Clients
 * made with audioipc_server_new_client get no promotion from the server.
 * All of this process's connections count together against the
 * per-process limits of AudioIpcServerLimits.
 */
AUDIOIPC_EXPORT int audioipc_server_new_client_for_pid(void *server, pid_t pid,
                                                       size_t shm_area_size);

/*
 * Disconnects every client (their calls fail, their streams get
 * CUBEB_STATE_ERROR), destroys their streams and contexts, stops the
 * server's threads and frees it. NULL is ignored. Not from a server
 * thread or callback.
 */
AUDIOIPC_EXPORT void audioipc_server_stop(void *server);

/*
 * Limits on what one client may ask of the server. Going over one gets
 * the client an error reply to that request; the server and its other
 * clients carry on.
 *
 * Not configurable, because the protocol fixes them: one message is at
 * most 64 KiB with at most 4 fds; strings at most 255 bytes; 128 devices
 * per enumeration; stream rates 1000..192000 Hz; latencies 1..96000
 * frames.
 */
typedef struct {
  /* Streams one client may have at once; STREAM_INIT beyond it fails
   * (cubeb_stream_init returns CUBEB_ERROR). Default 64; 1..4096. */
  uint32_t streams_per_client;
  /* Bytes of shared memory of one stream. A stream's region holds one
   * request of max(latency, 512) frames of input and output; if that
   * does not fit, requests get fewer frames (the backend's callbacks are
   * served in chunks), and if not even one frame fits, creation fails.
   * audioipc_server_new_client's shm_area_size, when smaller, bounds it
   * further. Rounded down to a multiple of 4096 (the page). Default
   * 16 MiB; 4096..1 GiB. */
  uint32_t shm_per_stream;
  /* Bytes of shared memory of all of one client's streams together; a
   * stream that would go over it is not created. Default 64 MiB; at
   * least 4096. */
  uint64_t shm_per_client;
  /* Devices one client's context remembers. A device keeps the token
   * (the client's devid) its first enumeration gave it for the context's
   * life; at the limit, the devices no enumeration has listed for
   * longest are forgotten, and an enumeration that alone lists more
   * fails. Default 1024; 1..65536. */
  uint32_t device_tokens;
  /* Kept for compatibility; no effect. Each client's requests are read
   * by a thread of its own, one at a time, each once the one before has
   * been answered: the others wait in the client's socket, whose buffer
   * bounds them, and none is refused for being too many. Default 64;
   * 1..4096. */
  uint32_t requests_in_flight;
  /* Channels of a stream's input or output. Default 8; 1..32 (the
   * backend may refuse more than it supports). */
  uint32_t channels_max;

  /*
   * What one process and the whole server may hold. A process is the one
   * named to audioipc_server_new_client_for_pid: all of its connections
   * count together. A connection made with audioipc_server_new_client
   * counts as a process of its own. The defaults keep the server well
   * inside PulseAudio's own limits (64 clients, 256 streams per sink)
   * and RTKit's (25 real-time threads per user), whatever the clients do.
   */
  /* Connections (each with at most one backend context, i.e. one client
   * of the sound server): audioipc_server_new_client(_for_pid) beyond
   * either fails with EUSERS. Defaults 4 per process, 32 in all;
   * 1..4096 and 1..65536. */
  uint32_t connections_per_process;
  uint32_t connections_max;
  /* Streams: STREAM_INIT beyond either fails. Defaults 64 per process,
   * 128 in all; 1..65536 each. */
  uint32_t streams_per_process;
  uint32_t streams_max;
  /* Bytes of shared memory of streams: a stream that would go over either
   * is not created. Defaults 64 MiB per process, 256 MiB in all; at least
   * 4096 each. */
  uint64_t shm_per_process;
  uint64_t shm_max;
  /* Threads the server has given real-time priority (directly or through
   * RTKit), never more in a process than it has live streams: a
   * promotion beyond any of them fails with EBUSY. Defaults 8 per
   * process, 16 in all (below RTKit's 25 per user, so that no client can
   * use up what RTKit allows the others); 0..4096 each. */
  uint32_t promoted_per_process;
  uint32_t promoted_max;

  /* Render-ahead (docs/design-notes.md, "Render-ahead"): 1 (the
   * default) lets an output-only or input-only stream's client work
   * ahead of the backend through a ring in the stream's shared memory,
   * so the backend's audio thread waits for the client only when the
   * ring lacks what a callback needs (at start, or when the client fell
   * behind); its amount is taken out of the stream's latency. 2 does so
   * for duplex streams too, which adds that amount to their
   * input-to-output latency (the first that many output frames are
   * silence). 0 keeps every stream synchronous: each callback waits for
   * the client's answer. 0..2. */
  uint32_t render_ahead;
} AudioIpcServerLimits;

/*
 * Reads the limits that clients created from now on get. Returns 0, or
 * -1 (errno EINVAL) if `server` or `limits` is NULL. Any thread.
 */
AUDIOIPC_EXPORT int audioipc_server_get_limits(void *server,
                                               AudioIpcServerLimits *limits);

/*
 * Sets the limits of the clients created after this call returns;
 * clients that exist keep theirs. Start from audioipc_server_get_limits
 * and change what you need. Returns 0, or -1 with errno EINVAL if
 * `server` or `limits` is NULL or a value is outside its range (then
 * nothing changes). Any thread but the backend's audio callbacks.
 */
AUDIOIPC_EXPORT int
audioipc_server_set_limits(void *server, const AudioIpcServerLimits *limits);

/*
 * Monitors: a sound server's recording of what is played to an output
 * (PulseAudio's "Monitor of ..." sources), which hears every client that
 * plays there. By default the server neither lists them nor opens them,
 * refuses streams with CUBEB_STREAM_PREF_LOOPBACK, and never gives one
 * as "the default input": when the backend's default input is a monitor,
 * a stream on the default gets the first input that is not one (listed
 * as the preferred input), or fails if there is none. An embedder whose
 * clients may hear others (a recording application) allows them, for the
 * clients created after this call. Returns 0, or -1 with errno EINVAL if
 * `server` is NULL. Any thread but the backend's audio callbacks.
 */
AUDIOIPC_EXPORT int audioipc_server_allow_monitors(void *server, int allow);

/* Statistics of one stream, as the server sees it. */
typedef struct {
  unsigned client;    /* the client's number: 1 for the server's first */
  pid_t client_pid;   /* as given to audioipc_server_new_client_for_pid, or 0 */
  uint32_t stream;    /* the stream's id within its client */
  int active;         /* 0 once the stream has been destroyed */
  uint64_t callbacks; /* backend callbacks served */
  uint64_t frames;    /* frames the client produced (or consumed) */
  uint64_t misses;    /* requests the client did not answer in time */
  /* How long the backend's audio thread waited for the client per
   * request, in microseconds (1 us resolution up to 4 ms). */
  uint32_t wait_p50_us, wait_p99_us, wait_p999_us, wait_max_us;
  uint32_t shm_bytes; /* the stream's shared memory */
  /* Requests whose answer was not there yet when the audio thread came
   * to collect it, so that it had to sleep. */
  uint64_t sleeps;
} AudioIpcStreamStats;

/*
 * Copies the statistics of the server's streams, live ones first, then up
 * to the 256 most recently destroyed, into `stats` (at most `max`
 * entries). Returns the number of streams known (which may exceed `max`),
 * or -1 if `server` is NULL. Any thread.
 */
AUDIOIPC_EXPORT int audioipc_server_get_stream_stats(void *server,
                                                     AudioIpcStreamStats *stats,
                                                     size_t max);

/* One client connection, as the server sees it. */
typedef struct {
  unsigned client; /* the client's number (AudioIpcStreamStats.client) */
  pid_t pid;       /* as given to audioipc_server_new_client_for_pid, or 0 */
  /* That process's effective uid when the connection was made, or
   * (uid_t)-1 for a connection made without a pid. */
  uid_t uid;
} AudioIpcClientInfo;

/*
 * Copies what the server knows of its connected clients, oldest first,
 * into `clients` (at most `max` entries). Returns the number of clients
 * (which may exceed `max`), or -1 if `server` is NULL. Any thread but the
 * backend's audio callbacks. Nothing a client sends can ask for this: it
 * is for the embedder, who decides who else may see it.
 */
AUDIOIPC_EXPORT int audioipc_server_get_clients(void *server,
                                                AudioIpcClientInfo *clients,
                                                size_t max);

/* A live stream: what it is and how it fares. */
typedef struct {
  /* Its client, id and counters, as audioipc_server_get_stream_stats
   * gives them. */
  AudioIpcStreamStats stats;
  uint32_t input_channels;  /* 0: the stream has no input */
  uint32_t output_channels; /* 0: the stream has no output */
  uint32_t rate;            /* Hz */
  uint32_t format;          /* a cubeb_sample_format */
  uint32_t latency_frames;  /* as the client asked (bounded to a second) */
  /* A buffered stream's ring (see render_ahead in AudioIpcServerLimits)
   * and the output frames its client renders ahead, taken from the
   * latency asked of the backend (0 for input only); both 0 for a
   * synchronous stream. */
  uint32_t ring_frames, ahead_frames;
  /* The last cubeb_state reported to the client (CUBEB_STATE_STARTED,
   * _STOPPED, _DRAINED, _ERROR), or -1 before the first. */
  int state;
} AudioIpcStreamInfo;

/*
 * Copies the server's live streams (those not yet destroyed), newest
 * first, into `streams` (at most `max` entries). Returns the number of
 * live streams (which may exceed `max`), or -1 if `server` is NULL. Any
 * thread but the backend's audio callbacks; like
 * audioipc_server_get_clients, for the embedder only.
 */
AUDIOIPC_EXPORT int audioipc_server_get_streams(void *server,
                                                AudioIpcStreamInfo *streams,
                                                size_t max);

/*
 * Test hooks for the virtual device: make every virtual-device context in
 * this process report a device change (to each stream that registered a
 * device-changed callback) or a device collection change (to each
 * context registered for it). They reach the clients as events. Any
 * thread; no effect on other backends.
 */
AUDIOIPC_EXPORT void audioipc_server_virtual_device_changed(void);
AUDIOIPC_EXPORT void audioipc_server_virtual_collection_changed(void);

/* Periods the virtual device's realtime clocks have run in this process,
 * and how many started more than 1 ms late because the machine woke the
 * clock thread late (which no design can absorb). Any thread. */
AUDIOIPC_EXPORT void audioipc_server_virtual_timing(uint64_t *periods,
                                                    uint64_t *late_wakes);

#ifdef __cplusplus
}
#endif

#endif
