/* SPDX-License-Identifier: ISC */
/*
 * The server's limits (audioipc_server_set_limits): each one, exceeded,
 * gets the client an error reply and nothing worse, and a change applies
 * to clients made after it.
 */
#include "fixture.h"
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long
silence_data(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  (void)stm, (void)user, (void)in;
  memset(out, 0, (size_t)n * 8);
  return n;
}

static void
no_state(cubeb_stream *stm, void *user, cubeb_state state)
{
  (void)stm, (void)user, (void)state;
}

static AudioIpcServerLimits
get_limits(void *server)
{
  AudioIpcServerLimits l;
  CHECK_INT(audioipc_server_get_limits(server, &l), ==, 0);
  return l;
}

static bool
same_limits(const AudioIpcServerLimits *a, const AudioIpcServerLimits *b)
{
  return a->streams_per_client == b->streams_per_client &&
         a->shm_per_stream == b->shm_per_stream &&
         a->shm_per_client == b->shm_per_client &&
         a->device_tokens == b->device_tokens &&
         a->requests_in_flight == b->requests_in_flight &&
         a->channels_max == b->channels_max &&
         a->connections_per_process == b->connections_per_process &&
         a->connections_max == b->connections_max &&
         a->streams_per_process == b->streams_per_process &&
         a->streams_max == b->streams_max &&
         a->shm_per_process == b->shm_per_process && a->shm_max == b->shm_max &&
         a->promoted_per_process == b->promoted_per_process &&
         a->promoted_max == b->promoted_max;
}

static void
set_limits(void *server, const AudioIpcServerLimits *l)
{
  CHECK_INT(audioipc_server_set_limits(server, l), ==, 0);
}

TEST(limits_defaults_and_validation)
{
  void *server = audioipc_server_start("limits", "virtual:clock=fast", NULL);
  CHECK(server != NULL);
  AudioIpcServerLimits d = get_limits(server);
  CHECK_INT(d.streams_per_client, ==, 64);
  CHECK_INT(d.shm_per_stream, ==, 16 << 20);
  CHECK_INT(d.shm_per_client, ==, 64 << 20);
  CHECK_INT(d.device_tokens, ==, 1024);
  CHECK_INT(d.requests_in_flight, ==, 64);
  CHECK_INT(d.channels_max, ==, 8);
  CHECK_INT(d.connections_per_process, ==, 4);
  CHECK_INT(d.connections_max, ==, 32);
  CHECK_INT(d.streams_per_process, ==, 64);
  CHECK_INT(d.streams_max, ==, 128);
  CHECK_INT(d.shm_per_process, ==, 64 << 20);
  CHECK_INT(d.shm_max, ==, 256 << 20);
  CHECK_INT(d.promoted_per_process, ==, 8);
  CHECK_INT(d.promoted_max, ==, 16);

  /* Every value out of its range is refused, and nothing changes. */
  AudioIpcServerLimits bad[23];
  for (size_t i = 0; i < 23; i++)
    bad[i] = d;
  bad[0].streams_per_client = 0;
  bad[1].streams_per_client = 4097;
  bad[2].shm_per_stream = 4095;
  bad[3].shm_per_stream = (1u << 30) + 1;
  bad[4].shm_per_client = 0;
  bad[5].device_tokens = 0;
  bad[6].device_tokens = 65537;
  bad[7].requests_in_flight = 0;
  bad[8].requests_in_flight = 4097;
  bad[9].channels_max = 0;
  bad[10].channels_max = 33;
  bad[11].connections_per_process = 0;
  bad[12].connections_per_process = 4097;
  bad[13].connections_max = 0;
  bad[14].connections_max = 65537;
  bad[15].streams_per_process = 0;
  bad[16].streams_max = 0;
  bad[17].streams_max = 65537;
  bad[18].shm_per_process = 4095;
  bad[19].shm_max = 0;
  bad[20].promoted_per_process = 4097;
  bad[21].promoted_max = 4097;
  bad[22].streams_per_process = 65537;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    CHECK_INT(audioipc_server_set_limits(server, &bad[i]), ==, -1);
    CHECK_INT(errno, ==, EINVAL);
    AudioIpcServerLimits now = get_limits(server);
    CHECK(same_limits(&now, &d));
  }
  errno = 0;
  CHECK_INT(audioipc_server_set_limits(NULL, &d), ==, -1);
  CHECK_INT(errno, ==, EINVAL);
  CHECK_INT(audioipc_server_set_limits(server, NULL), ==, -1);
  CHECK_INT(audioipc_server_get_limits(server, NULL), ==, -1);
  CHECK_INT(audioipc_server_get_limits(NULL, &d), ==, -1);

  /* In range: kept, the shared memory per stream in whole pages. */
  AudioIpcServerLimits l = {.streams_per_client = 1,
                            .shm_per_stream = 3 * 4096 + 100,
                            .shm_per_client = 4096,
                            .device_tokens = 65536,
                            .requests_in_flight = 4096,
                            .channels_max = 32,
                            .connections_per_process = 4096,
                            .connections_max = 1,
                            .streams_per_process = 65536,
                            .streams_max = 1,
                            .shm_per_process = 4096,
                            .shm_max = UINT64_MAX,
                            .promoted_per_process = 0,
                            .promoted_max = 4096};
  set_limits(server, &l);
  AudioIpcServerLimits got = get_limits(server);
  l.shm_per_stream = 3 * 4096;
  CHECK(same_limits(&got, &l));
  audioipc_server_stop(server);
}

