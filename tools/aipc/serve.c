/* SPDX-License-Identifier: ISC */
/*
 * aipc serve: a standalone server. Each process that connects to the
 * listening socket gets one client connection, made for its pid and sent
 * back with SCM_RIGHTS; then the listening side's socket is closed.
 * A second socket, PATH.ctl, answers "aipc top" for the server's owner
 * (aipc.h, "the control socket").
 */
#include "aipc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char serve_usage[] =
    "usage: aipc serve --listen PATH [--backend NAME]\n"
    "\n"
    "Runs a server on a Unix socket (SOCK_SEQPACKET, mode 0600). A process "
    "that\nconnects there receives one client connection (an fd, with "
    "SCM_RIGHTS) to\npass to audioipc_client_init, as \"aipc play --connect "
    "PATH\" does. A second\nsocket, PATH.ctl (mode 0600, and only for this "
    "user), tells \"aipc top\" the\nclients and their streams. Stops "
    "cleanly on SIGINT or SIGTERM and removes\nboth sockets.\n"
    "\n"
    "Options:\n"
    "  --listen PATH    the socket's path; a stale socket there is "
    "replaced, a\n"
    "                   live one is not\n"
    "  --backend NAME   the server's backend: a cubeb backend name (pulse, "
    "alsa,\n"
    "                   ...) or virtual[:OPTIONS]; default: cubeb's default "
    "when\n"
    "                   a sound server is reachable, else "
    "virtual:clock=realtime\n"
    "  -h, --help       show this help\n";

/* Removes a stale socket at `addr`, refusing a live one or anything that
 * is not a socket. Returns 0 or -1 (reported). */
static int
clear_stale(const struct sockaddr_un *addr)
{
  const char *path = addr->sun_path;
  struct stat st;
  if (lstat(path, &st) < 0) {
    if (errno == ENOENT)
      return 0;
    fprintf(stderr, "aipc serve: cannot check %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (!S_ISSOCK(st.st_mode)) {
    fprintf(stderr,
            "aipc serve: %s exists and is not a socket; not "
            "replacing it\n",
            path);
    return -1;
  }
  int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe < 0) {
    fprintf(stderr, "aipc serve: cannot make a socket: %s\n", strerror(errno));
    return -1;
  }
  int r = connect(probe, (const struct sockaddr *)addr, sizeof(*addr));
  int err = errno;
  close(probe);
  if (r == 0) {
    fprintf(stderr, "aipc serve: another server is listening on %s\n", path);
    return -1;
  }
  if (err != ECONNREFUSED) {
    fprintf(stderr, "aipc serve: cannot tell whether %s is in use: %s\n", path,
            strerror(err));
    return -1;
  }
  if (unlink(path) < 0 && errno != ENOENT) {
    fprintf(stderr, "aipc serve: cannot remove the stale socket %s: %s\n", path,
            strerror(errno));
    return -1;
  }
  return 0;
}

/* Returns the listening socket, or -1 (reported). Writes the socket
 * file's inode to *ino, to remove only our own socket at the end. */
static int
listen_on(const struct sockaddr_un *addr, ino_t *ino)
{
  const char *path = addr->sun_path;
  if (clear_stale(addr) < 0)
    return -1;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    fprintf(stderr, "aipc serve: cannot make a socket: %s\n", strerror(errno));
    return -1;
  }
  /* The umask makes the file 0600 from the start; no window where others
   * could connect. */
  mode_t old = umask(0177);
  int r = bind(sock, (const struct sockaddr *)addr, sizeof(*addr));
  int err = errno;
  umask(old);
  if (r < 0) {
    fprintf(stderr, "aipc serve: cannot bind to %s: %s\n", path, strerror(err));
    close(sock);
    return -1;
  }
  struct stat st;
  if (chmod(path, 0600) < 0 || lstat(path, &st) < 0) {
    fprintf(stderr, "aipc serve: cannot set up %s: %s\n", path,
            strerror(errno));
    goto fail;
  }
  *ino = st.st_ino;
  if (listen(sock, 64) < 0) {
    fprintf(stderr, "aipc serve: cannot listen on %s: %s\n", path,
            strerror(errno));
    goto fail;
  }
  return sock;

