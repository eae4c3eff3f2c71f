/* SPDX-License-Identifier: ISC */
/*
 * Channel up- and down-mixing by libcubeb's rules (its cubeb_mixer.cpp,
 * after libswresample's rematrixing), for float samples.
 *
 * When both layouts are given and each names as many channels as it
 * has, and both are sane (a front speaker, left and right in pairs),
 * the matrix follows the layouts: shared channels pass at 1; a centre
 * goes to left and right at 1/sqrt(2); left and right go to a centre at
 * 1/sqrt(2) each; back and side channels go to the other pair when the
 * output lacks theirs, else to the front (left to left and right to
 * right at 1/sqrt(2), a back centre to both at 1/2: libcubeb mixes with
 * no matrix encoding) or to the centre at 1/2; the LFE goes
 * to the centre at 1, or to left and right at 1/sqrt(2). Float is not
 * normalised, as in libcubeb.
 *
 * Otherwise (an undefined layout, a layout whose channel count differs,
 * an insane one) channel i passes to channel i: extra input channels are
 * dropped, missing ones are silent, except that mono input goes to the
 * first two output channels.
 */
#ifndef AIPC_MIXER_H
#define AIPC_MIXER_H

#include <cubeb/cubeb.h>
#include <stdbool.h>
#include <stdint.h>

#define AIPC_MIXER_MAX_CHANNELS 32

struct aipc_mixer {
  uint32_t in_channels, out_channels;
  /* Per output channel, the input channels with a coefficient. */
  uint8_t terms[AIPC_MIXER_MAX_CHANNELS];
  uint8_t source[AIPC_MIXER_MAX_CHANNELS][AIPC_MIXER_MAX_CHANNELS];
  float coef[AIPC_MIXER_MAX_CHANNELS][AIPC_MIXER_MAX_CHANNELS];
};

/* Sets up *m for 1..AIPC_MIXER_MAX_CHANNELS channels each way. */
void aipc_mixer_init(struct aipc_mixer *m, uint32_t in_channels,
                     cubeb_channel_layout in_layout, uint32_t out_channels,
                     cubeb_channel_layout out_layout);

/* Whether the mix passes every channel unchanged. */
bool aipc_mixer_is_identity(const struct aipc_mixer *m);

/* Mixes one frame. A lone coefficient of 1 copies the sample bit for
 * bit. Any thread. */
void aipc_mixer_frame(const struct aipc_mixer *m, const float *in, float *out);

#endif
