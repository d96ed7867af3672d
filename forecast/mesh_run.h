/* The mesh path's commands (model.kind=mesh): trajectories in memory in
 * space-filling-curve order with their attention masks, and the training,
 * rollout and scoring built on them. */
#ifndef TESSERA_FORECAST_MESH_RUN_H
#define TESSERA_FORECAST_MESH_RUN_H

#include <stdint.h>

#include "core/config.h"
#include "forecast/commands.h"
#include "io/checkpoint.h"
#include "mesh/csr.h"
#include "models/mesh_model.h"
#include "models/mesh_norm.h"

/* The dynamic field the model learns and rolls out: 2 velocity components. */
enum { TS_MESH_FIELDS = 2 };

typedef struct {
    int index;                /* trajectory index in the file */
    int64_t N, ncells, T;     /* nodes, cells, time steps */
    int dim, per_cell;        /* 2 and 3 (triangles) or 3 and 4 (tetrahedra) */
    double dt;
    float *pos;               /* (N, dim) in curve order */
    int32_t *cells;           /* (ncells, per_cell) numbered in curve order */
    int32_t *type;            /* (N) node types in curve order */
    int32_t *perm;            /* (N) curve position -> node index in the file */
    uint8_t *loss_mask;       /* (N) NORMAL and OUTFLOW nodes */
    ts_csr mask;              /* (N+G) x (N+G) attention mask */
    float *velocity;          /* (T, N, 2) in curve order */
} ts_mesh_traj;

/* Read trajectories [first, first + count) of mesh.file, order their nodes
 * (mesh.order) and build their masks (mesh.khop, window, dilation, globals).
 * A bad file is one error line naming it (fatal). */
ts_mesh_traj *ts_mesh_load(const ts_config *cfg, int first, int count);
/* How many trajectories mesh.file holds, and the split of mesh.train_trajectories. */
void ts_mesh_split(const ts_config *cfg, int *ntraj, int *ntrain);
void ts_mesh_traj_free(ts_mesh_traj *t, int count);

/* The model of the configuration (model.* and mesh.globals / recompute). */
void ts_mesh_model_config_from(const ts_config *cfg, ts_mesh_model_config *mc);

/* A normalizer's state as checkpoint arrays named PREFIX.count,
 * PREFIX.n_accumulations, PREFIX.sum, PREFIX.sum_sq; scalars points at 2
 * doubles that hold the two scalars (copy them back with
 * ts_mesh_norm_from_named after a read). names holds 4 x 64 characters. */
void ts_mesh_norm_named(ts_mesh_norm *n, const char *prefix, ts_ckpt_named out[4], double scalars[2], char names[4][64]);
void ts_mesh_norm_from_named(ts_mesh_norm *n, const double scalars[2]);

int cmd_train_mesh(const ts_command_ctx *ctx);
int cmd_forecast_mesh(const ts_command_ctx *ctx);
int cmd_score_mesh(const ts_command_ctx *ctx);

#endif