/* Creates output streams of `latency` frames until refused; returns how
 * many were made (their ids in ids[]) and the refusal in *error. */
static int
fill_streams(struct raw *r, uint32_t latency, uint32_t *ids, int max,
             int *error)
{
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, latency);
  for (int n = 0; n < max; n++) {
    int id = raw_stream_init(r, &q, NULL, NULL);
    if (id < 0) {
      *error = id;
      return n;
    }
    ids[n] = (uint32_t)id;
  }
  *error = 0;
  return max;
}

static void
exceed_limits(struct fixture *f, struct tally *t)
{
  void *server = f->e.server;
  const AudioIpcServerLimits defaults = get_limits(server);
  AudioIpcServerLimits l;
  struct raw r, early;
  uint32_t ids[64];
  int error;

  /* Streams per client; clients made before a change keep theirs. */
  l = defaults;
  l.streams_per_client = 3;
  set_limits(server, &l);
  fixture_connect(f, &early, NULL);
  raw_greet(&early);
  l.streams_per_client = 5;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  CHECK_INT(fill_streams(&early, FIXTURE_PERIOD, ids, 64, &error), ==, 3);
  CHECK_INT(error, ==, -ENOSPC);
  t->sent += 4, t->errors++;
  CHECK_INT(raw_stream_call(&early, AIPC_OP_STREAM_DESTROY, ids[1]), ==, 0);
  CHECK_INT(fill_streams(&early, FIXTURE_PERIOD, ids, 64, &error), ==, 1);
  CHECK_INT(fill_streams(&r, FIXTURE_PERIOD, ids, 64, &error), ==, 5);
  CHECK_INT(error, ==, -ENOSPC);
  t->sent += 8, t->errors += 2;
  raw_close(&early);
  raw_close(&r);

  /* Shared memory per stream: requests shrink to fit (in whole pages);
   * a bound below a page fits nothing. */
  l = defaults;
  l.shm_per_stream = 8192;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init big = {.name = "big",
                                 .has_input = 1,
                                 .in_format = CUBEB_SAMPLE_FLOAT32NE,
                                 .in_rate = FIXTURE_RATE,
                                 .in_channels = 8,
                                 .has_output = 1,
                                 .out_format = CUBEB_SAMPLE_FLOAT32NE,
                                 .out_rate = FIXTURE_RATE,
                                 .out_channels = 8,
                                 .latency_frames = 96000};
  struct aipc_stream_init_reply reply;
  int id = raw_stream_init(&r, &big, &reply, NULL);
  CHECK(id > 0);
  CHECK(reply.shm_size <= 8192);
  CHECK(reply.frames_max >= 1 && reply.frames_max < 96000);
  t->sent++, t->ok++;
  raw_close(&r);
  set_limits(server, &defaults);
  static const size_t areas[] = {1, 100, 4095, 4096 + 100};
  for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]); i++) {
    int fd = audioipc_server_new_client(server, areas[i]);
    CHECK(fd >= 0);
    f->clients_made++;
    raw_init(&r, fd);
    raw_greet(&r);
    id = raw_stream_init(&r, &big, &reply, NULL);
    t->sent++;
    if (areas[i] < 4096) {
      CHECK_INT(id, ==, -ENOMEM);
      t->errors++;
    } else {
      CHECK(id > 0);
      CHECK(reply.shm_size <= areas[i]);
      t->ok++;
    }
    raw_close(&r);
  }

  /* Shared memory per client: 8 streams of 8 KiB fit 64 KiB. */
  l = defaults;
  l.shm_per_client = 64 * 1024;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init_reply one;
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, 512);
  id = raw_stream_init(&r, &q, &one, NULL);
  CHECK(id > 0);
  int fit = (int)(l.shm_per_client / one.shm_size);
  CHECK_INT(fill_streams(&r, 512, ids, 64, &error), ==, fit - 1);
  CHECK_INT(error, ==, -ENOSPC);
  t->sent += (unsigned)fit + 1, t->errors++;
  CHECK_INT(raw_stream_call(&r, AIPC_OP_STREAM_DESTROY, ids[0]), ==, 0);
  CHECK_INT(fill_streams(&r, 512, ids, 1, &error), ==, 1);
  raw_close(&r);

  /* Device tokens. */
  l = defaults;
  l.device_tokens = 1;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  struct aipc_enumerate_devices both = {CUBEB_DEVICE_TYPE_INPUT |
                                        CUBEB_DEVICE_TYPE_OUTPUT};
  struct aipc_enumerate_devices out = {CUBEB_DEVICE_TYPE_OUTPUT};
  expect_body_error(&r, t, AIPC_OP_ENUMERATE_DEVICES, &both, -ENOSPC);
  /* The output's token, then the same one again: nothing new to hold. */
  CHECK_INT(raw_call(&r, AIPC_OP_ENUMERATE_DEVICES, &out, NULL, NULL), ==, 0);
  CHECK_INT(raw_call(&r, AIPC_OP_ENUMERATE_DEVICES, &out, NULL, NULL), ==, 0);
  t->sent += 2, t->ok += 2;
  expect_body_error(&r, t, AIPC_OP_ENUMERATE_DEVICES, &both, -ENOSPC);
  /* Only the input: the output is forgotten to make room. */
  struct aipc_enumerate_devices in = {CUBEB_DEVICE_TYPE_INPUT};
  CHECK_INT(raw_call(&r, AIPC_OP_ENUMERATE_DEVICES, &in, NULL, NULL), ==, 0);
  t->sent++, t->ok++;
  raw_close(&r);

  /* Channels. */
  l = defaults;
  l.channels_max = 2;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  q.out_channels = 3;
  q.out_layout = 0;
  expect_body_error(&r, t, AIPC_OP_STREAM_INIT, &q, -EINVAL);
  struct aipc_min_latency ml = {CUBEB_SAMPLE_FLOAT32NE, FIXTURE_RATE, 3, 0, 0};
  expect_body_error(&r, t, AIPC_OP_GET_MIN_LATENCY, &ml, -EINVAL);
  raw_close(&r);
  l.channels_max = 32;
  set_limits(server, &l);
  fixture_connect(f, &r, NULL);
  raw_greet(&r);
  q.out_channels = 32;
  id = raw_stream_init(&r, &q, NULL, NULL);
  CHECK(id > 0);
  t->sent++, t->ok++;
  q.out_channels = 33;
  expect_body_error(&r, t, AIPC_OP_STREAM_INIT, &q, -EINVAL);
  raw_close(&r);

  set_limits(server, &defaults);
}

