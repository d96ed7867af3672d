/* tessera train model.kind=mesh: the mesh graph transformer trained to
 * predict the normalized one-step velocity change (REFERENCE.md, "Mesh
 * model"; docs/mesh-model.md).
 *
 * A sample is (trajectory, step t) of the training trajectories. Its input
 * is the velocity at t plus training noise on NORMAL nodes (mesh.noise, white;
 * mesh.noise_offset, one constant per sample and component), its
 * target the change to t + 1 from that noisy velocity (so the model learns
 * to undo its own errors, as MeshGraphNets does). Inputs and targets are
 * normalized by running normalizers that accumulate every sample of the
 * global batch, in the global order, on every rank: all ranks hold the same
 * normalizers whatever the layout.
 *
 * With mesh.pushforward = p, a sample is pushed with probability p: its
 * input is instead the model's own (no-gradient) one-step prediction from
 * the noisy velocity at t, and its target the change from that prediction
 * to t + 2, so the model learns to correct the errors its rollouts make
 * (Brandstetter et al.'s pushforward trick). The normalizers accumulate the
 * unpushed samples either way, so they never depend on the model.
 *
 * Randomness is keyed by the step and global indices only:
 *   data order   (seed, DATA_ORDER,  stream step,               index global sample j)
 *   noise        (seed, TRAIN_NOISE, stream step * batch + j,   index node * F + component)
 *   offset       (seed, TRAIN_NOISE, stream step * batch + j,   index 2^62 + component)
 *   pushforward  (seed, PUSHFORWARD, stream step,               index global sample j)
 * with nodes numbered in curve order, which no layout changes, and F the
 * velocity components: the mesh's dimension, 2 or 3 (all trajectories of
 * mesh.file, and of mesh.valid_file, share it; the model has F + 9 inputs
 * and F outputs).
 *
 * Validation trajectories are those of mesh.valid_file when it is set (all
 * of mesh.file then train, or its first mesh.train_trajectories), else the
 * ones of mesh.file after the first mesh.train_trajectories.
 *
 * DP replicas take their shares of the global batch. With parallel.sp > 1
 * the ranks of an SP group process each of their samples jointly: the
 * trajectory's nodes are split into contiguous chunks (partition, chunk and
 * halo plan built once per trajectory), each rank computes its chunk's rows
 * and its part of the loss, divided by the whole graph's count of counted
 * nodes, so losses and gradients summed over the world are the global-batch
 * mean's whatever the layout (models/mesh_sp.h). parallel.wp_y, wp_x and pp
 * are Swin's and refused here.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/rng.h"
#include "forecast/mesh_run.h"
#include "forecast/train_common.h"
#include "io/checkpoint.h"
#include "models/mesh_sp.h"
#include "models/optim.h"
#include "parallel/mpi_env.h"

typedef struct {
    const ts_config *cfg;
    const ts_layout *layout;
    const char *out_dir;
    const ts_backend *be;
    uint64_t seed;
    long steps;
    int batch, dp, sp, local_batch;
    int ntrain, nvaltraj;
    const char *train_path, *val_path; /* the files they come from */
    ts_mesh_traj *train, *val;
    double val_skill;           /* the last validation's one-step RMSE / persistence RMSE */
    int64_t val_rollout;        /* mesh.val_rollout: steps of the validation rollouts (0 = none) */
    double val_rollout_skill;   /* the last validation's rollout RMSE / persistence RMSE */
    ts_mesh_sp *sp_train, *sp_val; /* (ntrain), (nvaltraj) with parallel.sp > 1, else NULL */
    size_t npairs;               /* (trajectory, t) pairs of the training set */
    int32_t *pair_traj, *pair_t; /* (npairs) */
    double noise, noise_offset; /* mesh.noise (white), mesh.noise_offset (constant) */
    double pushforward;          /* mesh.pushforward: the fraction of pushed samples */
    int fields;                  /* velocity components F: 2 (triangles) or 3 (tetrahedra) */
    ts_mesh_model model;
    ts_params m, v, ema;
    ts_optim_config optim;
    ts_mesh_norm in_norm, out_norm;
    int64_t nmax;                /* most nodes of any trajectory */
    float *vin, *delta, *vin_n, *delta_n, *feat, *pred, *dout; /* (nmax, ...) scratch */
} mesh_trainer;

static volatile sig_atomic_t g_stop_signal = 0;
static void on_signal(int sig) { g_stop_signal = sig; }

/* ---- samples ------------------------------------------------------------------------ */

static void pick_pair(const mesh_trainer *tr, long step, uint64_t j, const ts_mesh_traj **tj, int64_t *t) {
    ts_rng_key okey = ts_rng_key_make(tr->seed, TS_RNG_DATA_ORDER);
    size_t k = (size_t)(ts_rng_uniform1(okey, (uint64_t)step, j) * (double)tr->npairs);
    if (k >= tr->npairs) k = tr->npairs - 1;
    *tj = &tr->train[tr->pair_traj[k]];
    *t = tr->pair_t[k];
}

