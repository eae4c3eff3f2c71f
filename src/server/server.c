/* SPDX-License-Identifier: ISC */
/*
 * The server: the public API, the list of clients and one event-loop
 * thread that sends what cannot go at once (replies a full socket could
 * not take, client events). Each client has a thread of its own that
 * reads and handles its requests (client.c), so a slow or blocked
 * libcubeb call of one client never delays another, and nothing on the
 * loop thread ever calls into a backend.
 */
#include "audioipc/server.h"

#include "log.h"
#include "protocol.h"
#include "server-private.h"
#include "virtual.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct aipc_server {
  char *context_name;
  char *backend;         /* libcubeb backend name, or NULL for the default */
  char *virtual_options; /* set when the backend is the virtual device */
  char *backend_id;      /* what libcubeb gave the first context */
  cubeb *shared_ctx;     /* with AUDIOIPC_SHARED_CONTEXT=1 */
  struct aipc_limits limits;
  int64_t deadline_ns;
  struct aipc_thread_hooks hooks;
  struct aipc_loop *loop;

  pthread_mutex_t lock; /* guards everything below */
  pthread_cond_t gone;  /* a client finished its teardown */
  struct aipc_client **clients;
  size_t nclients, clients_cap;
  unsigned clients_made;
  struct aipc_stats_registry *stats;
  struct aipc_accounts *accounts;
  struct aipc_rtkit *rtkit;
  struct aipc_event_queue *events;
};

static const struct aipc_limits default_limits = {
    .streams_per_client = 64,
    .shm_per_stream = 16 << 20,
    .shm_per_client = 64 << 20,
    .device_tokens = 1024,
    .requests_in_flight = 64,
    .channels_max = 8,
    .connections_per_process = 4,
    .connections_max = 32,
    .streams_per_process = 64,
    .streams_max = 128,
    .shm_per_process = 64 << 20,
    .shm_max = 256 << 20,
    .promoted_per_process = 8,
    .promoted_max = 16,
    .render_ahead = 1,
};

/* Written and read on the loop thread only (audioipc_server_set_limits
 * goes through it), so a client made there never sees half an update. */
const struct aipc_limits *
aipc_server_limits(const struct aipc_server *server)
{
  return &server->limits;
}

enum limits_op { LIMITS_GET, LIMITS_SET, LIMITS_SET_MONITORS };

struct limits_call {
  struct aipc_server *server;
  struct aipc_limits *limits;
  enum limits_op op;
};

static void
exchange_limits(void *data)
{
  struct limits_call *call = data;
  struct aipc_limits *server_limits = &call->server->limits;
  switch (call->op) {
  case LIMITS_GET:
    *call->limits = *server_limits;
    break;
  case LIMITS_SET: /* the limits, not the monitors' permission */
    call->limits->allow_monitors = server_limits->allow_monitors;
    *server_limits = *call->limits;
    break;
  case LIMITS_SET_MONITORS:
    server_limits->allow_monitors = call->limits->allow_monitors;
    break;
  }
}

/* Runs `op` on the loop thread; 0, or -1 with errno set. */
static int
call_limits(struct aipc_server *server, struct aipc_limits *limits,
            enum limits_op op)
{
  struct limits_call call = {.server = server, .limits = limits, .op = op};
  int r = aipc_loop_invoke(server->loop, exchange_limits, &call);
  if (r < 0) {
    errno = -r;
    return -1;
  }
  return 0;
}

int
audioipc_server_allow_monitors(void *handle, int allow)
{
  struct aipc_server *server = handle;
  if (!server) {
    errno = EINVAL;
    return -1;
  }
  struct aipc_limits l = {.allow_monitors = allow != 0};
  return call_limits(server, &l, LIMITS_SET_MONITORS);
}