TEST(limits_exceeding_each_gets_an_error_reply)
{
  hostile_case(NULL, exceed_limits, "limits");
}

/* Requests in flight: the client's thread reads a request only once it
 * has answered the one before, so requests sent at once behind a slow one
 * (stream creation takes 200 ms on this device) wait in the socket, not
 * in the server, and are answered in order, none refused, whatever the
 * limit says. */
TEST(limits_requests_in_flight)
{
  struct e2e e;
  e2e_start(&e, "virtual:clock=fast,init_delay_ms=200");
  AudioIpcServerLimits l = get_limits(e.server);
  l.requests_in_flight = 1;
  set_limits(e.server, &l);
  struct raw r;
  raw_init(&r, audioipc_server_new_client(e.server, 0));
  raw_greet(&r);

  enum { PINGS = 12 };
  struct aipc_stream_init q = raw_output_stream(48000, 256);
  uint32_t serials[PINGS + 1];
  serials[0] = raw_send_body(&r, AIPC_OP_STREAM_INIT, &q);
  for (int i = 1; i <= PINGS; i++) {
    struct aipc_ping ping = {.value = (uint64_t)i};
    serials[i] = raw_send_body(&r, AIPC_OP_PING, &ping);
  }
  for (int i = 0; i <= PINGS; i++) {
    struct raw_msg m;
    CHECK_INT(raw_recv(&r, &m, RAW_TIMEOUT_MS), ==, 1);
    raw_msg_close_fds(&m);
    CHECK_INT(m.h.serial, ==, serials[i]);
    CHECK_INT(m.h.opcode, ==,
              i == 0 ? AIPC_OP_STREAM_INIT_REPLY : AIPC_OP_PING_REPLY);
  }
  printf("  %d requests at once, 1 allowed in flight: all answered, in "
         "order\n",
         PINGS + 1);
  raw_close(&r);
  e2e_finish(&e);
}

