/* SPDX-License-Identifier: ISC */
/*
 * What clients hold, counted by process and for the whole server. An
 * embedder usually gives a sandboxed process one connection, but a
 * compromised one may hold several (or be given a new one after each
 * hang-up), and `aipc serve` gives one to every local peer that asks:
 * per-connection limits alone would let one process take the whole
 * server, or the sound server behind it. So every connection belongs to
 * an account: the one of the process the embedder named
 * (audioipc_server_new_client_for_pid), shared by all of that process's
 * connections, or one of its own; and each charge is checked against the
 * account's limit and the server's total.
 */
#include "server-private.h"

#include "log.h"

#include <stdlib.h>

/* RTKit calls a process may have the server make per window. */
#define RTKIT_CALLS_PER_PROCESS 4
#define RTKIT_WINDOW_NS (20 * (int64_t)1000000000)

struct aipc_account {
  struct aipc_account *next;
  pid_t pid; /* 0: a connection nobody vouched for, alone in it */
  unsigned clients;
  uint64_t held[AIPC_RES_COUNT];
  int64_t rtkit_calls[RTKIT_CALLS_PER_PROCESS]; /* when, the last ones */
  unsigned next_rtkit_call;
};

struct aipc_accounts {
  pthread_mutex_t lock; /* guards everything here and in each account */
  struct aipc_account *list;
  uint64_t total[AIPC_RES_COUNT];
};

static const char *const resource_names[AIPC_RES_COUNT] = {
    [AIPC_RES_CONNECTIONS] = "connections",
    [AIPC_RES_STREAMS] = "streams",
    [AIPC_RES_SHM] = "bytes of shared memory",
    [AIPC_RES_PROMOTED] = "real-time threads",
};

int
aipc_accounts_new(struct aipc_accounts **out)
{
  struct aipc_accounts *a = calloc(1, sizeof(*a));
  if (!a)
    return -ENOMEM;
  pthread_mutex_init(&a->lock, NULL);
  *out = a;
  return 0;
}

void
aipc_accounts_destroy(struct aipc_accounts *a)
{
  if (!a)
    return;
  while (a->list) {
    struct aipc_account *next = a->list->next;
    free(a->list);
    a->list = next;
  }
  pthread_mutex_destroy(&a->lock);
  free(a);
}

/* The per-process and server-wide bounds of `res`. */
static void
bounds(const struct aipc_limits *l, enum aipc_resource res, uint64_t *each,
       uint64_t *total)
{
  switch (res) {
  case AIPC_RES_CONNECTIONS:
    *each = l->connections_per_process, *total = l->connections_max;
    break;
  case AIPC_RES_STREAMS:
    *each = l->streams_per_process, *total = l->streams_max;
    break;
  case AIPC_RES_SHM:
    *each = l->shm_per_process, *total = l->shm_max;
    break;
  default:
    *each = l->promoted_per_process, *total = l->promoted_max;
    break;
  }
}

/* With the lock held. */
static int
charge_locked(struct aipc_accounts *a, struct aipc_account *acct,
              enum aipc_resource res, uint64_t amount,
              const struct aipc_limits *l, unsigned client)
{
  uint64_t each, total;
  bounds(l, res, &each, &total);
  bool over_process = acct->held[res] + amount > each;
  bool over_server = a->total[res] + amount > total;
  if (over_process || over_server) {
    if (over_process && acct->pid)
      aipc_warn("client %u: process %d would hold more %s than it may "
                "(%llu)",
                client, (int)acct->pid, resource_names[res],
                (unsigned long long)each);
    else if (over_process)
      aipc_warn("client %u would hold more %s than a client may (%llu)", client,
                resource_names[res], (unsigned long long)each);
    else
      aipc_warn("client %u: the server would hold more %s than it may "
                "(%llu)",
                client, resource_names[res], (unsigned long long)total);
    return -ENOSPC;
  }
  acct->held[res] += amount;
  a->total[res] += amount;
  return 0;
}

int
aipc_account_open(struct aipc_accounts *a, pid_t pid,
                  const struct aipc_limits *l, unsigned client,
                  struct aipc_account **out)
{
  pthread_mutex_lock(&a->lock);
  struct aipc_account *acct = NULL;
  for (struct aipc_account *it = a->list; pid > 0 && it && !acct; it = it->next)
    if (it->pid == pid)
      acct = it;
  bool fresh = !acct;
  if (fresh && !(acct = calloc(1, sizeof(*acct)))) {
    pthread_mutex_unlock(&a->lock);
    return -ENOMEM;
  }
  int r = charge_locked(a, acct, AIPC_RES_CONNECTIONS, 1, l, client);
  if (r < 0) {
    if (fresh)
      free(acct);
    pthread_mutex_unlock(&a->lock);
    return r;
  }
  if (fresh) {
    acct->pid = pid > 0 ? pid : 0;
    acct->next = a->list;
    a->list = acct;
  }
  acct->clients++;
  pthread_mutex_unlock(&a->lock);
  *out = acct;
  return 0;
}

void
aipc_account_close(struct aipc_accounts *a, struct aipc_account *acct)
{
  pthread_mutex_lock(&a->lock);
  acct->held[AIPC_RES_CONNECTIONS]--;
  a->total[AIPC_RES_CONNECTIONS]--;
  if (--acct->clients == 0) {
    for (struct aipc_account **p = &a->list; *p; p = &(*p)->next) {
      if (*p == acct) {
        *p = acct->next;
        break;
      }
    }
    /* What its clients still held would be a bug of ours: give it back
     * to the server rather than lose it for good. */
    for (int res = 0; res < AIPC_RES_COUNT; res++)
      a->total[res] -= acct->held[res];
    free(acct);
  }
  pthread_mutex_unlock(&a->lock);
}

int
aipc_account_charge(struct aipc_accounts *a, struct aipc_account *acct,
                    enum aipc_resource res, uint64_t amount,
                    const struct aipc_limits *l, unsigned client)
{
  pthread_mutex_lock(&a->lock);
  int r = charge_locked(a, acct, res, amount, l, client);
  pthread_mutex_unlock(&a->lock);
  return r;
}

void
aipc_account_refund(struct aipc_accounts *a, struct aipc_account *acct,
                    enum aipc_resource res, uint64_t amount)
{
  pthread_mutex_lock(&a->lock);
  acct->held[res] -= amount;
  a->total[res] -= amount;
  pthread_mutex_unlock(&a->lock);
}

uint64_t
aipc_account_held(struct aipc_accounts *a, struct aipc_account *acct,
                  enum aipc_resource res)
{
  pthread_mutex_lock(&a->lock);
  uint64_t held = acct->held[res];
  pthread_mutex_unlock(&a->lock);
  return held;
}

int
aipc_account_rtkit_call(struct aipc_accounts *a, struct aipc_account *acct,
                        int64_t now)
{
  pthread_mutex_lock(&a->lock);
  int64_t *oldest = &acct->rtkit_calls[acct->next_rtkit_call];
  int r = 0;
  if (*oldest && now - *oldest < RTKIT_WINDOW_NS) {
    r = -EBUSY;
  } else {
    *oldest = now;
    acct->next_rtkit_call =
        (acct->next_rtkit_call + 1) % RTKIT_CALLS_PER_PROCESS;
  }
  pthread_mutex_unlock(&a->lock);
  return r;
}