int
audioipc_server_get_limits(void *handle, AudioIpcServerLimits *out)
{
  struct aipc_server *server = handle;
  if (!server || !out) {
    errno = EINVAL;
    return -1;
  }
  struct aipc_limits l;
  if (call_limits(server, &l, LIMITS_GET) < 0)
    return -1;
  *out = (AudioIpcServerLimits){.streams_per_client = l.streams_per_client,
                                .shm_per_stream = l.shm_per_stream,
                                .shm_per_client = l.shm_per_client,
                                .device_tokens = l.device_tokens,
                                .requests_in_flight = l.requests_in_flight,
                                .channels_max = l.channels_max,
                                .connections_per_process =
                                    l.connections_per_process,
                                .connections_max = l.connections_max,
                                .streams_per_process = l.streams_per_process,
                                .streams_max = l.streams_max,
                                .shm_per_process = l.shm_per_process,
                                .shm_max = l.shm_max,
                                .promoted_per_process = l.promoted_per_process,
                                .promoted_max = l.promoted_max,
                                .render_ahead = l.render_ahead};
  return 0;
}

#define SHM_PAGE 4096u

int
audioipc_server_set_limits(void *handle, const AudioIpcServerLimits *in)
{
  struct aipc_server *server = handle;
  if (!server || !in || in->streams_per_client < 1 ||
      in->streams_per_client > 4096 || in->shm_per_stream < SHM_PAGE ||
      in->shm_per_stream > (1u << 30) || in->shm_per_client < SHM_PAGE ||
      in->device_tokens < 1 || in->device_tokens > 65536 ||
      in->requests_in_flight < 1 || in->requests_in_flight > 4096 ||
      in->channels_max < 1 || in->channels_max > 32 ||
      in->connections_per_process < 1 || in->connections_per_process > 4096 ||
      in->connections_max < 1 || in->connections_max > 65536 ||
      in->streams_per_process < 1 || in->streams_per_process > 65536 ||
      in->streams_max < 1 || in->streams_max > 65536 ||
      in->shm_per_process < SHM_PAGE || in->shm_max < SHM_PAGE ||
      in->promoted_per_process > 4096 || in->promoted_max > 4096 ||
      in->render_ahead > 2) {
    errno = EINVAL;
    return -1;
  }
  struct aipc_limits l = {
      .streams_per_client = in->streams_per_client,
      .shm_per_stream = in->shm_per_stream / SHM_PAGE * SHM_PAGE,
      .shm_per_client = in->shm_per_client,
      .device_tokens = in->device_tokens,
      .requests_in_flight = in->requests_in_flight,
      .channels_max = in->channels_max,
      .connections_per_process = in->connections_per_process,
      .connections_max = in->connections_max,
      .streams_per_process = in->streams_per_process,
      .streams_max = in->streams_max,
      .shm_per_process = in->shm_per_process,
      .shm_max = in->shm_max,
      .promoted_per_process = in->promoted_per_process,
      .promoted_max = in->promoted_max,
      .render_ahead = in->render_ahead};
  return call_limits(server, &l, LIMITS_SET);
}

bool
aipc_server_context_is_shared(const struct aipc_server *server)
{
  return server->shared_ctx != NULL;
}

int64_t
aipc_server_deadline(const struct aipc_server *server)
{
  return server->deadline_ns;
}

static int
backend_init(struct aipc_server *server, cubeb **ctx)
{
  if (server->virtual_options)
    return aipc_virtual_init(ctx, server->context_name,
                             server->virtual_options);
  return cubeb_init(ctx, server->context_name, server->backend);
}

/*
 * libcubeb falls back to its other backends when the one asked for
 * refuses a context (pulse does when it has no client slot left): the
 * server refuses such a context rather than hand a client another
 * backend, its devices and its rules. With cubeb's default (NULL) every
 * context must get the backend the first one got.
 */
int
aipc_server_cubeb_init(struct aipc_server *server, cubeb **ctx)
{
  if (server->shared_ctx) {
    *ctx = server->shared_ctx;
    return 0;
  }
  int r = backend_init(server, ctx);
  if (r != CUBEB_OK) {
    aipc_warn("cannot make a cubeb context on backend %s (error %d)",
              server->backend ? server->backend : "(default)", r);
    return -EIO;
  }
  const char *got = cubeb_get_backend_id(*ctx);
  if (strcmp(got, server->backend_id) != 0) {
    aipc_warn("backend %s refused a context and libcubeb gave one on %s "
              "instead; refusing it (is %s out of clients?)",
              server->backend_id, got, server->backend_id);
    cubeb_destroy(*ctx);
    *ctx = NULL;
    return -EIO;
  }
  return 0;
}

