/* SPDX-License-Identifier: ISC */
#include "aipc.h"

#include <audioipc/client.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool
aipc_sound_server_reachable(void)
{
  const char *pulse = getenv("PULSE_SERVER");
  if (pulse && *pulse)
    return true;
  const char *runtime = getenv("XDG_RUNTIME_DIR");
  if (!runtime || !*runtime)
    return false;
  char path[4096];
  struct stat st;
  snprintf(path, sizeof(path), "%s/pulse/native", runtime);
  return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Asks the backend about itself through a client of our own, which also
 * proves that the server can open it. The client stays until
 * aipc_backend_stop: it keeps the backend's device open, so that a
 * virtual device's out= file holds everything the server played, not
 * only what its last clients played. */
static int
probe(const char *cmd, struct aipc_backend *b)
{
  int fd = audioipc_server_new_client(b->server, 0);
  if (fd < 0) {
    fprintf(stderr, "aipc %s: cannot make a client connection: %s\n", cmd,
            strerror(errno));
    return -1;
  }
  AudioIpcInitParams params = {.server_connection = fd};
  cubeb *ctx;
  int r = audioipc_client_init(&ctx, "aipc-probe", &params);
  if (r != CUBEB_OK) {
    fprintf(stderr,
            "aipc %s: the server cannot open backend \"%s\" (cubeb error "
            "%d)\n",
            cmd, b->name[0] ? b->name : "cubeb's default", r);
    return -1;
  }
  const char *id = cubeb_get_backend_id(ctx);
  snprintf(b->id, sizeof(b->id), "%s", id ? id : "unknown");
  if (cubeb_get_preferred_sample_rate(ctx, &b->rate) != CUBEB_OK ||
      b->rate == 0)
    b->rate = 48000;
  b->probe = ctx;
  return 0;
}

static int
start(const char *cmd, const char *name, struct aipc_backend *b)
{
  snprintf(b->name, sizeof(b->name), "%s", name ? name : "");
  b->server = audioipc_server_start("aipc", name, NULL);
  if (!b->server) {
    fprintf(stderr, "aipc %s: cannot start a server on backend \"%s\"\n", cmd,
            name ? name : "cubeb's default");
    return -1;
  }
  if (probe(cmd, b) < 0) {
    aipc_backend_stop(b);
    return -1;
  }
  return 0;
}

int
aipc_backend_start(const char *cmd, const char *requested,
                   const char *virtual_default, struct aipc_backend *b)
{
  memset(b, 0, sizeof(*b));
  if (requested)
    return start(cmd, requested, b);
  if (aipc_sound_server_reachable()) {
    if (start(cmd, NULL, b) == 0) {
      /* libcubeb falls back to ALSA by itself when the sound server
       * does not answer; that is not what we were looking for. */
      if (strncmp(b->id, "pulse", 5) == 0)
        return 0;
      fprintf(stderr,
              "aipc %s: no sound server answered (cubeb's default "
              "backend is %s)\n",
              cmd, b->id);
      aipc_backend_stop(b);
    }
    fprintf(stderr, "aipc %s: falling back to the virtual device\n", cmd);
  }
  return start(cmd, virtual_default, b);
}

void
aipc_backend_stop(struct aipc_backend *b)
{
  if (b->probe)
    cubeb_destroy(b->probe);
  b->probe = NULL;
  audioipc_server_stop(b->server);
  b->server = NULL;
}

void
aipc_backend_describe(const struct aipc_backend *b, char *buf, size_t size)
{
  if (b->name[0])
    snprintf(buf, size, "%s (%s)", b->id, b->name);
  else
    snprintf(buf, size, "%s (cubeb's default)", b->id);
}