/* vin (N, F) = velocity at t (+ noise on NORMAL nodes when stream != NONE);
 * delta (N, F) = velocity at t + 1 - vin. */
#define NO_NOISE UINT64_MAX
static void make_sample(const mesh_trainer *tr, const ts_mesh_traj *tj, int64_t t, uint64_t stream, float *vin,
                        float *delta) {
    const int64_t N = tj->N;
    const int F = tr->fields;
    const float *v0 = tj->velocity + (size_t)t * (size_t)N * (size_t)F, *v1 = v0 + (size_t)N * (size_t)F;
    ts_rng_key nkey = ts_rng_key_make(tr->seed, TS_RNG_TRAIN_NOISE);
    float offset[3] = {0, 0, 0};
    for (int c = 0; c < F && stream != NO_NOISE && tr->noise_offset > 0; c++)
        offset[c] = (float)(tr->noise_offset * ts_rng_normal1(nkey, stream, (UINT64_C(1) << 62) + (uint64_t)c));
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < F; c++) {
            size_t k = (size_t)i * (size_t)F + (size_t)c;
            float e = 0;
            if (stream != NO_NOISE && tj->type[i] == TS_MESH_MODEL_NORMAL) {
                if (tr->noise > 0) e = (float)tr->noise * ts_rng_normal1(nkey, stream, k);
                e += offset[c];
            }
            vin[k] = v0[k] + e;
            delta[k] = v1[k] - vin[k];
        }
}

static ts_mesh_sp *sp_of(const mesh_trainer *tr, const ts_mesh_traj *tj) {
    if (!tr->sp_train) return NULL;
    if (tj >= tr->train && tj < tr->train + tr->ntrain) return &tr->sp_train[tj - tr->train];
    return &tr->sp_val[tj - tr->val];
}

/* change (N, F) = the model's de-normalized one-step change from the state
 * v (N, F), no gradient; the model must be prepared for tj. With SP each
 * rank predicts its chunk and the SP group gathers the whole change. */
static void predict_change(mesh_trainer *tr, const ts_mesh_traj *tj, const float *v, float *change) {
    const ts_mesh_sp *sp = sp_of(tr, tj);
    const int F = tr->fields;
    const int64_t first = sp ? sp->chunk.first : 0, n = sp ? sp->n_own : tj->N;
    const size_t off = (size_t)first * (size_t)F;
    ts_mesh_norm_normalize(&tr->in_norm, tr->vin_n, v + off, n);
    ts_mesh_model_features(tr->feat, tr->vin_n, F, tj->type + first, n);
    ts_mesh_model_forward(&tr->model, tr->pred, tr->feat);
    ts_mesh_norm_denormalize(&tr->out_norm, change + off, tr->pred, n);
    if (!sp) return;
    int *counts = ts_malloc(sizeof(int) * (size_t)sp->size), *displs = ts_malloc(sizeof(int) * (size_t)sp->size);
    for (int q = 0; q < sp->size; q++)
        counts[q] = (int)((sp->start[q + 1] - sp->start[q]) * F), displs[q] = (int)(sp->start[q] * F);
    TS_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, change, counts, displs, MPI_FLOAT, sp->comm));
    free(counts), free(displs);
}

static void prepare_for(mesh_trainer *tr, const ts_mesh_traj *tj) {
    char err[1024];
    ts_mesh_sp *sp = sp_of(tr, tj);
    int rc = sp ? ts_mesh_model_prepare_sp(&tr->model, tj->N, &tj->mask, sp, err, sizeof err)
                : ts_mesh_model_prepare(&tr->model, tj->N, &tj->mask, err, sizeof err);
    if (rc) ts_fatal("trajectory %d: %s", tj->index, err);
}

/* Whether global sample j of this step is pushed (mesh.pushforward). */
static int pushed(const mesh_trainer *tr, long step, uint64_t j) {
    if (tr->pushforward <= 0) return 0;
    ts_rng_key key = ts_rng_key_make(tr->seed, TS_RNG_PUSHFORWARD);
    return ts_rng_uniform1(key, (uint64_t)step, j) < tr->pushforward;
}

/* A pushed sample (mesh.pushforward): vin = the noisy velocity at t plus the
 * model's predicted change on the loss-set nodes (the others from the truth
 * at t + 1, as a rollout sets them); delta = velocity at t + 2 - vin. t is
 * moved back one step when t + 2 is past the trajectory's end. */
