/* Writing a checkpoint: the contents checked, built as an HDF5 file image
 * in memory with checksums, written to PATH.part by plain writes, synced,
 * renamed over PATH.
 *
 * HDF5 never writes to the disk itself: when its own write fails (a full
 * disk) during a flush or close, the library keeps the file open with dirty
 * metadata and crashes in its shutdown at exit (H5F__close_cb from
 * H5_term_library, HDF5 1.10). Built in memory (the core driver, no backing
 * store), the image's close cannot fail on the disk, and a failed write of
 * the image is an ordinary error of ours. The cost: the checkpoint's bytes
 * are held twice on the writing rank while it writes. */
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

/* ---- write --------------------------------------------------------------------------------- */

static int write_attr(const ck_where *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *value) {
    hid_t space = H5I_INVALID_HID, a = H5I_INVALID_HID;
    TS_H5_CHECK_GOTO(space = H5Screate(H5S_SCALAR), w->err, w->cap, "%s: attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(a = H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT), w->err, w->cap,
                     "%s: creating attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(H5Awrite(a, mtype, value), w->err, w->cap, "%s: writing attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&a), w->err, w->cap, "%s: closing attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&space), w->err, w->cap, "%s: attribute '%s'", w->path, name);
    return 0;
fail:
    ck_close_id(&a), ck_close_id(&space);
    return -1;
}

static int write_attr_str(const ck_where *w, hid_t loc, const char *name, const char *value) {
    hid_t t = H5I_INVALID_HID;
    TS_H5_CHECK_GOTO(t = ck_string_type(), w->err, w->cap, "%s: string type for attribute '%s'", w->path, name);
    if (write_attr(w, loc, name, t, t, &value)) goto fail;
    TS_H5_CHECK_GOTO(ck_close_id(&t), w->err, w->cap, "%s: attribute '%s'", w->path, name);
    return 0;
fail:
    ck_close_id(&t);
    return -1;
}

static int write_attr_i64(const ck_where *w, hid_t loc, const char *name, int64_t value) {
    return write_attr(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

static hid_t create_group(const ck_where *w, hid_t file, const char *name) {
    hid_t gcpl = H5I_INVALID_HID, g = H5I_INVALID_HID;
    TS_H5_CHECK_GOTO(gcpl = ck_ordered_gcpl(), w->err, w->cap, "%s: group '%s/'", w->path, name);
    TS_H5_CHECK_GOTO(g = H5Gcreate2(file, name, H5P_DEFAULT, gcpl, H5P_DEFAULT), w->err, w->cap,
                     "%s: creating group '%s/'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&gcpl), w->err, w->cap, "%s: group '%s/'", w->path, name);
    return g;
fail:
    ck_close_id(&g), ck_close_id(&gcpl);
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
    TS_H5_CHECK_GOTO(space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR), w->err, w->cap,
                     "%s: dataspace of '%s'", w->path, name);
    TS_H5_CHECK_GOTO(dcpl = array_dcpl(ndim, dims, numel), w->err, w->cap, "%s: creation properties of '%s'", w->path,
                     name);
    TS_H5_CHECK_GOTO(d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), w->err, w->cap,
                     "%s: creating dataset '%s'", w->path, name);
    if (numel)
        TS_H5_CHECK_GOTO(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), w->err, w->cap,
                         "%s: writing dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&d), w->err, w->cap, "%s: closing dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&dcpl), w->err, w->cap, "%s: dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&space), w->err, w->cap, "%s: dataset '%s'", w->path, name);
    return 0;
fail:
    ck_close_id(&d), ck_close_id(&dcpl), ck_close_id(&space);
    return -1;
}

/* A 1-D array of n variable-length strings from fixed-size rows. */
static int write_strings(const ck_where *w, hid_t loc, const char *name, size_t n,
                         const char (*rows)[TS_STATS_NAME_MAX]) {
    hid_t t = H5I_INVALID_HID, space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    const char **ptrs = ts_malloc(sizeof(char *) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) ptrs[i] = rows[i];
    hsize_t dim = n;
    TS_H5_CHECK_GOTO(t = ck_string_type(), w->err, w->cap, "%s: string type of '%s'", w->path, name);
    TS_H5_CHECK_GOTO(space = H5Screate_simple(1, &dim, NULL), w->err, w->cap, "%s: dataspace of '%s'", w->path, name);
    TS_H5_CHECK_GOTO(d = H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), w->err, w->cap,
                     "%s: creating dataset '%s'", w->path, name);
    if (n)
        TS_H5_CHECK_GOTO(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs), w->err, w->cap,
                         "%s: writing dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&d), w->err, w->cap, "%s: closing dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&space), w->err, w->cap, "%s: dataset '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ck_close_id(&t), w->err, w->cap, "%s: dataset '%s'", w->path, name);
    free(ptrs);
    return 0;