fail:
  unlink(path);
  close(sock);
  return -1;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/* When process `pid` started (clock ticks since boot), or 0. */
static unsigned long long
start_time(pid_t pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* After the command's closing parenthesis: field 3 onwards; the start
   * time is field 22. */
  const char *p = strrchr(buf, ')');
  unsigned long long t = 0;
  for (int field = 2; p && field < 22; field++)
    p = strchr(p + 1, ' ');
  if (p)
    t = strtoull(p + 1, NULL, 10);
  return t;
}

/*
 * A connection made for the peer's process. SO_PEERCRED names the pid it
 * had at connect(); by now that process may have gone and its pid be
 * another's. Where the kernel gives the peer's pidfd (Linux 6.5), holding
 * it keeps the pid from being reused while the server opens its own;
 * elsewhere the process at that pid must have the same start time before
 * and after the server's pidfd_open, and the peer still be connected.
 */
static int
client_for_peer(void *server, int conn, pid_t pid)
{
  int peer_pidfd = -1;
  socklen_t len = sizeof(peer_pidfd);
  if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &peer_pidfd, &len) == 0) {
    int fd = audioipc_server_new_client_for_pid(server, pid, 0);
    int saved = errno;
    close(peer_pidfd);
    errno = saved;
    return fd;
  }
  unsigned long long before = start_time(pid);
  int fd = before ? audioipc_server_new_client_for_pid(server, pid, 0) : -1;
  if (fd < 0) {
    if (!before)
      errno = ESRCH;
    return -1;
  }
  struct pollfd p = {.fd = conn, .events = POLLIN};
  if (start_time(pid) != before ||
      (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))) {
    close(fd);
    errno = ESRCH;
    return -1;
  }
  return fd;
}

/*
 * Answers one request on the control socket (conn, taken). The socket's
 * mode keeps out every other user but root; the peer's uid must also be
 * the server's, so root's processes are refused too unless the server is
 * root's. A slow peer holds the server's accept loop for at most a
 * second, and only the owner can be one.
 */