static void make_pushed_sample(mesh_trainer *tr, const ts_mesh_traj *tj, int64_t t, uint64_t stream) {
    if (t + 2 >= tj->T) t = tj->T - 3;
    const size_t nf = (size_t)tj->N * (size_t)tr->fields;
    make_sample(tr, tj, t, stream, tr->vin, tr->delta);
    prepare_for(tr, tj);
    predict_change(tr, tj, tr->vin, tr->delta);
    const float *v1 = tj->velocity + (size_t)(t + 1) * nf, *v2 = v1 + nf;
    for (int64_t i = 0; i < tj->N; i++)
        for (int c = 0; c < tr->fields; c++) {
            size_t k = (size_t)i * (size_t)tr->fields + (size_t)c;
            tr->vin[k] = tj->loss_mask[i] ? tr->vin[k] + tr->delta[k] : v1[k];
            tr->delta[k] = v2[k] - tr->vin[k];
        }
}

/* Halo bytes this rank sent so far over every trajectory's plan, and their
 * analytic count. */
static void halo_bytes(const mesh_trainer *tr, unsigned long long out[2]) {
    out[0] = out[1] = 0;
    for (int k = 0; tr->sp_train && k < tr->ntrain; k++)
        out[0] += ts_mesh_sp_bytes_sent(&tr->sp_train[k]), out[1] += tr->sp_train[k].bytes_expected;
    for (int k = 0; tr->sp_val && k < tr->nvaltraj; k++)
        out[0] += ts_mesh_sp_bytes_sent(&tr->sp_val[k]), out[1] += tr->sp_val[k].bytes_expected;
}

/* This rank's part of the loss of one sample whose nodes are split over
 * the SP group: its chunk's rows, divided by the whole graph's count. */
static double sample_loss_sp(mesh_trainer *tr, const ts_mesh_traj *tj, ts_mesh_sp *sp, int train, double scale) {
    char err[1024];
    const int64_t first = sp->chunk.first, n = sp->n_own;
    const size_t off = (size_t)first * (size_t)tr->fields;
    ts_mesh_norm_normalize(&tr->in_norm, tr->vin_n, tr->vin + off, n);
    ts_mesh_norm_normalize(&tr->out_norm, tr->delta_n, tr->delta + off, n);
    ts_mesh_model_features(tr->feat, tr->vin_n, tr->fields, tj->type + first, n);
    if (ts_mesh_model_prepare_sp(&tr->model, tj->N, &tj->mask, sp, err, sizeof err))
        ts_fatal("trajectory %d: %s", tj->index, err);
    ts_mesh_model_forward(&tr->model, tr->pred, tr->feat);
    int64_t counted = 0;
    for (int64_t i = 0; i < tj->N; i++) counted += tj->loss_mask[i] != 0;
    double loss = ts_mesh_model_loss_part(&tr->model, train ? tr->dout : NULL, tr->pred, tr->delta_n,
                                          tj->loss_mask + first, counted);
    if (train) {
        for (int64_t k = 0; k < n * tr->fields; k++) tr->dout[k] *= (float)scale;
        ts_mesh_model_backward(&tr->model, tr->dout);
    }
    return loss;
}

/* The model's loss on one sample (normalized with the current normalizers);
 * with train, also accumulates scale * its gradient into the model. With
 * sequence parallelism, this rank's part of both. */
static double sample_loss(mesh_trainer *tr, const ts_mesh_traj *tj, int train, double scale) {
    char err[1024];
    const int64_t N = tj->N;
    ts_mesh_sp *sp = sp_of(tr, tj);
    if (sp) return sample_loss_sp(tr, tj, sp, train, scale);
    ts_mesh_norm_normalize(&tr->in_norm, tr->vin_n, tr->vin, N);
    ts_mesh_norm_normalize(&tr->out_norm, tr->delta_n, tr->delta, N);
    ts_mesh_model_features(tr->feat, tr->vin_n, tr->fields, tj->type, N);
    if (ts_mesh_model_prepare(&tr->model, N, &tj->mask, err, sizeof err)) ts_fatal("trajectory %d: %s", tj->index, err);
    ts_mesh_model_forward(&tr->model, tr->pred, tr->feat);
    double loss = ts_mesh_model_loss(&tr->model, train ? tr->dout : NULL, tr->pred, tr->delta_n, tj->loss_mask);
    if (train) {
        for (int64_t k = 0; k < N * tr->fields; k++) tr->dout[k] *= (float)scale;
        ts_mesh_model_backward(&tr->model, tr->dout);
    }
    return loss;
}

/* ---- set-up ------------------------------------------------------------------------ */