fail:
    ck_close_id(&d), ck_close_id(&space), ck_close_id(&t);
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
    TS_H5_CHECK_GOTO(ck_close_id(&g), w->err, w->cap, "%s: closing group '%s/'", w->path, group);
    return 0;
fail:
    ck_close_id(&g);
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
    TS_H5_CHECK_GOTO(ck_close_id(&g), w->err, w->cap, "%s: closing group '%s/'", w->path, STATS_GROUP);
    return 0;
fail:
    ck_close_id(&g);
    return -1;
}

static int write_named(const ck_where *w, hid_t f, const ts_ckpt_named *a, size_t n) {
    hid_t g = create_group(w, f, NORMALIZERS_GROUP);
    if (g < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (write_array(w, g, a[i].name, a[i].ndim, a[i].shape, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, a[i].data))
            goto fail;
    TS_H5_CHECK_GOTO(ck_close_id(&g), w->err, w->cap, "%s: closing group '%s/'", w->path, NORMALIZERS_GROUP);
    return 0;
fail:
    ck_close_id(&g);
    return -1;
}

/* A name becomes one link in a group: no '/', which would make subgroups. */
static int check_name(const ck_where *w, const char *what, const char *name) {
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0)
        return TS_FAIL(w->err, w->cap, "%s: %s name '%s' cannot be a dataset name (empty, '.' or containing '/')",
                       w->path, what, name ? name : "(null)");
    return 0;
}

static int check_meta(const ck_where *w, const ts_ckpt_meta *m) {
    if (!m || !m->model_kind || !m->model_kind[0] || !m->config_json)
        return TS_FAIL(w->err, w->cap, "%s: checkpoint metadata needs a model_kind and the configuration", w->path);
    if (m->step < 0 || m->optimizer_step < 0 || m->data_position < 0)
        return TS_FAIL(w->err, w->cap, "%s: negative step (%lld), optimizer_step (%lld) or data_position (%lld)",
                       w->path, (long long)m->step, (long long)m->optimizer_step, (long long)m->data_position);
    if (m->rng_seed > TS_RNG_SEED_MAX)
        return TS_FAIL(w->err, w->cap, "%s: rng_seed %llu exceeds the RNG's 56 bits", w->path,
                       (unsigned long long)m->rng_seed);
    return 0;
}

/* A block the table says lives on a device cannot be written from here. */
int ck_check_host_block(const ck_where *w, const ts_params *l, const float *block, const char *group) {
    if (block && l->be && l->be->kind != TS_BACKEND_CPU && block == l->data)
        return TS_FAIL(w->err, w->cap, "%s: the %s block lives on the %s device: download it to host memory first",
                       w->path, group, l->be->name);
    return 0;
}

int ck_check_named(const ck_where *w, const ts_ckpt_named *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (check_name(w, "normalizer", a[i].name)) return -1;
        if (a[i].ndim < 0 || a[i].ndim > TS_PARAM_MAX_DIMS)
            return TS_FAIL(w->err, w->cap, "%s: normalizer array '%s' has %d dimensions", w->path, a[i].name,
                           a[i].ndim);
        for (int d = 0; d < a[i].ndim; d++)
            if (a[i].shape[d] < 0)
                return TS_FAIL(w->err, w->cap, "%s: normalizer array '%s' has a negative dimension", w->path,
                               a[i].name);
        if (!a[i].data) return TS_FAIL(w->err, w->cap, "%s: normalizer array '%s' has no data", w->path, a[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a[i].name, a[j].name) == 0)
                return TS_FAIL(w->err, w->cap, "%s: normalizer array '%s' given twice", w->path, a[i].name);
    }
    return 0;
}

static int check_contents(const ck_where *w, const ts_ckpt_contents *c) {
    if (!c || !c->layout || !c->params)
        return TS_FAIL(w->err, w->cap, "%s: a checkpoint needs a parameter layout and its block", w->path);
    const ts_params *l = c->layout;
    for (int i = 0; i < l->count; i++)
        if (check_name(w, "parameter", l->entries[i].name)) return -1;
    if (ck_check_host_block(w, l, c->params, TS_CKPT_PARAMS) || ck_check_host_block(w, l, c->ema, TS_CKPT_EMA) ||
        ck_check_host_block(w, l, c->adam_m, TS_CKPT_ADAM_M) || ck_check_host_block(w, l, c->adam_v, TS_CKPT_ADAM_V))
        return -1;
    if (c->stats && c->stats->nstate > c->stats->nchan)
        return TS_FAIL(w->err, w->cap, "%s: statistics with %zu state channels of %zu", w->path, c->stats->nstate,
                       c->stats->nchan);
    if (c->nnormalizers && !c->normalizers)
        return TS_FAIL(w->err, w->cap, "%s: %zu normalizer arrays but no table", w->path, c->nnormalizers);
    return ck_check_named(w, c->normalizers, c->nnormalizers);
}

