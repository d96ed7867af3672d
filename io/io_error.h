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

#define TS_NC_CHECK(call, err, errcap, ...)                                                         \
    do {                                                                                            \
        int ts_nc_rc_ = (call);                                                                     \
        if (ts_nc_rc_ != 0) return ts_nc_fail_at((err), (errcap), ts_nc_rc_, #call, __FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

#define TS_NC_CHECK_GOTO(call, err, errcap, ...)                                                    \
    do {                                                                                            \
        int ts_nc_rc_ = (call);                                                                     \
        if (ts_nc_rc_ != 0) {                                                                       \
            ts_nc_fail_at((err), (errcap), ts_nc_rc_, #call, __FILE__, __LINE__, __VA_ARGS__);      \
            goto fail;                                                                              \
        }                                                                                           \
    } while (0)

#endif