/* --- Nothing pinned beyond the limits ---------------------------------------
 */

/*
 * A stream's memory reaches the client as an fd; the server needs that
 * fd only to send it. Held for the stream's life, it made every live
 * stream cost the server an fd, and sixteen connections with their
 * streams took Debian's 1024.
 */
static void
fds_per_live_stream(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  AudioIpcServerLimits l = get_limits(f.e.server);
  struct raw r;
  fixture_connect(&f, &r, NULL);
  raw_greet(&r);
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  /* The first stream may open what the backend keeps for the context. */
  CHECK(raw_stream_init(&r, &q, NULL, NULL) > 0);
  int before = test_count_fds();
  unsigned streams = l.streams_per_client - 1;
  for (unsigned i = 0; i < streams; i++)
    CHECK(raw_stream_init(&r, &q, NULL, NULL) > 0);
  int held = test_count_fds() - before;
  printf("  %u more live streams: the server holds %d more fds\n", streams,
         held);
  fflush(stdout);
  CHECK(held < 8);
  raw_close(&r);
  fixture_check(&f, "fds per live stream");
  fixture_finish(&f);
}

TEST(limits_no_fd_held_per_live_stream)
{
  fds_per_live_stream(NULL);
}

TEST(pulse_limits_no_fd_held_per_live_stream)
{
  fds_per_live_stream("pulse");
}

/* --- Limits per process and per server
 * ---------------------------------------- */

/* A process for the server to vouch for, that lives until the test
 * closes the write end of the pipe `arg`. It is a fork of a process with
 * the server's and libpulse's threads, whose blocks only those threads
 * (not in the fork) point to: it ends with _exit, as a leak check at exit
 * would report them. */
static void
idle_process(void *arg)
{
  const int *stop = arg;
  close(stop[1]);
  char c;
  while (read(stop[0], &c, 1) > 0)
    ;
  _exit(0);
}

/* Opens connections for process `pid` until refused; returns how many
 * were made (in r[]) and checks the refusal is EUSERS. */
static int
connect_until_refused(struct fixture *f, pid_t pid, struct raw *r, int max)
{
  for (int n = 0; n < max; n++) {
    int fd = pid ? audioipc_server_new_client_for_pid(f->e.server, pid, 0)
                 : audioipc_server_new_client(f->e.server, 0);
    if (fd < 0) {
      CHECK_INT(errno, ==, EUSERS);
      return n;
    }
    f->clients_made++;
    raw_init(&r[n], fd);
    raw_greet(&r[n]);
  }
  return max;
}

/* Streams over the connections r[0..n-1], each until refused; returns
 * how many were made in all. */
static int
streams_until_refused(struct raw *r, int n)
{
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  int made = 0;
  for (int i = 0; i < n; i++) {
    int id;
    while ((id = raw_stream_init(&r[i], &q, NULL, NULL)) > 0)
      made++;
    CHECK_INT(id, ==, -ENOSPC);
  }
  return made;
}

