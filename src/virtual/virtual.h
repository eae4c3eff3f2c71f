/* SPDX-License-Identifier: ISC */
/*
 * The virtual device: our own implementation of libcubeb's ops table.
 * It paces callbacks by a clock (real time, or as fast as possible),
 * mixes every output stream into a WAV file, and feeds input streams
 * from a generator. It makes tests deterministic and bit-exact and lets
 * the demo run where there is no sound server.
 *
 * Options (after "virtual:" in a backend name, comma-separated):
 *   rate=HZ          device rate, default 48000
 *   channels=N       output channels of the device, default 2
 *   period=FRAMES    frames per callback, default 128
 *   clock=realtime|fast   pace by CLOCK_MONOTONIC (default) or run
 *                    periods back to back as fast as possible
 *   out=PATH.wav     write the mix of all output streams here
 *   in=sine:HZ|silence|PATH.wav   what input streams receive
 *                    (default sine:440)
 *
 * Every context created with the same option string shares one device:
 * one clock thread calls every started stream of every such context each
 * period, and one WAV file holds their mix.
 */
#ifndef AIPC_VIRTUAL_H
#define AIPC_VIRTUAL_H

#include <cubeb/cubeb.h>

/* Creates a context on the virtual device. `options` is the text after
 * "virtual:" (NULL or "" for the defaults). Returns CUBEB_OK, or
 * CUBEB_ERROR_INVALID_PARAMETER for options it does not understand (and
 * logs which). Destroy the context with cubeb_destroy(). */
int aipc_virtual_init(cubeb **context, const char *context_name,
                      const char *options);

/* Test hooks: make every virtual context in this process report a
 * device change to each stream that registered a callback, or a device
 * collection change to each context registered for `type`'s changes. */
void aipc_virtual_trigger_device_changed(void);
void aipc_virtual_trigger_collection_changed(cubeb_device_type type);

#endif
