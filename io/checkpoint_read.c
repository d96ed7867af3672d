/* Reading a checkpoint: its metadata, the arrays a caller declares (shapes
 * checked before any read), and the statistics. */
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
    char h5[1024];
    ts_h5_message(h5, sizeof h5);
    unsigned char head[8] = {0};
    struct stat st;
    if (stat(w->path, &st) == 0 && S_ISDIR(st.st_mode))
        return TS_FAIL(w->err, w->cap, "%s: a folder, not a checkpoint file", w->path);
    FILE *fp = fopen(w->path, "rb");
    if (!fp) return TS_FAIL(w->err, w->cap, "%s: cannot open the checkpoint: %s", w->path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got < sizeof head || memcmp(head, signature, sizeof head) != 0)
        return TS_FAIL(w->err, w->cap,
                       "%s: not an HDF5 file (no HDF5 signature at its start), so not a tessera checkpoint", w->path);
    return TS_FAIL(w->err, w->cap, "%s: cannot open the checkpoint: a truncated or damaged HDF5 file (HDF5: %s)",
                   w->path, h5);
}

/* A scalar attribute read as text, whether stored as a variable- or a
 * fixed-length string (h5py and other tools write either). */
static char *read_attr_str(const ck_where *w, hid_t loc, const char *name) {
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char *out = NULL, *vlen = NULL;
    htri_t exists = H5Aexists(loc, name);
    TS_H5_CHECK_GOTO(exists, w->err, w->cap, "%s: looking for attribute '%s'", w->path, name);
    if (!exists) {
        TS_FAIL(w->err, w->cap, "%s: attribute '%s' is missing: a damaged checkpoint or one of another program",
                w->path, name);
        return NULL;
    }
    TS_H5_CHECK_GOTO(a = H5Aopen(loc, name, H5P_DEFAULT), w->err, w->cap, "%s: opening attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ft = H5Aget_type(a), w->err, w->cap, "%s: type of attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(space = H5Aget_space(a), w->err, w->cap, "%s: dataspace of attribute '%s'", w->path, name);
    /* One string only: the buffers below hold one. */
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        TS_FAIL(w->err, w->cap, "%s: attribute '%s' is not one string", w->path, name);
        goto fail;
    }
    htri_t variable = H5Tis_variable_str(ft);
    TS_H5_CHECK_GOTO(variable, w->err, w->cap, "%s: type of attribute '%s'", w->path, name);
    if (variable) {
        TS_H5_CHECK_GOTO(mt = ck_string_type(), w->err, w->cap, "%s: attribute '%s'", w->path, name);
        TS_H5_CHECK_GOTO(H5Aread(a, mt, &vlen), w->err, w->cap, "%s: reading attribute '%s'", w->path, name);
        out = strdup(vlen ? vlen : "");
        TS_H5_CHECK_GOTO(reclaim_vlen(mt, space, &vlen), w->err, w->cap, "%s: freeing attribute '%s'", w->path, name);
    } else {
        size_t size = H5Tget_size(ft);
        TS_H5_CHECK_GOTO(mt = H5Tcopy(H5T_C_S1), w->err, w->cap, "%s: attribute '%s'", w->path, name);
        TS_H5_CHECK_GOTO(H5Tset_size(mt, size + 1), w->err, w->cap, "%s: attribute '%s'", w->path, name);
        out = ts_calloc(size + 1, 1);
        TS_H5_CHECK_GOTO(H5Aread(a, mt, out), w->err, w->cap, "%s: reading attribute '%s'", w->path, name);
    }
    if (!out) ts_fatal("out of memory reading attribute '%s'", name);
    ck_close_id(&space), ck_close_id(&mt), ck_close_id(&ft), ck_close_id(&a);
    return out;
fail:
    ck_close_id(&space), ck_close_id(&mt), ck_close_id(&ft), ck_close_id(&a);
    free(out);
    return NULL;
}

