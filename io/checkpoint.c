#include "io/checkpoint.h"
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

/* The root attribute `format`: how a tessera checkpoint is told from any
 * other HDF5 file. */
#define CKPT_FORMAT "tessera checkpoint"
#define STATS_GROUP "stats"
#define NORMALIZERS_GROUP "normalizers"

/* Chunks hold at most this many elements (64 MiB of float32): chunking is
 * only there so every array can carry a Fletcher-32 checksum, and HDF5
 * limits a chunk to 4 GiB. */
#define CHUNK_MAX_ELEMENTS ((hsize_t)1 << 24)

/* Variable-length data read by HDF5 is freed by HDF5 (1.12 renamed the call). */
#if H5_VERSION_GE(1, 12, 0)
#define reclaim_vlen(type, space, buf) H5Treclaim((type), (space), H5P_DEFAULT, (buf))
#else
#define reclaim_vlen(type, space, buf) H5Dvlen_reclaim((type), (space), H5P_DEFAULT, (buf))
#endif

/* ---- errors -------------------------------------------------------------------------------- */

/* Which file an error is about, and where its line goes. */
typedef struct {
    const char *path;
    char *err;
    size_t cap;
} ck_where;

static int fail(const ck_where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const ck_where *w, const char *fmt, ...) {
    char msg[2560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever HDF5 put in its messages (some end in a ctime()
     * newline). */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    if (w->err && w->cap) snprintf(w->err, w->cap, "%s: %s", w->path, msg);
    return -1;
}

enum { CK_H5_MSG_MAX = 1024 };

static herr_t keep_desc(unsigned n, const H5E_error2_t *e, void *buf) {
    (void)n;
    snprintf(buf, CK_H5_MSG_MAX, "%s", e->desc ? e->desc : "");
    return 0;
}

/* HDF5's innermost error message (the most specific one: "truncated file:
 * eof = ...", "errno = 13, error message = 'Permission denied'"), taken off
 * the error stack so a later failure starts clean. */
static void h5_message(char buf[CK_H5_MSG_MAX]) {
    buf[0] = '\0';
    hid_t stack = H5Eget_current_stack();
    if (stack < 0) return;
    H5Ewalk2(stack, H5E_WALK_DOWNWARD, keep_desc, buf);
    H5Eclose_stack(stack);
}

/* A failed HDF5 call: what we were doing, HDF5's message, our file:line. */
static int fail_h5(const ck_where *w, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_h5(const ck_where *w, const char *file, int line, const char *fmt, ...) {
    char what[1024], h5[CK_H5_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    h5_message(h5);
    return fail(w, "%s: %s (%s:%d)", what, h5[0] ? h5 : "HDF5 call failed", file, line);
}

/* Every HDF5 call goes through this: ids and herr_t alike are negative on
 * failure. Needs `w` in scope and a `fail:` label that releases. */
#define CK_TRY(call, ...)                                   \
    do {                                                    \
        if ((call) < 0) {                                   \
            fail_h5(w, __FILE__, __LINE__, __VA_ARGS__);    \
            goto fail;                                      \
        }                                                   \
    } while (0)

/* Close any HDF5 id we opened and mark it closed. Failure paths ignore the
 * result (an error is already being reported); success paths check it. */
static herr_t close_id(hid_t *id) {
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
static int silence_hdf5(const ck_where *w) {
    if (H5Eset_auto2(H5E_DEFAULT, NULL, NULL) < 0) return fail(w, "cannot initialise the HDF5 library");
    return 0;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- small HDF5 helpers -------------------------------------------------------------------- */

/* UTF-8 variable-length strings: h5py reads them as str. */
static hid_t string_type(void) {
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
static hid_t ordered_gcpl(void) {
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
static hid_t strong_close_fapl(void) {
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    if (p < 0) return p;
    if (H5Pset_fclose_degree(p, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* ---- write --------------------------------------------------------------------------------- */

static int write_attr(const ck_where *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *value) {
    hid_t space = H5I_INVALID_HID, a = H5I_INVALID_HID;
    CK_TRY(space = H5Screate(H5S_SCALAR), "attribute '%s'", name);
    CK_TRY(a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT), "creating attribute '%s'", name);
    CK_TRY(H5Awrite(a, mtype, value), "writing attribute '%s'", name);
    CK_TRY(close_id(&a), "closing attribute '%s'", name);
    CK_TRY(close_id(&space), "attribute '%s'", name);
    return 0;
fail:
    close_id(&a), close_id(&space);
    return -1;
}

static int write_attr_str(const ck_where *w, hid_t loc, const char *name, const char *value) {
    hid_t t = H5I_INVALID_HID;
    CK_TRY(t = string_type(), "string type for attribute '%s'", name);
    if (write_attr(w, loc, name, t, t, &value)) goto fail;
    CK_TRY(close_id(&t), "attribute '%s'", name);
    return 0;
fail:
    close_id(&t);
    return -1;
}

static int write_attr_i64(const ck_where *w, hid_t loc, const char *name, int64_t value) {
    return write_attr(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

static hid_t create_group(const ck_where *w, hid_t file, const char *name) {
    hid_t gcpl = H5I_INVALID_HID, g = H5I_INVALID_HID;
    CK_TRY(gcpl = ordered_gcpl(), "group '%s/'", name);
    CK_TRY(g = H5Gcreate2(file, name, H5P_DEFAULT, gcpl, H5P_DEFAULT), "creating group '%s/'", name);
    CK_TRY(close_id(&gcpl), "group '%s/'", name);
    return g;
fail:
    close_id(&g), close_id(&gcpl);
    return H5I_INVALID_HID;
}

/* Chunk = the whole array, halved along leading dimensions until it fits
 * CHUNK_MAX_ELEMENTS, so small tensors are one chunk and one checksum. */
static void chunk_dims(int ndim, const hsize_t *dims, hsize_t *chunk) {
    hsize_t n = 1;
    for (int d = 0; d < ndim; d++) chunk[d] = dims[d], n *= dims[d];
    for (int d = 0; d < ndim && n > CHUNK_MAX_ELEMENTS; d++)
        while (chunk[d] > 1 && n > CHUNK_MAX_ELEMENTS) {
            n = n / chunk[d] * ((chunk[d] + 1) / 2);
            chunk[d] = (chunk[d] + 1) / 2;
        }
}

/* Dataset creation: a Fletcher-32 checksum on every non-empty array, so
 * a bit flipped on disk is an error at load rather than a silently wrong
 * weight; no fill pass, since every element is written. */
static hid_t array_dcpl(int ndim, const hsize_t *dims, hsize_t numel) {
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (p < 0) return p;
    hsize_t chunk[TS_PARAM_MAX_DIMS];
    int bad = H5Pset_fill_time(p, H5D_FILL_TIME_NEVER) < 0;
    if (!bad && ndim > 0 && numel > 0) {
        chunk_dims(ndim, dims, chunk);
        bad = H5Pset_chunk(p, ndim, chunk) < 0 || H5Pset_fletcher32(p) < 0;
    }
    if (bad) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

/* One n-dimensional array (ndim 0: a scalar) of ftype in the file from
 * mtype in memory. */
static int write_array(const ck_where *w, hid_t loc, const char *name, int ndim, const int64_t *shape, hid_t ftype,
                       hid_t mtype, const void *data) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[TS_PARAM_MAX_DIMS], numel = 1;
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i], numel *= dims[i];
    CK_TRY(space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR), "dataspace of '%s'", name);
    CK_TRY(dcpl = array_dcpl(ndim, dims, numel), "creation properties of '%s'", name);
    CK_TRY(d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "creating dataset '%s'", name);
    if (numel) CK_TRY(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing dataset '%s'", name);
    CK_TRY(close_id(&d), "closing dataset '%s'", name);
    CK_TRY(close_id(&dcpl), "dataset '%s'", name);
    CK_TRY(close_id(&space), "dataset '%s'", name);
    return 0;
fail:
    close_id(&d), close_id(&dcpl), close_id(&space);
    return -1;
}

/* A 1-D array of n variable-length strings from fixed-size rows. */
static int write_strings(const ck_where *w, hid_t loc, const char *name, size_t n,
                         const char (*rows)[TS_STATS_NAME_MAX]) {
    hid_t t = H5I_INVALID_HID, space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    const char **ptrs = ts_malloc(sizeof(char *) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) ptrs[i] = rows[i];
    hsize_t dim = n;
    CK_TRY(t = string_type(), "string type of '%s'", name);
    CK_TRY(space = H5Screate_simple(1, &dim, NULL), "dataspace of '%s'", name);
    CK_TRY(d = H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "creating dataset '%s'", name);
    if (n) CK_TRY(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs), "writing dataset '%s'", name);
    CK_TRY(close_id(&d), "closing dataset '%s'", name);
    CK_TRY(close_id(&space), "dataset '%s'", name);
    CK_TRY(close_id(&t), "dataset '%s'", name);
    free(ptrs);
    return 0;
fail:
    close_id(&d), close_id(&space), close_id(&t);
    free(ptrs);
    return -1;
}

static int write_root_attrs(const ck_where *w, hid_t f, const ts_ckpt_meta *m) {
    int version = TS_CKPT_FORMAT_VERSION;
    const char *source = "tessera " TESSERA_VERSION;
    if (write_attr_str(w, f, "format", CKPT_FORMAT) ||
        write_attr(w, f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version) ||
        write_attr_str(w, f, "source", source) || write_attr_str(w, f, "model_kind", m->model_kind) ||
        write_attr_str(w, f, "config", m->config_json) || write_attr_i64(w, f, "step", m->step) ||
        write_attr_i64(w, f, "optimizer_step", m->optimizer_step) ||
        write_attr_i64(w, f, "data_position", m->data_position) ||
        write_attr(w, f, "rng_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &m->rng_seed))
        return -1;
    return 0;
}

/* One block of the parameter layout as one group of float32 datasets. */
static int write_block(const ck_where *w, hid_t f, const char *group, const ts_params *layout, const float *block) {
    hid_t g = create_group(w, f, group);
    if (g < 0) return -1;
    for (int i = 0; i < layout->count; i++) {
        const ts_param_entry *e = &layout->entries[i];
        if (write_array(w, g, e->name, e->ndim, e->shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, block + e->offset))
            goto fail;
    }
    CK_TRY(close_id(&g), "closing group '%s/'", group);
    return 0;
fail:
    close_id(&g);
    return -1;
}

static int write_stats(const ck_where *w, hid_t f, const ts_stats *s) {
    hid_t g = create_group(w, f, STATS_GROUP);
    if (g < 0) return -1;
    int64_t chan[1] = {(int64_t)s->nchan}, res[1] = {(int64_t)s->nres};
    int64_t res2[2] = {(int64_t)s->nres, (int64_t)s->nstate};
    if (write_attr_i64(w, g, "nstate", (int64_t)s->nstate) || write_attr_i64(w, g, "time_first", s->time_first) ||
        write_attr_i64(w, g, "time_last", s->time_last) || write_attr_i64(w, g, "ntimes", (int64_t)s->ntimes) ||
        write_attr_str(w, g, "comment",
                       "a copy of the normalization statistics; the climatology stays in the statistics file") ||
        write_strings(w, g, "channel_name", s->nchan, (const char(*)[TS_STATS_NAME_MAX])s->name) ||
        write_strings(w, g, "channel_units", s->nchan, (const char(*)[TS_STATS_NAME_MAX])s->units) ||
        write_array(w, g, "mean", 1, chan, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->mean) ||
        write_array(w, g, "std", 1, chan, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->std) ||
        write_array(w, g, "residual_hours", 1, res, H5T_STD_I32LE, H5T_NATIVE_INT, s->res_hours) ||
        write_array(w, g, "residual_mean", 2, res2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->res_mean) ||
        write_array(w, g, "residual_std", 2, res2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->res_std))
        goto fail;
    CK_TRY(close_id(&g), "closing group '%s/'", STATS_GROUP);
    return 0;
fail:
    close_id(&g);
    return -1;
}

static int write_named(const ck_where *w, hid_t f, const ts_ckpt_named *a, size_t n) {
    hid_t g = create_group(w, f, NORMALIZERS_GROUP);
    if (g < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (write_array(w, g, a[i].name, a[i].ndim, a[i].shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, a[i].data))
            goto fail;
    CK_TRY(close_id(&g), "closing group '%s/'", NORMALIZERS_GROUP);
    return 0;
fail:
    close_id(&g);
    return -1;
}

/* A name becomes one link in a group: no '/', which would make subgroups. */
static int check_name(const ck_where *w, const char *what, const char *name) {
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0)
        return fail(w, "%s name '%s' cannot be a dataset name (empty, '.' or containing '/')", what,
                    name ? name : "(null)");
    return 0;
}

static int check_meta(const ck_where *w, const ts_ckpt_meta *m) {
    if (!m || !m->model_kind || !m->model_kind[0] || !m->config_json)
        return fail(w, "checkpoint metadata needs a model_kind and the configuration");
    if (m->step < 0 || m->optimizer_step < 0 || m->data_position < 0)
        return fail(w, "negative step (%lld), optimizer_step (%lld) or data_position (%lld)", (long long)m->step,
                    (long long)m->optimizer_step, (long long)m->data_position);
    if (m->rng_seed > TS_RNG_SEED_MAX)
        return fail(w, "rng_seed %llu exceeds the RNG's 56 bits", (unsigned long long)m->rng_seed);
    return 0;
}

/* A block the table says lives on a device cannot be written from here. */
static int check_host_block(const ck_where *w, const ts_params *l, const float *block, const char *group) {
    if (block && l->be && l->be->kind != TS_BACKEND_CPU && block == l->data)
        return fail(w, "the %s block lives on the %s device: download it to host memory first", group, l->be->name);
    return 0;
}

static int check_named(const ck_where *w, const ts_ckpt_named *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (check_name(w, "normalizer", a[i].name)) return -1;
        if (a[i].ndim < 0 || a[i].ndim > TS_PARAM_MAX_DIMS)
            return fail(w, "normalizer array '%s' has %d dimensions", a[i].name, a[i].ndim);
        for (int d = 0; d < a[i].ndim; d++)
            if (a[i].shape[d] < 0) return fail(w, "normalizer array '%s' has a negative dimension", a[i].name);
        if (!a[i].data) return fail(w, "normalizer array '%s' has no data", a[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a[i].name, a[j].name) == 0) return fail(w, "normalizer array '%s' given twice", a[i].name);
    }
    return 0;
}

static int check_contents(const ck_where *w, const ts_ckpt_contents *c) {
    if (!c || !c->layout || !c->params) return fail(w, "a checkpoint needs a parameter layout and its block");
    const ts_params *l = c->layout;
    for (int i = 0; i < l->count; i++)
        if (check_name(w, "parameter", l->entries[i].name)) return -1;
    if (check_host_block(w, l, c->params, TS_CKPT_PARAMS) || check_host_block(w, l, c->ema, TS_CKPT_EMA) ||
        check_host_block(w, l, c->adam_m, TS_CKPT_ADAM_M) || check_host_block(w, l, c->adam_v, TS_CKPT_ADAM_V))
        return -1;
    if (c->stats && c->stats->nstate > c->stats->nchan)
        return fail(w, "statistics with %zu state channels of %zu", c->stats->nstate, c->stats->nchan);
    if (c->nnormalizers && !c->normalizers) return fail(w, "%zu normalizer arrays but no table", c->nnormalizers);
    return check_named(w, c->normalizers, c->nnormalizers);
}

static hid_t create_part(const ck_where *w, const char *tmp) {
    hid_t fcpl = H5I_INVALID_HID, fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    CK_TRY(fcpl = H5Pcreate(H5P_FILE_CREATE), "file creation properties");
    CK_TRY(H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "file creation properties");
    CK_TRY(fapl = strong_close_fapl(), "file access properties");
    CK_TRY(f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl), "cannot create %s", tmp);
    CK_TRY(close_id(&fcpl), "file creation properties");
    CK_TRY(close_id(&fapl), "file access properties");
    return f;
fail:
    close_id(&f), close_id(&fcpl), close_id(&fapl);
    return H5I_INVALID_HID;
}

static int write_contents(const ck_where *w, hid_t f, const ts_ckpt_meta *meta, const ts_ckpt_contents *c) {
    const ts_params *l = c->layout;
    if (write_root_attrs(w, f, meta) || write_block(w, f, TS_CKPT_PARAMS, l, c->params)) return -1;
    if (c->ema && write_block(w, f, TS_CKPT_EMA, l, c->ema)) return -1;
    if (c->adam_m && write_block(w, f, TS_CKPT_ADAM_M, l, c->adam_m)) return -1;
    if (c->adam_v && write_block(w, f, TS_CKPT_ADAM_V, l, c->adam_v)) return -1;
    if (c->stats && write_stats(w, f, c->stats)) return -1;
    if (c->nnormalizers && write_named(w, f, c->normalizers, c->nnormalizers)) return -1;
    return 0;
}

/* The bytes must be on disk before the rename makes them the checkpoint;
 * otherwise a power cut can leave the new name pointing at a hole. */
static int sync_file(const ck_where *w, const char *tmp) {
    int fd = open(tmp, O_RDWR);
    if (fd < 0) return fail(w, "cannot open %s to sync it: %s", tmp, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return fail(w, "cannot sync %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) return fail(w, "cannot close %s: %s", tmp, strerror(errno));
    return 0;
}

/* Make the rename itself durable. Best effort: the checkpoint is already
 * complete under its name, and some file systems refuse fsync on a folder. */
static void sync_parent_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int ts_ckpt_write(const char *path, const ts_ckpt_meta *meta, const ts_ckpt_contents *c, char *err, size_t cap) {
    ck_where where = {path ? path : "(null)", err, cap}, *w = &where;
    if (!path || !path[0]) return fail(w, "no checkpoint path");
    if (check_meta(w, meta) || check_contents(w, c) || silence_hdf5(w)) return -1;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", path) >= sizeof tmp) return fail(w, "path too long");

    hid_t f = create_part(w, tmp);
    if (f < 0) return -1;
    int rc = write_contents(w, f, meta, c);
    if (!rc && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) rc = fail_h5(w, __FILE__, __LINE__, "flushing %s", tmp);
    if (close_id(&f) < 0 && !rc) rc = fail_h5(w, __FILE__, __LINE__, "closing %s", tmp);
    if (!rc) rc = sync_file(w, tmp);
    if (!rc && rename(tmp, path) != 0) rc = fail(w, "cannot rename %s into place: %s", tmp, strerror(errno));
    if (rc) {
        unlink(tmp); /* the old checkpoint, if any, was never touched */
        return -1;
    }
    sync_parent_dir(path);
    return 0;
}

/* ---- read: the file and its metadata ------------------------------------------------------- */

struct ts_ckpt {
    hid_t file;
    char *path;
    char *model_kind, *config_json; /* what meta's strings point to */
    ts_ckpt_meta meta;
};

/* Why H5Fopen failed, in words a user can act on. HDF5's message is taken
 * first: the checks below must not bury it. */
static int explain_open_failure(const ck_where *w) {
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    char h5[CK_H5_MSG_MAX];
    h5_message(h5);
    unsigned char head[8] = {0};
    struct stat st;
    if (stat(w->path, &st) == 0 && S_ISDIR(st.st_mode)) return fail(w, "a folder, not a checkpoint file");
    FILE *fp = fopen(w->path, "rb");
    if (!fp) return fail(w, "cannot open the checkpoint: %s", strerror(errno));
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got < sizeof head || memcmp(head, signature, sizeof head) != 0)
        return fail(w, "not an HDF5 file (no HDF5 signature at its start), so not a tessera checkpoint");
    return fail(w, "cannot open the checkpoint: a truncated or damaged HDF5 file (HDF5: %s)", h5);
}

/* A scalar attribute read as text, whether stored as a variable- or a
 * fixed-length string (h5py and other tools write either). */
static char *read_attr_str(const ck_where *w, hid_t loc, const char *name) {
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char *out = NULL, *vlen = NULL;
    htri_t exists = H5Aexists(loc, name);
    CK_TRY(exists, "looking for attribute '%s'", name);
    if (!exists) {
        fail(w, "attribute '%s' is missing: a damaged checkpoint or one of another program", name);
        return NULL;
    }
    CK_TRY(a = H5Aopen(loc, name, H5P_DEFAULT), "opening attribute '%s'", name);
    CK_TRY(ft = H5Aget_type(a), "type of attribute '%s'", name);
    CK_TRY(space = H5Aget_space(a), "dataspace of attribute '%s'", name);
    /* One string only: the buffers below hold one. */
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        fail(w, "attribute '%s' is not one string", name);
        goto fail;
    }
    htri_t variable = H5Tis_variable_str(ft);
    CK_TRY(variable, "type of attribute '%s'", name);
    if (variable) {
        CK_TRY(mt = string_type(), "attribute '%s'", name);
        CK_TRY(H5Aread(a, mt, &vlen), "reading attribute '%s'", name);
        out = strdup(vlen ? vlen : "");
        CK_TRY(reclaim_vlen(mt, space, &vlen), "freeing attribute '%s'", name);
    } else {
        size_t size = H5Tget_size(ft);
        CK_TRY(mt = H5Tcopy(H5T_C_S1), "attribute '%s'", name);
        CK_TRY(H5Tset_size(mt, size + 1), "attribute '%s'", name);
        out = ts_calloc(size + 1, 1);
        CK_TRY(H5Aread(a, mt, out), "reading attribute '%s'", name);
    }
    if (!out) ts_fatal("out of memory reading attribute '%s'", name);
    close_id(&space), close_id(&mt), close_id(&ft), close_id(&a);
    return out;
fail:
    close_id(&space), close_id(&mt), close_id(&ft), close_id(&a);
    free(out);
    return NULL;
}

/* A scalar integer attribute converted to mtype. */
static int read_attr_int(const ck_where *w, hid_t loc, const char *name, hid_t mtype, void *value) {
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    htri_t exists = H5Aexists(loc, name);
    CK_TRY(exists, "looking for attribute '%s'", name);
    if (!exists) return fail(w, "attribute '%s' is missing: a damaged checkpoint or one of another program", name);
    CK_TRY(a = H5Aopen(loc, name, H5P_DEFAULT), "opening attribute '%s'", name);
    CK_TRY(ft = H5Aget_type(a), "type of attribute '%s'", name);
    CK_TRY(space = H5Aget_space(a), "dataspace of attribute '%s'", name);
    if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1) {
        fail(w, "attribute '%s' is not one integer", name);
        goto fail;
    }
    CK_TRY(H5Aread(a, mtype, value), "reading attribute '%s'", name);
    close_id(&space), close_id(&ft), close_id(&a);
    return 0;
fail:
    close_id(&space), close_id(&ft), close_id(&a);
    return -1;
}

static int read_format(const ck_where *w, hid_t f) {
    htri_t has = H5Aexists(f, "format");
    if (has < 0) return fail_h5(w, __FILE__, __LINE__, "looking for attribute 'format'");
    if (!has) return fail(w, "not a tessera checkpoint (no attribute format = \"%s\")", CKPT_FORMAT);
    char *format = read_attr_str(w, f, "format");
    if (!format) return -1;
    int same = strcmp(format, CKPT_FORMAT) == 0;
    if (!same) fail(w, "not a tessera checkpoint (format = \"%s\", want \"%s\")", format, CKPT_FORMAT);
    free(format);
    return same ? 0 : -1;
}

static int read_meta(const ck_where *w, ts_ckpt *ck) {
    ts_ckpt_meta *m = &ck->meta;
    hid_t f = ck->file;
    if (read_format(w, f) || read_attr_int(w, f, "format_version", H5T_NATIVE_INT, &m->format_version)) return -1;
    if (m->format_version > TS_CKPT_FORMAT_VERSION)
        return fail(w, "format_version %d is newer than this build reads (%d): written by a newer tessera, which can "
                       "read it", m->format_version, TS_CKPT_FORMAT_VERSION);
    if (m->format_version < 1)
        return fail(w, "format_version %d is not a version: a damaged checkpoint", m->format_version);
    if (read_attr_int(w, f, "step", H5T_NATIVE_INT64, &m->step) ||
        read_attr_int(w, f, "optimizer_step", H5T_NATIVE_INT64, &m->optimizer_step) ||
        read_attr_int(w, f, "data_position", H5T_NATIVE_INT64, &m->data_position) ||
        read_attr_int(w, f, "rng_seed", H5T_NATIVE_UINT64, &m->rng_seed))
        return -1;
    if (!(ck->model_kind = read_attr_str(w, f, "model_kind")) || !(ck->config_json = read_attr_str(w, f, "config")))
        return -1;
    m->model_kind = ck->model_kind;
    m->config_json = ck->config_json;
    if (m->step < 0 || m->optimizer_step < 0 || m->data_position < 0 || m->rng_seed > TS_RNG_SEED_MAX)
        return fail(w, "step, optimizer_step, data_position or rng_seed out of range: a damaged checkpoint");
    return 0;
}

ts_ckpt *ts_ckpt_open(const char *path, const char *want_kind, char *err, size_t cap) {
    ck_where where = {path ? path : "(null)", err, cap}, *w = &where;
    if (!path || !path[0]) return fail(w, "no checkpoint path"), NULL;
    if (silence_hdf5(w)) return NULL;
    ts_ckpt *ck = ts_calloc(1, sizeof *ck);
    ck->file = H5I_INVALID_HID;
    ck->path = strdup(path);
    if (!ck->path) ts_fatal("out of memory");
    w->path = ck->path;
    hid_t fapl = strong_close_fapl();
    CK_TRY(fapl, "file access properties");
    ck->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (ck->file < 0) {
        explain_open_failure(w); /* before any other HDF5 call clears the error stack */
        goto fail;
    }
    CK_TRY(close_id(&fapl), "file access properties");
    if (read_meta(w, ck)) goto fail;
    if (want_kind && strcmp(want_kind, ck->model_kind) != 0) {
        fail(w, "a checkpoint of a %s model, but this run's model.kind is %s", ck->model_kind, want_kind);
        goto fail;
    }
    return ck;
fail:
    close_id(&fapl);
    ts_ckpt_close(ck);
    return NULL;
}

const ts_ckpt_meta *ts_ckpt_get_meta(const ts_ckpt *ck) { return &ck->meta; }

int ts_ckpt_has(const ts_ckpt *ck, const char *group) {
    if (!ck || !group || !group[0] || strchr(group, '/')) return 0;
    return H5Lexists(ck->file, group, H5P_DEFAULT) > 0;
}

void ts_ckpt_close(ts_ckpt *ck) {
    if (!ck) return;
    close_id(&ck->file);
    free(ck->path), free(ck->model_kind), free(ck->config_json);
    free(ck);
}

/* ---- read: declared arrays ----------------------------------------------------------------- */

/* An array the caller declared: it must be in the file with this shape. */
typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    void *dst;
} wanted_array;

/* Where declared arrays are read from, and how to name them in errors. */
typedef struct {
    const ck_where *w;
    hid_t group;
    const char *gname;   /* "params" */
    const char *noun;    /* "parameter" */
    const char *who;     /* "the model" */
    const char *verdict; /* "a checkpoint of another model shape" */
    H5T_class_t cls;     /* the class the file's type must have */
} array_source;

/* Pass 1 for one array: present, of the right class and shape. nwanted,
 * when not 0, is how many arrays were declared (said when one is missing). */
static int check_array(const array_source *src, const wanted_array *a, size_t nwanted) {
    const ck_where *w = src->w;
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID;
    htri_t exists = H5Lexists(src->group, a->name, H5P_DEFAULT);
    CK_TRY(exists, "looking for %s '%s' in %s/", src->noun, a->name, src->gname);
    if (!exists) {
        H5G_info_t info;
        if (!nwanted || H5Gget_info(src->group, &info) < 0)
            return fail(w, "%s '%s' is not in the file (%s/): %s", src->noun, a->name, src->gname, src->verdict);
        return fail(w, "%s '%s' of %s is not in the file (%s/ holds %llu, %s %zu): %s", src->noun, a->name, src->who,
                    src->gname, (unsigned long long)info.nlinks, src->who, nwanted, src->verdict);
    }
    CK_TRY(d = H5Dopen2(src->group, a->name, H5P_DEFAULT), "opening %s '%s' in %s/", src->noun, a->name, src->gname);
    CK_TRY(t = H5Dget_type(d), "type of '%s'", a->name);
    CK_TRY(s = H5Dget_space(d), "dataspace of '%s'", a->name);
    if (H5Tget_class(t) != src->cls) {
        fail(w, "%s '%s' in %s/ has a type of another class than %s expects", src->noun, a->name, src->gname, src->who);
        goto fail;
    }
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_ndims(s);
    CK_TRY(nd, "dataspace of '%s'", a->name);
    int same = nd == a->ndim && nd <= TS_PARAM_MAX_DIMS;
    if (same) {
        CK_TRY(H5Sget_simple_extent_dims(s, dims, NULL), "dataspace of '%s'", a->name);
        for (int i = 0; i < nd; i++) same = same && dims[i] == (hsize_t)a->shape[i];
    }
    if (!same) {
        int64_t file_shape[H5S_MAX_RANK] = {0};
        CK_TRY(H5Sget_simple_extent_dims(s, dims, NULL), "dataspace of '%s'", a->name);
        for (int i = 0; i < nd; i++) file_shape[i] = (int64_t)dims[i];
        char have[512], want[128];
        format_shape(have, sizeof have, nd, file_shape);
        format_shape(want, sizeof want, a->ndim, a->shape);
        fail(w, "%s '%s' has shape %s in the file (%s/) but %s wants %s: %s", src->noun, a->name, have, src->gname,
             src->who, want, src->verdict);
        goto fail;
    }
    close_id(&s), close_id(&t), close_id(&d);
    return 0;
fail:
    close_id(&s), close_id(&t), close_id(&d);
    return -1;
}

/* Called when the group holds more links than were declared: name one. */
static int fail_extra(const array_source *src, const wanted_array *a, size_t n, hsize_t nlinks) {
    const ck_where *w = src->w;
    char name[1024];
    for (hsize_t i = 0; i < nlinks; i++) {
        ssize_t len = H5Lget_name_by_idx(src->group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                         H5P_DEFAULT);
        if (len < 0) return fail_h5(w, __FILE__, __LINE__, "listing %s/", src->gname);
        size_t j = 0;
        while (j < n && strcmp(a[j].name, name) != 0) j++;
        if (j == n)
            return fail(w, "%s '%s' in the file (%s/) is not in %s (the file holds %llu, %s %zu): %s", src->noun, name,
                        src->gname, src->who, (unsigned long long)nlinks, src->who, n, src->verdict);
    }
    return fail(w, "%s/ holds %llu entries but %s declares %zu", src->gname, (unsigned long long)nlinks, src->who, n);
}

static int read_array(const array_source *src, const wanted_array *a, hid_t mtype) {
    const ck_where *w = src->w;
    hid_t d = H5I_INVALID_HID;
    size_t numel = 1;
    for (int i = 0; i < a->ndim; i++) numel *= (size_t)a->shape[i];
    if (numel == 0) return 0; /* nothing stored, nothing to read */
    CK_TRY(d = H5Dopen2(src->group, a->name, H5P_DEFAULT), "opening %s '%s' in %s/", src->noun, a->name, src->gname);
    CK_TRY(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->dst), "reading %s '%s' in %s/", src->noun, a->name,
            src->gname);
    CK_TRY(close_id(&d), "closing '%s'", a->name);
    return 0;
fail:
    close_id(&d);
    return -1;
}

/* The declared arrays, all checked before any is read (so a mismatch
 * leaves the destination untouched), then read. Names are unique. */
static int read_declared(const array_source *src, const wanted_array *a, size_t n, hid_t mtype) {
    for (size_t i = 0; i < n; i++)
        if (check_array(src, &a[i], n)) return -1;
    /* Every declared (distinct) name is present, so any link beyond n is
     * an array the caller does not know. */
    H5G_info_t info;
    if (H5Gget_info(src->group, &info) < 0) return fail_h5(src->w, __FILE__, __LINE__, "listing %s/", src->gname);
    if (info.nlinks > n) return fail_extra(src, a, n, info.nlinks);
    for (size_t i = 0; i < n; i++)
        if (read_array(src, &a[i], mtype)) return -1;
    return 0;
}

static hid_t open_group(const ck_where *w, hid_t file, const char *name) {
    htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists < 0) return fail_h5(w, __FILE__, __LINE__, "looking for group '%s/'", name), H5I_INVALID_HID;
    if (!exists) return fail(w, "no group '%s/': the checkpoint was written without it", name), H5I_INVALID_HID;
    hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
    if (g < 0) fail_h5(w, __FILE__, __LINE__, "opening group '%s/'", name);
    return g;
}

int ts_ckpt_read_params(ts_ckpt *ck, const char *group, const ts_params *layout, float *dst, char *err,
                        size_t cap) {
    ck_where where = {ck ? ck->path : "(null)", err, cap}, *w = &where;
    if (!ck || !group || !layout || !dst) return fail(w, "ts_ckpt_read_params needs a group, a layout and a block");
    if (check_host_block(w, layout, dst, group) || silence_hdf5(w)) return -1;
    hid_t g = open_group(w, ck->file, group);
    if (g < 0) return -1;
    size_t n = (size_t)layout->count;
    wanted_array *a = ts_malloc(sizeof *a * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        const ts_param_entry *e = &layout->entries[i];
        a[i] = (wanted_array){e->name, e->ndim, e->shape, dst + e->offset};
    }
    array_source src = {w, g, group, "parameter", "the model", "a checkpoint of another model shape", H5T_FLOAT};
    int rc = read_declared(&src, a, n, H5T_NATIVE_FLOAT);
    free(a);
    if (close_id(&g) < 0 && !rc) rc = fail_h5(w, __FILE__, __LINE__, "closing group '%s/'", group);
    return rc;
}

int ts_ckpt_read_named(ts_ckpt *ck, ts_ckpt_named *arrays, size_t n, char *err, size_t cap) {
    ck_where where = {ck ? ck->path : "(null)", err, cap}, *w = &where;
    if (!ck || (n && !arrays)) return fail(w, "ts_ckpt_read_named needs a checkpoint and the declared arrays");
    if (n == 0) return 0;
    if (check_named(w, arrays, n) || silence_hdf5(w)) return -1;
    hid_t g = open_group(w, ck->file, NORMALIZERS_GROUP);
    if (g < 0) return -1;
    wanted_array *a = ts_malloc(sizeof *a * n);
    for (size_t i = 0; i < n; i++)
        a[i] = (wanted_array){arrays[i].name, arrays[i].ndim, arrays[i].shape, arrays[i].data};
    array_source src = {w, g, NORMALIZERS_GROUP, "normalizer array", "the model",
                        "a checkpoint of another model shape", H5T_FLOAT};
    int rc = read_declared(&src, a, n, H5T_NATIVE_DOUBLE);
    free(a);
    if (close_id(&g) < 0 && !rc) rc = fail_h5(w, __FILE__, __LINE__, "closing group '%s/'", NORMALIZERS_GROUP);
    return rc;
}

/* ---- read: statistics ---------------------------------------------------------------------- */

/* The length of a 1-D dataset. */
static int dataset_length(const ck_where *w, hid_t g, const char *name, size_t *len) {
    hid_t d = H5I_INVALID_HID, s = H5I_INVALID_HID;
    hsize_t dim = 0;
    CK_TRY(d = H5Dopen2(g, name, H5P_DEFAULT), "opening '%s/%s'", STATS_GROUP, name);
    CK_TRY(s = H5Dget_space(d), "dataspace of '%s'", name);
    if (H5Sget_simple_extent_ndims(s) != 1) {
        fail(w, "'%s/%s' is not one-dimensional: a damaged checkpoint", STATS_GROUP, name);
        goto fail;
    }
    CK_TRY(H5Sget_simple_extent_dims(s, &dim, NULL), "dataspace of '%s'", name);
    *len = (size_t)dim;
    close_id(&s), close_id(&d);
    return 0;
fail:
    close_id(&s), close_id(&d);
    return -1;
}

/* n variable-length strings into fixed-size rows (too long: an error). */
static int read_strings(const ck_where *w, hid_t g, const char *name, size_t n, char (*rows)[TS_STATS_NAME_MAX]) {
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID;
    char **ptrs = ts_calloc(n ? n : 1, sizeof(char *));
    int read = 0;
    CK_TRY(d = H5Dopen2(g, name, H5P_DEFAULT), "opening '%s/%s'", STATS_GROUP, name);
    CK_TRY(t = string_type(), "string type of '%s'", name);
    CK_TRY(s = H5Dget_space(d), "dataspace of '%s'", name);
    /* The buffer holds n: a dataset of another length would overrun it. */
    if (H5Sget_simple_extent_ndims(s) != 1 || H5Sget_simple_extent_npoints(s) != (hssize_t)n) {
        fail(w, "'%s/%s' does not hold %zu strings (one per channel): a damaged checkpoint", STATS_GROUP, name, n);
        goto fail;
    }
    if (n) CK_TRY(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs), "reading '%s/%s'", STATS_GROUP, name);
    read = 1;
    for (size_t i = 0; i < n; i++) {
        const char *p = ptrs[i] ? ptrs[i] : "";
        if (strlen(p) >= TS_STATS_NAME_MAX) {
            fail(w, "'%s/%s' entry %zu is longer than %d bytes", STATS_GROUP, name, i, TS_STATS_NAME_MAX - 1);
            goto fail;
        }
        strcpy(rows[i], p);
    }
    CK_TRY(reclaim_vlen(t, s, ptrs), "freeing '%s'", name);
    read = 0;
    close_id(&s), close_id(&t), close_id(&d);
    free(ptrs);
    return 0;
fail:
    if (read) reclaim_vlen(t, s, ptrs);
    close_id(&s), close_id(&t), close_id(&d);
    free(ptrs);
    return -1;
}

static int read_stats_arrays(const ck_where *w, hid_t g, ts_stats *s) {
    int64_t chan[1] = {(int64_t)s->nchan}, res[1] = {(int64_t)s->nres};
    int64_t res2[2] = {(int64_t)s->nres, (int64_t)s->nstate};
    array_source f64 = {w, g, STATS_GROUP, "statistics array", "the layout", "a damaged checkpoint", H5T_FLOAT};
    array_source i32 = f64;
    i32.cls = H5T_INTEGER;
    const wanted_array mean = {"mean", 1, chan, s->mean}, std = {"std", 1, chan, s->std};
    const wanted_array hours = {"residual_hours", 1, res, s->res_hours};
    const wanted_array rmean = {"residual_mean", 2, res2, s->res_mean}, rstd = {"residual_std", 2, res2, s->res_std};
    if (read_strings(w, g, "channel_name", s->nchan, s->name) ||
        read_strings(w, g, "channel_units", s->nchan, s->units))
        return -1;
    const wanted_array *f64s[] = {&mean, &std, &rmean, &rstd};
    for (size_t i = 0; i < sizeof f64s / sizeof f64s[0]; i++)
        if (check_array(&f64, f64s[i], 0) || read_array(&f64, f64s[i], H5T_NATIVE_DOUBLE)) return -1;
    if (check_array(&i32, &hours, 0) || read_array(&i32, &hours, H5T_NATIVE_INT)) return -1;
    return 0;
}

int ts_ckpt_read_stats(ts_ckpt *ck, ts_stats *dst, char *err, size_t cap) {
    ck_where where = {ck ? ck->path : "(null)", err, cap}, *w = &where;
    if (!ck || !dst) return fail(w, "ts_ckpt_read_stats needs a checkpoint and a destination");
    memset(dst, 0, sizeof *dst);
    if (silence_hdf5(w)) return -1;
    hid_t g = open_group(w, ck->file, STATS_GROUP);
    if (g < 0) return -1;
    int64_t nstate = 0, tfirst = 0, tlast = 0, ntimes = 0;
    size_t nchan = 0, nres = 0;
    if (read_attr_int(w, g, "nstate", H5T_NATIVE_INT64, &nstate) ||
        read_attr_int(w, g, "time_first", H5T_NATIVE_INT64, &tfirst) ||
        read_attr_int(w, g, "time_last", H5T_NATIVE_INT64, &tlast) ||
        read_attr_int(w, g, "ntimes", H5T_NATIVE_INT64, &ntimes) || dataset_length(w, g, "channel_name", &nchan) ||
        dataset_length(w, g, "residual_hours", &nres))
        goto fail;
    if (nstate < 0 || (size_t)nstate > nchan || ntimes < 0) {
        fail(w, "'%s/' has %lld state channels of %zu: a damaged checkpoint", STATS_GROUP, (long long)nstate, nchan);
        goto fail;
    }
    ts_stats_alloc(dst, nchan, (size_t)nstate, nres, 0, 0, 0, 0);
    dst->time_first = tfirst, dst->time_last = tlast, dst->ntimes = (size_t)ntimes;
    if (read_stats_arrays(w, g, dst)) goto fail;
    if (close_id(&g) < 0) {
        fail_h5(w, __FILE__, __LINE__, "closing group '%s/'", STATS_GROUP);
        goto fail;
    }
    return 0;
fail:
    close_id(&g);
    ts_stats_free(dst);
    return -1;
}
