/* The mesh path's commands (model.kind=mesh): trajectories in memory in
 * space-filling-curve order with their attention masks, and the training,
 * rollout and scoring built on them. */
#ifndef TESSERA_FORECAST_MESH_RUN_H
#define TESSERA_FORECAST_MESH_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "forecast/commands.h"
#include "io/checkpoint.h"
#include "io/mesh_file.h"
#include "mesh/csr.h"
#include "models/mesh_model.h"
#include "models/mesh_norm.h"
#include "models/mesh_sp.h"

typedef struct {
    int index;                /* trajectory index in the file */
    int64_t N, ncells, T;     /* nodes, cells, time steps */
    int dim, per_cell;        /* 2 and 3 (triangles) or 3 and 4 (tetrahedra) */
    int fields;               /* velocity components the model learns: dim */
    double dt;
    float *pos;               /* (N, dim) in curve order */
    int32_t *cells;           /* (ncells, per_cell) numbered in curve order */
    int32_t *type;            /* (N) node types in curve order */
    int32_t *perm;            /* (N) curve position -> node index in the file */
    uint8_t *loss_mask;       /* (N) NORMAL and OUTFLOW nodes */
    ts_csr mask;              /* (N+G) x (N+G) attention mask */
    float *velocity;          /* (T, N, fields) in curve order */
} ts_mesh_traj;

/* Trajectories [first, first + count) of one mesh file: mesh.file,
 * mesh.valid_file or mesh.test_file (key names which, for messages). */
typedef struct {
    const char *key, *path; /* path: the configuration's string */
    int first, count;
    int total;              /* trajectories the file holds (set by ts_mesh_split) */
} ts_mesh_set;

/* The meta JSON every mesh file of the run is read with: mesh.meta, or
 * <stem of mesh.file>.json if it exists, else meta.json in mesh.file's
 * folder (fatal, one line naming both, when neither exists). With
 * mesh.file empty, mesh.test_file's stem and folder stand in for it
 * (forecast and score need no other file). */
void ts_mesh_meta(const ts_config *cfg, char *buf, size_t cap);
/* The file of a key (mesh.file, mesh.valid_file, mesh.test_file), opened
 * with ts_mesh_meta; fatal, one line naming the file, on any error. */
ts_mesh_file *ts_mesh_open(const ts_config *cfg, const char *path);
/* How many trajectories the file at path holds. */
int ts_mesh_count(const ts_config *cfg, const char *path);
/* The training and validation trajectories. Without mesh.valid_file: the
 * first mesh.train_trajectories of mesh.file train (0: all but the last)
 * and the rest validate. With it: mesh.train_trajectories of mesh.file (0:
 * all of them) train and every trajectory of mesh.valid_file validates. */
void ts_mesh_split(const ts_config *cfg, ts_mesh_set *train, ts_mesh_set *valid);
/* Read the trajectories of set, order their nodes (mesh.order) and build
 * their masks (mesh.khop, window, dilation, globals). A bad file is one
 * error line naming it (fatal). */
ts_mesh_traj *ts_mesh_load(const ts_config *cfg, const ts_mesh_set *set);
/* The velocity components of the file at path, shared by all its
 * trajectories: its mesh dimension, 2 or 3 (fatal when its velocity has
 * another count). */
int ts_mesh_fields(const ts_config *cfg, const char *path);
void ts_mesh_traj_free(ts_mesh_traj *t, int count);

/* One step of the mesh model, as training (pushforward, validation
 * rollouts) and forecasts take it: the model already prepared for the
 * trajectory, its normalizers, the trajectory's SP plan (NULL on one
 * rank), and scratch for this rank's rows: vin_n and out (rows, fields),
 * feat (rows, c_in). */
typedef struct {
    ts_mesh_model *model;
    const ts_mesh_norm *in_norm, *out_norm;
    const ts_mesh_sp *sp;
    int fields;
    float *vin_n, *feat, *out;
} ts_mesh_stepper;
/* change (N, F): the model's de-normalized one-step change from the state v
 * (N, F), no gradient. With SP each rank predicts its chunk and the SP
 * group gathers the whole change. */
void ts_mesh_predict_change(const ts_mesh_stepper *s, const ts_mesh_traj *tj, const float *v, float *change);
/* v_next (N, F) = v + change on the loss-set nodes, truth_next on the
 * others (as a rollout sets them); v_next may be v. */
void ts_mesh_advance(const ts_mesh_traj *tj, const float *v, const float *change, const float *truth_next,
                     float *v_next);

/* The model of the configuration (model.* and mesh.globals / recompute)
 * for `fields` velocity components: c_in = fields + 9 node types, c_out =
 * fields. */
void ts_mesh_model_config_from(const ts_config *cfg, int fields, ts_mesh_model_config *mc);

/* A normalizer's state as checkpoint arrays named PREFIX.count,
 * PREFIX.n_accumulations, PREFIX.sum, PREFIX.sum_sq; scalars points at 2
 * doubles that hold the two scalars (copy them back with
 * ts_mesh_norm_from_named after a read). names holds 4 x 64 characters. */
void ts_mesh_norm_named(ts_mesh_norm *n, const char *prefix, ts_ckpt_named out[4], double scalars[2], char names[4][64]);
void ts_mesh_norm_from_named(ts_mesh_norm *n, const double scalars[2]);
/* Fatal, naming both counts, when checkpoint ck (at ckpath) was trained on
 * another number of velocity components than `fields` (those of the mesh
 * file set names): its normalizers' channels tell. Other mismatches are
 * left to the reads. */
void ts_mesh_check_ckpt_fields(ts_ckpt *ck, const char *ckpath, const ts_mesh_set *set, int fields);

int cmd_forecast_mesh(const ts_command_ctx *ctx);
int cmd_score_mesh(const ts_command_ctx *ctx);

#endif
