/* SPDX-License-Identifier: ISC */
#include "harness.h"

#include "fdpass.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

void
e2e_start(struct e2e *e, const char *backend)
{
  e->clients_outlive_server = false;
  e->trusted_pids = false;
  e->pool_size = 0;
  snprintf(e->dir, sizeof(e->dir), "/tmp/aipc-e2e-XXXXXX");
  CHECK(mkdtemp(e->dir) != NULL);
  snprintf(e->wav, sizeof(e->wav), "%s/mix.wav", e->dir);
  char name[512];
  const char *slot = strstr(backend, "%s");
  if (slot)
    snprintf(name, sizeof(name), "%.*s%s%s", (int)(slot - backend), backend,
             e->wav, slot + 2);
  else
    snprintf(name, sizeof(name), "%s", backend);
  e->server = audioipc_server_start("e2e", name, NULL);
  CHECK(e->server != NULL);
}

void
e2e_stop_server(struct e2e *e)
{
  audioipc_server_stop(e->server);
  e->server = NULL;
}

void
e2e_finish(struct e2e *e)
{
  if (e->server)
    e2e_stop_server(e);
  DIR *d = opendir(e->dir);
  struct dirent *ent;
  while (d && (ent = readdir(d))) {
    if (ent->d_name[0] == '.')
      continue;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", e->dir, ent->d_name);
    unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(e->dir);
}

extern const struct e2e_client __start_aipc_e2e_clients[];
extern const struct e2e_client __stop_aipc_e2e_clients[];

/* In the client process the connection is fd 3, the kept fd 4. */
#define CLIENT_CONN_FD 3
#define CLIENT_KEPT_FD 4

static const struct e2e_client *
client_by_fn(e2e_client_fn fn)
{
  for (const struct e2e_client *c = __start_aipc_e2e_clients;
       c < __stop_aipc_e2e_clients; c++)
    if (c->fn == fn)
      return c;
  test_fail(__FILE__, __LINE__, "client function not registered");
}

static pid_t
spawn(struct e2e *e, e2e_client_fn fn, int arg, int keep)
{
  const struct e2e_client *client = client_by_fn(fn);
  /* With trusted pids the connection comes after the fork, over `pass`. */
  int fd = -1, pass[2] = {-1, -1};
  if (e->trusted_pids)
    test_socketpair(pass);
  else
    fd = audioipc_server_new_client(e->server, 0);
  CHECK(fd >= 0 || pass[0] >= 0);
  char exe[4096], arg_text[16], pool_text[16];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  CHECK(n > 0);
  exe[n] = '\0';
  snprintf(arg_text, sizeof(arg_text), "%d", keep >= 0 ? CLIENT_KEPT_FD : arg);
  snprintf(pool_text, sizeof(pool_text), "%u", e->pool_size);
  char *argv[] = {exe,      "--e2e-client", (char *)client->name,
                  arg_text, pool_text,      NULL};

  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    /* Only async-signal-safe calls until exec: the server's threads may
     * have held any lock when we forked. */
    if (!e->clients_outlive_server)
      prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (pass[1] >= 0) {
      close(pass[0]);
      fd = aipc_recv_fd(pass[1]);
    }
    int conn = fd >= 0 ? fcntl(fd, F_DUPFD, 100) : -1;
    int kept = keep >= 0 ? fcntl(keep, F_DUPFD, 101) : -1;
    if (conn < 0 || dup2(conn, CLIENT_CONN_FD) < 0 ||
        (kept >= 0 && dup2(kept, CLIENT_KEPT_FD) < 0))
      _exit(126);
    /* Like a sandboxed client: nothing but stdio and the connection. */
    close_range(kept >= 0 ? CLIENT_KEPT_FD + 1 : CLIENT_CONN_FD + 1, ~0U, 0);
    execv(exe, argv);
    _exit(127);
  }
  if (pass[0] >= 0) {
    close(pass[1]);
    fd = audioipc_server_new_client_for_pid(e->server, pid, 0);
    CHECK(fd >= 0);
    CHECK_INT(aipc_send_fd(pass[0], fd), ==, 0);
    close(pass[0]);
  }
  close(fd);
  return pid;
}

pid_t
e2e_spawn(struct e2e *e, e2e_client_fn fn, int arg)
{
  return spawn(e, fn, arg, -1);
}

pid_t
e2e_spawn_keeping(struct e2e *e, e2e_client_fn fn, int fd)
{
  return spawn(e, fn, 0, fd);
}

/* The runner's hook: in a client process, run the named client. */
int
test_child_main(int argc, char **argv)
{
  if (argc != 5 || strcmp(argv[1], "--e2e-client") != 0)
    return -1;
  for (const struct e2e_client *c = __start_aipc_e2e_clients;
       c < __stop_aipc_e2e_clients; c++) {
    if (strcmp(c->name, argv[2]) != 0)
      continue;
    AudioIpcInitParams params = {.server_connection = CLIENT_CONN_FD,
                                 .pool_size = strtoul(argv[4], NULL, 10)};
    cubeb *ctx = NULL;
    CHECK_INT(audioipc_client_init(&ctx, "e2e-client", &params), ==, CUBEB_OK);
    c->fn(ctx, atoi(argv[3]));
    cubeb_destroy(ctx);
    return 0;
  }
  fprintf(stderr, "no e2e client named %s\n", argv[2]);
  return 2;
}

void
e2e_watch_init(struct e2e_watch *w)
{
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  memset(w->states, 0, sizeof(w->states));
}

void
e2e_watch_state(struct e2e_watch *w, cubeb_state state)
{
  pthread_mutex_lock(&w->lock);
  w->states[state]++;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

void
e2e_watch_wait(struct e2e_watch *w, cubeb_state state)
{
  pthread_mutex_lock(&w->lock);
  while (w->states[state] == 0)
    pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

int
e2e_watch_count(struct e2e_watch *w, cubeb_state state)
{
  pthread_mutex_lock(&w->lock);
  int n = w->states[state];
  pthread_mutex_unlock(&w->lock);
  return n;
}

void
e2e_set_render_ahead(struct e2e *e, unsigned mode)
{
  AudioIpcServerLimits l;
  CHECK_INT(audioipc_server_get_limits(e->server, &l), ==, 0);
  l.render_ahead = mode;
  CHECK_INT(audioipc_server_set_limits(e->server, &l), ==, 0);
}

AudioIpcStreamInfo
e2e_wait_live_stream(struct e2e *e)
{
  AudioIpcStreamInfo info;
  while (audioipc_server_get_streams(e->server, &info, 1) < 1)
    usleep(1000);
  return info;
}
