/* The mesh graph transformer's training task (forecast/trainer.h): the
 * model learns the normalized one-step velocity change (REFERENCE.md, "Mesh
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
 * input is instead the model's own (no-gradient) k-step rollout from the
 * noisy velocity at t, and its target the change from that rollout to
 * t + k + 1, so the model learns to correct the errors its rollouts make
 * (Brandstetter et al.'s pushforward trick). k is 1, or with
 * mesh.pushforward_steps = K > 1 drawn uniformly from 1..K per pushed
 * sample. The normalizers accumulate the unpushed samples either way, so
 * they never depend on the model.
 *
 * Randomness is keyed by the step and global indices only:
 *   data order   (seed, DATA_ORDER,  stream step,               index global sample j)
 *   noise        (seed, TRAIN_NOISE, stream step * batch + j,   index node * F + component)
 *   offset       (seed, TRAIN_NOISE, stream step * batch + j,   index 2^62 + component)
 *   pushforward  (seed, PUSHFORWARD, stream step,               index global sample j)
 *   its steps k  (seed, PUSHFORWARD, stream step,               index 2^62 + j)
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "forecast/mesh_run.h"
#include "forecast/trainer.h"
#include "io/checkpoint.h"
#include "models/mesh_sp.h"
#include "parallel/collective.h"

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
    double val_skill;              /* the last validation's one-step RMSE / persistence RMSE */
    int64_t val_rollout;           /* mesh.val_rollout: steps of the validation rollouts (0 = none) */
    double val_rollout_skill;      /* the last validation's rollout RMSE / persistence RMSE */
    ts_mesh_sp *sp_train, *sp_val; /* (ntrain), (nvaltraj) with parallel.sp > 1, else NULL */
    size_t npairs;                 /* (trajectory, t) pairs of the training set */
    int32_t *pair_traj, *pair_t;   /* (npairs) */
    double noise, noise_offset;    /* mesh.noise (white), mesh.noise_offset (constant) */
    double pushforward;            /* mesh.pushforward: the fraction of pushed samples */
    int pushforward_steps;         /* mesh.pushforward_steps: the most model steps of a pushed sample */
    int fields;                    /* velocity components F: 2 (triangles) or 3 (tetrahedra) */
    ts_mesh_model model;
    ts_mesh_norm in_norm, out_norm;
    unsigned long long step_bytes[2]; /* halo bytes the last training step sent, and their analytic count */
    ts_ckpt_named norm_arrays[8];     /* the normalizers as checkpoint arrays */
    double norm_scalars[4];
    char norm_names[8][64];
    ts_train_task task;
    int64_t nmax;                                              /* most nodes of any trajectory */
    float *vin, *delta, *vin_n, *delta_n, *feat, *pred, *dout; /* (nmax, ...) scratch */
} mesh_trainer;

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
 * v (N, F), no gradient; the model must be prepared for tj. */
