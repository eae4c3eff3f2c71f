/* SPDX-License-Identifier: ISC */
/*
 * aipc top: what a running "aipc serve" holds, once a second, from its
 * control socket (PATH.ctl; see aipc.h). Never through the audio
 * protocol: a client connection has no way to ask.
 */
#include "aipc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char top_usage[] =
    "usage: aipc top --connect PATH [--once] [--json]\n"
    "\n"
    "Shows what the server of \"aipc serve --listen PATH\" holds, refreshed "
    "once a\nsecond until interrupted: per client its number, pid and uid; "
    "per stream its\ndirection, rate, channels, sample format, latency "
    "(frames), state,\ncallbacks, deadline misses and the server's wait "
    "for the client per callback\n(p50 and p99, in microseconds). It asks "
    "on PATH.ctl, which only the user\nthe server runs as may use.\n"
    "\n"
    "Options:\n"
    "  --connect PATH   the server's socket (as given to serve --listen)\n"
    "  --once           show one snapshot and exit\n"
    "  --json           one JSON object per snapshot, on one line\n"
    "  -h, --help       show this help\n";

/* Asks the control socket at `addr` for a snapshot. Returns it (the
 * caller frees it) or NULL (reported). */
static char *
ask(const struct sockaddr_un *addr, bool json)
{
  const char *path = addr->sun_path;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    fprintf(stderr, "aipc top: cannot make a socket: %s\n", strerror(errno));
    return NULL;
  }
  char *reply = NULL;
  const char *req = json ? AIPC_CONTROL_JSON : AIPC_CONTROL_TEXT;
  /* A server that refuses us may have answered and closed before our
   * request goes: its answer is still there to read. */
  if (connect(sock, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ||
      (send(sock, req, strlen(req), MSG_NOSIGNAL) < 0 && errno != EPIPE)) {
    fprintf(stderr, "aipc top: cannot ask %s: %s\n", path, strerror(errno));
    goto out;
  }
  /* One message: learn its size first. */
  ssize_t size = recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC);
  reply = size > 0 ? malloc((size_t)size + 1) : NULL;
  if (!reply || recv(sock, reply, (size_t)size, 0) != size) {
    fprintf(stderr, "aipc top: %s sent no answer%s%s\n", path,
            size < 0 ? ": " : "", size < 0 ? strerror(errno) : "");
    free(reply);
    reply = NULL;
    goto out;
  }
  reply[size] = '\0';
  if (strncmp(reply, AIPC_CONTROL_ERROR, strlen(AIPC_CONTROL_ERROR)) == 0) {
    fprintf(stderr, "aipc top: %s refused: %s\n", path,
            reply + strlen(AIPC_CONTROL_ERROR));
    free(reply);
    reply = NULL;
  }
out:
  close(sock);
  return reply;
}

int
aipc_top_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"connect", required_argument, NULL, 'c'},
      {"once", no_argument, NULL, 'o'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *path = NULL;
  bool once = false, json = false;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'o':
      once = true;
      break;
    case 'j':
      json = true;
      break;
    case 'h':
      fputs(top_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("top", top_usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error("top", top_usage, "unexpected argument %s",
                            argv[optind]);
  if (!path)
    return aipc_usage_error("top", top_usage, "--connect PATH is needed");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (!*path ||
      strlen(path) + strlen(AIPC_CONTROL_SUFFIX) >= sizeof(addr.sun_path))
    return aipc_usage_error("top", top_usage,
                            "--connect %s: not a socket path aipc serve "
                            "could listen on",
                            path);
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s%s", path,
           AIPC_CONTROL_SUFFIX);

  /* Like top: a terminal gets the screen redrawn; anything else gets one
   * snapshot after another. */
  bool redraw = !once && !json && isatty(STDOUT_FILENO);
  for (;;) {
    char *snapshot = ask(&addr, json);
    if (!snapshot)
      return AIPC_EXIT_FAILURE;
    if (redraw)
      fputs("\033[H\033[2J", stdout);
    fputs(snapshot, stdout);
    free(snapshot);
    if (once)
      break;
    if (!json && !redraw)
      putchar('\n');
    fflush(stdout);
    struct timespec second = {.tv_sec = 1};
    while (nanosleep(&second, &second) < 0 && errno == EINTR)
      ;
  }
  return AIPC_EXIT_OK;
}
