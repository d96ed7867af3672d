/* graph-physics / MeshGraphNets HDF5 trajectories (io/mesh_file.h). */
#include "io/mesh_file.h"

#include "io/io_error.h"

#include <ctype.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "io/io_error.h"

enum { MAX_FEATURES = 16, MAX_TRAJ_NAME = 32, MAX_JSON = 1 << 20 };

void ts_mesh_meta_path(const char *h5_path, char *buf, size_t cap) {
    const char *slash = strrchr(h5_path, '/'), *dot = strrchr(h5_path, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - h5_path) : strlen(h5_path);
    snprintf(buf, cap, "%.*s.json", (int)stem, h5_path);
}

int ts_mesh_meta_find(const char *h5_path, char *buf, size_t cap, char *err, size_t errcap) {
    char beside[4096], shared[4096];
    ts_mesh_meta_path(h5_path, beside, sizeof beside);
    const char *slash = strrchr(h5_path, '/');
    if (slash) snprintf(shared, sizeof shared, "%.*s/meta.json", (int)(slash - h5_path), h5_path);
    else snprintf(shared, sizeof shared, "meta.json");
    if (access(beside, F_OK) == 0) return snprintf(buf, cap, "%s", beside), 0;
    if (access(shared, F_OK) == 0) return snprintf(buf, cap, "%s", shared), 0;
    if (!strcmp(beside, shared))
        return TS_FAIL(err, errcap, "%s: cannot read its meta JSON: %s does not exist", h5_path, shared);
    return TS_FAIL(err, errcap, "%s: cannot read its meta JSON: neither %s nor %s exists", h5_path, beside, shared);
}

/* ---- writer ------------------------------------------------------------------------------------ */

struct ts_mesh_writer {
    char path[4096], part[4200], meta[4096], meta_part[4200];
    hid_t file;
    size_t steps, count;
    double dt;
    int dim; /* 2 or 3 */
};

static int write_dataset(hid_t group, const char *name, hid_t type, int rank, const hsize_t *dims, const void *data) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    if (space < 0) return -1;
    hid_t d = H5Dcreate2(group, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ? -1 : 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(space);
    return rc;
}

ts_mesh_writer *ts_mesh_writer_create(const char *path, size_t steps, double dt, const char *history, char *err,
                                      size_t cap) {
    return ts_mesh_writer_create_dim(path, 2, steps, dt, history, err, cap);
}

ts_mesh_writer *ts_mesh_writer_create_dim(const char *path, int dim, size_t steps, double dt, const char *history,
                                          char *err, size_t cap) {
    if (dim != 2 && dim != 3) {
        TS_FAIL(err, cap, "%s: meshes are 2-D (triangles) or 3-D (tetrahedra), not %d-D", path, dim);
        return NULL;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ts_mesh_writer *w = ts_calloc(1, sizeof *w);
    w->dim = dim;
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->part, sizeof w->part, "%s.part", path);
    ts_mesh_meta_path(path, w->meta, sizeof w->meta);
    snprintf(w->meta_part, sizeof w->meta_part, "%s.part", w->meta);
    w->steps = steps, w->dt = dt;
    w->file = H5Fcreate(w->part, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        TS_FAIL(err, cap, "%s: cannot create the file: %s", w->part, strerror(errno));
        free(w);
        return NULL;
    }
    if (history) {
        hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
        H5Tset_size(t, strlen(history) + 1);
        hid_t a = H5Acreate2(w->file, "history", t, s, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) H5Awrite(a, t, history), H5Aclose(a);
        H5Sclose(s), H5Tclose(t);
    }
    return w;
}

int ts_mesh_writer_add(ts_mesh_writer *w, size_t nodes, size_t cells, const float *pos, const int32_t *tri,
                       const int32_t *node_type, const float *velocity, const float *pressure, char *err, size_t cap) {
    char name[MAX_TRAJ_NAME];
    snprintf(name, sizeof name, "%zu", w->count);
    hid_t g = H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return TS_FAIL(err, cap, "%s: cannot create trajectory group %s", w->part, name);
    const hsize_t D = (hsize_t)w->dim;
    hsize_t pd[2] = {nodes, D}, cd[2] = {cells, D + 1}, td[2] = {nodes, 1};
    hsize_t vd[3] = {w->steps, nodes, D}, prd[3] = {w->steps, nodes, 1};
    int rc = write_dataset(g, "mesh_pos", H5T_NATIVE_FLOAT, 2, pd, pos) ||
             write_dataset(g, "cells", H5T_NATIVE_INT32, 2, cd, tri) ||
             write_dataset(g, "node_type", H5T_NATIVE_INT32, 2, td, node_type) ||
             write_dataset(g, "velocity", H5T_NATIVE_FLOAT, 3, vd, velocity) ||
             write_dataset(g, "pressure", H5T_NATIVE_FLOAT, 3, prd, pressure);
    H5Gclose(g);
    if (rc) return TS_FAIL(err, cap, "%s: cannot write trajectory %s (disk full?)", w->part, name);
    w->count++;
    return 0;
}

