/* tessera forecast / score with model.kind=mesh.
 *
 * forecast rolls one trajectory out from its first step (mesh.trajectory
 * of mesh.test_file, or of mesh.file when that is empty; the default is the
 * test file's first, or mesh.file's first held out from training) with
 * the checkpoint's model: each step adds the de-normalized predicted change
 * to the velocity, then sets the nodes the model is not asked about (all but
 * NORMAL and OUTFLOW: inflow, walls, obstacle) from the truth, as
 * MeshGraphNets does. Beside the rollout it writes the one-step prediction
 * from the true state of the step before, so score needs no model. The file
 * is UGRID-1.0 NetCDF (io/ugrid_write.h, docs/ugrid-format.md), nodes in the
 * file's own order. The steps are taken by the rollout driver
 * (forecast/rollout.h): a killed rollout resumes at its last complete step,
 * and SIGUSR1/SIGTERM stop it politely after the step in progress.
 *
 * score compares both with the truth: 1-step and all-rollout RMSE in
 * physical units, sqrt(mean over steps, nodes and all velocity components
 * (2 on a triangle mesh, 3 on a tetrahedral one) of (prediction - truth)^2), against persistence (the state of the step
 * before, for one step; the first state held, for the rollout).
 *
 * With parallel.sp > 1 ranks the forecast is sequence-parallel: each rank
 * predicts its chunk's nodes (models/mesh_sp.h), an all-gather gives every
 * rank the whole new state, and rank 0 alone writes the file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "forecast/mesh_run.h"
#include "forecast/rollout.h"
#include "forecast/trainer.h"
#include "io/checkpoint.h"
#include "io/ugrid_write.h"
#include "models/mesh_sp.h"
#include "parallel/collective.h"

/* The file's variables for F velocity components: the rollout's F, then
 * the one-step predictions' F (variable v is component v % F). */
static const ts_ugrid_var OUT_VARS_2D[] = {
    {"velocity_x", "m s-1", "velocity, x component, autoregressive rollout"},
    {"velocity_y", "m s-1", "velocity, y component, autoregressive rollout"},
    {"velocity_x_1step", "m s-1", "velocity, x component, one step from the true state"},
    {"velocity_y_1step", "m s-1", "velocity, y component, one step from the true state"},
};
static const ts_ugrid_var OUT_VARS_3D[] = {
    {"velocity_x", "m s-1", "velocity, x component, autoregressive rollout"},
    {"velocity_y", "m s-1", "velocity, y component, autoregressive rollout"},
    {"velocity_z", "m s-1", "velocity, z component, autoregressive rollout"},
    {"velocity_x_1step", "m s-1", "velocity, x component, one step from the true state"},
    {"velocity_y_1step", "m s-1", "velocity, y component, one step from the true state"},
    {"velocity_z_1step", "m s-1", "velocity, z component, one step from the true state"},
};

static const ts_ugrid_var *out_vars(int fields) { return fields == 3 ? OUT_VARS_3D : OUT_VARS_2D; }

static void path_or_default(const ts_config *cfg, const char *key, const char *out, const char *name, char *buf,
                            size_t cap) {
    const char *v = ts_config_str(cfg, key);
    if (*v) snprintf(buf, cap, "%s", v);
    else snprintf(buf, cap, "%s/%s", out, name);
}

/* The file forecast and scored: mesh.test_file, or mesh.file when it is empty. */
static ts_mesh_set rollout_file(const ts_config *cfg) {
    const char *test = ts_config_str(cfg, "mesh.test_file");
    if (*test) return (ts_mesh_set){.key = "mesh.test_file", .path = test, .count = 1};
    const char *path = ts_config_str(cfg, "mesh.file");
    if (!*path)
        ts_usage_error("mesh.file and mesh.test_file are empty: give the graph-physics HDF5 file to roll out "
                       "(tessera synth-mesh writes one)");
    return (ts_mesh_set){.key = "mesh.file", .path = path, .count = 1};
}

/* The trajectory of set->path forecast and scored: mesh.trajectory, or by
 * default the first of mesh.test_file, else the first of mesh.file that
 * training did not use (its split by mesh.train_trajectories). */
