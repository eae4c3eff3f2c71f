/* SPDX-License-Identifier: ISC */
/*
 * What a running server holds, as "aipc top" shows it: its clients and
 * their streams, from the server's public API (audioipc_server_get_clients,
 * audioipc_server_get_streams), rendered as a table or as JSON.
 */
#include "aipc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct snapshot {
  AudioIpcClientInfo *clients;
  AudioIpcStreamInfo *streams;
  size_t nclients, nstreams;
};

/* Calls `get` until the buffer holds everything; 0 or -errno. */
static int
fill(void *server, int (*get)(void *, void *, size_t), size_t size, void **buf,
     size_t *count)
{
  size_t cap = 16;
  for (;;) {
    void *grown = realloc(*buf, cap * size);
    if (!grown)
      return -ENOMEM;
    *buf = grown;
    int n = get(server, *buf, cap);
    if (n < 0)
      return -EINVAL;
    if ((size_t)n <= cap) {
      *count = (size_t)n;
      return 0;
    }
    cap = (size_t)n + 16;
  }
}

static int
get_clients(void *server, void *buf, size_t max)
{
  return audioipc_server_get_clients(server, buf, max);
}

static int
get_streams(void *server, void *buf, size_t max)
{
  return audioipc_server_get_streams(server, buf, max);
}

static const char *
state_name(int state)
{
  switch (state) {
  case CUBEB_STATE_STARTED:
    return "started";
  case CUBEB_STATE_STOPPED:
    return "stopped";
  case CUBEB_STATE_DRAINED:
    return "drained";
  case CUBEB_STATE_ERROR:
    return "error";
  }
  return "created";
}

static const char *
format_name(uint32_t format)
{
  switch (format) {
  case CUBEB_SAMPLE_S16LE:
    return "s16le";
  case CUBEB_SAMPLE_S16BE:
    return "s16be";
  case CUBEB_SAMPLE_FLOAT32LE:
    return "f32le";
  case CUBEB_SAMPLE_FLOAT32BE:
    return "f32be";
  }
  return "unknown";
}

static const char *
direction(const AudioIpcStreamInfo *s)
{
  if (s->input_channels && s->output_channels)
    return "duplex";
  return s->input_channels ? "input" : "output";
}

