/* SPDX-License-Identifier: ISC */
/*
 * The virtual device: our own implementation of libcubeb's ops table.
 * It paces callbacks by a clock (real time, or as fast as possible),
 * mixes every output stream into a sound file, and feeds input streams
 * from a generator or a sound file (both through libsndfile,
 * sound-file.h). It makes tests deterministic and bit-exact and lets
 * the demo run where there is no sound server.
 *
 * Options (after "virtual:" in a backend name, comma-separated):
 *   rate=HZ          device rate, default 48000 (1000..192000)
 *   channels=N       output channels of the device, default 2 (1..8)
 *   period=FRAMES    frames per callback, default 128 (1..96000)
 *   format=f32|s16   device sample format, default f32: sets the out=
 *                    file's samples (32-bit IEEE float or 16-bit PCM)
 *   clock=realtime|fast   pace by CLOCK_MONOTONIC (default) or run
 *                    periods back to back as fast as possible (but wait,
 *                    not spin, while no stream is started)
 *   out=PATH         write the mix of all output streams here (a
 *                    regular file, made or truncated, or a character
 *                    device such as /dev/null; never through a symlink),
 *                    in the uncompressed container its name ends in:
 *                    .w64, .rf64, .aiff, .au, .caf, else WAV. FLAC and
 *                    Ogg are refused: their encoders allocate, and the
 *                    clock thread writes the file.
 *   in=sine:HZ|silence|PATH   what input streams receive (default
 *                    sine:440; a regular file, any container and sample
 *                    type libsndfile reads)
 *   init_delay_ms=MS stream creation takes this long (0..10000), as it
 *                    can on pulse; for tests of request isolation
 * A key may appear once; paths cannot contain commas.
 *
 * Every context created with the same option string shares one device:
 * one clock thread calls every started stream of every such context each
 * period, and one file holds their mix.
 *
 * Streams: s16 or float32, either endianness, 1000..192000 Hz, 1..32
 * channels with any layout, any latency (the device's period is used);
 * a duplex stream has one rate and format. A stream in the device's
 * rate, channels (and layout, or none) and host-order format is taken
 * as it is; any other is converted (convert.h): format to float,
 * channels by libcubeb's mixing rules (mixer.h), rate by libspeexdsp's
 * resampler at quality 5 (libcubeb's desktop quality; resample.h).
 *
 * Each period the device takes `period` frames from every started
 * output stream. An unconverted stream's data callback gets `period`
 * frames; a converted one's gets the stream frames that make up the
 * period, which vary by one from period to period (117 or 118 for 44.1
 * kHz on 48 kHz with period 128; none at all, now and then, for a rate
 * far below the device's). Returning fewer drains the stream: every
 * frame returned is still played (a converted stream plays out the
 * resampler's tail over the next periods, without callbacks), then
 * DRAINED, once. A negative count or more than asked for is an error
 * (ERROR once). Either way its callbacks stop. cubeb_stream_stop waits
 * for a callback in progress; called from the stream's own data
 * callback it fails with CUBEB_ERROR. A stream may destroy itself from
 * its callbacks; cubeb_stream_destroy stops the stream without a STOPPED
 * callback. Position counts the stream frames played, from 0: those the
 * callbacks returned, for a converted output stream those whose sound
 * has reached the mix (at DRAINED, every one returned). Latency is one
 * period; for a resampled stream, the most frames a period asks for
 * plus the resampler's delay, in stream frames.
 *
 * Mix: output converted to float (s16 as v / 32768), times the stream's
 * volume, summed. The device's layout is mono, stereo, 3F, quad, 3F2,
 * 5.1 (3F2_LFE), 6.1 (3F3R_LFE) or 7.1 (3F4_LFE) for 1..8 channels. A
 * stream whose layout names its channels is mixed by layout (a mono one
 * reaches left and right at 1/sqrt(2); a 5.1 one's centre, left and
 * right at 1/sqrt(2)); one with CUBEB_LAYOUT_UNDEFINED (or a layout that
 * does not fit) goes channel i to channel i, extra ones dropped, except
 * that mono reaches the first two device channels at its own level. One
 * float stream at the device's format and volume 1 arrives in the file
 * bit for bit. A period is written only if a stream played in it, and
 * only up to the last frame any stream played, so a stream that plays N
 * frames leaves exactly N frames (a resampled one, about N times the
 * rate ratio, plus at most the resampler's delay). The header is
 * rewritten about once a second of audio and when the last context on
 * the device is destroyed.
 *
 * Input: the device's input has its output's channels (a file's own),
 * at the device rate. sine:HZ gives 0.5 * sin(2 pi HZ k / rate) in every
 * channel, k counting the device frames made for the stream. A file
 * is read whole at start-up as float (integer samples scaled to [-1,
 * 1), s16 as v / 32768), resampled once to the device rate if it has
 * another (libspeexdsp, quality 5, the filter's delay cut from the
 * start), and looped. Input streams of
 * another rate, format or channel count get it converted; channels go
 * as for an undefined layout (the input has none): channel i to channel
 * i, missing ones silent, a mono input to the first two. s16 streams get
 * round(v * 32768), clipped.
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
 * its data callback, if the most frames it is asked for in a period (the
 * period, or for a resampled stream that many frames at its rate,
 * rounded up) is at most `max_frames`; returns whether it will. Call
 * before the stream starts. begin() and end() are given the frames of
 * the period, and are not called in a period that asks for none. */
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