/* The checkpoint as an HDF5 file in memory (core driver, no backing store). */
static hid_t create_image(const ck_where *w, const char *tmp) {
    hid_t fcpl = H5I_INVALID_HID, fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    TS_H5_CHECK_GOTO(fcpl = H5Pcreate(H5P_FILE_CREATE), w->err, w->cap, "%s: file creation properties", w->path);
    TS_H5_CHECK_GOTO(H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), w->err, w->cap,
                     "%s: file creation properties", w->path);
    TS_H5_CHECK_GOTO(fapl = ck_strong_close_fapl(), w->err, w->cap, "%s: file access properties", w->path);
    TS_H5_CHECK_GOTO(H5Pset_fapl_core(fapl, (size_t)1 << 20, 0), w->err, w->cap, "%s: file access properties", w->path);
    TS_H5_CHECK_GOTO(f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl), w->err, w->cap, "%s: cannot create %s", w->path,
                     tmp);
    TS_H5_CHECK_GOTO(ck_close_id(&fcpl), w->err, w->cap, "%s: file creation properties", w->path);
    TS_H5_CHECK_GOTO(ck_close_id(&fapl), w->err, w->cap, "%s: file access properties", w->path);
    return f;
fail:
    ck_close_id(&f), ck_close_id(&fcpl), ck_close_id(&fapl);
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

/* The image of the in-memory file f, which is closed (*image: malloc'd). */
static int take_image(const ck_where *w, hid_t *f, const char *tmp, void **image, size_t *size) {
    *image = NULL;
    ssize_t n = -1;
    TS_H5_CHECK_GOTO(H5Fflush(*f, H5F_SCOPE_GLOBAL), w->err, w->cap, "%s: flushing %s", w->path, tmp);
    TS_H5_CHECK_GOTO(n = H5Fget_file_image(*f, NULL, 0), w->err, w->cap, "%s: the image of %s", w->path, tmp);
    *image = ts_malloc(n > 0 ? (size_t)n : 1);
    TS_H5_CHECK_GOTO(H5Fget_file_image(*f, *image, (size_t)n), w->err, w->cap, "%s: the image of %s", w->path, tmp);
    TS_H5_CHECK_GOTO(ck_close_id(f), w->err, w->cap, "%s: closing %s", w->path, tmp);
    *size = (size_t)n;
    return 0;
fail:
    ck_close_id(f);
    free(*image), *image = NULL;
    return -1;
}

/* The image to tmp by plain writes. The bytes must be on disk before the
 * rename makes them the checkpoint; otherwise a power cut can leave the new
 * name pointing at a hole. */
static int write_image(const ck_where *w, const char *tmp, const void *image, size_t size) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return TS_FAIL(w->err, w->cap, "%s: cannot create %s: %s", w->path, tmp, strerror(errno));
    const char *p = image;
    for (size_t done = 0; done < size;) {
        ssize_t k = write(fd, p + done, size - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            close(fd);
            return TS_FAIL(w->err, w->cap, "%s: cannot write %s (%zu of %zu bytes written): %s", w->path, tmp, done,
                           size, strerror(e));
        }
        done += (size_t)k;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return TS_FAIL(w->err, w->cap, "%s: cannot sync %s: %s", w->path, tmp, strerror(e));
    }
    if (close(fd) != 0) return TS_FAIL(w->err, w->cap, "%s: cannot close %s: %s", w->path, tmp, strerror(errno));
    return 0;
}

/* Make the rename itself durable. Best effort: the checkpoint is already
 * complete under its name, and some file systems refuse fsync on a folder. */
static void sync_parent_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int ts_ckpt_write(const char *path, const ts_ckpt_meta *meta, const ts_ckpt_contents *c, char *err, size_t cap) {
    ck_where where = {path ? path : "(null)", err, cap}, *w = &where;
    if (!path || !path[0]) return TS_FAIL(w->err, w->cap, "%s: no checkpoint path", w->path);
    if (check_meta(w, meta) || check_contents(w, c) || ck_silence_hdf5(w)) return -1;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", path) >= sizeof tmp)
        return TS_FAIL(w->err, w->cap, "%s: path too long", w->path);

    hid_t f = create_image(w, tmp);
    if (f < 0) return -1;
    void *image = NULL;
    size_t size = 0;
    int rc = write_contents(w, f, meta, c);
    if (rc)
        ck_close_id(&f);
    else
        rc = take_image(w, &f, tmp, &image, &size);
    if (!rc) rc = write_image(w, tmp, image, size);
    free(image);
    if (!rc && rename(tmp, path) != 0)
        rc = TS_FAIL(w->err, w->cap, "%s: cannot rename %s into place: %s", w->path, tmp, strerror(errno));
    if (rc) {
        unlink(tmp); /* the old checkpoint, if any, was never touched */
        return -1;
    }
    sync_parent_dir(path);
    return 0;
}