static void setup(mesh_trainer *tr, const ts_command_ctx *ctx) {
    const ts_config *cfg = ctx->cfg;
    const ts_layout *lay = ctx->layout;
    char err[1024];
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg, tr->layout = lay, tr->out_dir = ctx->out;
    if (lay->size[TS_AXIS_PP] > 1 || lay->size[TS_AXIS_WP_Y] > 1 || lay->size[TS_AXIS_WP_X] > 1)
        ts_usage_error("parallel.wp_y = %d, parallel.wp_x = %d, parallel.pp = %d: the mesh model trains with "
                       "parallel.dp and parallel.sp only (window and pipeline parallelism are the Swin model's); set "
                       "them to 1",
                       lay->size[TS_AXIS_WP_Y], lay->size[TS_AXIS_WP_X], lay->size[TS_AXIS_PP]);
    const char *why = NULL;
    tr->be = ts_backend_get(ts_config_str(cfg, "device"), &why);
    if (!tr->be) ts_usage_error("device=%s is not available: %s", ts_config_str(cfg, "device"), why);
    tr->batch = (int)ts_config_int(cfg, "train.batch");
    tr->dp = lay->size[TS_AXIS_DP];
    if (tr->batch % tr->dp)
        ts_usage_error("train.batch = %d does not divide over parallel.dp = %d replicas", tr->batch, tr->dp);
    tr->local_batch = tr->batch / tr->dp;
    tr->sp = lay->size[TS_AXIS_SP];
    tr->seed = (uint64_t)ts_config_int(cfg, "seed");
    tr->steps = ts_config_int(cfg, "train.steps");
    tr->noise = ts_config_float(cfg, "mesh.noise");
    tr->noise_offset = ts_config_float(cfg, "mesh.noise_offset");
    tr->pushforward = ts_config_float(cfg, "mesh.pushforward");
    tr->val_rollout = ts_config_int(cfg, "mesh.val_rollout");
    tr->val_rollout_skill = NAN;

    ts_mesh_set train, valid;
    ts_mesh_split(cfg, &train, &valid);
    tr->ntrain = train.count, tr->nvaltraj = valid.count;
    tr->train_path = train.path, tr->val_path = valid.path;
    tr->train = ts_mesh_load(cfg, &train);
    tr->val = tr->nvaltraj ? ts_mesh_load(cfg, &valid) : NULL;
    tr->fields = tr->train[0].fields; /* the file's, shared by its trajectories (ts_mesh_load) */
    if (tr->val && tr->val[0].fields != tr->fields)
        ts_fatal("%s %s holds %d-D meshes (%d velocity components), %s %s %d-D ones: the model needs one dimension",
                 valid.key, valid.path, tr->val[0].fields, tr->val[0].fields, train.key, train.path, tr->fields);
    for (int k = 0; k < tr->ntrain; k++) tr->npairs += (size_t)(tr->train[k].T - 1);
    if (tr->npairs == 0) ts_usage_error("%s: the training trajectories have fewer than 2 steps", train.path);
    tr->pair_traj = ts_malloc(sizeof(int32_t) * tr->npairs), tr->pair_t = ts_malloc(sizeof(int32_t) * tr->npairs);
    size_t p = 0;
    for (int k = 0; k < tr->ntrain; k++)
        for (int64_t t = 0; t + 1 < tr->train[k].T; t++) tr->pair_traj[p] = k, tr->pair_t[p++] = (int32_t)t;
    for (int k = 0; k < tr->ntrain + tr->nvaltraj; k++) {
        const ts_mesh_traj *tj = k < tr->ntrain ? &tr->train[k] : &tr->val[k - tr->ntrain];
        if (tj->N > tr->nmax) tr->nmax = tj->N;
    }

    ts_mesh_model_config mc;
    ts_mesh_model_config_from(cfg, tr->fields, &mc);
    if (ts_mesh_model_create(&tr->model, tr->be, &mc, err, sizeof err)) ts_usage_error("%s", err);
    if (tr->sp > 1) { /* each trajectory's chunks and halo plan, once (collective over the SP group) */
        tr->sp_train = ts_calloc((size_t)tr->ntrain, sizeof(ts_mesh_sp));
        tr->sp_val = ts_calloc((size_t)(tr->nvaltraj ? tr->nvaltraj : 1), sizeof(ts_mesh_sp));
        for (int k = 0; k < tr->ntrain + tr->nvaltraj; k++) {
            const ts_mesh_traj *tj = k < tr->ntrain ? &tr->train[k] : &tr->val[k - tr->ntrain];
            ts_mesh_sp *sp = k < tr->ntrain ? &tr->sp_train[k] : &tr->sp_val[k - tr->ntrain];
            if (ts_mesh_sp_create(sp, lay->axis[TS_AXIS_SP], &tj->mask, tj->N, mc.n_globals, TS_BALANCE_NODES, err,
                                  sizeof err))
                ts_fatal("trajectory %d: %s", tj->index, err);
        }
    }
    ts_mesh_model_init_weights(&tr->model, tr->seed, 0);
    ts_params_alloc_like(&tr->m, &tr->model.params);
    ts_params_alloc_like(&tr->v, &tr->model.params);
    ts_params_alloc_like(&tr->ema, &tr->model.params);
    tr->be->copy(tr->ema.data, tr->model.params.data, sizeof(float) * tr->model.params.total);
    ts_train_optim_config(cfg, tr->steps, &tr->optim);
    ts_mesh_norm_init(&tr->in_norm, tr->fields, 1000000, 1e-8);
    ts_mesh_norm_init(&tr->out_norm, tr->fields, 1000000, 1e-8);
    size_t nf = (size_t)tr->nmax * (size_t)tr->fields;
    tr->vin = ts_malloc(sizeof(float) * nf), tr->delta = ts_malloc(sizeof(float) * nf);
    tr->vin_n = ts_malloc(sizeof(float) * nf), tr->delta_n = ts_malloc(sizeof(float) * nf);
    tr->pred = ts_malloc(sizeof(float) * nf), tr->dout = ts_malloc(sizeof(float) * nf);
    tr->feat = ts_malloc(sizeof(float) * (size_t)tr->nmax * (size_t)mc.c_in);
}