static void remove_parts(ts_mesh_writer *w) {
    unlink(w->part);
    unlink(w->meta_part);
}

void ts_mesh_writer_abandon(ts_mesh_writer *w) {
    if (!w) return;
    if (w->file >= 0) H5Fclose(w->file);
    remove_parts(w);
    free(w);
}

int ts_mesh_writer_finish(ts_mesh_writer *w, char *err, size_t cap) {
    int rc = 0;
    if (H5Fclose(w->file) < 0) rc = TS_FAIL(err, cap, "%s: cannot close the file", w->part);
    w->file = H5I_INVALID_HID;
    FILE *m = rc ? NULL : fopen(w->meta_part, "w");
    if (!rc && !m) rc = TS_FAIL(err, cap, "%s: cannot create: %s", w->meta_part, strerror(errno));
    if (m) {
        long long t = (long long)w->steps;
        fprintf(m,
                "{\n  \"field_names\": [\"mesh_pos\", \"cells\", \"node_type\", \"velocity\", \"pressure\"],\n"
                "  \"features\": {\n"
                "    \"mesh_pos\": {\"type\": \"static\", \"shape\": [1, -1, %d], \"dtype\": \"float32\"},\n"
                "    \"cells\": {\"type\": \"static\", \"shape\": [1, -1, %d], \"dtype\": \"int32\"},\n"
                "    \"node_type\": {\"type\": \"static\", \"shape\": [1, -1, 1], \"dtype\": \"int32\"},\n"
                "    \"velocity\": {\"type\": \"dynamic\", \"shape\": [%lld, -1, %d], \"dtype\": \"float32\"},\n"
                "    \"pressure\": {\"type\": \"dynamic\", \"shape\": [%lld, -1, 1], \"dtype\": \"float32\"}\n"
                "  },\n  \"trajectory_length\": %lld,\n  \"dt\": %.17g\n}\n",
                w->dim, w->dim + 1, t, w->dim, t, t, w->dt);
        if (fclose(m) != 0) rc = TS_FAIL(err, cap, "%s: cannot write: %s", w->meta_part, strerror(errno));
    }
    /* the meta first, the data last: a complete .h5 always has its meta */
    if (!rc && rename(w->meta_part, w->meta))
        rc = TS_FAIL(err, cap, "cannot rename %s: %s", w->meta_part, strerror(errno));
    if (!rc && rename(w->part, w->path)) rc = TS_FAIL(err, cap, "cannot rename %s: %s", w->part, strerror(errno));
    if (rc) remove_parts(w);
    free(w);
    return rc;
}

/* ---- a small JSON reader (the meta file) ---------------------------------------------------------- */

/* Nesting deeper than this is refused, not recursed into (the stack). */
enum { JSON_MAX_DEPTH = 64 };

typedef struct {
    const char *s;
    int bad, depth;
} json;

static void ws(json *j) {
    while (isspace((unsigned char)*j->s)) j->s++;
}
static int eat(json *j, char c) {
    ws(j);
    if (*j->s == c) return j->s++, 1;
    return 0;
}
/* A string into buf (escapes kept as the escaped character). */
static int jstring(json *j, char *buf, size_t cap) {
    if (!eat(j, '"')) return j->bad = 1, -1;
    size_t n = 0;
    while (*j->s && *j->s != '"') {
        char c = *j->s++;
        if (c == '\\' && *j->s) c = *j->s++;
        if (n + 1 < cap) buf[n++] = c;
    }
    if (*j->s != '"') return j->bad = 1, -1;
    j->s++;
    buf[n] = 0;
    return 0;
}
static double jnumber(json *j) {
    ws(j);
    char *end;
    double v = strtod(j->s, &end);
    if (end == j->s) j->bad = 1;
    j->s = end;
    return v;
}
/* A whole number within what a shape or a length can hold; anything else
 * (1e308, 2.5, nan) marks the text bad rather than converting out of
 * range. */