static void choose_trajectory(const ts_config *cfg, ts_mesh_set *set) {
    int64_t k = ts_config_int(cfg, "mesh.trajectory");
    int ntraj;
    if (!strcmp(set->key, "mesh.test_file")) {
        ntraj = ts_mesh_count(cfg, set->path);
        if (k < 0) k = 0;
    } else {
        ts_mesh_set train, valid;
        ts_mesh_split(cfg, &train, &valid);
        ntraj = train.total;
        if (k < 0) k = train.count < ntraj ? train.count : ntraj - 1;
    }
    if (k >= ntraj)
        ts_usage_error("mesh.trajectory = %lld, but %s %s holds %d trajectories", (long long)k, set->key, set->path,
                       ntraj);
    set->first = (int)k, set->count = 1;
}

static int64_t rollout_steps(const ts_config *cfg, const ts_mesh_traj *tj, const char *path) {
    int64_t s = ts_config_int(cfg, "mesh.rollout_steps");
    if (s == 0 || s > tj->T - 1) s = tj->T - 1;
    if (s < 1) ts_usage_error("trajectory %d of %s has %lld steps: nothing to roll out", tj->index, path,
                              (long long)tj->T);
    return s;
}

/* ---- forecast ------------------------------------------------------------------------ */

typedef struct {
    int fields;                   /* velocity components F: the mesh's dimension */
    ts_mesh_model model;
    ts_mesh_norm in_norm, out_norm;
    float *vin_n, *feat, *out;    /* this rank's rows (ts_mesh_stepper) */
    float *pred;                  /* (N, F) the predicted change: the whole graph's, also with sp */
    ts_mesh_sp *sp;               /* with parallel.sp > 1, else NULL */
} predictor;

/* v_next (N, F) = v + the model's de-normalized change, with the nodes
 * outside the loss set from truth_next. With sp, every rank predicts its
 * chunk and gathers the others'. */
static void predict(predictor *p, const ts_mesh_traj *tj, const float *v, const float *truth_next, float *v_next) {
    ts_mesh_stepper st = {&p->model, &p->in_norm, &p->out_norm, p->sp, p->fields, p->vin_n, p->feat, p->out};
    ts_mesh_predict_change(&st, tj, v, p->pred);
    ts_mesh_advance(tj, v, p->pred, truth_next, v_next);
}

static void load_predictor(predictor *p, ts_config *cfg, const char *ckpath, const ts_mesh_set *set,
                           const ts_backend *be) {
    char err[1024], names[8][64];
    ts_ckpt *ck = ts_ckpt_open(ckpath, "mesh", err, sizeof err);
    if (!ck) ts_fatal("%s", err);
    static const char *const KEYS[] = {"model.", "mesh.khop", "mesh.window", "mesh.dilation", "mesh.globals",
                                       "mesh.order", "mesh.train_trajectories"};
    if (ts_config_apply_json(cfg, ts_ckpt_get_meta(ck)->config_json, KEYS, sizeof KEYS / sizeof KEYS[0], ckpath, err,
                             sizeof err))
        ts_fatal("%s", err);
    /* the model's shapes follow the velocity components, so a checkpoint
     * forecasts meshes of the dimension it was trained on */
    p->fields = ts_mesh_fields(cfg, set->path);
    ts_mesh_check_ckpt_fields(ck, ckpath, set, p->fields);
    ts_mesh_model_config mc;
    ts_mesh_model_config_from(cfg, p->fields, &mc);
    if (ts_mesh_model_create(&p->model, be, &mc, err, sizeof err)) ts_usage_error("%s", err);
    const char *group = strcmp(ts_config_str(cfg, "forecast.weights"), "ema") == 0 ? TS_CKPT_EMA : TS_CKPT_PARAMS;
    if (!ts_ckpt_has(ck, group)) ts_fatal("%s has no '%s' weights (forecast.weights)", ckpath, group);
    if (ts_ckpt_read_params(ck, group, &p->model.params, p->model.params.data, err, sizeof err)) ts_fatal("%s", err);
    ts_check_finite_block(&p->model.params, p->model.params.data, ckpath, group);
    ts_mesh_norm_init(&p->in_norm, p->fields, 1000000, 1e-8);
    ts_mesh_norm_init(&p->out_norm, p->fields, 1000000, 1e-8);
    ts_ckpt_named arrays[8];
    double scalars[4];
    ts_mesh_norm_named(&p->in_norm, "input", arrays, scalars, names);
    ts_mesh_norm_named(&p->out_norm, "target", arrays + 4, scalars + 2, names + 4);
    if (ts_ckpt_read_named(ck, arrays, 8, err, sizeof err)) ts_fatal("%s", err);
    ts_mesh_norm_from_named(&p->in_norm, scalars);
    ts_mesh_norm_from_named(&p->out_norm, scalars + 2);
    if (p->in_norm.count <= 0) ts_fatal("%s: its normalizers never saw data (a checkpoint of step 0?)", ckpath);
    ts_ckpt_close(ck);
}

