/* SPDX-License-Identifier: ISC */
/*
 * The virtual device: our own implementation of libcubeb's ops table.
 * It paces callbacks by a clock (real time, or as fast as possible),
 * mixes every output stream into a WAV file, and feeds input streams
 * from a generator. It makes tests deterministic and bit-exact and lets
 * the demo run where there is no sound server.
 *
 * Options (after "virtual:" in a backend name, comma-separated):
 *   rate=HZ          device rate, default 48000 (1000..192000)
 *   channels=N       output channels of the device, default 2 (1..8)
 *   period=FRAMES    frames per callback, default 128 (1..96000)
 *   format=f32|s16   device sample format, default f32: sets the WAV
 *                    file's format (32-bit IEEE float or 16-bit PCM)
 *   clock=realtime|fast   pace by CLOCK_MONOTONIC (default) or run
 *                    periods back to back as fast as possible (but wait,
 *                    not spin, while no stream is started)
 *   out=PATH.wav     write the mix of all output streams here (a
 *                    regular file, made or truncated, or a character
 *                    device such as /dev/null; never through a symlink)
 *   in=sine:HZ|silence|PATH.wav   what input streams receive
 *                    (default sine:440; a regular file)
 *   init_delay_ms=MS stream creation takes this long (0..10000), as it
 *                    can on pulse; for tests of request isolation
 * A key may appear once; paths cannot contain commas.
 *
 * Every context created with the same option string shares one device:
 * one clock thread calls every started stream of every such context each
 * period, and one WAV file holds their mix.
 *
 * Streams: float32 or s16 (native endian), at the device rate, 1..32
 * channels, any latency (the device's period is used). Each period a
 * started stream's data callback gets `period` frames. Returning fewer
 * drains it (DRAINED once, only those frames count); a negative count or
 * more than asked for is an error (ERROR once). Either way its callbacks
 * stop. cubeb_stream_stop waits for a callback in progress; called from
 * the stream's own data callback it fails with CUBEB_ERROR. A stream may
 * destroy itself from its callbacks; cubeb_stream_destroy stops the
 * stream without a STOPPED callback. Position counts the frames the
 * callbacks returned; latency is one period.
 *
 * Mix: output converted to float (s16 as v / 32768), times the stream's
 * volume, summed. A mono stream reaches every device channel; otherwise
 * stream channel i goes to device channel i and extra stream channels
 * are dropped. One float stream at volume 1 arrives in the file bit for
 * bit. A period is written only if a stream played in it, and only up to
 * the last frame any stream played, so a stream that plays N frames
 * leaves exactly N frames. The header is rewritten about once a second of
 * audio and when the last context on the device is destroyed.
 *
 * Input: sine:HZ gives 0.5 * sin(2 pi HZ k / rate) in every channel, k
 * counting the frames the stream has received. A WAV file (float32 or
 * s16, at the device rate) is looped; a mono file fills every channel,
 * otherwise channel i of the file feeds stream channel i, and stream
 * channels the file lacks are silent. s16 streams get round(v * 32768),
 * clipped.
 */
#ifndef AIPC_VIRTUAL_H
#define AIPC_VIRTUAL_H

#include <cubeb/cubeb.h>
#include <stdbool.h>
#include <stdint.h>

/* Creates a context on the virtual device. `options` is the text after
 * "virtual:" (NULL or "" for the defaults), borrowed. Returns CUBEB_OK,
 * CUBEB_ERROR_INVALID_PARAMETER for options it does not understand or
 * cannot use, such as an unreadable in= or uncreatable out= file (and
 * logs which), or CUBEB_ERROR when out of memory or threads. Destroy the
 * context with cubeb_destroy(), after its streams, and not from one of
 * its callbacks (that is refused and leaks the context). */
int aipc_virtual_init(cubeb **context, const char *context_name,
                      const char *options);

/*
 * Split-phase data callbacks, for the audioipc server's streams. In each
 * period the device calls begin() of every such started stream (which
 * asks its client for the period and returns at once), and only then
 * end() of each (which waits for that answer and returns what a data
 * callback would), so the clients work in parallel and the device thread
 * sleeps about once per period instead of once per stream.
 *
 * end() waits at most until `deadline_ns` (CLOCK_MONOTONIC), which every
 * stream of the period shares: with a realtime clock, the period's time
 * on the device's schedule plus two periods (at least 20 ms; or, if the
 * device runs later than that, a period after it asked), so a slow
 * client loses its own audio and never slows the others'. With a fast
 * clock it is -1: no bound but the stream's own.
 */
struct aipc_virtual_split {
  void (*begin)(void *user, const void *input, long frames);
  long (*end)(void *user, void *output, long frames, int64_t deadline_ns);
};

/* Drives `stream` (a stream of a virtual context) with `split` instead of
 * its data callback, if the device's period is at most `max_frames`;
 * returns whether it will. Call before the stream starts. */
bool aipc_virtual_stream_set_split(cubeb_stream *stream,
                                   const struct aipc_virtual_split *split,
                                   void *user, uint32_t max_frames);

/* Whether option text `options` (after "virtual:"; may be NULL) runs the
 * device's clock as fast as possible (clock=fast). */
bool aipc_virtual_clock_is_fast(const char *options);

/* Periods the realtime clocks of this process have run, and how many of
 * them started more than 1 ms after their time (the machine woke the
 * clock thread late). */
void aipc_virtual_timing(uint64_t *periods, uint64_t *late_wakes);

/* Test hooks: make every virtual context in this process report a
 * device change to each stream that registered a callback, or a device
 * collection change to each context registered for any of `type`'s
 * directions. The callbacks run on the calling thread, with no lock of
 * ours held. */
void aipc_virtual_trigger_device_changed(void);
void aipc_virtual_trigger_collection_changed(cubeb_device_type type);

#endif
