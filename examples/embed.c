/* SPDX-License-Identifier: ISC */
/*
 * Both sides of audioipc in one short program: the trusted parent starts a
 * server and hands a connection fd to a forked child, which plays a tone
 * through the ordinary cubeb API on the remoted context.
 *
 *   cc embed.c $(pkg-config --cflags --libs audioipc-server audioipc-client) \
 *      -lcubeb -o embed
 *   ./embed                      # cubeb's default backend
 *   ./embed "virtual:clock=fast,out=tone.wav" tone.wav
 *
 * With a WAV path as second argument, the parent checks afterwards that
 * the file holds exactly the samples the child played.
 */
#include <audioipc/client.h>
#include <audioipc/server.h>
#include <cubeb/cubeb.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RATE 48000
#define FRAMES (RATE / 2)

static float
sample(long frame)
{
  /* A 441 Hz square-ish tone of exactly representable values. */
  return (frame / 54) % 2 ? 0.25f : -0.25f;
}

struct player {
  long frame;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int done;
};

static long
data_cb(cubeb_stream *stm, void *user, const void *in, void *out, long n)
{
  struct player *p = cubeb_stream_user_ptr(stm);
  float *samples = out;
  long i;
  (void)user;
  (void)in;
  for (i = 0; i < n && p->frame < FRAMES; i++, p->frame++)
    samples[2 * i] = samples[2 * i + 1] = sample(p->frame);
  return i; /* fewer than asked: the stream drains */
}

static void
state_cb(cubeb_stream *stm, void *user, cubeb_state state)
{
  struct player *p = user;
  (void)stm;
  if (state == CUBEB_STATE_DRAINED || state == CUBEB_STATE_ERROR) {
    pthread_mutex_lock(&p->lock);
    p->done = state == CUBEB_STATE_DRAINED ? 1 : -1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
  }
}

/* The sandboxed side: only the fd, no files, no sockets of its own. */
static int
child(int fd)
{
  AudioIpcInitParams params = {.server_connection = fd};
  cubeb *ctx;
  if (audioipc_client_init(&ctx, "embed-child", &params) != CUBEB_OK) {
    fprintf(stderr, "child: cannot reach the server\n");
    return 1;
  }
  cubeb_stream_params out = {.format = CUBEB_SAMPLE_FLOAT32NE,
                             .rate = RATE,
                             .channels = 2,
                             .layout = CUBEB_LAYOUT_STEREO};
  struct player p = {.lock = PTHREAD_MUTEX_INITIALIZER,
                     .cond = PTHREAD_COND_INITIALIZER};
  cubeb_stream *stm;
  if (cubeb_stream_init(ctx, &stm, "tone", NULL, NULL, NULL, &out, 512, data_cb,
                        state_cb, &p) != CUBEB_OK ||
      cubeb_stream_start(stm) != CUBEB_OK) {
    fprintf(stderr, "child: cannot play\n");
    return 1;
  }
  pthread_mutex_lock(&p.lock);
  while (!p.done)
    pthread_cond_wait(&p.cond, &p.lock);
  pthread_mutex_unlock(&p.lock);
  cubeb_stream_stop(stm);
  cubeb_stream_destroy(stm);
  cubeb_destroy(ctx);
  printf("child: played %ld frames through the server\n", p.frame);
  fflush(stdout);
  return p.done == 1 ? 0 : 1;
}

/* Checks a 32-bit float stereo WAV (as the virtual device writes it):
 * skips to the "data" chunk, then compares every frame. */
static int
check_wav(const char *path)
{
  FILE *f = fopen(path, "rb");
  unsigned char riff[12], chunk[8];
  if (!f || fread(riff, 1, sizeof(riff), f) != sizeof(riff)) {
    fprintf(stderr, "cannot read %s\n", path);
    return 1;
  }
  for (;;) {
    if (fread(chunk, 1, sizeof(chunk), f) != sizeof(chunk)) {
      fprintf(stderr, "%s: no data chunk\n", path);
      fclose(f);
      return 1;
    }
    unsigned long size = chunk[4] | chunk[5] << 8 | chunk[6] << 16 |
                         (unsigned long)chunk[7] << 24;
    if (memcmp(chunk, "data", 4) == 0)
      break;
    fseek(f, (long)(size + (size & 1)), SEEK_CUR);
  }
  long bad = 0, frames = 0;
  float frame[2];
  while (fread(frame, sizeof(float), 2, f) == 2) {
    float want = frames < FRAMES ? sample(frames) : 0.0f;
    bad += frame[0] != want || frame[1] != want;
    frames++;
  }
  fclose(f);
  printf("%s: %ld frames, %ld differ from what the child played\n", path,
         frames, bad);
  return frames >= FRAMES && bad == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
  const char *backend = argc > 1 ? argv[1] : NULL;
  void *server = audioipc_server_start("embed", backend, NULL);
  if (!server)
    return 1;
  int fd = audioipc_server_new_client(server, 0);
  if (fd < 0)
    return 1;

  fflush(NULL);
  pid_t pid = fork(); /* the fd is inherited; SCM_RIGHTS works too */
  if (pid == 0)
    _exit(child(fd));
  close(fd);
  int status;
  waitpid(pid, &status, 0);
  audioipc_server_stop(server);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return 1;
  return argc > 2 ? check_wav(argv[2]) : 0;
}