static void predict_change(mesh_trainer *tr, const ts_mesh_traj *tj, const float *v, float *change) {
    ts_mesh_stepper st = {&tr->model, &tr->in_norm, &tr->out_norm, sp_of(tr, tj),
                          tr->fields, tr->vin_n,    tr->feat,      tr->pred};
    ts_mesh_predict_change(&st, tj, v, change);
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

/* The model steps of global sample j of this step when it is pushed: 1, or
 * uniform in 1..mesh.pushforward_steps. */
static int pushed_steps(const mesh_trainer *tr, long step, uint64_t j) {
    if (tr->pushforward_steps <= 1) return 1;
    ts_rng_key key = ts_rng_key_make(tr->seed, TS_RNG_PUSHFORWARD);
    int k = 1 + (int)(ts_rng_uniform1(key, (uint64_t)step, (UINT64_C(1) << 62) + j) * tr->pushforward_steps);
    return k > tr->pushforward_steps ? tr->pushforward_steps : k;
}

/* A pushed sample (mesh.pushforward) of k model steps: vin = the noisy
 * velocity at t advanced k times by the model's predicted change on the
 * loss-set nodes (the others from the truth at each step, as a rollout sets
 * them); delta = velocity at t + k + 1 - vin. t is moved back when t + k + 1
 * is past the trajectory's end, and k shortened when the trajectory is
 * shorter than k + 2 states (the caller asks for T >= 3). */
static void make_pushed_sample(mesh_trainer *tr, const ts_mesh_traj *tj, int64_t t, int k, uint64_t stream) {
    if (k > tj->T - 2) k = (int)(tj->T - 2);
    if (t + k + 1 >= tj->T) t = tj->T - k - 2;
    const size_t nf = (size_t)tj->N * (size_t)tr->fields;
    make_sample(tr, tj, t, stream, tr->vin, tr->delta);
    prepare_for(tr, tj);
    for (int s = 1; s <= k; s++) {
        predict_change(tr, tj, tr->vin, tr->delta);
        ts_mesh_advance(tj, tr->vin, tr->delta, tj->velocity + (size_t)(t + s) * nf, tr->vin);
    }
    const float *target = tj->velocity + (size_t)(t + k + 1) * nf;
    for (size_t i = 0; i < nf; i++) tr->delta[i] = target[i] - tr->vin[i];
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
    if (ts_config_int(cfg, "train.micro_batches") != 1)
        ts_usage_error("train.micro_batches = %lld: the mesh model takes a replica's samples one graph at a time "
                       "already; leave it at 1",
                       (long long)ts_config_int(cfg, "train.micro_batches"));
    ts_train_basics b;
    ts_train_basics_get(ctx, &b);
    tr->be = b.be, tr->seed = b.seed, tr->steps = b.steps;
    tr->batch = b.batch, tr->dp = b.dp, tr->local_batch = b.local_batch;
    tr->sp = lay->size[TS_AXIS_SP];
    tr->noise = ts_config_float(cfg, "mesh.noise");
    tr->noise_offset = ts_config_float(cfg, "mesh.noise_offset");
    tr->pushforward = ts_config_float(cfg, "mesh.pushforward");
    tr->pushforward_steps = (int)ts_config_int(cfg, "mesh.pushforward_steps");
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
    ts_mesh_norm_init(&tr->in_norm, tr->fields, 1000000, 1e-8);
    ts_mesh_norm_init(&tr->out_norm, tr->fields, 1000000, 1e-8);
    size_t nf = (size_t)tr->nmax * (size_t)tr->fields;
    tr->vin = ts_malloc(sizeof(float) * nf), tr->delta = ts_malloc(sizeof(float) * nf);
    tr->vin_n = ts_malloc(sizeof(float) * nf), tr->delta_n = ts_malloc(sizeof(float) * nf);
    tr->pred = ts_malloc(sizeof(float) * nf), tr->dout = ts_malloc(sizeof(float) * nf);
    tr->feat = ts_malloc(sizeof(float) * (size_t)tr->nmax * (size_t)mc.c_in);
}

static void trainer_free(void *self) {
    mesh_trainer *tr = self;
    for (int k = 0; tr->sp_train && k < tr->ntrain; k++) ts_mesh_sp_free(&tr->sp_train[k]);
    for (int k = 0; tr->sp_val && k < tr->nvaltraj; k++) ts_mesh_sp_free(&tr->sp_val[k]);
    free(tr->sp_train), free(tr->sp_val);
    ts_mesh_traj_free(tr->train, tr->ntrain);
    ts_mesh_traj_free(tr->val, tr->nvaltraj);
    free(tr->pair_traj), free(tr->pair_t);
    free(tr->vin), free(tr->delta), free(tr->vin_n), free(tr->delta_n), free(tr->pred), free(tr->dout), free(tr->feat);
    ts_mesh_model_free(&tr->model);
    ts_mesh_norm_free(&tr->in_norm), ts_mesh_norm_free(&tr->out_norm);
    free(tr);
}

/* ---- steps ------------------------------------------------------------------------ */

/* This rank's part of the step's loss and gradient (the trainer sums them
 * over the world): each sample's share is divided by the global batch. */
static double loss_and_grad(void *self, long step) {
    mesh_trainer *tr = self;
    const int r = tr->layout->coord[TS_AXIS_DP];
    unsigned long long before[2], after[2];
    halo_bytes(tr, before);
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
        if (tj->T >= 3 && pushed(tr, step, j))
            make_pushed_sample(tr, tj, t, pushed_steps(tr, step, j), stream);
        else
            make_sample(tr, tj, t, stream, tr->vin, tr->delta);
        loss += sample_loss(tr, tj, 1, 1.0 / tr->batch) / tr->batch;
    }
    halo_bytes(tr, after);
    tr->step_bytes[0] = after[0] - before[0], tr->step_bytes[1] = after[1] - before[1];
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
    ts_par_sum_doubles(tr->layout, sums, 3);
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
            ts_mesh_advance(tj, v, change, truth, v);
            for (int64_t i = first; i < first + n; i++)
                for (int c = 0; c < F && tj->loss_mask[i]; c++) {
                    size_t q = (size_t)i * (size_t)F + (size_t)c;
                    double e = (double)v[q] - truth[q], e0 = (double)tj->velocity[q] - truth[q];
                    sums[0] += e * e, sums[1] += e0 * e0;
                }
        }
    }
    ts_par_sum_doubles(tr->layout, sums, 2);
    tr->val_rollout_skill = sums[1] > 0 ? sqrt(sums[0] / sums[1]) : NAN;
}