static long long jinteger(json *j) {
    double v = jnumber(j);
    if (!(v >= -9.0e15 && v <= 9.0e15) || v != (double)(long long)v) {
        j->bad = 1;
        return 0;
    }
    return (long long)v;
}
static void jskip(json *j) {
    ws(j);
    char buf[256];
    if (*j->s == '"') jstring(j, buf, sizeof buf);
    else if (*j->s == '{' || *j->s == '[') {
        char close = *j->s == '{' ? '}' : ']';
        if (++j->depth > JSON_MAX_DEPTH) return (void)(j->bad = 1);
        j->s++;
        if (!eat(j, close)) {
            do {
                if (close == '}') {
                    jstring(j, buf, sizeof buf);
                    if (!eat(j, ':')) j->bad = 1;
                }
                jskip(j);
            } while (!j->bad && eat(j, ','));
            if (!eat(j, close)) j->bad = 1;
        }
        j->depth--;
    } else if (!strncmp(j->s, "true", 4) || !strncmp(j->s, "null", 4)) j->s += 4;
    else if (!strncmp(j->s, "false", 5)) j->s += 5;
    else jnumber(j);
}

typedef struct {
    char name[64], dtype[16];
    int dynamic;
    int rank;
    long long shape[4];
} feature;

typedef struct {
    feature feat[MAX_FEATURES];
    int nfeat;
    long long length;
    double dt;
    int has_length, has_dt;
} meta_info;

static void parse_feature(json *j, feature *f) {
    char key[64], val[64];
    if (!eat(j, '{')) return (void)(j->bad = 1);
    if (eat(j, '}')) return;
    do {
        jstring(j, key, sizeof key);
        if (!eat(j, ':')) return (void)(j->bad = 1);
        if (!strcmp(key, "type")) {
            jstring(j, val, sizeof val);
            f->dynamic = !strcmp(val, "dynamic");
        } else if (!strcmp(key, "dtype")) {
            jstring(j, f->dtype, sizeof f->dtype);
        } else if (!strcmp(key, "shape")) {
            if (!eat(j, '[')) return (void)(j->bad = 1);
            f->rank = 0;
            if (!eat(j, ']')) {
                do {
                    long long v = jinteger(j);
                    if (f->rank < 4) f->shape[f->rank] = v;
                    f->rank++;
                } while (!j->bad && eat(j, ','));
                if (!eat(j, ']')) j->bad = 1;
            }
        } else {
            jskip(j);
        }
    } while (!j->bad && eat(j, ','));
    if (!eat(j, '}')) j->bad = 1;
}

static int parse_meta(const char *text, meta_info *m) {
    json j = {.s = text};
    char key[64];
    if (!eat(&j, '{')) return -1;
    if (eat(&j, '}')) return 0;
    do {
        jstring(&j, key, sizeof key);
        if (!eat(&j, ':')) return -1;
        if (!strcmp(key, "features")) {
            if (!eat(&j, '{')) return -1;
            if (eat(&j, '}')) continue;
            do {
                feature f = {0};
                jstring(&j, f.name, sizeof f.name);
                if (!eat(&j, ':')) return -1;
                parse_feature(&j, &f);
                if (m->nfeat < MAX_FEATURES) m->feat[m->nfeat++] = f;
            } while (!j.bad && eat(&j, ','));
            if (!eat(&j, '}')) return -1;
        } else if (!strcmp(key, "trajectory_length")) {
            m->length = jinteger(&j), m->has_length = 1;
        } else if (!strcmp(key, "dt")) {
            m->dt = jnumber(&j), m->has_dt = 1;
        } else {
            jskip(&j);
        }
    } while (!j.bad && eat(&j, ','));
    if (!eat(&j, '}')) return -1;
    return j.bad ? -1 : 0;
}