void
aipc_server_cubeb_release(struct aipc_server *server, cubeb *ctx)
{
  if (ctx != server->shared_ctx)
    cubeb_destroy(ctx);
}

const struct aipc_thread_hooks *
aipc_server_thread_hooks(const struct aipc_server *server)
{
  return &server->hooks;
}

/* --- Clients ------------------------------------------------------------ */

struct new_client {
  struct aipc_server *server;
  int fd;
  pid_t pid;
  int pidfd; /* -1 if nobody vouched for the client */
  size_t shm_area_size;
  int result;
};

static void
add_client(void *data)
{
  struct new_client *nc = data;
  struct aipc_server *server = nc->server;
  pthread_mutex_lock(&server->lock);
  if (server->nclients == server->clients_cap) {
    size_t cap = server->clients_cap ? server->clients_cap * 2 : 16;
    struct aipc_client **grown = realloc(server->clients, cap * sizeof(*grown));
    if (!grown) {
      pthread_mutex_unlock(&server->lock);
      close(nc->fd);
      if (nc->pidfd >= 0)
        close(nc->pidfd);
      nc->result = -ENOMEM;
      return;
    }
    server->clients = grown;
    server->clients_cap = cap;
  }
  pthread_mutex_unlock(&server->lock);

  struct aipc_client *client;
  pthread_mutex_lock(&server->lock);
  unsigned number = ++server->clients_made;
  pthread_mutex_unlock(&server->lock);
  nc->result = aipc_client_new(server, server->loop, nc->fd, number, nc->pid,
                               nc->pidfd, nc->shm_area_size, &client);
  if (nc->result < 0)
    return;
  pthread_mutex_lock(&server->lock);
  server->clients[server->nclients++] = client;
  pthread_mutex_unlock(&server->lock);
}

void
aipc_server_client_gone(struct aipc_server *server, struct aipc_client *client)
{
  pthread_mutex_lock(&server->lock);
  for (size_t i = 0; i < server->nclients; i++) {
    if (server->clients[i] == client) {
      server->clients[i] = server->clients[--server->nclients];
      break;
    }
  }
  pthread_cond_broadcast(&server->gone);
  pthread_mutex_unlock(&server->lock);
}

/*
 * File descriptors. Each connection costs the server a few (its socket,
 * the client's pidfd, its backend context's: a pulse context has a socket
 * and a few eventfds), plus those in flight in its send queue (at most
 * AIPC_CONN_QUEUE_FDS_MAX). A new connection is refused (EMFILE) unless
 * that much and a reserve are still free, so that a full fd table never
 * fails a request of a client already connected: the connection limits
 * would have refused the hostile one first.
 */
#define FDS_PER_CONNECTION 16
#define FD_RESERVE 32
#define FD_LIMIT_WANTED 4096

/* Raises the soft fd limit to FD_LIMIT_WANTED where the hard one allows
 * (never lowers it). A process-wide change of the embedder's: few need
 * more than 1024 fds, but the connection limits allow more than that. */
