/* The error family's NetCDF variant (core/log.h has the generic one).
 *
 *   TS_NC_CHECK(call, err, errcap, fmt, ...);
 *
 * runs a netCDF call; when it fails, writes one line into err,
 * "<fmt ...>: <netCDF function>: <netCDF's message> (<file>:<line>)",
 * and returns -1 from the calling function.
 *
 *   TS_NC_CHECK_GOTO(call, err, errcap, fmt, ...);
 *
 * the same for a function that releases what it holds first: it jumps to
 * the function's label `fail` instead of returning. */
#ifndef TESSERA_IO_IO_ERROR_H
#define TESSERA_IO_IO_ERROR_H

#include <stddef.h>

/* The line above into err for return code rc of the stringified call;
 * returns -1. */
int ts_nc_fail_at(char *err, size_t errcap, int rc, const char *call, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#define TS_NC_CHECK(call, err, errcap, ...)                                                                            \
    do {                                                                                                               \
        int ts_nc_rc_ = (call);                                                                                        \
        if (ts_nc_rc_ != 0) return ts_nc_fail_at((err), (errcap), ts_nc_rc_, #call, __FILE__, __LINE__, __VA_ARGS__);  \
    } while (0)

#define TS_NC_CHECK_GOTO(call, err, errcap, ...)                                                                       \
    do {                                                                                                               \
        int ts_nc_rc_ = (call);                                                                                        \
        if (ts_nc_rc_ != 0) {                                                                                          \
            ts_nc_fail_at((err), (errcap), ts_nc_rc_, #call, __FILE__, __LINE__, __VA_ARGS__);                         \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

/* The HDF5 variant: "<fmt ...>: <HDF5's innermost message> (<file>:<line>)"
 * into err, the HDF5 error stack cleared; returns -1.
 *
 *   return TS_H5_FAIL(err, errcap, fmt, ...);
 *   TS_H5_CHECK_GOTO(call, err, errcap, fmt, ...);   ids and herr_t are
 *                                                    negative on failure */
int ts_h5_fail_at(char *err, size_t errcap, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* HDF5's innermost error message ("truncated file: eof = ...", "errno = 13,
 * error message = 'Permission denied'"), taken off the error stack so that
 * a later failure starts clean; "" when the stack is empty. */
void ts_h5_message(char *buf, size_t cap);
/* Sizes read from a file are checked before anything is allocated for
 * them: 0 when `bytes` (what the file declares `what` to hold, in memory)
 * fits this machine's physical memory, else -1 with one line naming the
 * file, what and both sizes. A damaged or hostile header (a dataset that
 * declares 2^40 nodes and stores none) is refused, not allocated. */
int ts_io_check_fits(const char *path, const char *what, double bytes, char *err, size_t errcap);

#define TS_H5_FAIL(err, errcap, ...) ts_h5_fail_at((err), (errcap), __FILE__, __LINE__, __VA_ARGS__)
#define TS_H5_CHECK_GOTO(call, err, errcap, ...)                                                                       \
    do {                                                                                                               \
        if ((call) < 0) {                                                                                              \
            TS_H5_FAIL((err), (errcap), __VA_ARGS__);                                                                  \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

#endif