/* Curve-order rows of (N, F) to one component in file order. */
static void to_file_order(const ts_mesh_traj *tj, const float *v, int c, float *out) {
    for (int64_t i = 0; i < tj->N; i++) out[tj->perm[i]] = v[(size_t)i * (size_t)tj->fields + (size_t)c];
}

typedef struct {
    predictor *p;
    const ts_mesh_traj *tj;
    int k, F;
    size_t nf;
    const char *path;
    ts_ugrid_writer *w; /* rank 0 */
    float *v, *v1, *col;
} step_ctx;

/* Step s of the rollout: the model's state from its own last one (the
 * rollout) and from the true one (the one-step prediction), written. */
static void rollout_step(void *self, int64_t s) {
    step_ctx *c = self;
    const ts_mesh_traj *tj = c->tj;
    const float *truth_prev = tj->velocity + (size_t)(s - 1) * c->nf, *truth = truth_prev + c->nf;
    predict(c->p, tj, c->v, truth, c->v);
    predict(c->p, tj, truth_prev, truth, c->v1);
    for (size_t q = 0; q < c->nf; q++)
        if (!isfinite(c->v[q]) || !isfinite(c->v1[q]))
            ts_fatal("trajectory %d: the rollout turned non-finite at step %lld (node %zu); steps before it are "
                     "written to %s.part",
                     c->k, (long long)s, (size_t)tj->perm[q / (size_t)c->F], c->path);
    char err[1024];
    for (int ch = 0; c->w && ch < 2 * c->F; ch++) {
        to_file_order(tj, ch < c->F ? c->v : c->v1, ch % c->F, c->col);
        if (ts_ugrid_write(c->w, (size_t)ch, (size_t)s - 1, c->col, err, sizeof err)) ts_fatal("%s", err);
    }
    if (c->w && ts_ugrid_step_complete(c->w, (size_t)s - 1, err, sizeof err)) ts_fatal("%s", err);
}

