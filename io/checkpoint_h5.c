/* HDF5 checkpoints (io/checkpoint.h, docs/checkpoint.md): the small HDF5
 * helpers the writer and reader share. */
#include "io/checkpoint_internal.h"
#include "core/log.h"
#include "core/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Close any HDF5 id we opened and mark it closed. Failure paths ignore the
 * result (an error is already being reported); success paths check it. */
herr_t ck_close_id(hid_t *id) {
    if (*id < 0) return 0;
    herr_t rc;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: rc = H5Fclose(*id); break;
    case H5I_GROUP: rc = H5Gclose(*id); break;
    case H5I_DATASET: rc = H5Dclose(*id); break;
    case H5I_DATASPACE: rc = H5Sclose(*id); break;
    case H5I_DATATYPE: rc = H5Tclose(*id); break;
    case H5I_ATTR: rc = H5Aclose(*id); break;
    case H5I_GENPROP_LST: rc = H5Pclose(*id); break;
    default: rc = H5Idec_ref(*id) < 0 ? -1 : 0; break;
    }
    *id = H5I_INVALID_HID;
    return rc;
}

/* HDF5's printing of its error stack goes to stderr behind our back; we
 * turn every failure into one line instead. */
int ck_silence_hdf5(const ck_where *w) {
    if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0)
        return TS_FAIL(w->err, w->cap, "%s: cannot initialise the HDF5 library", w->path);
    return 0;
}

void ck_format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- small HDF5 helpers -------------------------------------------------------------------- */

/* UTF-8 variable-length strings: h5py reads them as str. */
hid_t ck_string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* Groups remember the order their links were made in, so h5dump
 * --sort_by=creation_order and h5py list parameters in table order. */
hid_t ck_ordered_gcpl(void) {
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p < 0) return p;
    if (H5Pset_link_creation_order(p, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* Files closed with H5F_CLOSE_STRONG close every object still open in them,
 * so an early exit on an error path leaks nothing and a successful H5Fclose
 * means the file is really written. */
hid_t ck_strong_close_fapl(void) {
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    if (p < 0) return p;
    if (H5Pset_fclose_degree(p, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}
