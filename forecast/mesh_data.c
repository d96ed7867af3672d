/* Trajectories of the mesh files (mesh.file, mesh.valid_file, mesh.test_file,
 * all read with one meta JSON) in memory, in curve order, with their masks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "forecast/mesh_run.h"
#include "io/mesh_file.h"
#include "mesh/graph.h"
#include "mesh/mask.h"
#include "mesh/order.h"
#include "parallel/collective.h"

void ts_mesh_model_config_from(const ts_config *cfg, int fields, ts_mesh_model_config *mc) {
    *mc = (ts_mesh_model_config){.c_in = fields + TS_MESH_MODEL_NODE_TYPES,
                                 .c_out = fields,
                                 .dim = (int)ts_config_int(cfg, "model.dim"),
                                 .heads = (int)ts_config_int(cfg, "model.heads"),
                                 .hidden = (int)ts_config_int(cfg, "model.hidden"),
                                 .depth = (int)ts_config_int(cfg, "model.depth"),
                                 .n_globals = (int)ts_config_int(cfg, "mesh.globals"),
                                 .recompute = ts_config_bool(cfg, "mesh.recompute")};
}

static const char *mesh_path(const ts_config *cfg) {
    const char *path = ts_config_str(cfg, "mesh.file");
    if (!*path) ts_usage_error("mesh.file is empty: give the graph-physics HDF5 file (tessera synth-mesh writes one)");
    return path;
}

void ts_mesh_meta(const ts_config *cfg, char *buf, size_t cap) {
    char err[9000];
    const char *meta = ts_config_str(cfg, "mesh.meta"), *test = ts_config_str(cfg, "mesh.test_file");
    if (*meta) {
        snprintf(buf, cap, "%s", meta);
        return;
    }
    /* a forecast of mesh.test_file needs no mesh.file: the test file stands in */
    const char *base = !*ts_config_str(cfg, "mesh.file") && *test ? test : mesh_path(cfg);
    if (ts_mesh_meta_find(base, buf, cap, err, sizeof err)) ts_fatal("%s; name it with mesh.meta", err);
}

ts_mesh_file *ts_mesh_open(const ts_config *cfg, const char *path) {
    char meta[4096], err[9000];
    ts_mesh_meta(cfg, meta, sizeof meta);
    ts_mesh_file *f = ts_mesh_file_open_meta(path, meta, err, sizeof err);
    if (!f) ts_fatal("%s", err);
    return f;
}

int ts_mesh_count(const ts_config *cfg, const char *path) {
    ts_mesh_file *f = ts_mesh_open(cfg, path);
    int n = (int)ts_mesh_file_trajectories(f);
    ts_mesh_file_close(f);
    return n;
}

void ts_mesh_split(const ts_config *cfg, ts_mesh_set *train, ts_mesh_set *valid) {
    const char *path = mesh_path(cfg), *vpath = ts_config_str(cfg, "mesh.valid_file");
    const int ntraj = ts_mesh_count(cfg, path);
    int64_t want = ts_config_int(cfg, "mesh.train_trajectories");
    if (want > ntraj)
        ts_usage_error("mesh.train_trajectories = %lld, but %s holds %d trajectories", (long long)want, path, ntraj);
    int ntrain;
    if (*vpath) ntrain = want > 0 ? (int)want : ntraj; /* the validation set is a file of its own */
    else ntrain = want > 0 ? (int)want : (ntraj > 1 ? ntraj - 1 : ntraj);
    *train = (ts_mesh_set){.key = "mesh.file", .path = path, .first = 0, .count = ntrain, .total = ntraj};
    if (*vpath) {
        const int nvalid = ts_mesh_count(cfg, vpath);
        *valid = (ts_mesh_set){.key = "mesh.valid_file", .path = vpath, .first = 0, .count = nvalid, .total = nvalid};
    } else {
        *valid = (ts_mesh_set){.key = "mesh.file", .path = path, .first = ntrain, .count = ntraj - ntrain, .total = ntraj};
    }
}

/* The velocity components of an open file: one per mesh dimension. */
static int file_fields(ts_mesh_file *f, const char *path, char *err, size_t cap) {
    const int dim = ts_mesh_file_dim(f);
    if (ts_mesh_file_channels(f, "velocity") != (size_t)dim) {
        return TS_FAIL(err, cap, "%s has no %d-component dynamic field 'velocity' (its mesh is %d-D: mesh_pos (N, %d))", path,
                 dim, dim, dim);
    }
    return dim;
}

int ts_mesh_fields(const ts_config *cfg, const char *path) {
    char err[1024];
    ts_mesh_file *f = ts_mesh_open(cfg, path);
    int fields = file_fields(f, path, err, sizeof err);
    ts_mesh_file_close(f);
    if (fields < 0) ts_fatal("%s", err);
    return fields;
}

static ts_curve curve_of(const ts_config *cfg, int *none) {
    const char *o = ts_config_str(cfg, "mesh.order");
    *none = strcmp(o, "file") == 0;
    return strcmp(o, "morton") == 0 ? TS_CURVE_MORTON : TS_CURVE_HILBERT;
}