/* A scalar integer attribute converted to mtype. */
static int read_attr_int(const ck_where *w, hid_t loc, const char *name, hid_t mtype, void *value) {
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, space = H5I_INVALID_HID;
    htri_t exists = H5Aexists(loc, name);
    TS_H5_CHECK_GOTO(exists, w->err, w->cap, "%s: looking for attribute '%s'", w->path, name);
    if (!exists)
        return TS_FAIL(w->err, w->cap, "%s: attribute '%s' is missing: a damaged checkpoint or one of another program",
                       w->path, name);
    TS_H5_CHECK_GOTO(a = H5Aopen(loc, name, H5P_DEFAULT), w->err, w->cap, "%s: opening attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(ft = H5Aget_type(a), w->err, w->cap, "%s: type of attribute '%s'", w->path, name);
    TS_H5_CHECK_GOTO(space = H5Aget_space(a), w->err, w->cap, "%s: dataspace of attribute '%s'", w->path, name);
    if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1) {
        TS_FAIL(w->err, w->cap, "%s: attribute '%s' is not one integer", w->path, name);
        goto fail;
    }
    TS_H5_CHECK_GOTO(H5Aread(a, mtype, value), w->err, w->cap, "%s: reading attribute '%s'", w->path, name);
    ck_close_id(&space), ck_close_id(&ft), ck_close_id(&a);
    return 0;
fail:
    ck_close_id(&space), ck_close_id(&ft), ck_close_id(&a);
    return -1;
}

static int read_format(const ck_where *w, hid_t f) {
    htri_t has = H5Aexists(f, "format");
    if (has < 0) return TS_H5_FAIL(w->err, w->cap, "%s: looking for attribute 'format'", w->path);
    if (!has)
        return TS_FAIL(w->err, w->cap, "%s: not a tessera checkpoint (no attribute format = \"%s\")", w->path,
                       CKPT_FORMAT);
    char *format = read_attr_str(w, f, "format");
    if (!format) return -1;
    int same = strcmp(format, CKPT_FORMAT) == 0;
    if (!same)
        TS_FAIL(w->err, w->cap, "%s: not a tessera checkpoint (format = \"%s\", want \"%s\")", w->path, format,
                CKPT_FORMAT);
    free(format);
    return same ? 0 : -1;
}

static int read_meta(const ck_where *w, ts_ckpt *ck) {
    ts_ckpt_meta *m = &ck->meta;
    hid_t f = ck->file;
    if (read_format(w, f) || read_attr_int(w, f, "format_version", H5T_NATIVE_INT, &m->format_version)) return -1;
    if (m->format_version > TS_CKPT_FORMAT_VERSION)
        return TS_FAIL(
            w->err, w->cap,
            "%s: format_version %d is newer than this build reads (%d): written by a newer tessera, which can "
            "read it",
            w->path, m->format_version, TS_CKPT_FORMAT_VERSION);
    if (m->format_version < 1)
        return TS_FAIL(w->err, w->cap, "%s: format_version %d is not a version: a damaged checkpoint", w->path,
                       m->format_version);
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
        return TS_FAIL(w->err, w->cap,
                       "%s: step, optimizer_step, data_position or rng_seed out of range: a damaged checkpoint",
                       w->path);
    return 0;
}