static void
raise_fd_limit(void)
{
  struct rlimit l;
  if (getrlimit(RLIMIT_NOFILE, &l) < 0 || l.rlim_cur >= FD_LIMIT_WANTED)
    return;
  rlim_t want = l.rlim_max < FD_LIMIT_WANTED ? l.rlim_max : FD_LIMIT_WANTED;
  if (want > l.rlim_cur) {
    l.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

/* Free fds below the soft limit. */
static long
free_fds(void)
{
  struct rlimit l;
  if (getrlimit(RLIMIT_NOFILE, &l) < 0)
    return 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return 0;
  long open = -1; /* the directory's own */
  while (readdir(d))
    open++;
  closedir(d);
  open -= 2; /* "." and ".." */
  return (long)l.rlim_cur - open;
}

static int
new_client(void *handle, pid_t pid, bool trusted, size_t shm_area_size)
{
  struct aipc_server *server = handle;
  if (!server || (trusted && pid <= 0)) {
    errno = EINVAL;
    return -1;
  }
  long left = free_fds();
  if (left < FDS_PER_CONNECTION + FD_RESERVE) {
    aipc_warn("refusing a connection: %ld fds left, the clients already "
              "connected keep %d in reserve",
              left, FD_RESERVE);
    errno = EMFILE;
    return -1;
  }
  /* Holds on to the very process the embedder named: its pid can be
   * recycled, its pidfd cannot. */
  int pidfd = trusted ? aipc_pidfd_open(pid) : -1;
  if (trusted && pidfd < 0)
    return -1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int saved = errno;
    if (pidfd >= 0)
      close(pidfd);
    errno = saved;
    return -1;
  }
  struct new_client nc = {.server = server,
                          .fd = sv[0],
                          .pid = pid,
                          .pidfd = pidfd,
                          .shm_area_size = shm_area_size};
  int r = aipc_loop_invoke(server->loop, add_client, &nc);
  if (r == 0) {
    r = nc.result;
  } else {
    close(sv[0]);
    if (pidfd >= 0)
      close(pidfd);
  }
  if (r < 0) {
    close(sv[1]);
    /* Over a connection limit: "too many users". */
    errno = r == -ENOSPC ? EUSERS : -r;
    return -1;
  }
  return sv[1];
}

int
audioipc_server_new_client(void *server, size_t shm_area_size)
{
  return new_client(server, 0, false, shm_area_size);
}

int
audioipc_server_new_client_for_pid(void *server, pid_t pid,
                                   size_t shm_area_size)
{
  return new_client(server, pid, true, shm_area_size);
}

/* --- Start and stop ----------------------------------------------------- */

struct aipc_stats_registry *
aipc_server_stats(struct aipc_server *server)
{
  return server->stats;
}

struct aipc_accounts *
aipc_server_accounts(struct aipc_server *server)
{
  return server->accounts;
}

struct aipc_rtkit *
aipc_server_rtkit(struct aipc_server *server)
{
  return server->rtkit;
}

struct aipc_event_queue *
aipc_server_events(struct aipc_server *server)
{
  return server->events;
}

struct aipc_client *
aipc_server_find_client(struct aipc_server *server, unsigned number)
{
  struct aipc_client *found = NULL;
  pthread_mutex_lock(&server->lock);
  for (size_t i = 0; i < server->nclients && !found; i++)
    if (aipc_client_number(server->clients[i]) == number)
      found = server->clients[i];
  pthread_mutex_unlock(&server->lock);
  return found;
}

int
audioipc_server_get_stream_stats(void *handle, AudioIpcStreamStats *stats,
                                 size_t max)
{
  struct aipc_server *server = handle;
  if (!server)
    return -1;
  return aipc_stats_export(server->stats, stats, max);
}

int
audioipc_server_get_streams(void *handle, AudioIpcStreamInfo *streams,
                            size_t max)
{
  struct aipc_server *server = handle;
  if (!server)
    return -1;
  return aipc_stats_export_live(server->stats, streams, max);
}

int
audioipc_server_get_clients(void *handle, AudioIpcClientInfo *clients,
                            size_t max)
{
  struct aipc_server *server = handle;
  if (!server)
    return -1;
  pthread_mutex_lock(&server->lock);
  size_t n = server->nclients;
  for (size_t i = 0; i < n && i < max; i++)
    aipc_client_describe(server->clients[i], &clients[i]);
  pthread_mutex_unlock(&server->lock);
  return n > INT32_MAX ? INT32_MAX : (int)n;
}

static void
server_free(struct aipc_server *server)
{
  aipc_stats_registry_destroy(server->stats);
  aipc_accounts_destroy(server->accounts);
  aipc_rtkit_destroy(server->rtkit);
  if (server->shared_ctx)
    cubeb_destroy(server->shared_ctx);
  free(server->clients);
  free(server->context_name);
  free(server->backend);
  free(server->virtual_options);
  free(server->backend_id);
  pthread_cond_destroy(&server->gone);
  pthread_mutex_destroy(&server->lock);
  free(server);
}

void *
audioipc_server_start(const char *context_name, const char *backend_name,
                      const AudioIpcServerInitParams *params)
{
  struct aipc_server *server = calloc(1, sizeof(*server));
  if (!server)
    return NULL;
  raise_fd_limit();
  pthread_mutex_init(&server->lock, NULL);
  pthread_cond_init(&server->gone, NULL);
  server->limits = default_limits;
  server->rtkit = aipc_rtkit_new();
  if (!server->rtkit || aipc_stats_registry_new(&server->stats) < 0 ||
      aipc_accounts_new(&server->accounts) < 0) {
    server_free(server);
    return NULL;
  }
  server->context_name = strdup(context_name ? context_name : "audioipc");
  if (backend_name && strncmp(backend_name, "virtual", 7) == 0 &&
      (backend_name[7] == '\0' || backend_name[7] == ':'))
    server->virtual_options =
        strdup(backend_name[7] == ':' ? backend_name + 8 : "");
  else if (backend_name)
    server->backend = strdup(backend_name);
  if (params) {
    server->hooks.create = params->thread_create_callback;
    server->hooks.destroy = params->thread_destroy_callback;
  }

  /* Check the backend now, so a bad name fails here and not per client. */
  cubeb *probe;
  if (backend_init(server, &probe) != CUBEB_OK) {
    aipc_error("backend %s is not available",
               backend_name ? backend_name : "(default)");
    server_free(server);
    return NULL;
  }
  const char *got = cubeb_get_backend_id(probe);
  if (server->backend && !server->virtual_options &&
      strcmp(got, server->backend) != 0) {
    aipc_error("backend %s is not available (libcubeb offered %s)",
               server->backend, got);
    cubeb_destroy(probe);
    server_free(server);
    return NULL;
  }
  /* After the probe, which logs options that do not parse. */
  server->deadline_ns = server->virtual_options && aipc_virtual_clock_is_fast(
                                                       server->virtual_options)
                            ? AIPC_DEADLINE_FAST_CLOCK_NS
                            : AIPC_DEADLINE_NS;
  server->backend_id = strdup(got);
  if (!server->backend_id) {
    cubeb_destroy(probe);
    server_free(server);
    return NULL;
  }
  const char *shared = getenv("AUDIOIPC_SHARED_CONTEXT");
  if (shared && strcmp(shared, "1") == 0)
    server->shared_ctx = probe;
  else
    cubeb_destroy(probe);

  if (aipc_loop_new("aipc-server", &server->hooks, &server->loop) < 0) {
    server_free(server);
    return NULL;
  }
  if (aipc_event_queue_new(server, server->loop, &server->events) < 0) {
    aipc_loop_destroy(server->loop);
    server_free(server);
    return NULL;
  }
  return server;
}

static void
disconnect_all(void *data)
{
  struct aipc_server *server = data;
  pthread_mutex_lock(&server->lock);
  size_t n = server->nclients;
  struct aipc_client **snapshot = malloc((n ? n : 1) * sizeof(*snapshot));
  if (snapshot && n)
    memcpy(snapshot, server->clients, n * sizeof(*snapshot));
  pthread_mutex_unlock(&server->lock);
  /* Clients only leave the list on this thread, so the snapshot holds. */
  for (size_t i = 0; snapshot && i < n; i++)
    aipc_client_disconnect(snapshot[i]);
  free(snapshot);
}

void
audioipc_server_stop(void *handle)
{
  struct aipc_server *server = handle;
  if (!server)
    return;
  aipc_loop_invoke(server->loop, disconnect_all, server);
  pthread_mutex_lock(&server->lock);
  while (server->nclients)
    pthread_cond_wait(&server->gone, &server->lock);
  pthread_mutex_unlock(&server->lock);
  aipc_event_queue_destroy(server->events);
  aipc_loop_destroy(server->loop);
  server_free(server);
}

void
audioipc_server_virtual_device_changed(void)
{
  aipc_virtual_trigger_device_changed();
}

void
audioipc_server_virtual_collection_changed(void)
{
  aipc_virtual_trigger_collection_changed(CUBEB_DEVICE_TYPE_INPUT |
                                          CUBEB_DEVICE_TYPE_OUTPUT);
}