static void trainer_free(mesh_trainer *tr) {
    for (int k = 0; tr->sp_train && k < tr->ntrain; k++) ts_mesh_sp_free(&tr->sp_train[k]);
    for (int k = 0; tr->sp_val && k < tr->nvaltraj; k++) ts_mesh_sp_free(&tr->sp_val[k]);
    free(tr->sp_train), free(tr->sp_val);
    ts_mesh_traj_free(tr->train, tr->ntrain);
    ts_mesh_traj_free(tr->val, tr->nvaltraj);
    free(tr->pair_traj), free(tr->pair_t);
    free(tr->vin), free(tr->delta), free(tr->vin_n), free(tr->delta_n), free(tr->pred), free(tr->dout), free(tr->feat);
    ts_params_free(&tr->m), ts_params_free(&tr->v), ts_params_free(&tr->ema);
    ts_mesh_model_free(&tr->model);
    ts_mesh_norm_free(&tr->in_norm), ts_mesh_norm_free(&tr->out_norm);
}

/* ---- steps ------------------------------------------------------------------------ */

static double train_step(mesh_trainer *tr, long step, double *grad_norm) {
    const int r = tr->layout->coord[TS_AXIS_DP];
    /* every rank accumulates the whole global batch, in its global order */
    for (int j = 0; j < tr->batch; j++) {
        const ts_mesh_traj *tj;
        int64_t t;
        pick_pair(tr, step, (uint64_t)j, &tj, &t);
        make_sample(tr, tj, t, (uint64_t)step * (uint64_t)tr->batch + (uint64_t)j, tr->vin, tr->delta);
        ts_mesh_norm_accumulate(&tr->in_norm, tr->vin, tj->N);
        ts_mesh_norm_accumulate(&tr->out_norm, tr->delta, tj->N);
    }
    tr->be->zero(tr->model.grads.data, sizeof(float) * tr->model.grads.total);
    double loss = 0;
    for (int b = 0; b < tr->local_batch; b++) {
        uint64_t j = (uint64_t)r * (uint64_t)tr->local_batch + (uint64_t)b;
        const ts_mesh_traj *tj;
        int64_t t;
        pick_pair(tr, step, j, &tj, &t);
        uint64_t stream = (uint64_t)step * (uint64_t)tr->batch + j;
        if (tj->T >= 3 && pushed(tr, step, j)) make_pushed_sample(tr, tj, t, stream);
        else make_sample(tr, tj, t, stream, tr->vin, tr->delta);
        loss += sample_loss(tr, tj, 1, 1.0 / tr->batch) / tr->batch;
    }
    if (tr->layout->world > 1) {
        ts_allreduce_sum_floats(tr->model.grads.data, tr->model.grads.total, MPI_COMM_WORLD);
        TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    }
    *grad_norm = sqrt(tr->be->sumsq(tr->model.grads.data, tr->model.grads.total));
    ts_optim_step(&tr->optim, step, &tr->model.params, &tr->model.grads, &tr->m, &tr->v, &tr->ema, *grad_norm);
    return loss;
}

/* Mean loss over fixed samples of the held-out trajectories, no noise; and
 * tr->val_skill, their one-step velocity RMSE over persistence's (physical
 * units, NORMAL and OUTFLOW nodes): unlike the loss, whose units move with
 * the running normalizers, comparable across steps and runs. */