ts_ckpt *ts_ckpt_open(const char *path, const char *want_kind, char *err, size_t cap) {
    ck_where where = {path ? path : "(null)", err, cap}, *w = &where;
    if (!path || !path[0]) return TS_FAIL(w->err, w->cap, "%s: no checkpoint path", w->path), NULL;
    if (ck_silence_hdf5(w)) return NULL;
    ts_ckpt *ck = ts_calloc(1, sizeof *ck);
    ck->file = H5I_INVALID_HID;
    ck->path = strdup(path);
    if (!ck->path) ts_fatal("out of memory");
    w->path = ck->path;
    hid_t fapl = ck_strong_close_fapl();
    TS_H5_CHECK_GOTO(fapl, w->err, w->cap, "%s: file access properties", w->path);
    ck->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (ck->file < 0) {
        explain_open_failure(w); /* before any other HDF5 call clears the error stack */
        goto fail;
    }
    TS_H5_CHECK_GOTO(ck_close_id(&fapl), w->err, w->cap, "%s: file access properties", w->path);
    if (read_meta(w, ck)) goto fail;
    if (want_kind && strcmp(want_kind, ck->model_kind) != 0) {
        TS_FAIL(w->err, w->cap, "%s: a checkpoint of a %s model, but this run's model.kind is %s", w->path,
                ck->model_kind, want_kind);
        goto fail;
    }
    return ck;
fail:
    ck_close_id(&fapl);
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
    ck_close_id(&ck->file);
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
    TS_H5_CHECK_GOTO(exists, w->err, w->cap, "%s: looking for %s '%s' in %s/", w->path, src->noun, a->name, src->gname);
    if (!exists) {
        H5G_info_t info;
        if (!nwanted || H5Gget_info(src->group, &info) < 0)
            return TS_FAIL(w->err, w->cap, "%s: %s '%s' is not in the file (%s/): %s", w->path, src->noun, a->name,
                           src->gname, src->verdict);
        return TS_FAIL(w->err, w->cap, "%s: %s '%s' of %s is not in the file (%s/ holds %llu, %s %zu): %s", w->path,
                       src->noun, a->name, src->who, src->gname, (unsigned long long)info.nlinks, src->who, nwanted,
                       src->verdict);
    }
    TS_H5_CHECK_GOTO(d = H5Dopen2(src->group, a->name, H5P_DEFAULT), w->err, w->cap, "%s: opening %s '%s' in %s/",
                     w->path, src->noun, a->name, src->gname);
    TS_H5_CHECK_GOTO(t = H5Dget_type(d), w->err, w->cap, "%s: type of '%s'", w->path, a->name);
    TS_H5_CHECK_GOTO(s = H5Dget_space(d), w->err, w->cap, "%s: dataspace of '%s'", w->path, a->name);
    if (H5Tget_class(t) != src->cls) {
        TS_FAIL(w->err, w->cap, "%s: %s '%s' in %s/ has a type of another class than %s expects", w->path, src->noun,
                a->name, src->gname, src->who);
        goto fail;
    }
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_ndims(s);
    TS_H5_CHECK_GOTO(nd, w->err, w->cap, "%s: dataspace of '%s'", w->path, a->name);
    int same = nd == a->ndim && nd <= TS_PARAM_MAX_DIMS;
    if (same) {
        TS_H5_CHECK_GOTO(H5Sget_simple_extent_dims(s, dims, NULL), w->err, w->cap, "%s: dataspace of '%s'", w->path,
                         a->name);
        for (int i = 0; i < nd; i++) same = same && dims[i] == (hsize_t)a->shape[i];
    }
    if (!same) {
        int64_t file_shape[H5S_MAX_RANK] = {0};
        TS_H5_CHECK_GOTO(H5Sget_simple_extent_dims(s, dims, NULL), w->err, w->cap, "%s: dataspace of '%s'", w->path,
                         a->name);
        for (int i = 0; i < nd; i++) file_shape[i] = (int64_t)dims[i];
        char have[512], want[128];
        ck_format_shape(have, sizeof have, nd, file_shape);
        ck_format_shape(want, sizeof want, a->ndim, a->shape);
        TS_FAIL(w->err, w->cap, "%s: %s '%s' has shape %s in the file (%s/) but %s wants %s: %s", w->path, src->noun,
                a->name, have, src->gname, src->who, want, src->verdict);
        goto fail;
    }
    ck_close_id(&s), ck_close_id(&t), ck_close_id(&d);
    return 0;
fail:
    ck_close_id(&s), ck_close_id(&t), ck_close_id(&d);
    return -1;
}

/* Called when the group holds more links than were declared: name one. */
static int fail_extra(const array_source *src, const wanted_array *a, size_t n, hsize_t nlinks) {
    const ck_where *w = src->w;
    char name[1024];
    for (hsize_t i = 0; i < nlinks; i++) {
        ssize_t len =
            H5Lget_name_by_idx(src->group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0) return TS_H5_FAIL(w->err, w->cap, "%s: listing %s/", w->path, src->gname);
        size_t j = 0;
        while (j < n && strcmp(a[j].name, name) != 0) j++;
        if (j == n)
            return TS_FAIL(
                w->err, w->cap, "%s: %s '%s' in the file (%s/) is not in %s (the file holds %llu, %s %zu): %s", w->path,
                src->noun, name, src->gname, src->who, (unsigned long long)nlinks, src->who, n, src->verdict);
    }
    return TS_FAIL(w->err, w->cap, "%s: %s/ holds %llu entries but %s declares %zu", w->path, src->gname,
                   (unsigned long long)nlinks, src->who, n);
}