static void
json_string(FILE *f, const char *s)
{
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static void
json_stream(FILE *f, const AudioIpcStreamInfo *s)
{
  const AudioIpcStreamStats *st = &s->stats;
  fprintf(f,
          "{\"stream\":%u,\"direction\":\"%s\",\"rate\":%u,"
          "\"input_channels\":%u,\"output_channels\":%u,\"format\":\"%s\","
          "\"latency_frames\":%u,\"state\":\"%s\",\"callbacks\":%llu,"
          "\"frames\":%llu,\"misses\":%llu,\"wait_p50_us\":%u,"
          "\"wait_p99_us\":%u,\"wait_max_us\":%u,\"shm_bytes\":%u,"
          "\"ring_frames\":%u,\"ahead_frames\":%u}",
          st->stream, direction(s), s->rate, s->input_channels,
          s->output_channels, format_name(s->format), s->latency_frames,
          state_name(s->state), (unsigned long long)st->callbacks,
          (unsigned long long)st->frames, (unsigned long long)st->misses,
          st->wait_p50_us, st->wait_p99_us, st->wait_max_us, st->shm_bytes,
          s->ring_frames, s->ahead_frames);
}

static void
render_json(FILE *f, const struct snapshot *snap, const char *backend,
            uint32_t rate)
{
  fprintf(f, "{\"server\":{\"pid\":%d,\"uid\":%u,\"backend\":", (int)getpid(),
          (unsigned)geteuid());
  json_string(f, backend);
  fprintf(f, ",\"rate\":%u},\"clients\":[", rate);
  for (size_t i = 0; i < snap->nclients; i++) {
    const AudioIpcClientInfo *c = &snap->clients[i];
    fprintf(f, "%s{\"client\":%u,\"pid\":%d,\"uid\":", i ? "," : "", c->client,
            (int)c->pid);
    if (c->uid == (uid_t)-1)
      fputs("null", f);
    else
      fprintf(f, "%u", (unsigned)c->uid);
    fputs(",\"streams\":[", f);
    bool first = true;
    /* The server lists its streams newest first. */
    for (size_t j = snap->nstreams; j-- > 0;) {
      if (snap->streams[j].stats.client != c->client)
        continue;
      if (!first)
        fputc(',', f);
      first = false;
      json_stream(f, &snap->streams[j]);
    }
    fputs("]}", f);
  }
  fputs("]}\n", f);
}

static void
text_stream(FILE *f, const AudioIpcStreamInfo *s)
{
  const AudioIpcStreamStats *st = &s->stats;
  char channels[32];
  if (s->input_channels && s->output_channels)
    snprintf(channels, sizeof(channels), "%u/%u", s->input_channels,
             s->output_channels);
  else
    snprintf(channels, sizeof(channels), "%u",
             s->input_channels + s->output_channels);
  fprintf(f, "%6u  %-6s %6u %5s %-6s %7u  %-8s %10llu %7llu %7u %7u\n",
          st->stream, direction(s), s->rate, channels, format_name(s->format),
          s->latency_frames, state_name(s->state),
          (unsigned long long)st->callbacks, (unsigned long long)st->misses,
          st->wait_p50_us, st->wait_p99_us);
}

static void
render_text(FILE *f, const struct snapshot *snap, const char *backend,
            uint32_t rate)
{
  fprintf(f,
          "aipc serve (pid %d): backend %s, %u Hz; %zu client%s, %zu "
          "stream%s\n\n",
          (int)getpid(), backend, rate, snap->nclients,
          snap->nclients == 1 ? "" : "s", snap->nstreams,
          snap->nstreams == 1 ? "" : "s");
  fprintf(f,
          "%6s %7s %6s  %6s  %-6s %6s %5s %-6s %7s  %-8s %10s %7s %7s "
          "%7s\n",
          "CLIENT", "PID", "UID", "STREAM", "DIR", "RATE", "CH", "FORMAT",
          "LATENCY", "STATE", "CALLBACKS", "MISSES", "P50(us)", "P99(us)");
  for (size_t i = 0; i < snap->nclients; i++) {
    const AudioIpcClientInfo *c = &snap->clients[i];
    char pid[16] = "-", uid[16] = "-";
    if (c->pid > 0)
      snprintf(pid, sizeof(pid), "%d", (int)c->pid);
    if (c->uid != (uid_t)-1)
      snprintf(uid, sizeof(uid), "%u", (unsigned)c->uid);
    bool any = false;
    for (size_t j = snap->nstreams; j-- > 0;) {
      if (snap->streams[j].stats.client != c->client)
        continue;
      fprintf(f, "%6u %7s %6s  ", c->client, pid, uid);
      text_stream(f, &snap->streams[j]);
      any = true;
    }
    if (!any)
      fprintf(f, "%6u %7s %6s  %6s\n", c->client, pid, uid, "-");
  }
}

int
aipc_snapshot_render(void *server, const char *backend, uint32_t rate,
                     bool json, char **out, size_t *len)
{
  struct snapshot snap = {0};
  int r = fill(server, get_clients, sizeof(*snap.clients),
               (void **)&snap.clients, &snap.nclients);
  if (r == 0)
    r = fill(server, get_streams, sizeof(*snap.streams), (void **)&snap.streams,
             &snap.nstreams);
  FILE *f = r == 0 ? open_memstream(out, len) : NULL;
  if (r == 0 && !f)
    r = -errno;
  if (f) {
    if (json)
      render_json(f, &snap, backend, rate);
    else
      render_text(f, &snap, backend, rate);
    if (fclose(f) != 0)
      r = -ENOMEM;
  }
  free(snap.clients);
  free(snap.streams);
  return r;
}