/* Parse and check a meta JSON; `name` stands for its file in errors. */
static int meta_load(const char *text, const char *name, meta_info *m, char *err, size_t cap) {
    *m = (meta_info){0};
    if (parse_meta(text, m))
        return TS_FAIL(err, cap, "%s: not valid JSON (or nested deeper than %d, or a shape or length no whole number)",
                       name, JSON_MAX_DEPTH);
    if (!m->has_length || m->length < 1 || !m->has_dt || !(m->dt > 0) || !isfinite(m->dt))
        return TS_FAIL(err, cap, "%s: trajectory_length (>= 1) and dt (> 0, finite) are required", name);
    static const char *required[] = {"mesh_pos", "cells", "node_type"};
    for (int r = 0; r < 3; r++) {
        int found = 0;
        for (int k = 0; k < m->nfeat; k++) found |= !strcmp(m->feat[k].name, required[r]);
        if (!found) return TS_FAIL(err, cap, "%s: features lacks %s", name, required[r]);
    }
    for (int k = 0; k < m->nfeat; k++) {
        const feature *ft = &m->feat[k];
        int known = !strcmp(ft->dtype, "float32") || !strcmp(ft->dtype, "int32");
        /* statics: [1, -1, C] as MeshGraphNets writes, or tiled [T, -1, C] as its h5 conversions do */
        if (!known || ft->rank != 3 || ft->shape[1] != -1 || ft->shape[2] < 1 ||
            (ft->dynamic ? ft->shape[0] != m->length && ft->shape[0] != -1
                         : ft->shape[0] != 1 && ft->shape[0] != m->length))
            return TS_FAIL(err, cap,
                           "%s: feature %s: want dtype float32|int32 and shape [1, -1, C] or [T, -1, C] (static) or "
                           "[T, -1, C] (dynamic), T = trajectory_length = %lld",
                           name, ft->name, m->length);
    }
    return 0;
}

int ts_mesh_meta_check(const char *text, const char *name, char *err, size_t cap) {
    meta_info m;
    return meta_load(text, name, &m, err, cap);
}

/* ---- reader ----------------------------------------------------------------------------------------- */

typedef struct {
    char name[MAX_TRAJ_NAME];
    size_t nodes, cells;
    int pos_rank; /* 2 or 3 */
} traj_info;

struct ts_mesh_file {
    char path[4096], meta_path[4096];
    hid_t file;
    meta_info meta;
    int dim;  /* 2 or 3, from the meta's mesh_pos and cells shapes */
    traj_info *traj;
    size_t ntraj;
};

typedef struct {
    char (*names)[MAX_TRAJ_NAME];
    size_t n, cap;
    int bad;
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    name_list *l = data;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = realloc(l->names, l->cap * sizeof *l->names);
        if (!l->names) return -1;
    }
    if (strlen(name) >= MAX_TRAJ_NAME) l->bad = 1;
    snprintf(l->names[l->n++], MAX_TRAJ_NAME, "%s", name);
    return 0;
}

static int cmp_numeric(const void *a, const void *b) {
    long long x = atoll(a), y = atoll(b);
    return (x > y) - (x < y);
}

static const feature *find_feature(const ts_mesh_file *f, const char *name) {
    for (int k = 0; k < f->meta.nfeat; k++)
        if (!strcmp(f->meta.feat[k].name, name)) return &f->meta.feat[k];
    return NULL;
}

/* Open dataset traj/name and check dtype and shape against the meta; the
 * per-trajectory count (-1 in the meta) is returned in *count. */