/* Put trajectory tj (as read, file order) into curve order and build its mask. */
static void order_and_mask(const ts_config *cfg, ts_mesh_traj *tj, const char *path) {
    char err[1024];
    const int64_t N = tj->N;
    int none;
    ts_curve curve = curve_of(cfg, &none);
    tj->perm = ts_malloc(sizeof(int32_t) * (size_t)N);
    int32_t *inv = ts_malloc(sizeof(int32_t) * (size_t)N);
    if (none) {
        for (int64_t i = 0; i < N; i++) tj->perm[i] = inv[i] = (int32_t)i;
    } else if (ts_curve_order(tj->pos, N, tj->dim, curve, 0, tj->perm, inv, err, sizeof err)) {
        ts_fatal("%s: trajectory %d: %s", path, tj->index, err);
    }
    float *pos = ts_malloc(sizeof(float) * (size_t)N * (size_t)tj->dim);
    ts_permute_rows(tj->pos, pos, N, sizeof(float) * (size_t)tj->dim, tj->perm);
    free(tj->pos), tj->pos = pos;
    int32_t *type = ts_malloc(sizeof(int32_t) * (size_t)N);
    ts_permute_rows(tj->type, type, N, sizeof(int32_t), tj->perm);
    free(tj->type), tj->type = type;
    const size_t F = (size_t)tj->fields;
    float *vel = ts_malloc(sizeof(float) * (size_t)tj->T * (size_t)N * F);
    for (int64_t t = 0; t < tj->T; t++)
        ts_permute_rows(tj->velocity + (size_t)t * (size_t)N * F, vel + (size_t)t * (size_t)N * F, N, sizeof(float) * F,
                        tj->perm);
    free(tj->velocity), tj->velocity = vel;
    ts_renumber_ids(tj->cells, (size_t)tj->ncells * (size_t)tj->per_cell, inv);
    free(inv);

    tj->loss_mask = ts_malloc((size_t)N);
    for (int64_t i = 0; i < N; i++) {
        if (tj->type[i] < 0 || tj->type[i] >= TS_MESH_MODEL_NODE_TYPES)
            ts_fatal("%s: trajectory %d: node type %d is not a MeshGraphNets code 0..%d", path, tj->index, tj->type[i],
                     TS_MESH_MODEL_NODE_TYPES - 1);
    }
    ts_mesh_model_loss_mask(tj->loss_mask, tj->type, N);

    ts_csr adj;
    if (ts_mesh_edges_from_cells(N, tj->ncells, tj->per_cell, tj->cells, &adj, err, sizeof err))
        ts_fatal("%s: trajectory %d: %s", path, tj->index, err);
    ts_mask_params mp = {(int)ts_config_int(cfg, "mesh.khop"), (int)ts_config_int(cfg, "mesh.window"),
                         (int)ts_config_int(cfg, "mesh.dilation"), (int)ts_config_int(cfg, "mesh.globals")};
    if (ts_mesh_mask(&adj, &mp, &tj->mask, err, sizeof err)) ts_usage_error("%s", err);
    ts_csr_free(&adj);
}

/* Trajectory tj->index of f, as stored (the reader's layout: 2-D triangles
 * or 3-D tetrahedra, velocity with one component per dimension). */
static int read_trajectory(ts_mesh_file *f, ts_mesh_traj *tj, const char *path, char *err, size_t cap) {
    size_t k = (size_t)tj->index;
    if (k >= ts_mesh_file_trajectories(f)) {
        snprintf(err, cap, "%s holds %zu trajectories; trajectory %zu asked", path, ts_mesh_file_trajectories(f), k);
        return -1;
    }
    if ((tj->fields = file_fields(f, path, err, cap)) < 0) return -1;
    tj->N = (int64_t)ts_mesh_file_nodes(f, k), tj->ncells = (int64_t)ts_mesh_file_cells(f, k);
    tj->T = (int64_t)ts_mesh_file_steps(f), tj->dt = ts_mesh_file_dt(f);
    tj->dim = ts_mesh_file_dim(f), tj->per_cell = tj->dim + 1;
    tj->pos = ts_malloc(sizeof(float) * (size_t)tj->N * (size_t)tj->dim);
    tj->cells = ts_malloc(sizeof(int32_t) * (size_t)tj->ncells * (size_t)tj->per_cell);
    tj->type = ts_malloc(sizeof(int32_t) * (size_t)tj->N);
    tj->velocity = ts_malloc(sizeof(float) * (size_t)tj->T * (size_t)tj->N * (size_t)tj->fields);
    if (ts_mesh_file_read_static(f, k, tj->pos, tj->cells, tj->type, err, cap)) return -1;
    return ts_mesh_file_read_steps(f, k, "velocity", 0, (size_t)tj->T, tj->velocity, err, cap);
}