/* ---- the task ------------------------------------------------------------------------ */

static double task_validate(void *self, char *text, size_t tcap, char *json, size_t jcap) {
    mesh_trainer *tr = self;
    double val = validate(tr);
    if (tr->val_rollout > 0) validate_rollout(tr);
    int m = snprintf(text, tcap, "  skill %.3f", tr->val_skill);
    if (tr->val_rollout > 0 && m > 0 && (size_t)m < tcap)
        snprintf(text + m, tcap - (size_t)m, "  rollout %.3f", tr->val_rollout_skill);
    json[0] = '\0';
    if (!isnan(tr->val_skill)) {
        m = snprintf(json, jcap, ",\"val_skill\":%.6g", tr->val_skill);
        if (tr->val_rollout > 0 && !isnan(tr->val_rollout_skill) && m > 0 && (size_t)m < jcap)
            snprintf(json + m, jcap - (size_t)m, ",\"val_rollout\":%.6g", tr->val_rollout_skill);
    }
    return val;
}

/* Halo bytes each rank sent in the last step's training (not validation),
 * and the analytic count from its chunks' send and halo lists: the least
 * and most over ranks. */
static void log_fields(void *self, char *json, size_t cap) {
    mesh_trainer *tr = self;
    unsigned long long lo[2], hi[2];
    ts_par_minmax_u64(tr->layout, tr->step_bytes, lo, hi, 2);
    snprintf(json, cap,
             ",\"halo_bytes_min\":%llu,\"halo_bytes_max\":%llu,\"halo_bytes_expected_min\":%llu,"
             "\"halo_bytes_expected_max\":%llu",
             lo[0], hi[0], lo[1], hi[1]);
}

/* Beside the weights: the running normalizers of inputs and targets. */
static void checkpoint_extras(void *self, ts_ckpt_contents *c) {
    mesh_trainer *tr = self;
    ts_mesh_norm_named(&tr->in_norm, "input", tr->norm_arrays, tr->norm_scalars, tr->norm_names);
    ts_mesh_norm_named(&tr->out_norm, "target", tr->norm_arrays + 4, tr->norm_scalars + 2, tr->norm_names + 4);
    c->normalizers = tr->norm_arrays, c->nnormalizers = 8;
}

static void resume_extras(void *self, ts_ckpt *ck, const char *path) {
    mesh_trainer *tr = self;
    char err[1024];
    const ts_mesh_set train = {.key = "mesh.file", .path = tr->train_path};
    ts_mesh_check_ckpt_fields(ck, path, &train, tr->fields);
    checkpoint_extras(tr, &(ts_ckpt_contents){0});
    if (ts_ckpt_read_named(ck, tr->norm_arrays, 8, err, sizeof err)) ts_fatal("%s", err);
    ts_mesh_norm_from_named(&tr->in_norm, tr->norm_scalars);
    ts_mesh_norm_from_named(&tr->out_norm, tr->norm_scalars + 2);
}

ts_train_task *ts_mesh_task_create(const ts_command_ctx *ctx) {
    /* the keys that shape the network or its graphs */
    static const char *const RESUME_KEYS[] = {"model.dim",  "model.heads", "model.hidden",  "model.depth",
                                              "mesh.khop",  "mesh.window", "mesh.dilation", "mesh.globals",
                                              "mesh.order", NULL};
    mesh_trainer *tr = ts_malloc(sizeof *tr);
    setup(tr, ctx);
    ts_train_task *t = &tr->task;
    *t = (ts_train_task){.kind = "mesh",
                         .self = tr,
                         .be = tr->be,
                         .params = &tr->model.params,
                         .grads = &tr->model.grads,
                         .batch = tr->batch,
                         .has_validation = tr->nvaltraj > 0,
                         .resume_keys = RESUME_KEYS,
                         .loss_and_grad = loss_and_grad,
                         .validate = task_validate,
                         .log_fields = log_fields,
                         .checkpoint_extras = checkpoint_extras,
                         .resume_extras = resume_extras,
                         .free = trainer_free};
    snprintf(t->summary, sizeof t->summary,
             "(dp %d, sp %d): %d training trajectories (%zu pairs) of %s, %d validation trajectories of %s", tr->dp,
             tr->sp, tr->ntrain, tr->npairs, tr->train_path, tr->nvaltraj, tr->val_path ? tr->val_path : "-");
    return t;
}