static void
per_process(const char *backend)
{
  struct fixture f;
  fixture_start(&f, backend);
  AudioIpcServerLimits defaults = get_limits(f.e.server);
  int stop[2];
  CHECK(pipe2(stop, O_CLOEXEC) == 0);
  pid_t pid = test_fork(idle_process, stop);
  close(stop[0]);

  /* One process, with as many connections as it may have: no more
   * streams than a process may, whatever its connections may each. */
  AudioIpcServerLimits l = defaults;
  l.streams_per_client = 24;
  l.streams_per_process = 40;
  set_limits(f.e.server, &l);
  struct raw r[8];
  int n = connect_until_refused(&f, pid, r, 8);
  CHECK_INT(n, ==, (int)l.connections_per_process);
  int streams = streams_until_refused(r, n);
  printf("  one process: %d connections, %d streams (%u per connection, %u "
         "per process allowed)\n",
         n, streams, l.streams_per_client, l.streams_per_process);
  CHECK_INT(streams, ==, (int)l.streams_per_process);
  for (int i = 0; i < n; i++)
    raw_close(&r[i]);
  close(stop[1]);
  test_wait_ok(pid);
  fixture_wait_baseline(&f, "one process");

  /* The whole server: connections that each count as a process of their
   * own still share its bounds. */
  l = defaults;
  l.connections_max = 6; /* the honest client holds one */
  l.streams_max = 12;
  set_limits(f.e.server, &l);
  n = connect_until_refused(&f, 0, r, 8);
  CHECK_INT(n, ==, 5);
  streams = streams_until_refused(r, n);
  printf("  %d connections of their own: %d streams (%u in all allowed, the "
         "honest client holds one)\n",
         n, streams, l.streams_max);
  CHECK_INT(streams, ==, (int)l.streams_max - 1);
  for (int i = 0; i < n; i++)
    raw_close(&r[i]);
  set_limits(f.e.server, &defaults);
  fixture_check(&f, "limits per process and server");
  fixture_finish(&f);
}

TEST(limits_per_process_and_per_server)
{
  per_process(NULL);
}

/*
 * With the defaults, one process cannot fill PulseAudio's sink (256
 * streams): before, five connections of 64 streams each did, and every
 * other program on it failed too. Another program's stream, straight
 * through libcubeb, still opens.
 */
TEST(pulse_limits_one_process_leaves_pulse_room)
{
  struct fixture f;
  fixture_start(&f, "pulse");
  int stop[2];
  CHECK(pipe2(stop, O_CLOEXEC) == 0);
  pid_t pid = test_fork(idle_process, stop);
  close(stop[0]);
  struct raw r[8];
  int n = connect_until_refused(&f, pid, r, 8);
  int streams = streams_until_refused(r, n);
  printf("  one process on pulse: %d connections, %d streams\n", n, streams);
  CHECK(streams <= 64);

  cubeb *ctx;
  CHECK_INT(cubeb_init(&ctx, "another program", "pulse"), ==, CUBEB_OK);
  cubeb_stream_params out = E2E_STEREO_OUT;
  cubeb_stream *stm;
  CHECK_INT(cubeb_stream_init(ctx, &stm, "another", NULL, NULL, NULL, &out,
                              FIXTURE_PERIOD, silence_data, no_state, NULL),
            ==, CUBEB_OK);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);

  for (int i = 0; i < n; i++)
    raw_close(&r[i]);
  close(stop[1]);
  test_wait_ok(pid);
  fixture_check(&f, "one process on pulse");
  fixture_finish(&f);
}

/* The system's shared memory in use, in KiB (what memfds hold). */
static long
shmem_kib(void)
{
  FILE *f = fopen("/proc/meminfo", "r");
  CHECK(f != NULL);
  char line[128];
  long kib = -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "Shmem: %ld kB", &kib) == 1)
      break;
  fclose(f);
  CHECK(kib >= 0);
  return kib;
}

/*
 * A client that never reads its replies: each STREAM_INIT_REPLY's fd it
 * has not received keeps that stream's memory alive (in its socket, or in
 * the server's send queue, which holds a copy), after the stream itself
 * has gone. Creating and destroying streams blindly pinned 220 MiB
 * against an 8 MiB shm_per_client. Counted against the limit now, and a
 * client whose queue holds more than a few fds is hung up on.
 */