int cmd_forecast_mesh(const ts_command_ctx *ctx) {
    ts_config *cfg = ctx->cfg;
    char ckpath[4096], path[4096], err[1024];
    const ts_layout *lay = ctx->layout;
    if (lay->world > 1 && lay->size[TS_AXIS_SP] != lay->world)
        ts_usage_error("tessera forecast model.kind=mesh splits one trajectory over parallel.sp ranks only: started on "
                       "%d ranks with parallel.sp = %d (parallel.dp, wp_y, wp_x and pp must be 1)",
                       lay->world, lay->size[TS_AXIS_SP]);
    const int root = lay->rank == 0;
    const char *why = NULL;
    const ts_backend *be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!be) ts_usage_error("device=%s is not available: %s", ts_config_str(cfg, "device"), why);
    path_or_default(cfg, "forecast.checkpoint", ctx->out, "checkpoint.h5", ckpath, sizeof ckpath);
    path_or_default(cfg, "forecast.output", ctx->out, "rollout.nc", path, sizeof path);
    predictor p;
    memset(&p, 0, sizeof p);
    ts_mesh_set set = rollout_file(cfg);
    load_predictor(&p, cfg, ckpath, &set, be);

    choose_trajectory(cfg, &set); /* after the checkpoint's mesh.train_trajectories is in */
    const int k = set.first;
    ts_mesh_traj *tj = ts_mesh_load(cfg, &set);
    const int64_t N = tj->N, S = rollout_steps(cfg, tj, set.path);
    const int F = p.fields, nout = 2 * F;
    if (tj->fields != F) ts_fatal("%s changed while it was read (%d velocity components, then %d)", set.path, F,
                                  tj->fields);
    ts_mesh_sp sp;
    if (lay->world > 1) {
        if (ts_mesh_sp_create(&sp, lay->axis[TS_AXIS_SP], &tj->mask, N, p.model.cfg.n_globals, TS_BALANCE_NODES, err,
                              sizeof err))
            ts_fatal("trajectory %d: %s", k, err);
        p.sp = &sp;
        if (ts_mesh_model_prepare_sp(&p.model, N, &tj->mask, &sp, err, sizeof err)) ts_fatal("trajectory %d: %s", k, err);
    } else if (ts_mesh_model_prepare(&p.model, N, &tj->mask, err, sizeof err)) {
        ts_fatal("trajectory %d: %s", k, err);
    }
    const size_t nf = (size_t)N * (size_t)F;
    p.vin_n = ts_malloc(sizeof(float) * nf), p.pred = ts_malloc(sizeof(float) * nf), p.out = ts_malloc(sizeof(float) * nf);
    p.feat = ts_malloc(sizeof(float) * (size_t)N * (size_t)p.model.cfg.c_in);

    /* the file keeps the input's node order and cells */
    double *xyz = ts_malloc(sizeof(double) * (size_t)N * (size_t)tj->dim);
    int32_t *cells = ts_malloc(sizeof(int32_t) * (size_t)tj->ncells * (size_t)tj->per_cell);
    int32_t *type = ts_malloc(sizeof(int32_t) * (size_t)N);
    for (int64_t i = 0; i < N; i++) {
        for (int a = 0; a < tj->dim; a++) xyz[(size_t)tj->perm[i] * (size_t)tj->dim + (size_t)a] = tj->pos[i * tj->dim + a];
        type[tj->perm[i]] = tj->type[i];
    }
    for (int64_t c = 0; c < tj->ncells * tj->per_cell; c++) cells[c] = tj->perm[tj->cells[c]];
    double *times = ts_malloc(sizeof(double) * (size_t)S);
    for (int64_t s = 0; s < S; s++) times[s] = (double)(s + 1) * tj->dt;
    int need = ts_config_to_json(cfg, NULL, 0);
    char *history = ts_malloc((size_t)need + 1);
    ts_config_to_json(cfg, history, (size_t)need + 1);
    ts_ugrid_spec spec = {.path = path, .dim = tj->dim, .nnodes = (size_t)N, .ncells = (size_t)tj->ncells,
                          .node_xyz = xyz, .cells = cells, .node_type = type, .nsteps = (size_t)S, .times = times,
                          .time_units = "s", .nvars = (size_t)nout, .vars = out_vars(F),
                          .title = "tessera mesh rollout", .history = history};
    ts_ugrid_writer *w = NULL; /* rank 0 writes */
    if (root && !(w = ts_ugrid_open(&spec, err, sizeof err))) ts_fatal("%s", err);

    float *v = ts_malloc(sizeof(float) * nf), *v1 = ts_malloc(sizeof(float) * nf), *col = ts_malloc(sizeof(float) * (size_t)N);
    int64_t done = root ? (int64_t)ts_ugrid_steps_done(w) : 0;
    ts_par_bcast_i64(lay, &done, 1);
    if (done == 0) {
        memcpy(v, tj->velocity, sizeof(float) * nf);
    } else if (!root) {
        ts_par_bcast_floats(lay, v, nf);
    } else { /* resume from the last complete step, as written */
        for (int c = 0; c < F; c++) {
            if (ts_ugrid_read(w, (size_t)c, (size_t)done - 1, col, err, sizeof err)) ts_fatal("%s", err);
            for (int64_t i = 0; i < N; i++) v[(size_t)i * (size_t)F + (size_t)c] = col[tj->perm[i]];
        }
        ts_par_bcast_floats(lay, v, nf);
    }
    ts_info("rolling out trajectory %d of %s %s: %lld nodes, %lld steps", k, set.key, set.path, (long long)N,
            (long long)S);
    step_ctx sc = {&p, tj, k, F, nf, path, w, v, v1, col};
    ts_rollout r = {.self = &sc,
                    .step = rollout_step,
                    .total = S,
                    .done = done,
                    .unit = "step",
                    .work_per_step = 1,
                    .rate_unit = "steps/s",
                    .rate_key = "steps_per_s",
                    .event = "rollout_step",
                    .path = path};
    int stopped = ts_rollout_run(lay, &r);
    if (root && ts_ugrid_close(w, err, sizeof err)) ts_fatal("%s", err);
    ts_par_barrier(lay);
    if (!stopped) ts_info("rollout written to %s", path);
    if (p.sp) ts_mesh_sp_free(&sp);

    free(v), free(v1), free(col), free(xyz), free(cells), free(type), free(times), free(history);
    free(p.vin_n), free(p.pred), free(p.out), free(p.feat);
    ts_mesh_model_free(&p.model);
    ts_mesh_norm_free(&p.in_norm), ts_mesh_norm_free(&p.out_norm);
    ts_mesh_traj_free(tj, 1);
    return 0;
}