static hid_t open_checked(ts_mesh_file *f, const traj_info *t, const feature *ft, size_t *count, int *rank_out,
                          char *err, size_t cap) {
    hid_t g = H5Gopen2(f->file, t->name, H5P_DEFAULT);
    if (g < 0) return TS_FAIL(err, cap, "%s: trajectory %s: cannot open the group", f->path, t->name), -1;
    hid_t d = H5Dopen2(g, ft->name, H5P_DEFAULT);
    H5Gclose(g);
    if (d < 0)
        return TS_FAIL(err, cap, "%s: trajectory %s: dataset %s is missing (the meta JSON %s lists it)", f->path,
                       t->name, ft->name, f->meta_path),
               -1;
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    int want_float = !strcmp(ft->dtype, "float32");
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[4] = {0};
    if (rank >= 1 && rank <= 4) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Tclose(type), H5Sclose(space);
    double declared = 4.0;
    for (int r = 0; r < rank && r < 4; r++) declared *= (double)dims[r];
    char what[128];
    snprintf(what, sizeof what, "trajectory %s: dataset %s", t->name, ft->name);
    if (ts_io_check_fits(f->path, what, declared, err, cap)) return H5Dclose(d), -1;
    if (cls != (want_float ? H5T_FLOAT : H5T_INTEGER) || size != 4) {
        TS_FAIL(err, cap, "%s: trajectory %s: dataset %s is not %s as the meta JSON says", f->path, t->name, ft->name,
                ft->dtype);
        return H5Dclose(d), -1;
    }
    /* a dynamic feature is stored (T, N, C); a static one (N, C), (1, N, C)
     * or tiled (T, N, C), whether its meta says [1, -1, C] or [T, -1, C]
     * (MeshGraphNets' meta and its h5 conversions differ, the data do not) */
    long long channels = ft->shape[2], lead = ft->shape[0];
    int ok = 0;
    if (rank == 2 && !ft->dynamic && (long long)dims[1] == channels) ok = 1, *count = dims[0];
    if (rank == 3 && (long long)dims[2] == channels) {
        long long d0 = (long long)dims[0];
        if (ft->dynamic ? d0 == f->meta.length : (d0 == 1 || d0 == f->meta.length)) ok = 1, *count = dims[1];
    }
    if (!ok) {
        char got[96];
        if (rank == 2) snprintf(got, sizeof got, "(%llu, %llu)", (unsigned long long)dims[0], (unsigned long long)dims[1]);
        else if (rank == 3)
            snprintf(got, sizeof got, "(%llu, %llu, %llu)", (unsigned long long)dims[0], (unsigned long long)dims[1],
                     (unsigned long long)dims[2]);
        else snprintf(got, sizeof got, "rank %d", rank);
        if (ft->dynamic)
            TS_FAIL(err, cap,
                    "%s: trajectory %s: dataset %s has shape %s, the meta JSON wants [%lld, -1, %lld] (T = %lld)",
                    f->path, t->name, ft->name, got, lead, channels, f->meta.length);
        else
            TS_FAIL(err, cap,
                    "%s: trajectory %s: dataset %s has shape %s; a static feature is stored (N, %lld), "
                    "(1, N, %lld) or tiled (T, N, %lld) with T = %lld, the trajectory_length of %s",
                    f->path, t->name, ft->name, got, channels, channels, channels, f->meta.length, f->meta_path);
        return H5Dclose(d), -1;
    }
    if (rank_out) *rank_out = rank;
    return d;
}

/* Read the first N x C block of a static dataset. */
static int read_first(hid_t d, int rank, size_t n, size_t c, hid_t memtype, void *out) {
    hsize_t start[3] = {0, 0, 0}, count[3] = {1, n, c};
    hsize_t *cnt = rank == 3 ? count : count + 1;
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hsize_t md[2] = {n, c};
    hid_t ms = H5Screate_simple(2, md, NULL);
    herr_t rc = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms), H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