static int read_array(const array_source *src, const wanted_array *a, hid_t mtype) {
    const ck_where *w = src->w;
    hid_t d = H5I_INVALID_HID;
    size_t numel = 1;
    for (int i = 0; i < a->ndim; i++) numel *= (size_t)a->shape[i];
    if (numel == 0) return 0; /* nothing stored, nothing to read */
    TS_H5_CHECK_GOTO(d = H5Dopen2(src->group, a->name, H5P_DEFAULT), w->err, w->cap, "%s: opening %s '%s' in %s/",
                     w->path, src->noun, a->name, src->gname);
    TS_H5_CHECK_GOTO(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->dst), w->err, w->cap,
                     "%s: reading %s '%s' in %s/", w->path, src->noun, a->name, src->gname);
    TS_H5_CHECK_GOTO(ck_close_id(&d), w->err, w->cap, "%s: closing '%s'", w->path, a->name);
    return 0;
fail:
    ck_close_id(&d);
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
    if (H5Gget_info(src->group, &info) < 0)
        return TS_H5_FAIL(src->w->err, src->w->cap, "%s: listing %s/", src->w->path, src->gname);
    if (info.nlinks > n) return fail_extra(src, a, n, info.nlinks);
    for (size_t i = 0; i < n; i++)
        if (read_array(src, &a[i], mtype)) return -1;
    return 0;
}

static hid_t open_group(const ck_where *w, hid_t file, const char *name) {
    htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
    if (exists < 0) return TS_H5_FAIL(w->err, w->cap, "%s: looking for group '%s/'", w->path, name), H5I_INVALID_HID;
    if (!exists)
        return TS_FAIL(w->err, w->cap, "%s: no group '%s/': the checkpoint was written without it", w->path, name),
               H5I_INVALID_HID;
    hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
    if (g < 0) TS_H5_FAIL(w->err, w->cap, "%s: opening group '%s/'", w->path, name);
    return g;
}

int ts_ckpt_read_params(ts_ckpt *ck, const char *group, const ts_params *layout, float *dst, char *err, size_t cap) {
    ck_where where = {ck ? ck->path : "(null)", err, cap}, *w = &where;
    if (!ck || !group || !layout || !dst)
        return TS_FAIL(w->err, w->cap, "%s: ts_ckpt_read_params needs a group, a layout and a block", w->path);
    if (ck_check_host_block(w, layout, dst, group) || ck_silence_hdf5(w)) return -1;
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
    if (ck_close_id(&g) < 0 && !rc) rc = TS_H5_FAIL(w->err, w->cap, "%s: closing group '%s/'", w->path, group);
    return rc;
}

int ts_ckpt_read_named(ts_ckpt *ck, ts_ckpt_named *arrays, size_t n, char *err, size_t cap) {
    ck_where where = {ck ? ck->path : "(null)", err, cap}, *w = &where;
    if (!ck || (n && !arrays))
        return TS_FAIL(w->err, w->cap, "%s: ts_ckpt_read_named needs a checkpoint and the declared arrays", w->path);
    if (n == 0) return 0;
    if (ck_check_named(w, arrays, n) || ck_silence_hdf5(w)) return -1;
    hid_t g = open_group(w, ck->file, NORMALIZERS_GROUP);
    if (g < 0) return -1;
    wanted_array *a = ts_malloc(sizeof *a * n);
    for (size_t i = 0; i < n; i++)
        a[i] = (wanted_array){arrays[i].name, arrays[i].ndim, arrays[i].shape, arrays[i].data};
    array_source src = {
        w, g, NORMALIZERS_GROUP, "normalizer array", "the model", "a checkpoint of another model shape", H5T_FLOAT};
    int rc = read_declared(&src, a, n, H5T_NATIVE_DOUBLE);
    free(a);
    if (ck_close_id(&g) < 0 && !rc)
        rc = TS_H5_FAIL(w->err, w->cap, "%s: closing group '%s/'", w->path, NORMALIZERS_GROUP);
    return rc;
}

/* ---- read: statistics ---------------------------------------------------------------------- */

