/* SPDX-License-Identifier: ISC */
/*
 * libcubeb's preconditions, kept on the caller's side. Where libcubeb
 * aborts an application that breaks its contract, the application would
 * die without remoting too; through us it dies the same way, in its own
 * process, with a line naming the breach, before anything reaches the
 * server. The rules are those of the backend the server runs (its id),
 * as the application would meet them in-process; docs/design-notes.md
 * lists each one and where libcubeb asserts it.
 */
#include "client-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local enum aipc_callback_kind current_callback;

bool
aipc_client_in_callback(void)
{
  return current_callback != AIPC_CB_NONE;
}

void
aipc_client_set_callback(enum aipc_callback_kind kind)
{
  current_callback = kind;
}

enum aipc_backend_rules
aipc_backend_rules_of(const char *backend_id)
{
  if (strcmp(backend_id, "pulse") == 0)
    return AIPC_RULES_PULSE;
  if (strcmp(backend_id, "alsa") == 0)
    return AIPC_RULES_ALSA;
  return AIPC_RULES_OTHER;
}

void
aipc_client_breach(const cubeb *ctx, const char *call, const char *what)
{
  char line[512];
  snprintf(line, sizeof(line),
           "%s: %s; libcubeb's %s backend aborts the process here, and so "
           "does audioipc",
           call, what, ctx->backend_id);
  /* To stderr, as libcubeb's own asserts go, whatever the embedder's
   * log callback would do with it. */
  fprintf(stderr, "audioipc: %s\n", line);
  abort();
}

bool
aipc_client_reentry(const cubeb *ctx, const char *call, bool takes_lock)
{
  enum aipc_callback_kind kind = current_callback;
  if (kind == AIPC_CB_NONE)
    return false;
  /* Pulse runs the data, drained and error callbacks and the
   * collection-changed callback on its mainloop thread, where libpulse
   * asserts on any call that takes the mainloop's lock. */
  bool pulse_thread = kind == AIPC_CB_DATA || kind == AIPC_CB_STATE_END ||
                      kind == AIPC_CB_COLLECTION;
  if (ctx->rules == AIPC_RULES_PULSE && pulse_thread && takes_lock)
    aipc_client_breach(ctx, call,
                       "called from a data, drained, error or device "
                       "collection callback");
  return true;
}