ts_mesh_traj *ts_mesh_load(const ts_config *cfg, const ts_mesh_set *set) {
    char err[1024];
    const char *path = set->path;
    const int count = set->count;
    ts_mesh_file *f = ts_mesh_open(cfg, path);
    ts_mesh_traj *all = ts_calloc((size_t)(count > 0 ? count : 1), sizeof(ts_mesh_traj));
    for (int k = 0; k < count; k++) {
        ts_mesh_traj *tj = &all[k];
        tj->index = set->first + k;
        if (read_trajectory(f, tj, path, err, sizeof err)) ts_fatal("%s", err);
        order_and_mask(cfg, tj, path);
    }
    /* the meta's shapes fix the dimension for the whole file */
    for (int k = 1; k < count; k++)
        if (all[k].fields != all[0].fields)
            ts_fatal("%s: trajectory %d has %d velocity components, trajectory %d has %d: all must share one", path,
                     all[k].index, all[k].fields, all[0].index, all[0].fields);
    ts_mesh_file_close(f);
    return all;
}

void ts_mesh_traj_free(ts_mesh_traj *t, int count) {
    if (!t) return;
    for (int k = 0; k < count; k++) {
        free(t[k].pos), free(t[k].cells), free(t[k].type), free(t[k].perm), free(t[k].loss_mask), free(t[k].velocity);
        ts_csr_free(&t[k].mask);
    }
    free(t);
}

void ts_mesh_norm_named(ts_mesh_norm *n, const char *prefix, ts_ckpt_named out[4], double scalars[2], char names[4][64]) {
    static const char *const SUFFIX[4] = {"count", "n_accumulations", "sum", "sum_sq"};
    for (int i = 0; i < 4; i++) snprintf(names[i], 64, "%s.%s", prefix, SUFFIX[i]);
    scalars[0] = n->count, scalars[1] = (double)n->n_accumulations;
    out[0] = (ts_ckpt_named){.name = names[0], .ndim = 0, .data = &scalars[0]};
    out[1] = (ts_ckpt_named){.name = names[1], .ndim = 0, .data = &scalars[1]};
    out[2] = (ts_ckpt_named){.name = names[2], .ndim = 1, .shape = {n->channels}, .data = n->sum};
    out[3] = (ts_ckpt_named){.name = names[3], .ndim = 1, .shape = {n->channels}, .data = n->sum_sq};
}

void ts_mesh_norm_from_named(ts_mesh_norm *n, const double scalars[2]) {
    n->count = scalars[0];
    n->n_accumulations = (int64_t)scalars[1];
}

/* The normalizers hold one channel per velocity component, so the count a
 * checkpoint was trained on is the one whose declared arrays it accepts. */
static int ckpt_accepts_fields(ts_ckpt *ck, int fields) {
    char names[8][64], err[1024];
    ts_mesh_norm in, out;
    ts_mesh_norm_init(&in, fields, 1000000, 1e-8);
    ts_mesh_norm_init(&out, fields, 1000000, 1e-8);
    ts_ckpt_named arrays[8];
    double scalars[4];
    ts_mesh_norm_named(&in, "input", arrays, scalars, names);
    ts_mesh_norm_named(&out, "target", arrays + 4, scalars + 2, names + 4);
    int ok = ts_ckpt_read_named(ck, arrays, 8, err, sizeof err) == 0;
    ts_mesh_norm_free(&in), ts_mesh_norm_free(&out);
    return ok;
}

void ts_mesh_check_ckpt_fields(ts_ckpt *ck, const char *ckpath, const ts_mesh_set *set, int fields) {
    if (ckpt_accepts_fields(ck, fields)) return;
    for (int other = 2; other <= 3; other++)
        if (other != fields && ckpt_accepts_fields(ck, other))
            ts_fatal("%s was trained on %d velocity components (a %d-D mesh), but %s %s has %d (a %d-D mesh): "
                     "the model's input and output shapes follow them; use a checkpoint trained on a %d-D mesh",
                     ckpath, other, other, set->key, set->path, fields, fields, fields);
}

void ts_mesh_predict_change(const ts_mesh_stepper *s, const ts_mesh_traj *tj, const float *v, float *change) {
    const int F = s->fields;
    const int64_t first = s->sp ? s->sp->chunk.first : 0, n = s->sp ? s->sp->n_own : tj->N;
    const size_t off = (size_t)first * (size_t)F;
    ts_mesh_norm_normalize(s->in_norm, s->vin_n, v + off, n);
    ts_mesh_model_features(s->feat, s->vin_n, F, tj->type + first, n);
    ts_mesh_model_forward(s->model, s->out, s->feat);
    ts_mesh_norm_denormalize(s->out_norm, change + off, s->out, n);
    if (s->sp) ts_par_gather_chunks(change, s->sp->start, s->sp->size, F, s->sp->comm);
}

void ts_mesh_advance(const ts_mesh_traj *tj, const float *v, const float *change, const float *truth_next,
                     float *v_next) {
    const int F = tj->fields;
    for (int64_t i = 0; i < tj->N; i++)
        for (int c = 0; c < F; c++) {
            size_t k = (size_t)i * (size_t)F + (size_t)c;
            v_next[k] = tj->loss_mask[i] ? v[k] + change[k] : truth_next[k];
        }
}