/* The length of a 1-D dataset. */
static int dataset_length(const ck_where *w, hid_t g, const char *name, size_t *len) {
    hid_t d = H5I_INVALID_HID, s = H5I_INVALID_HID;
    hsize_t dim = 0;
    TS_H5_CHECK_GOTO(d = H5Dopen2(g, name, H5P_DEFAULT), w->err, w->cap, "%s: opening '%s/%s'", w->path, STATS_GROUP,
                     name);
    TS_H5_CHECK_GOTO(s = H5Dget_space(d), w->err, w->cap, "%s: dataspace of '%s'", w->path, name);
    if (H5Sget_simple_extent_ndims(s) != 1) {
        TS_FAIL(w->err, w->cap, "%s: '%s/%s' is not one-dimensional: a damaged checkpoint", w->path, STATS_GROUP, name);
        goto fail;
    }
    TS_H5_CHECK_GOTO(H5Sget_simple_extent_dims(s, &dim, NULL), w->err, w->cap, "%s: dataspace of '%s'", w->path, name);
    *len = (size_t)dim;
    ck_close_id(&s), ck_close_id(&d);
    return 0;
fail:
    ck_close_id(&s), ck_close_id(&d);
    return -1;
}

/* n variable-length strings into fixed-size rows (too long: an error). */
static int read_strings(const ck_where *w, hid_t g, const char *name, size_t n, char (*rows)[TS_STATS_NAME_MAX]) {
    hid_t d = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID;
    char **ptrs = ts_calloc(n ? n : 1, sizeof(char *));
    int read = 0;
    TS_H5_CHECK_GOTO(d = H5Dopen2(g, name, H5P_DEFAULT), w->err, w->cap, "%s: opening '%s/%s'", w->path, STATS_GROUP,
                     name);
    TS_H5_CHECK_GOTO(t = ck_string_type(), w->err, w->cap, "%s: string type of '%s'", w->path, name);
    TS_H5_CHECK_GOTO(s = H5Dget_space(d), w->err, w->cap, "%s: dataspace of '%s'", w->path, name);
    /* The buffer holds n: a dataset of another length would overrun it. */
    if (H5Sget_simple_extent_ndims(s) != 1 || H5Sget_simple_extent_npoints(s) != (hssize_t)n) {
        TS_FAIL(w->err, w->cap, "%s: '%s/%s' does not hold %zu strings (one per channel): a damaged checkpoint",
                w->path, STATS_GROUP, name, n);
        goto fail;
    }
    if (n)
        TS_H5_CHECK_GOTO(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs), w->err, w->cap, "%s: reading '%s/%s'",
                         w->path, STATS_GROUP, name);
    read = 1;
    for (size_t i = 0; i < n; i++) {
        const char *p = ptrs[i] ? ptrs[i] : "";
        if (strlen(p) >= TS_STATS_NAME_MAX) {
            TS_FAIL(w->err, w->cap, "%s: '%s/%s' entry %zu is longer than %d bytes", w->path, STATS_GROUP, name, i,
                    TS_STATS_NAME_MAX - 1);
            goto fail;
        }
        strcpy(rows[i], p);
    }
    TS_H5_CHECK_GOTO(reclaim_vlen(t, s, ptrs), w->err, w->cap, "%s: freeing '%s'", w->path, name);
    read = 0;
    ck_close_id(&s), ck_close_id(&t), ck_close_id(&d);
    free(ptrs);
    return 0;
fail:
    if (read) reclaim_vlen(t, s, ptrs);
    ck_close_id(&s), ck_close_id(&t), ck_close_id(&d);
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
    if (!ck || !dst)
        return TS_FAIL(w->err, w->cap, "%s: ts_ckpt_read_stats needs a checkpoint and a destination", w->path);
    memset(dst, 0, sizeof *dst);
    if (ck_silence_hdf5(w)) return -1;
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
        TS_FAIL(w->err, w->cap, "%s: '%s/' has %lld state channels of %zu: a damaged checkpoint", w->path, STATS_GROUP,
                (long long)nstate, nchan);
        goto fail;
    }
    ts_stats_alloc(dst, nchan, (size_t)nstate, nres, 0, 0, 0, 0);
    dst->time_first = tfirst, dst->time_last = tlast, dst->ntimes = (size_t)ntimes;
    if (read_stats_arrays(w, g, dst)) goto fail;
    if (ck_close_id(&g) < 0) {
        TS_H5_FAIL(w->err, w->cap, "%s: closing group '%s/'", w->path, STATS_GROUP);
        goto fail;
    }
    return 0;
fail:
    ck_close_id(&g);
    ts_stats_free(dst);
    return -1;
}
