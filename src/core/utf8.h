/* SPDX-License-Identifier: ISC */
/* UTF-8, as the server checks and logs what clients name things. */
#ifndef AIPC_UTF8_H
#define AIPC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length of the well-formed UTF-8 sequence at `p` (1..4), its code
 * point in *cp; 0 if the bytes there are not one (a stray continuation
 * byte, a truncated or overlong sequence, a surrogate, a code point past
 * U+10FFFF, or the NUL that ends the string).
 */
static inline unsigned
aipc_utf8_next(const unsigned char *p, uint32_t *cp)
{
  unsigned n;
  uint32_t c = p[0];
  if (c == 0)
    return 0;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf)
    n = 1, c &= 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    n = 2, c &= 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 3, c &= 0x07;
  else
    return 0;
  for (unsigned i = 1; i <= n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (p[i] & 0x3f);
  }
  if ((n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
      (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
    return 0;
  *cp = c;
  return n + 1;
}

#endif
