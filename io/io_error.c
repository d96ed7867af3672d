#include "io/io_error.h"

#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

int ts_nc_fail_at(char *err, size_t errcap, int rc, const char *call, const char *file, int line, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = (int)strcspn(call, "( ");
    return ts_fail_at(err, errcap, file, line, "%s: %.*s: %s", msg, n, call, nc_strerror(rc));
}
