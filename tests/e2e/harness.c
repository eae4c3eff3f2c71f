/* SPDX-License-Identifier: ISC */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
e2e_start(struct e2e *e, const char *backend)
{
  e->clients_outlive_server = false;
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

/* Closes every fd above stderr but `a` and `b`. */
static void
close_all_but(int a, int b)
{
  DIR *d = opendir("/proc/self/fd");
  CHECK(d != NULL);
  int fds[1024], n = 0;
  struct dirent *ent;
  while ((ent = readdir(d)) && n < 1024) {
    int fd = atoi(ent->d_name);
    if (ent->d_name[0] != '.' && fd > 2 && fd != a && fd != b && fd != dirfd(d))
      fds[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++)
    close(fds[i]);
}

pid_t
e2e_spawn(struct e2e *e, void (*fn)(cubeb *ctx, void *arg), void *arg)
{
  return e2e_spawn_keeping(e, fn, arg, -1);
}

pid_t
e2e_spawn_keeping(struct e2e *e, void (*fn)(cubeb *ctx, void *arg), void *arg,
                  int keep)
{
  int fd = audioipc_server_new_client(e->server, 0);
  CHECK(fd >= 0);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    /* A client must not outlive a test that timed out. */
    if (!e->clients_outlive_server)
      prctl(PR_SET_PDEATHSIG, SIGKILL);
    close_all_but(fd, keep);
    AudioIpcInitParams params = {.server_connection = fd};
    cubeb *ctx = NULL;
    CHECK_INT(audioipc_client_init(&ctx, "e2e-client", &params), ==, CUBEB_OK);
    fn(ctx, arg);
    cubeb_destroy(ctx);
    fflush(NULL);
    /* _exit: the server's threads do not exist in this process, and
     * their memory would look leaked to LeakSanitizer. */
    _exit(0);
  }
  close(fd);
  return pid;
}