static double validate(mesh_trainer *tr) {
    const int nv = (int)ts_config_int(tr->cfg, "train.val_samples");
    const int r = tr->layout->coord[TS_AXIS_DP], dp = tr->dp;
    double sums[3] = {0, 0, 0}; /* loss; squared error of the predicted and of the persisted velocity */
    const int F = tr->fields;
    for (int k = r; k < nv; k += dp) {
        const ts_mesh_traj *tj = &tr->val[k % tr->nvaltraj];
        int64_t t = (int64_t)k * (tj->T - 1) / nv;
        make_sample(tr, tj, t, NO_NOISE, tr->vin, tr->delta);
        sums[0] += sample_loss(tr, tj, 0, 0);
        /* the one-step forecast in physical units, on the nodes the loss counts:
         * this rank's rows (its chunk under SP) */
        const ts_mesh_sp *sp = sp_of(tr, tj);
        const int64_t first = sp ? sp->chunk.first : 0, n = sp ? sp->n_own : tj->N;
        ts_mesh_norm_denormalize(&tr->out_norm, tr->delta_n, tr->pred, n);
        for (int64_t i = 0; i < n; i++) {
            if (!tj->loss_mask[first + i]) continue;
            for (int c = 0; c < F; c++) {
                double truth = tr->delta[(size_t)(first + i) * (size_t)F + (size_t)c];
                double e = tr->delta_n[(size_t)i * (size_t)F + (size_t)c] - truth;
                sums[1] += e * e, sums[2] += truth * truth;
            }
        }
    }
    if (tr->layout->world > 1) TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    tr->val_skill = sums[2] > 0 ? sqrt(sums[1] / sums[2]) : NAN;
    return sums[0] / nv;
}

/* tr->val_rollout_skill: every validation trajectory rolled out
 * mesh.val_rollout steps (at most its length) from its first state with the
 * current raw weights, as tessera forecast does (each step adds the predicted
 * change on the loss-set nodes and takes the others from the truth); the
 * RMSE over steps and loss-set nodes over persistence's (the first state
 * held). DP replicas take trajectories in turn; the ranks of an SP group
 * roll one out together, each predicting its chunk and gathering the rest,
 * and count the errors of their own rows. */