static int check_trajectory(ts_mesh_file *f, traj_info *t, char *err, size_t cap) {
    size_t n[MAX_FEATURES] = {0};
    for (int k = 0; k < f->meta.nfeat; k++) {
        const feature *ft = &f->meta.feat[k];
        int rank;
        hid_t d = open_checked(f, t, ft, &n[k], &rank, err, cap);
        if (d < 0) return -1;
        if (!strcmp(ft->name, "mesh_pos")) t->pos_rank = rank;
        H5Dclose(d);
    }
    /* the datasets agree with the meta, so the meta's channels are theirs */
    long long pos_c = find_feature(f, "mesh_pos")->shape[2], cell_c = find_feature(f, "cells")->shape[2];
    if (!((pos_c == 2 && cell_c == 3) || (pos_c == 3 && cell_c == 4)))
        return TS_FAIL(err, cap,
                       "%s: trajectory %s: dataset cells has %lld nodes per cell with %lld-D mesh_pos: want "
                       "triangles (F, 3) with mesh_pos (N, 2), or tetrahedra (F, 4) with mesh_pos (N, 3)",
                       f->path, t->name, cell_c, pos_c);
    f->dim = (int)pos_c;
    const size_t D = (size_t)f->dim, per = D + 1;
    t->nodes = 0;
    for (int k = 0; k < f->meta.nfeat; k++)
        if (!strcmp(f->meta.feat[k].name, "mesh_pos")) t->nodes = n[k];
    for (int k = 0; k < f->meta.nfeat; k++) {
        const char *name = f->meta.feat[k].name;
        if (!strcmp(name, "cells")) t->cells = n[k];
        else if (n[k] != t->nodes)
            return TS_FAIL(err, cap, "%s: trajectory %s: dataset %s has %zu nodes, mesh_pos has %zu", f->path, t->name,
                           name, n[k], t->nodes);
    }
    /* the static arrays must be usable: positions finite, cells inside, types known */
    float *pos = ts_malloc(t->nodes * D * sizeof *pos + 1);
    int32_t *tri = ts_malloc(t->cells * per * sizeof *tri + 1), *type = ts_malloc(t->nodes * sizeof *type + 1);
    char e2[1024];
    int rc = ts_mesh_file_read_static(f, (size_t)(t - f->traj), pos, tri, type, e2, sizeof e2);
    if (rc) TS_FAIL(err, cap, "%s", e2);
    for (size_t i = 0; !rc && i < D * t->nodes; i++)
        if (!isfinite(pos[i]))
            rc = TS_FAIL(err, cap, "%s: trajectory %s: dataset mesh_pos holds a non-finite value at node %zu", f->path,
                         t->name, i / D);
    for (size_t i = 0; !rc && i < per * t->cells; i++)
        if (tri[i] < 0 || (size_t)tri[i] >= t->nodes)
            rc = TS_FAIL(err, cap, "%s: trajectory %s: dataset cells: cell %zu names node %d, outside [0, %zu)",
                         f->path, t->name, i / per, (int)tri[i], t->nodes);
    for (size_t i = 0; !rc && i < t->nodes; i++)
        if (type[i] < 0 || type[i] >= TS_NODE_SIZE)
            rc = TS_FAIL(err, cap, "%s: trajectory %s: dataset node_type: node %zu has type %d, outside 0..8", f->path,
                         t->name, i, (int)type[i]);
    free(pos), free(tri), free(type);
    return rc;
}

ts_mesh_file *ts_mesh_file_open(const char *path, char *err, size_t cap) {
    return ts_mesh_file_open_meta(path, NULL, err, cap);
}

ts_mesh_file *ts_mesh_file_open_meta(const char *path, const char *meta_path, char *err, size_t cap) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    ts_mesh_file *f = ts_calloc(1, sizeof *f);
    f->file = H5I_INVALID_HID;
    snprintf(f->path, sizeof f->path, "%s", path);
    if (meta_path && *meta_path) snprintf(f->meta_path, sizeof f->meta_path, "%s", meta_path);
    else if (ts_mesh_meta_find(path, f->meta_path, sizeof f->meta_path, err, cap)) goto fail;
    FILE *m = fopen(f->meta_path, "r");
    if (!m) {
        TS_FAIL(err, cap, "%s: cannot read its meta JSON %s: %s", path, f->meta_path, strerror(errno));
        goto fail;
    }
    char *text = ts_malloc(MAX_JSON + 2);
    size_t len = fread(text, 1, MAX_JSON + 1, m);
    fclose(m);
    text[len] = 0;
    int prc = len > MAX_JSON ? TS_FAIL(err, cap, "%s: larger than %d bytes: not a meta JSON", f->meta_path, MAX_JSON)
                             : meta_load(text, f->meta_path, &f->meta, err, cap);
    free(text);
    if (prc) goto fail;
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        TS_FAIL(err, cap, "%s: cannot open as HDF5 (missing, truncated or not HDF5)", path);
        goto fail;
    }
    name_list l = {0};
    hsize_t idx = 0;
    if (H5Literate(f->file, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect, &l) < 0 || l.n == 0) {
        free(l.names);
        TS_FAIL(err, cap, "%s: no trajectory groups (damaged or empty file)", path);
        goto fail;
    }
    for (size_t i = 0; i < l.n; i++) {
        char *end;
        strtoll(l.names[i], &end, 10);
        if (l.bad || *end || end == l.names[i]) {
            TS_FAIL(err, cap, "%s: '%s' is not a trajectory group (groups are named 0, 1, ...)", path, l.names[i]);
            free(l.names);
            goto fail;
        }
    }
    qsort(l.names, l.n, sizeof *l.names, cmp_numeric);
    f->ntraj = l.n;
    f->traj = ts_calloc(l.n, sizeof *f->traj);
    for (size_t i = 0; i < l.n; i++) snprintf(f->traj[i].name, MAX_TRAJ_NAME, "%s", l.names[i]);
    free(l.names);
    for (size_t i = 0; i < f->ntraj; i++)
        if (check_trajectory(f, &f->traj[i], err, cap)) goto fail;
    return f;