TEST(limits_memory_pinned_by_unread_replies)
{
  struct fixture f;
  fixture_start(&f, NULL);
  AudioIpcServerLimits defaults = get_limits(f.e.server);
  AudioIpcServerLimits l = defaults;
  l.shm_per_client = 8 << 20;
  set_limits(f.e.server, &l);
  struct raw r;
  fixture_connect(&f, &r, NULL);
  raw_greet(&r);
  long before = shmem_kib();
  /* A second of frames: regions of about 384 KiB. */
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_RATE);
  enum { STREAMS = 300 };
  int sent = 0;
  for (uint32_t id = 1; id <= STREAMS; id++, sent++) {
    raw_send_body(&r, AIPC_OP_STREAM_INIT, &q);
    struct aipc_stream_ref ref = {.stream = id};
    uint8_t payload[64];
    const struct aipc_msg_desc *d =
        aipc_protocol_msg(&aipc_protocol, AIPC_OP_STREAM_DESTROY);
    int len = aipc_record_encode(&d->record, &ref, payload, sizeof(payload));
    CHECK(len > 0);
    uint8_t packet[sizeof(struct aipc_msg_header) + 64];
    struct aipc_msg_header h = {.size = (uint32_t)len,
                                .opcode = AIPC_OP_STREAM_DESTROY,
                                .serial = ++r.serial};
    memcpy(packet, &h, sizeof(h));
    memcpy(packet + sizeof(h), payload, (size_t)len);
    if (raw_send_packet(&r, packet, sizeof(h) + (size_t)len, NULL, 0) < 0)
      break; /* hung up on */
  }
  /* The server works through what it has read; the most it pins. */
  long most = 0;
  double start = fixture_now_ms();
  while (fixture_now_ms() - start < 2000) {
    long now = shmem_kib() - before;
    if (now > most)
      most = now;
    usleep(10000);
  }
  printf("  %d streams made and destroyed without a reply read: at most %ld "
         "KiB pinned (shm_per_client %u KiB)\n",
         sent, most, (unsigned)(l.shm_per_client >> 10));
  fflush(stdout);
  CHECK(most < 3 * (long)(l.shm_per_client >> 10));
  raw_close(&r);
  set_limits(f.e.server, &defaults);
  fixture_check(&f, "memory pinned by unread replies");
  fixture_finish(&f);
}

/*
 * File descriptors: the server raises its soft limit where the hard one
 * allows, and refuses new connections while a reserve of fds is still
 * free, so that connections filling the table never make an honest
 * client's next request fail with EMFILE (creating a stream needs one).
 */
TEST(limits_fd_reserve_keeps_requests_working)
{
  struct rlimit low = {.rlim_cur = 64, .rlim_max = 256};
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  struct fixture f;
  fixture_start(&f, NULL);
  struct rlimit now;
  CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0);
  printf("  soft fd limit: 64 before the server started, %llu after (hard "
         "256)\n",
         (unsigned long long)now.rlim_cur);
  CHECK_INT(now.rlim_cur, ==, 256);

  /* Not much room: the next connections take what is left. */
  struct rlimit tight = {.rlim_cur = (rlim_t)test_count_fds() + 80,
                         .rlim_max = 256};
  CHECK(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  struct raw honest;
  fixture_connect(&f, &honest, NULL);
  raw_greet(&honest);
  static struct raw r[64];
  int n = 0, error = 0;
  while (n < 64) {
    int fd = audioipc_server_new_client(f.e.server, 0);
    if (fd < 0) {
      error = errno;
      break;
    }
    f.clients_made++;
    raw_init(&r[n], fd);
    raw_greet(&r[n++]);
  }
  printf("  %d more connections, then refused: %s\n", n, strerror(error));
  CHECK_INT(error, ==, EMFILE);
  /* The client connected first still makes streams. */
  struct aipc_stream_init q = raw_output_stream(FIXTURE_RATE, FIXTURE_PERIOD);
  for (int i = 0; i < 16; i++) {
    int id = raw_stream_init(&honest, &q, NULL, NULL);
    CHECK(id > 0);
    CHECK_INT(raw_stream_call(&honest, AIPC_OP_STREAM_DESTROY, (uint32_t)id),
              ==, 0);
  }
  for (int i = 0; i < n; i++)
    raw_close(&r[i]);
  raw_close(&honest);
  fixture_check(&f, "fd reserve");
  fixture_finish(&f);
}