static void validate_rollout(mesh_trainer *tr) {
    const int r = tr->layout->coord[TS_AXIS_DP], F = tr->fields;
    double sums[2] = {0, 0}; /* squared errors of the rollout and of persistence */
    for (int k = r; k < tr->nvaltraj; k += tr->dp) {
        const ts_mesh_traj *tj = &tr->val[k];
        const ts_mesh_sp *sp = sp_of(tr, tj);
        const int64_t N = tj->N, first = sp ? sp->chunk.first : 0, n = sp ? sp->n_own : N;
        const size_t nf = (size_t)N * (size_t)F;
        const int64_t S = tr->val_rollout < tj->T - 1 ? tr->val_rollout : tj->T - 1;
        float *v = tr->vin, *change = tr->delta; /* (N, F): the rolled-out state, the predicted change */
        memcpy(v, tj->velocity, sizeof(float) * nf);
        prepare_for(tr, tj);
        for (int64_t s = 1; s <= S; s++) {
            const float *truth = tj->velocity + (size_t)s * nf;
            predict_change(tr, tj, v, change);
            for (int64_t i = 0; i < N; i++)
                for (int c = 0; c < F; c++) {
                    size_t q = (size_t)i * (size_t)F + (size_t)c;
                    v[q] = tj->loss_mask[i] ? v[q] + change[q] : truth[q];
                    if (i < first || i >= first + n || !tj->loss_mask[i]) continue;
                    double e = (double)v[q] - truth[q], e0 = (double)tj->velocity[q] - truth[q];
                    sums[0] += e * e, sums[1] += e0 * e0;
                }
        }
    }
    if (tr->layout->world > 1) TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    tr->val_rollout_skill = sums[1] > 0 ? sqrt(sums[0] / sums[1]) : NAN;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static void checkpoint_path(const mesh_trainer *tr, char *buf, size_t cap) {
    const char *want = ts_config_str(tr->cfg, "train.checkpoint");
    if (*want) snprintf(buf, cap, "%s", want);
    else snprintf(buf, cap, "%s/checkpoint.h5", tr->out_dir);
}

static void write_checkpoint(mesh_trainer *tr, long step) {
    if (tr->layout->rank == 0) {
        char path[4096], err[1024], names[8][64];
        checkpoint_path(tr, path, sizeof path);
        int need = ts_config_to_json(tr->cfg, NULL, 0);
        char *json = ts_malloc((size_t)need + 1);
        ts_config_to_json(tr->cfg, json, (size_t)need + 1);
        ts_ckpt_meta meta = {.model_kind = "mesh", .config_json = json, .step = step, .optimizer_step = step,
                             .data_position = step, .rng_seed = tr->seed};
        ts_ckpt_named arrays[8];
        double scalars[4];
        ts_mesh_norm_named(&tr->in_norm, "input", arrays, scalars, names);
        ts_mesh_norm_named(&tr->out_norm, "target", arrays + 4, scalars + 2, names + 4);
        ts_ckpt_contents c = {.layout = &tr->model.params, .params = tr->model.params.data, .ema = tr->ema.data,
                              .adam_m = tr->m.data, .adam_v = tr->v.data, .normalizers = arrays, .nnormalizers = 8};
        if (ts_ckpt_write(path, &meta, &c, err, sizeof err)) ts_fatal("%s", err);
        free(json);
        ts_info("checkpoint of step %ld written to %s", step, path);
        char fields[4200];
        snprintf(fields, sizeof fields, "\"step\":%ld,\"path\":\"%s\"", step, path);
        ts_log_event("checkpoint", fields);
    }
    if (tr->layout->world > 1) TS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

/* The keys that shape the network or its graphs must match the checkpoint's. */
static void check_same_setup(const mesh_trainer *tr, const char *json, const char *path) {
    static const char *const KEYS[] = {"model.dim", "model.heads", "model.hidden", "model.depth", "mesh.khop",
                                       "mesh.window", "mesh.dilation", "mesh.globals", "mesh.order"};
    const char *prefix[] = {"model.", "mesh."};
    char err[1024];
    ts_config *saved = ts_config_new();
    if (ts_config_apply_json(saved, json, prefix, 2, path, err, sizeof err)) ts_fatal("%s", err);
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        const ts_config_key *k = ts_config_find_key(KEYS[i]);
        char was[256], now[256];
        if (k->type == TS_CFG_INT) {
            snprintf(was, sizeof was, "%lld", (long long)ts_config_int(saved, k->name));
            snprintf(now, sizeof now, "%lld", (long long)ts_config_int(tr->cfg, k->name));
        } else {
            snprintf(was, sizeof was, "%s", ts_config_str(saved, k->name));
            snprintf(now, sizeof now, "%s", ts_config_str(tr->cfg, k->name));
        }
        if (strcmp(was, now) != 0)
            ts_usage_error("%s was trained with %s = %s, this run has %s = %s: resuming needs the same model "
                           "(use another train.checkpoint for a new run)", path, k->name, was, k->name, now);
    }
    ts_config_free(saved);
}

static void load_block(ts_ckpt *ck, const char *group, const ts_params *layout, float *dst, const char *path) {
    char err[1024];
    if (!ts_ckpt_has(ck, group)) ts_fatal("%s lacks the '%s' group a training run needs to resume", path, group);
    if (ts_ckpt_read_params(ck, group, layout, dst, err, sizeof err)) ts_fatal("%s", err);
    ts_check_finite_block(layout, dst, path, group);
}

static long resume(mesh_trainer *tr) {
    char path[4096], err[1024], names[8][64];
    checkpoint_path(tr, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    ts_ckpt *ck = ts_ckpt_open(path, "mesh", err, sizeof err);
    if (!ck) ts_fatal("%s", err);
    const ts_ckpt_meta *meta = ts_ckpt_get_meta(ck);
    if (meta->rng_seed != tr->seed)
        ts_usage_error("%s was trained with seed = %llu, this run has seed = %llu: resuming would not continue the "
                       "same run (use another train.checkpoint for a new run)",
                       path, (unsigned long long)meta->rng_seed, (unsigned long long)tr->seed);
    check_same_setup(tr, meta->config_json, path);
    const ts_mesh_set train = {.key = "mesh.file", .path = tr->train_path};
    ts_mesh_check_ckpt_fields(ck, path, &train, tr->fields);
    load_block(ck, TS_CKPT_PARAMS, &tr->model.params, tr->model.params.data, path);
    load_block(ck, TS_CKPT_EMA, &tr->model.params, tr->ema.data, path);
    load_block(ck, TS_CKPT_ADAM_M, &tr->model.params, tr->m.data, path);
    load_block(ck, TS_CKPT_ADAM_V, &tr->model.params, tr->v.data, path);
    ts_ckpt_named arrays[8];
    double scalars[4];
    ts_mesh_norm_named(&tr->in_norm, "input", arrays, scalars, names);
    ts_mesh_norm_named(&tr->out_norm, "target", arrays + 4, scalars + 2, names + 4);
    if (ts_ckpt_read_named(ck, arrays, 8, err, sizeof err)) ts_fatal("%s", err);
    ts_mesh_norm_from_named(&tr->in_norm, scalars);
    ts_mesh_norm_from_named(&tr->out_norm, scalars + 2);
    long step = (long)meta->step;
    ts_ckpt_close(ck);
    ts_info("resuming from %s at step %ld", path, step);
    return step;
}

/* ---- the command ------------------------------------------------------------------------ */

int cmd_train_mesh(const ts_command_ctx *ctx) {
    mesh_trainer tr;
    setup(&tr, ctx);
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    long first = resume(&tr) + 1;
    const long every_log = ts_config_int(ctx->cfg, "train.log_every");
    const long every_val = ts_config_int(ctx->cfg, "train.val_every");
    const long every_ckpt = ts_config_int(ctx->cfg, "train.checkpoint_every");
    ts_info("training %zu parameters of the mesh transformer on %d rank%s (dp %d, sp %d): %d training trajectories "
            "(%zu pairs) of %s, %d validation trajectories of %s, steps %ld..%ld",
            ts_params_count(&tr.model.params), ctx->layout->world, ctx->layout->world > 1 ? "s" : "", tr.dp, tr.sp, tr.ntrain,
            tr.npairs, tr.train_path, tr.nvaltraj, tr.val_path, first, tr.steps);
    char begin[64];
    snprintf(begin, sizeof begin, "\"first_step\":%ld", first);
    ts_log_event("train_begin", begin);
    double t0 = ts_now(), t_last = t0;
    long last_step = first - 1;
    int stopped = 0;
    for (long step = first; step <= tr.steps; step++) {
        unsigned long long before[2], after[2];
        halo_bytes(&tr, before);
        double gnorm, loss = train_step(&tr, step, &gnorm);
        halo_bytes(&tr, after);
        if (!isfinite(loss)) ts_fatal("the loss became %g at step %ld: lower train.lr or check the data", loss, step);
        int stop = g_stop_signal != 0;
        if (ctx->layout->world > 1) TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
        double val = NAN;
        if (tr.nvaltraj && (step % every_val == 0 || step == tr.steps)) {
            val = validate(&tr);
            if (tr.val_rollout > 0) validate_rollout(&tr);
        }
        if (step % every_log == 0 || step == first || step == tr.steps || !isnan(val) || stop) {
            double now = ts_now(), dt = (now - t_last) / (double)(step - last_step);
            char valtext[96] = "", skilltext[96] = "";
            if (!isnan(val)) {
                int m = snprintf(valtext, sizeof valtext, "  val %.5f  skill %.3f", val, tr.val_skill);
                if (tr.val_rollout > 0) snprintf(valtext + m, sizeof valtext - (size_t)m, "  rollout %.3f", tr.val_rollout_skill);
            }
            if (!isnan(val) && !isnan(tr.val_skill)) {
                int m = snprintf(skilltext, sizeof skilltext, ",\"val_skill\":%.6g", tr.val_skill);
                if (tr.val_rollout > 0 && !isnan(tr.val_rollout_skill))
                    snprintf(skilltext + m, sizeof skilltext - (size_t)m, ",\"val_rollout\":%.6g", tr.val_rollout_skill);
            }
            ts_info("step %ld/%ld  loss %.5f%s  lr %.2e  |g| %.3g  %.2f samples/s  ETA %.0f s", step, tr.steps, loss,
                    valtext, ts_optim_lr(&tr.optim, step), gnorm, tr.batch / dt, dt * (double)(tr.steps - step));
            /* halo bytes each rank sent in this step's training (not validation), and the
             * analytic count from its chunks' send and halo lists: the least and most over ranks */
            unsigned long long mine[2] = {after[0] - before[0], after[1] - before[1]}, lo[2] = {mine[0], mine[1]},
                               hi[2] = {mine[0], mine[1]};
            if (ctx->layout->world > 1) {
                TS_MPI_CHECK(MPI_Allreduce(mine, lo, 2, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD));
                TS_MPI_CHECK(MPI_Allreduce(mine, hi, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD));
            }
            char fields[768];
            snprintf(fields, sizeof fields,
                     "\"step\":%ld,\"loss\":%.8g,\"val_loss\":%s%.8g%s,\"lr\":%.6g,\"grad_norm\":%.6g,\"samples_per_s\":%.4g,"
                     "\"halo_bytes_min\":%llu,\"halo_bytes_max\":%llu,\"halo_bytes_expected_min\":%llu,"
                     "\"halo_bytes_expected_max\":%llu%s",
                     step, loss, isnan(val) ? "\"" : "", isnan(val) ? 0.0 : val, isnan(val) ? "\"" : "",
                     ts_optim_lr(&tr.optim, step), gnorm, tr.batch / dt, lo[0], hi[0], lo[1], hi[1], skilltext);
            ts_log_event("train_step", fields);
            t_last = now, last_step = step;
        }
        if (stop) {
            write_checkpoint(&tr, step);
            ts_info("signal %d: stopped after step %ld; rerun the same command to resume", (int)g_stop_signal, step);
            stopped = 1;
            break;
        }
        if (step % every_ckpt == 0 || step == tr.steps) write_checkpoint(&tr, step);
    }
    if (!stopped) ts_info("training done in %.1f s", ts_now() - t0);
    trainer_free(&tr);
    return 0;
}
