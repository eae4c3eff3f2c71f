/* SPDX-License-Identifier: ISC */
/*
 * Errors on the wire are negative errno values; these translate them to
 * and from cubeb's codes, at the two ops boundaries (the server's calls
 * into libcubeb, the client's ops table).
 */
#ifndef AIPC_CUBEB_ERRORS_H
#define AIPC_CUBEB_ERRORS_H

#include <cubeb/cubeb.h>
#include <errno.h>

static inline int
aipc_errno_from_cubeb(int r)
{
  switch (r) {
  case CUBEB_OK:
    return 0;
  case CUBEB_ERROR_INVALID_FORMAT:
    return -EMEDIUMTYPE;
  case CUBEB_ERROR_INVALID_PARAMETER:
    return -EINVAL;
  case CUBEB_ERROR_NOT_SUPPORTED:
    return -ENOTSUP;
  case CUBEB_ERROR_DEVICE_UNAVAILABLE:
    return -ENODEV;
  default:
    return -EIO;
  }
}

static inline int
aipc_errno_to_cubeb(int e)
{
  switch (e) {
  case 0:
    return CUBEB_OK;
  case -EMEDIUMTYPE:
    return CUBEB_ERROR_INVALID_FORMAT;
  case -EINVAL:
  case -ENOENT: /* no such stream */
    return CUBEB_ERROR_INVALID_PARAMETER;
  case -ENOTSUP:
    return CUBEB_ERROR_NOT_SUPPORTED;
  case -ENODEV:
    return CUBEB_ERROR_DEVICE_UNAVAILABLE;
  default:
    return CUBEB_ERROR;
  }
}

#endif