static void
answer_control(void *server, int conn, const char *backend, uint32_t rate)
{
  char req[16], reply[256];
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    close(conn);
    return;
  }
  /* The request is read in any case: closing a socket with a message
   * unread would reset the connection, and the peer lose our answer. */
  struct pollfd p = {.fd = conn, .events = POLLIN};
  ssize_t n = -1;
  if (poll(&p, 1, 1000) == 1)
    n = recv(conn, req, sizeof(req), MSG_DONTWAIT);
  if (cred.uid != geteuid()) {
    printf("aipc serve: refused pid %d, uid %u, on the control socket\n",
           (int)cred.pid, (unsigned)cred.uid);
    snprintf(reply, sizeof(reply),
             AIPC_CONTROL_ERROR "uid %u may not see this server's clients: it "
                                "serves uid %u",
             (unsigned)cred.uid, (unsigned)geteuid());
    send(conn, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(conn);
    return;
  }
  bool json = n == 4 && memcmp(req, AIPC_CONTROL_JSON, 4) == 0;
  bool text = n == 4 && memcmp(req, AIPC_CONTROL_TEXT, 4) == 0;
  char *snapshot = NULL;
  size_t size = 0;
  int r = -EINVAL;
  if (json || text)
    r = aipc_snapshot_render(server, backend, rate, json, &snapshot, &size);
  if (r == 0 && send(conn, snapshot, size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    r = -errno;
  if (r < 0) {
    snprintf(reply, sizeof(reply), AIPC_CONTROL_ERROR "%s",
             json || text ? strerror(-r)
                          : "unknown request (\"" AIPC_CONTROL_TEXT
                            "\" or \"" AIPC_CONTROL_JSON "\")");
    send(conn, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  free(snapshot);
  close(conn);
}

/* The server's number for the connection just made for `pid` (its
 * newest: this thread makes them all), as "aipc top" shows it; 0 if it
 * has gone already. */
static unsigned
client_number(void *server, pid_t pid)
{
  /* Clients are listed oldest first; the new one is among the last. */
  int n = audioipc_server_get_clients(server, NULL, 0);
  AudioIpcClientInfo *clients =
      n > 0 ? calloc((size_t)n, sizeof(*clients)) : NULL;
  if (clients) {
    int now = audioipc_server_get_clients(server, clients, (size_t)n);
    n = now < n ? now : n;
  }
  unsigned number = 0;
  for (int i = 0; clients && i < n; i++)
    if (clients[i].pid == pid && clients[i].client > number)
      number = clients[i].client;
  free(clients);
  return number;
}

/* Serves one accepted connection (taken). */
static void
serve_one(void *server, int conn)
{
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    fprintf(stderr, "aipc serve: cannot read the peer's credentials: %s\n",
            strerror(errno));
    close(conn);
    return;
  }
  int fd = client_for_peer(server, conn, cred.pid);
  if (fd < 0) {
    fprintf(stderr, "aipc serve: cannot make a connection for pid %d: %s\n",
            (int)cred.pid, strerror(errno));
    aipc_send_fd(conn, -1); /* tells the peer, which is all we can do */
    close(conn);
    return;
  }
  unsigned number = client_number(server, cred.pid);
  int r = aipc_send_fd(conn, fd);
  close(fd);
  close(conn);
  if (r == -EPIPE || r == -ECONNRESET)
    printf("aipc serve: pid %d hung up without taking its connection\n",
           (int)cred.pid);
  else if (r < 0)
    fprintf(stderr, "aipc serve: cannot send pid %d its connection: %s\n",
            (int)cred.pid, strerror(-r));
  else
    printf("aipc serve: client %u connected: pid %d, uid %u\n", number,
           (int)cred.pid, (unsigned)cred.uid);
}

/*
 * The fd table is full: the listener stays readable, and retrying at once
 * spins (100 % CPU, a log line each time). Accept the connection with
 * the spare fd and close it, which refuses that peer and drains the
 * backlog; a burst is logged once, when it begins and when it ends. If
 * even that fails, wait a little before the next try.
 */
static void
refuse_one(int lsock, int *spare, unsigned *refused)
{
  if (*refused == 0)
    fprintf(stderr, "aipc serve: out of fds; refusing connections until "
                    "some close\n");
  if (*spare >= 0) {
    close(*spare);
    *spare = -1;
  }
  int conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
  if (conn >= 0) {
    close(conn);
    (*refused)++;
  }
  *spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (conn < 0 || *spare < 0)
    poll(NULL, 0, 100);
}

int
aipc_serve_main(int argc, char **argv)
{
  static const struct option options[] = {
      {"listen", required_argument, NULL, 'l'},
      {"backend", required_argument, NULL, 'b'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *path = NULL, *backend = NULL;
  int c;
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    switch (c) {
    case 'l':
      path = optarg;
      break;
    case 'b':
      backend = optarg;
      break;
    case 'h':
      fputs(serve_usage, stdout);
      return AIPC_EXIT_OK;
    default:
      return aipc_bad_option("serve", serve_usage, c, argv);
    }
  }
  if (optind != argc)
    return aipc_usage_error("serve", serve_usage, "unexpected argument %s",
                            argv[optind]);
  if (!path)
    return aipc_usage_error("serve", serve_usage, "--listen PATH is needed");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  struct sockaddr_un ctl_addr = {.sun_family = AF_UNIX};
  size_t room = sizeof(addr.sun_path) - strlen(AIPC_CONTROL_SUFFIX);
  if (!*path || strlen(path) >= room)
    return aipc_usage_error("serve", serve_usage,
                            "--listen %s: not a usable socket path (1 to "
                            "%zu bytes, with room for " AIPC_CONTROL_SUFFIX ")",
                            path, room - 1);
  memcpy(addr.sun_path, path, strlen(path) + 1);
  snprintf(ctl_addr.sun_path, sizeof(ctl_addr.sun_path), "%s%s", path,
           AIPC_CONTROL_SUFFIX);

  /* Blocked before any thread starts, so that only the signalfd sees
   * them; the server's threads inherit the mask. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
    fprintf(stderr, "aipc serve: cannot block SIGINT and SIGTERM: %s\n",
            strerror(errno));
    return AIPC_EXIT_FAILURE;
  }
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) {
    fprintf(stderr, "aipc serve: cannot make a signalfd: %s\n",
            strerror(errno));
    return AIPC_EXIT_FAILURE;
  }
  struct aipc_backend b;
  if (aipc_backend_start("serve", backend, "virtual:clock=realtime", &b) < 0) {
    close(sfd);
    return AIPC_EXIT_FAILURE;
  }
  /* Kept so that a full fd table still lets a connection be accepted and
   * closed, instead of leaving the listener readable forever. */
  int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  /* Last: once the socket exists, the server is ready. */
  ino_t ino = 0, ctl_ino = 0;
  int ctl = listen_on(&ctl_addr, &ctl_ino);
  int lsock = ctl >= 0 ? listen_on(&addr, &ino) : -1;
  if (lsock < 0) {
    if (ctl >= 0) {
      close(ctl);
      unlink(ctl_addr.sun_path);
    }
    if (spare >= 0)
      close(spare);
    aipc_backend_stop(&b);
    close(sfd);
    return AIPC_EXIT_FAILURE;
  }
  char description[700];
  aipc_backend_describe(&b, description, sizeof(description));
  printf("aipc serve: backend %s, %u Hz; listening on %s\n", description,
         b.rate, path);

  int status = AIPC_EXIT_OK;
  unsigned clients = 0, refused = 0;
  for (;;) {
    struct pollfd fds[3] = {{.fd = sfd, .events = POLLIN},
                            {.fd = lsock, .events = POLLIN},
                            {.fd = ctl, .events = POLLIN}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "aipc serve: poll failed: %s\n", strerror(errno));
      status = AIPC_EXIT_FAILURE;
      break;
    }
    if (fds[0].revents) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        printf("aipc serve: SIG%s: stopping after %u clients\n",
               sigabbrev_np((int)si.ssi_signo), clients);
        break;
      }
    }
    if (fds[2].revents) {
      int conn = accept4(ctl, NULL, NULL, SOCK_CLOEXEC);
      if (conn >= 0)
        answer_control(b.server, conn, description, b.rate);
      else if (errno == EMFILE || errno == ENFILE)
        refuse_one(ctl, &spare, &refused);
    }
    if (fds[1].revents) {
      int conn = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
      if (conn < 0 && (errno == EMFILE || errno == ENFILE)) {
        refuse_one(lsock, &spare, &refused);
        continue;
      }
      if (conn < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
          fprintf(stderr, "aipc serve: cannot accept a connection: %s\n",
                  strerror(errno));
        continue;
      }
      if (refused) {
        printf("aipc serve: out of fds: refused %u connections\n", refused);
        refused = 0;
      }
      clients++;
      serve_one(b.server, conn);
    }
  }

  aipc_backend_stop(&b);
  if (spare >= 0)
    close(spare);
  close(lsock);
  close(ctl);
  const struct {
    const char *path;
    ino_t ino;
  } ours[] = {{path, ino}, {ctl_addr.sun_path, ctl_ino}};
  for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
    struct stat st;
    if (lstat(ours[i].path, &st) == 0 && st.st_ino == ours[i].ino &&
        unlink(ours[i].path) < 0) {
      fprintf(stderr, "aipc serve: cannot remove %s: %s\n", ours[i].path,
              strerror(errno));
      status = AIPC_EXIT_FAILURE;
    }
  }
  close(sfd);
  return status;
}
