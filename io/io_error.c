#include "io/io_error.h"

#include <hdf5.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

int ts_nc_fail_at(char *err, size_t errcap, int rc, const char *call, const char *file, int line, const char *fmt,
                  ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = (int)strcspn(call, "( ");
    /* "NetCDF: HDF error" alone hides the cause (a full disk, a lost
     * file): HDF5's own innermost message, when its stack still has one */
    char h5[1024] = "";
    if (rc == NC_EHDFERR) ts_h5_message(h5, sizeof h5);
    return ts_fail_at(err, errcap, file, line, "%s: %.*s: %s%s%s%s", msg, n, call, nc_strerror(rc), h5[0] ? " (" : "",
                      h5, h5[0] ? ")" : "");
}

typedef struct {
    char *buf;
    size_t cap;
} h5_desc;

static herr_t keep_desc(unsigned n, const H5E_error2_t *e, void *arg) {
    h5_desc *d = arg;
    (void)n;
    snprintf(d->buf, d->cap, "%s", e->desc ? e->desc : "");
    return 0;
}

void ts_h5_message(char *buf, size_t cap) {
    buf[0] = '\0';
    hid_t stack = H5Eget_current_stack();
    if (stack < 0) return;
    h5_desc d = {buf, cap};
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, keep_desc, &d);
    H5Eclose_stack(stack);
}

int ts_h5_fail_at(char *err, size_t errcap, const char *file, int line, const char *fmt, ...) {
    char what[1536], h5[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    ts_h5_message(h5, sizeof h5);
    return ts_fail_at(err, errcap, file, line, "%s: %s", what, h5[0] ? h5 : "HDF5 call failed");
}

int ts_io_check_fits(const char *path, const char *what, double bytes, char *err, size_t errcap) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double have = pages > 0 && page > 0 ? (double)pages * (double)page : 1.0e18;
    if (bytes <= have) return 0;
    return TS_FAIL(err, errcap, "%s: %s declares %.3g GiB, more than this machine's %.3g GiB of memory: a damaged file",
                   path, what, bytes / 1073741824.0, have / 1073741824.0);
}