fail:
    ts_mesh_file_close(f);
    return NULL;
}

void ts_mesh_file_close(ts_mesh_file *f) {
    if (!f) return;
    if (f->file >= 0) H5Fclose(f->file);
    free(f->traj);
    free(f);
}

size_t ts_mesh_file_trajectories(const ts_mesh_file *f) { return f->ntraj; }
size_t ts_mesh_file_steps(const ts_mesh_file *f) { return (size_t)f->meta.length; }
double ts_mesh_file_dt(const ts_mesh_file *f) { return f->meta.dt; }
size_t ts_mesh_file_nodes(const ts_mesh_file *f, size_t traj) { return traj < f->ntraj ? f->traj[traj].nodes : 0; }
size_t ts_mesh_file_cells(const ts_mesh_file *f, size_t traj) { return traj < f->ntraj ? f->traj[traj].cells : 0; }
int ts_mesh_file_dim(const ts_mesh_file *f) { return f->dim; }

size_t ts_mesh_file_channels(const ts_mesh_file *f, const char *field) {
    const feature *ft = find_feature(f, field);
    return ft && ft->dynamic ? (size_t)ft->shape[2] : 0;
}

int ts_mesh_file_read_static(ts_mesh_file *f, size_t traj, float *pos, int32_t *tri, int32_t *node_type, char *err,
                             size_t cap) {
    if (traj >= f->ntraj) return TS_FAIL(err, cap, "%s: no trajectory %zu (the file has %zu)", f->path, traj, f->ntraj);
    traj_info *t = &f->traj[traj];
    const char *names[3] = {"mesh_pos", "cells", "node_type"};
    void *outs[3] = {pos, tri, node_type};
    size_t rows[3] = {t->nodes, t->cells, t->nodes}, cols[3] = {(size_t)f->dim, (size_t)f->dim + 1, 1};
    hid_t types[3] = {H5T_NATIVE_FLOAT, H5T_NATIVE_INT32, H5T_NATIVE_INT32};
    for (int k = 0; k < 3; k++) {
        if (!outs[k]) continue;
        size_t count;
        int rank;
        hid_t d = open_checked(f, t, find_feature(f, names[k]), &count, &rank, err, cap);
        if (d < 0) return -1;
        int rc = read_first(d, rank, rows[k], cols[k], types[k], outs[k]);
        H5Dclose(d);
        if (rc)
            return TS_FAIL(err, cap, "%s: trajectory %s: cannot read dataset %s (truncated?)", f->path, t->name,
                           names[k]);
    }
    return 0;
}

int ts_mesh_file_read_steps(ts_mesh_file *f, size_t traj, const char *field, size_t t0, size_t nt, float *out,
                            char *err, size_t cap) {
    if (traj >= f->ntraj) return TS_FAIL(err, cap, "%s: no trajectory %zu (the file has %zu)", f->path, traj, f->ntraj);
    traj_info *t = &f->traj[traj];
    const feature *ft = find_feature(f, field);
    if (!ft || !ft->dynamic) return TS_FAIL(err, cap, "%s: no dynamic field %s in %s", f->path, field, f->meta_path);
    if (t0 + nt > (size_t)f->meta.length || nt == 0)
        return TS_FAIL(err, cap, "%s: trajectory %s: steps %zu..%zu of %s outside 0..%lld", f->path, t->name, t0,
                       t0 + nt - 1, field, f->meta.length - 1);
    size_t count;
    hid_t d = open_checked(f, t, ft, &count, NULL, err, cap);
    if (d < 0) return -1;
    size_t c = (size_t)ft->shape[2];
    hsize_t start[3] = {t0, 0, 0}, cnt[3] = {nt, t->nodes, c};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(3, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    herr_t rc = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
    if (rc < 0)
        return TS_FAIL(err, cap, "%s: trajectory %s: cannot read dataset %s (truncated?)", f->path, t->name, field);
    size_t n = nt * t->nodes * c;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return TS_FAIL(err, cap, "%s: trajectory %s: dataset %s holds a non-finite value at step %zu, node %zu",
                           f->path, t->name, field, t0 + i / (t->nodes * c), (i / c) % t->nodes);
    return 0;
}