/* ---- score ------------------------------------------------------------------------ */

int cmd_score_mesh(const ts_command_ctx *ctx) {
    ts_config *cfg = ctx->cfg;
    char path[4096], err[1024];
    if (ctx->layout->rank != 0) return 0;
    const char *f = ts_config_str(cfg, "score.forecast");
    if (*f) snprintf(path, sizeof path, "%s", f);
    else snprintf(path, sizeof path, "%s/rollout.nc", ctx->out);
    size_t nn, S;
    if (ts_ugrid_file_sizes(path, &nn, &S, err, sizeof err)) ts_fatal("%s", err);
    ts_mesh_set set = rollout_file(cfg);
    choose_trajectory(cfg, &set);
    const int k = set.first;
    ts_mesh_traj *tj = ts_mesh_load(cfg, &set);
    const int64_t N = tj->N;
    const int F = tj->fields, nout = 2 * F;
    const ts_ugrid_var *vars = out_vars(F);
    if ((int64_t)nn != N || (int64_t)S > tj->T - 1)
        ts_fatal("%s: %zu nodes and %zu steps do not fit trajectory %d of %s (%lld nodes, %lld steps): set "
                 "mesh.trajectory to the one forecast",
                 path, nn, S, k, set.path, (long long)N, (long long)tj->T);
    float *col = ts_malloc(sizeof(float) * (size_t)N);
    /* sums of squared errors: rollout, one step, and their persistence baselines */
    double se_roll = 0, se_one = 0, se_keep0 = 0, se_keep1 = 0, se_roll50 = 0, se_keep50 = 0;
    size_t n50 = 0;
    for (size_t s = 1; s <= S; s++) {
        const float *truth = tj->velocity + s * (size_t)N * (size_t)F, *prev = truth - (size_t)N * (size_t)F;
        for (int v = 0; v < nout; v++) {
            if (ts_ugrid_file_read(path, vars[v].name, s - 1, col, err, sizeof err)) ts_fatal("%s", err);
            int c = v % F;
            for (int64_t i = 0; i < N; i++) {
                size_t q = (size_t)i * (size_t)F + (size_t)c;
                double e = (double)col[tj->perm[i]] - truth[q];
                if (v < F) {
                    se_roll += e * e;
                    double e0 = (double)tj->velocity[q] - truth[q];
                    se_keep0 += e0 * e0;
                    if (s <= 50) se_roll50 += e * e, se_keep50 += e0 * e0;
                } else {
                    se_one += e * e;
                    double e1 = (double)prev[q] - truth[q];
                    se_keep1 += e1 * e1;
                }
            }
        }
        if (s <= 50) n50++;
    }
    const double n = (double)S * (double)N * F, m50 = (double)n50 * (double)N * F;
    struct {
        const char *metric, *system;
        double value;
    } rows[] = {{"rmse_1step", "tessera", sqrt(se_one / n)},       {"rmse_1step", "persistence", sqrt(se_keep1 / n)},
                {"rmse_rollout50", "tessera", sqrt(se_roll50 / m50)}, {"rmse_rollout50", "persistence", sqrt(se_keep50 / m50)},
                {"rmse_all_rollout", "tessera", sqrt(se_roll / n)}, {"rmse_all_rollout", "persistence", sqrt(se_keep0 / n)}};
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/mesh_scorecard.csv", ctx->out);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.part", csv);
    FILE *out = fopen(tmp, "w");
    if (!out) ts_fatal("cannot write %s", tmp);
    fprintf(out, "trajectory,steps,variable,metric,system,value\n");
    printf("\nmesh scorecard: trajectory %d, %zu steps, velocity RMSE in m s-1 (x 1e-3)\n", k, S);
    printf("%-18s %12s %12s %8s\n", "metric", "tessera", "persistence", "ratio");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        fprintf(out, "%d,%zu,velocity,%s,%s,%.9g\n", k, S, rows[r].metric, rows[r].system, rows[r].value);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r += 2)
        printf("%-18s %12.3f %12.3f %8.3f\n", rows[r].metric, rows[r].value * 1e3, rows[r + 1].value * 1e3,
               rows[r].value / rows[r + 1].value);
    if (fclose(out) != 0 || rename(tmp, csv) != 0) ts_fatal("cannot write %s", csv);
    ts_info("scorecard written to %s", csv);
    free(col);
    ts_mesh_traj_free(tj, 1);
    return 0;
}
