/* The Swin diffusion model's training task (forecast/trainer.h): TrigFlow on
 * ERA5-format data.
 *
 * Every random choice is keyed by global indices, never by rank: the pair of
 * times of global sample j at step s (DATA_ORDER, stream s, index j), its
 * noise level (DIFFUSION_TIME, stream s, index j) and its noise
 * (TRAIN_NOISE, stream s * batch + j, index channel * H * W + grid index).
 * DP replica r takes samples [r B/dp, (r+1) B/dp) of each step. Each
 * replica's loss is the mean over its samples; gradients are averaged over
 * replicas (each replica's gradient divided by dp before the trainer sums
 * them; WP ranks hold parts of one replica's sum), so every layout computes
 * the gradient of the global-batch mean loss.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/caltime.h"
#include "core/log.h"
#include "core/rng.h"
#include "forecast/commands.h"
#include "forecast/data.h"
#include "forecast/trainer.h"
#include "io/checkpoint.h"
#include "io/era5_read.h"
#include "io/stats_file.h"
#include "models/sampler.h"
#include "models/swin.h"
#include "models/swin_input.h"
#include "models/trigflow.h"
#include "parallel/collective.h"

typedef struct {
    const ts_config *cfg;
    const ts_layout *layout;
    const char *out_dir;
    const ts_backend *be;
    uint64_t seed;
    long steps;
    int batch, dp, local_batch; /* global batch, replicas, samples per replica */
    int micro, micro_batch;     /* train.micro_batches, and the samples of one (the model's batch) */
    int64_t step_seconds;       /* forecast step */
    ts_era5_dataset *ds;
    const ts_era5_grid *grid;
    size_t nstate, nforce;
    ts_stats stats; /* as read from the statistics file */
    char stats_path[4096];
    double *mean, *std;         /* (nstate + nforce) in the data's channel order */
    double *res_mean, *res_std; /* (nstate) for the forecast step */
    size_t *pairs, npairs;      /* time indices of training pairs */
    size_t *val, nval;          /* time indices of validation pairs */
    ts_swin model;
    ts_trigflow tf;
    int regress;                 /* model.objective = regress: t = pi/2, no noise, target -x0 */
    int val_levels;              /* train.val_levels: sampler levels of the validation forecast, 0 = none */
    int val_members;             /* train.val_members: members of its ensemble mean */
    double *val_skill;           /* (nstate) RMSE / persistence RMSE of the last validation forecast, NaN = none */
    double val_skill_mean;       /* their mean over channels */
    float *w_tok;                /* (T) latitude weights per token */
    float *w_chan;               /* (nstate) loss weights */
    float *raw0, *raw1, *rawf;   /* (nstate, HW), (nstate, HW), (nforce, HW) as read */
    float *in;                   /* (T, 2 nstate + nforce) network input, host */
    float *target, *pred, *dout; /* (T, nstate) host */
    float *t_batch;              /* (local_batch) noise levels of the batch in `in` */
    int cur_micro;               /* the micro-batch the validation sampler's network calls see */
    /* the next step's batch, read by a thread while the current step computes */
    float *in_next, *target_next, *t_next;
    pthread_t prefetch;
    int prefetch_running;
    long prefetched_step;               /* the step whose batch is in *_next, 0 for none */
    float *in_dev, *out_dev, *dout_dev; /* device copies */
    /* pipeline (parallel.pp > 1): each micro-batch's input from the stage
     * before (kept for the backward's recomputation), the messages sent, and
     * device copies of a stage's input, output and output gradient */
    float *pp_in, *pp_out, *pp_grad; /* (micro, T, d), (micro, T, d), (micro, T, d) host */
    float *pp_dev[3];
    ts_par_sends pp_sends;
    unsigned long long pp_train_bytes;  /* stage-to-stage bytes of the training steps (not validation) */
    ts_ckpt_named ckpt_grid[2];         /* the grid's latitudes and longitudes, for the checkpoint */
    ts_train_task task;
} swin_trainer;

/* ---- set-up ------------------------------------------------------------------------ */

/* Indices i whose valid time lies in [lo, hi) and whose partner t + step is
 * in the data. */
static size_t find_pairs(const ts_era5_dataset *ds, int64_t lo, int64_t hi, int64_t step, size_t **out) {
    size_t nt = ts_era5_ntimes(ds), n = 0, j;
    const int64_t *times = ts_era5_times(ds);
    *out = ts_malloc(sizeof(size_t) * (nt ? nt : 1));
    for (size_t i = 0; i < nt; i++)
        if (times[i] >= lo && times[i] < hi && ts_era5_find_time(ds, times[i] + step, &j) == 0) (*out)[n++] = i;
    return n;
}

/* Per-channel loss weights from "name=w,name=w". */
static void channel_weights(const char *spec, const ts_era5_dataset *ds, float *w) {
    size_t n = ts_era5_nstate(ds);
    for (size_t c = 0; c < n; c++) w[c] = 1.0f;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || end == eq + 1 || *end || !(v >= 0))
            ts_usage_error("train.var_weights: '%s' is not name=weight with a weight >= 0", tok);
        *eq = 0;
        size_t c = 0;
        while (c < n && strcmp(ts_era5_state_channel(ds, c)->spec, tok) != 0) c++;
        if (c == n) ts_usage_error("train.var_weights names '%s', which is not a state channel of data.variables", tok);
        w[c] = (float)v;
    }
}

/* The statistics must be of this grid: the data's rows (before padding or
 * the dropped south row, which the statistics keep) and columns. */
static void check_stats_grid(const ts_stats *s, const ts_era5_grid *g, const char *path) {
    int ok = s->nlat >= g->nlat_data && s->nlon == g->nlon;
    for (size_t i = 0; ok && i < g->nlat_data; i++) ok = fabs(s->lat[i] - g->lat[i]) < 1e-6;
    for (size_t j = 0; ok && j < g->nlon; j++) ok = fabs(s->lon[j] - g->lon[j]) < 1e-6;
    if (!ok)
        ts_fatal("%s: the statistics are of a %zu x %zu grid, data.files of a %zu x %zu grid (latitudes %g..%g): "
                 "rerun tessera stats on these files, or set data.stats",
                 path, s->nlat, s->nlon, g->nlat_data, g->nlon, g->lat[0], g->lat[g->nlat_data - 1]);
}

static void bind_stats(swin_trainer *tr, const char *path);

static void setup(swin_trainer *tr, const ts_command_ctx *ctx) {
    const ts_config *cfg = ctx->cfg;
    const ts_layout *lay = ctx->layout;
    char err[1024];
    memset(tr, 0, sizeof *tr);
    tr->cfg = cfg, tr->layout = lay, tr->out_dir = ctx->out;
    ts_train_basics b;
    ts_train_basics_get(ctx, &b);
    tr->be = b.be, tr->seed = b.seed, tr->steps = b.steps;
    tr->batch = b.batch, tr->dp = b.dp, tr->local_batch = b.local_batch;
    tr->micro = (int)ts_config_int(cfg, "train.micro_batches");
    if (tr->local_batch % tr->micro)
        ts_usage_error("train.batch = %d over parallel.dp = %d replicas gives %d samples a replica, which do not split "
                       "into train.micro_batches = %d micro-batches",
                       tr->batch, tr->dp, tr->local_batch, tr->micro);
    tr->micro_batch = tr->local_batch / tr->micro;
    if (lay->size[TS_AXIS_PP] > 1 && tr->micro < lay->size[TS_AXIS_PP])
        ts_usage_error("train.micro_batches = %d is below parallel.pp = %d: a pipeline of pp stages needs at least pp "
                       "micro-batches in flight",
                       tr->micro, lay->size[TS_AXIS_PP]);
    tr->step_seconds = 3600 * ts_config_int(cfg, "train.step_hours");

    /* data and statistics */
    tr->ds = ts_open_data(cfg, (size_t)ts_config_int(cfg, "model.window"), lay);
    tr->grid = ts_era5_grid_info(tr->ds);
    tr->nstate = ts_era5_nstate(tr->ds), tr->nforce = ts_era5_nforcing(tr->ds);

    char spath[4096];
    const char *want = ts_config_str(cfg, "data.stats");
    if (*want)
        snprintf(spath, sizeof spath, "%s", want);
    else
        snprintf(spath, sizeof spath, "%s/stats.nc", ctx->out);
    if (ts_stats_read(&tr->stats, spath, err, sizeof err))
        ts_fatal("%s (run tessera stats first, or set data.stats)", err);
    check_stats_grid(&tr->stats, tr->grid, spath);
    snprintf(tr->stats_path, sizeof tr->stats_path, "%s", spath);
    bind_stats(tr, spath);

    /* training and validation pairs */
    const int64_t *times = ts_era5_times(tr->ds);
    size_t nt = ts_era5_ntimes(tr->ds);
    int64_t t_end = times[nt - 1] + 1;
    int64_t v0 = ts_config_time(cfg, "train.val_start", t_end), v1 = ts_config_time(cfg, "train.val_end", t_end);
    int64_t s0 = ts_config_time(cfg, "train.start", times[0]), s1 = ts_config_time(cfg, "train.end", v0);
    tr->npairs = find_pairs(tr->ds, s0, s1, tr->step_seconds, &tr->pairs);
    tr->nval = *ts_config_str(cfg, "train.val_start") ? find_pairs(tr->ds, v0, v1, tr->step_seconds, &tr->val) : 0;
    if (tr->npairs == 0)
        ts_usage_error(
            "no training pairs: no valid time in [train.start, train.end) has a partner %lld h later in the data",
            (long long)(tr->step_seconds / 3600));

    /* model */
    ts_swin_config mc;
    ts_swin_config_from(cfg, (int)tr->grid->nlat, (int)tr->grid->nlon, (int)(2 * tr->nstate + tr->nforce),
                        (int)tr->nstate, &mc);
    ts_swin_wp wp = ts_swin_wp_of(lay);
    if (ts_swin_create(&tr->model, tr->be, &mc, tr->micro_batch, &wp, err, sizeof err)) ts_usage_error("%s", err);
    ts_swin_init_weights(&tr->model, tr->seed, 1);

    tr->regress = strcmp(ts_config_str(cfg, "model.objective"), "regress") == 0;
    tr->val_levels = (int)ts_config_int(cfg, "train.val_levels");
    tr->val_members = (int)ts_config_int(cfg, "train.val_members");
    tr->val_skill = ts_malloc(sizeof(double) * tr->nstate);
    for (size_t c = 0; c < tr->nstate; c++) tr->val_skill[c] = NAN;
    tr->val_skill_mean = NAN;
    tr->tf = (ts_trigflow){ts_config_float(cfg, "train.sigma_min"), ts_config_float(cfg, "train.sigma_max"), 1.0};
    if (!(tr->tf.sigma_min < tr->tf.sigma_max))
        ts_usage_error("train.sigma_min = %g must be below train.sigma_max = %g", tr->tf.sigma_min, tr->tf.sigma_max);

    /* host buffers of one step (the local batch) and device buffers of one
     * micro-batch: this rank's block of the grid */
    size_t HW = (size_t)tr->model.h * tr->model.w, T = (size_t)tr->local_batch * HW, Tm = (size_t)tr->model.T;
    tr->w_tok = ts_malloc(sizeof(float) * T);
    float *wlat = ts_malloc(sizeof(float) * tr->grid->nlat);
    ts_trigflow_lat_weights(tr->grid->lat, tr->grid->nlat_data, wlat);
    for (size_t i = tr->grid->nlat_data; i < tr->grid->nlat; i++) wlat[i] = 0; /* padded rows */
    for (size_t k = 0; k < T; k++) tr->w_tok[k] = wlat[tr->model.row0 + (k % HW) / (size_t)tr->model.w];
    free(wlat);
    tr->w_chan = ts_malloc(sizeof(float) * tr->nstate);
    channel_weights(ts_config_str(cfg, "train.var_weights"), tr->ds, tr->w_chan);
    tr->raw0 = ts_malloc(sizeof(float) * tr->nstate * HW);
    tr->raw1 = ts_malloc(sizeof(float) * tr->nstate * HW);
    tr->rawf = ts_malloc(sizeof(float) * (tr->nforce ? tr->nforce : 1) * HW);
    tr->in = ts_malloc(sizeof(float) * T * (size_t)mc.c_in);
    tr->target = ts_malloc(sizeof(float) * T * tr->nstate);
    tr->in_next = ts_malloc(sizeof(float) * T * (size_t)mc.c_in);
    tr->target_next = ts_malloc(sizeof(float) * T * tr->nstate);
    tr->t_batch = ts_malloc(sizeof(float) * (size_t)tr->local_batch);
    tr->t_next = ts_malloc(sizeof(float) * (size_t)tr->local_batch);
    tr->pred = ts_malloc(sizeof(float) * T * tr->nstate);
    tr->dout = ts_malloc(sizeof(float) * T * tr->nstate);
    tr->in_dev = tr->be->alloc(sizeof(float) * Tm * (size_t)mc.c_in);
    tr->out_dev = tr->be->alloc(sizeof(float) * Tm * tr->nstate);
    tr->dout_dev = tr->be->alloc(sizeof(float) * Tm * tr->nstate);
    if (tr->model.pp > 1) {
        const size_t td = Tm * (size_t)mc.dim, all = td * (size_t)tr->micro;
        tr->pp_in = ts_malloc(sizeof(float) * all);
        tr->pp_out = ts_malloc(sizeof(float) * all);
        tr->pp_grad = ts_malloc(sizeof(float) * all);
        for (int k = 0; k < 3; k++) tr->pp_dev[k] = tr->be->alloc(sizeof(float) * td);
    }
}

/* Statistics of every channel the data serves, in the data's channel order. */
static void bind_stats(swin_trainer *tr, const char *path) {
    size_t nchan = tr->nstate + tr->nforce;
    tr->mean = ts_malloc(sizeof(double) * nchan);
    tr->std = ts_malloc(sizeof(double) * nchan);
    tr->res_mean = ts_malloc(sizeof(double) * tr->nstate);
    tr->res_std = ts_malloc(sizeof(double) * tr->nstate);
    int hours = (int)(tr->step_seconds / 3600), r = -1;
    for (size_t d = 0; d < tr->stats.nres; d++)
        if (tr->stats.res_hours[d] == hours) r = (int)d;
    if (r < 0)
        ts_fatal("%s has no residual statistics for train.step_hours = %d: add %d to stats.residual_hours and rerun "
                 "tessera stats",
                 path, hours, hours);
    for (size_t c = 0; c < nchan; c++) {
        const ts_era5_channel *ch =
            c < tr->nstate ? ts_era5_state_channel(tr->ds, c) : ts_era5_forcing_channel(tr->ds, c - tr->nstate);
        int k = ts_stats_channel(&tr->stats, ch->spec);
        if (k < 0)
            ts_fatal("%s has no statistics for channel '%s': rerun tessera stats with the same data.*", path, ch->spec);
        tr->mean[c] = tr->stats.mean[k], tr->std[c] = tr->stats.std[k];
        if (c < tr->nstate) {
            if ((size_t)k >= tr->stats.nstate)
                ts_fatal("%s: channel '%s' is a forcing there but a state channel here", path, ch->spec);
            tr->res_mean[c] = tr->stats.res_mean[(size_t)r * tr->stats.nstate + (size_t)k];
            tr->res_std[c] = tr->stats.res_std[(size_t)r * tr->stats.nstate + (size_t)k];
        }
    }
}

/* ---- one sample ------------------------------------------------------------------------ */

/* A read error on the prefetch thread must not exit the process under the
 * main thread (exit handlers would run while it computes, and crash): the
 * thread stops, and prefetch_wait reports the error. */
static _Thread_local int t_on_prefetch_thread;
static char g_prefetch_error[1024];

/* This rank's block only: WP ranks never read the whole field. */
static void read_or_die(swin_trainer *tr, size_t t, float *state, float *forcing) {
    char err[1024];
    const ts_swin *m = &tr->model;
    if (ts_era5_read_block(tr->ds, t, (size_t)m->row0, (size_t)m->h, (size_t)m->col0, (size_t)m->w, state, forcing, err,
                           sizeof err)) {
        if (!t_on_prefetch_thread) ts_fatal("%s", err);
        snprintf(g_prefetch_error, sizeof g_prefetch_error, "%s", err);
        pthread_exit(NULL);
    }
}

/* Fill slot b of the step's input (tokens b*HW .. (b+1)*HW) and target for
 * pair index `pair` (a time index), noise level t, noise stream `stream`. */
static void make_sample(swin_trainer *tr, int b, size_t pair, double t, uint64_t stream, float *in_buf,
                        float *target_buf) {
    const ts_swin *m = &tr->model;
    const size_t HW = (size_t)m->h * m->w, ns = tr->nstate, nf = tr->nforce;
    const size_t W = tr->grid->nlon, HWg = tr->grid->nlat * W;
    const size_t cin = 2 * ns + nf;
    size_t j;
    const int64_t *times = ts_era5_times(tr->ds);
    if (ts_era5_find_time(tr->ds, times[pair] + tr->step_seconds, &j))
        ts_fatal("internal: pair %zu lost its partner", pair);
    read_or_die(tr, pair, tr->raw0, NULL);
    read_or_die(tr, j, tr->raw1, nf ? tr->rawf : NULL);
    ts_rng_key nkey = ts_rng_key_make(tr->seed, TS_RNG_TRAIN_NOISE);
    const float c = (float)cos(t), s = (float)sin(t);
    for (size_t k = 0; k < HW; k++) {
        float *in = in_buf + ((size_t)b * HW + k) * cin;
        float *v = target_buf + ((size_t)b * HW + k) * ns;
        size_t gidx = (m->row0 + k / (size_t)m->w) * W + m->col0 + k % (size_t)m->w; /* global grid index */
        for (size_t ch = 0; ch < ns; ch++) {
            float x0 = (float)((tr->raw1[ch * HW + k] - tr->raw0[ch * HW + k] - tr->res_mean[ch]) / tr->res_std[ch]);
            if (tr->regress) { /* the regressor sees no noisy target and learns -x0 (t = pi/2, z = 0) */
                in[ch] = 0.0f, v[ch] = -x0;
            } else {
                float z = ts_rng_normal1(nkey, stream, ch * HWg + gidx);
                in[ch] = c * x0 + s * z; /* x_t / sigma_d, sigma_d = 1 */
                v[ch] = c * z - s * x0;
            }
        }
    }
    const ts_swin_norm norm = {ns, nf, tr->mean, tr->std};
    ts_swin_pack_condition(&norm, tr->raw0, nf ? tr->rawf : NULL, HW, in_buf + (size_t)b * HW * cin, cin);
}

/* ---- the pipeline ---------------------------------------------------------------- */

/* Micro-batch mb through this rank's pipeline stage, forward: the input
 * from the batch (first stage) or the stage before (kept in pp_in), the
 * output to the next stage or, on the last, the loss and its gradient
 * (into tr->dout) added to *loss. recompute: the input is already here
 * (the backward of a stage that has since run other micro-batches). */
static void stage_forward(swin_trainer *tr, int mb, int recompute, double *loss) {
    ts_swin *m = &tr->model;
    const ts_backend *be = tr->be;
    const size_t T = (size_t)m->T, td = T * (size_t)m->cfg.dim, ns = tr->nstate, cin = 2 * ns + tr->nforce;
    const size_t o = (size_t)mb * T;
    const int first = m->stage == 0, last = m->stage == m->pp - 1;
    const float *in = tr->in_dev;
    if (first) {
        be->upload(tr->in_dev, tr->in + o * cin, sizeof(float) * T * cin);
    } else {
        if (!recompute) ts_par_recv_floats(tr->pp_in + (size_t)mb * td, td, m->stage - 1, mb, m->pp_comm);
        be->upload(tr->pp_dev[0], tr->pp_in + (size_t)mb * td, sizeof(float) * td);
        in = tr->pp_dev[0];
    }
    ts_swin_stage_forward(m, last ? tr->out_dev : tr->pp_dev[1], in, tr->t_batch + (size_t)mb * tr->micro_batch);
    if (recompute) return;
    be->sync();
    if (last) {
        const double norm = 1.0 / ((double)tr->local_batch * tr->grid->nlat * tr->grid->nlon * ns);
        be->download(tr->pred + o * ns, tr->out_dev, sizeof(float) * T * ns);
        *loss += ts_trigflow_loss(&tr->tf, tr->pred + o * ns, tr->target + o * ns, tr->w_tok + o, tr->w_chan, T, ns,
                                  norm, tr->dout + o * ns);
    } else {
        be->download(tr->pp_out + (size_t)mb * td, tr->pp_dev[1], sizeof(float) * td);
        ts_par_isend_floats(&tr->pp_sends, tr->pp_out + (size_t)mb * td, td, m->stage + 1, mb, m->pp_comm);
    }
}

/* Micro-batch mb backward through this rank's stage: the output gradient
 * from tr->dout (last stage) or the next stage, the input gradient to the
 * stage before. The model holds the activations of one micro-batch: held
 * says which, and the stage's forward is recomputed from its kept input
 * when it is another. */
static void stage_backward(swin_trainer *tr, int mb, int *held) {
    ts_swin *m = &tr->model;
    const ts_backend *be = tr->be;
    const size_t T = (size_t)m->T, td = T * (size_t)m->cfg.dim, ns = tr->nstate;
    const int first = m->stage == 0, last = m->stage == m->pp - 1;
    if (*held != mb) stage_forward(tr, mb, 1, NULL), *held = mb;
    const float *d_out = tr->dout_dev;
    if (last) {
        be->upload(tr->dout_dev, tr->dout + (size_t)mb * T * ns, sizeof(float) * T * ns);
    } else {
        ts_par_recv_floats(tr->pp_grad + (size_t)mb * td, td, m->stage + 1, tr->micro + mb, m->pp_comm);
        be->upload(tr->pp_dev[2], tr->pp_grad + (size_t)mb * td, sizeof(float) * td);
        d_out = tr->pp_dev[2];
    }
    ts_swin_stage_backward(m, d_out, first ? NULL : tr->pp_dev[0]);
    if (!first) {
        be->sync();
        be->download(tr->pp_grad + (size_t)mb * td, tr->pp_dev[0], sizeof(float) * td); /* its slot is free now */
        ts_par_isend_floats(&tr->pp_sends, tr->pp_grad + (size_t)mb * td, td, m->stage - 1, tr->micro + mb, m->pp_comm);
    }
}

/* The local batch's micro-batches through the pipeline (parallel.pp > 1):
 * 1F1B, stage s running min(pp - s - 1, micro) forwards first, then one
 * forward and one backward in turn, then the remaining backwards; forward
 * only without train. Each stage keeps its micro-batches' inputs and
 * recomputes its forward before a backward of a micro-batch it no longer
 * holds (every stage but the last). Returns this replica's mean loss on the
 * last stage, 0 on the others (the trainer sums over ranks). */
static double pipeline_pass(swin_trainer *tr, int train) {
    const ts_swin *m = &tr->model;
    const int M = tr->micro;
    double loss = 0;
    int held = -1;
    if (!train) {
        for (int mb = 0; mb < M; mb++) stage_forward(tr, mb, 0, &loss);
    } else {
        tr->be->zero(tr->model.grads.data, sizeof(float) * tr->model.grads.total);
        int warm = m->pp - m->stage - 1;
        if (warm > M) warm = M;
        for (int mb = 0; mb < warm; mb++) stage_forward(tr, mb, 0, &loss), held = mb;
        for (int i = 0; i + warm < M; i++) {
            stage_forward(tr, warm + i, 0, &loss), held = warm + i;
            stage_backward(tr, i, &held);
        }
        for (int i = M - warm; i < M; i++) stage_backward(tr, i, &held);
    }
    ts_par_sends_wait(&tr->pp_sends);
    return loss;
}

/* Forward (and backward when train) of the prepared local batch, one
 * micro-batch after another (the gradients add up in the model's grads,
 * zeroed first); returns this replica's mean loss. */
static double forward_backward(swin_trainer *tr, int train) {
    if (tr->model.pp > 1) return pipeline_pass(tr, train);
    const ts_backend *be = tr->be;
    const size_t T = (size_t)tr->model.T, ns = tr->nstate, cin = 2 * ns + tr->nforce;
    /* the replica's mean over the whole grid: WP and SP ranks hold parts of its sum */
    const double norm = 1.0 / ((double)tr->local_batch * tr->grid->nlat * tr->grid->nlon * ns);
    double loss = 0;
    if (train) be->zero(tr->model.grads.data, sizeof(float) * tr->model.grads.total);
    for (int m = 0; m < tr->micro; m++) {
        const size_t o = (size_t)m * T; /* the micro-batch's first token */
        be->upload(tr->in_dev, tr->in + o * cin, sizeof(float) * T * cin);
        ts_swin_forward(&tr->model, tr->out_dev, tr->in_dev, tr->t_batch + (size_t)m * tr->micro_batch);
        be->sync();
        be->download(tr->pred + o * ns, tr->out_dev, sizeof(float) * T * ns);
        loss += ts_trigflow_loss(&tr->tf, tr->pred + o * ns, tr->target + o * ns, tr->w_tok + o, tr->w_chan, T, ns,
                                 norm, tr->dout + o * ns);
        if (train) {
            be->upload(tr->dout_dev, tr->dout + o * ns, sizeof(float) * T * ns);
            ts_swin_backward(&tr->model, tr->dout_dev);
        }
    }
    return loss;
}

/* The noise level of global sample j of a stream: TrigFlow's draw, or the
 * regressor's fixed time. */
static double noise_time(const swin_trainer *tr, ts_rng_key tkey, uint64_t stream, uint64_t j) {
    return tr->regress ? TS_TRIGFLOW_REGRESS_T : ts_trigflow_time(&tr->tf, ts_rng_uniform1(tkey, stream, j));
}

/* The local batch of `step` into in, target and t: which pairs, noise
 * levels and noise, all keyed by the step and global sample indices. */
static void prepare_batch(swin_trainer *tr, long step, float *in, float *target, float *t_out) {
    ts_rng_key okey = ts_rng_key_make(tr->seed, TS_RNG_DATA_ORDER),
               tkey = ts_rng_key_make(tr->seed, TS_RNG_DIFFUSION_TIME);
    int r = tr->layout->coord[TS_AXIS_DP];
    for (int b = 0; b < tr->local_batch; b++) {
        uint64_t j = (uint64_t)r * (uint64_t)tr->local_batch + (uint64_t)b; /* global sample index */
        size_t pair = tr->pairs[(size_t)(ts_rng_uniform1(okey, (uint64_t)step, j) * (double)tr->npairs)];
        double t = noise_time(tr, tkey, (uint64_t)step, j);
        t_out[b] = (float)t;
        make_sample(tr, b, pair, t, (uint64_t)step * (uint64_t)tr->batch + j, in, target);
    }
}

static void *prefetch_main(void *arg) {
    swin_trainer *tr = arg;
    t_on_prefetch_thread = 1;
    prepare_batch(tr, tr->prefetched_step, tr->in_next, tr->target_next, tr->t_next);
    return NULL;
}

static void prefetch_wait(swin_trainer *tr) {
    if (!tr->prefetch_running) return;
    int rc = pthread_join(tr->prefetch, NULL);
    if (rc) ts_fatal("waiting for the data prefetch thread: %s", strerror(rc));
    tr->prefetch_running = 0;
    if (g_prefetch_error[0]) ts_fatal("%s", g_prefetch_error);
}

static void swap(float **a, float **b) {
    float *t = *a;
    *a = *b, *b = t;
}

/* This replica's part of the step's loss and gradient (the trainer sums
 * them). While it computes, a thread reads the next step's batch (the
 * reader is used by that thread alone meanwhile). */
static double loss_and_grad(void *self, long step) {
    swin_trainer *tr = self;
    prefetch_wait(tr);
    if (tr->prefetched_step == step) {
        swap(&tr->in, &tr->in_next), swap(&tr->target, &tr->target_next), swap(&tr->t_batch, &tr->t_next);
    } else {
        prepare_batch(tr, step, tr->in, tr->target, tr->t_batch);
    }
    tr->prefetched_step = 0;
    if (step < tr->steps) {
        tr->prefetched_step = step + 1;
        int rc = pthread_create(&tr->prefetch, NULL, prefetch_main, tr);
        if (rc) ts_fatal("starting the data prefetch thread: %s", strerror(rc));
        tr->prefetch_running = 1;
    }
    const size_t sent = tr->pp_sends.bytes;
    double loss = forward_backward(tr, 1) / tr->dp;
    tr->pp_train_bytes += tr->pp_sends.bytes - sent;
    ts_params *g = &tr->model.grads;
    if (tr->layout->world > 1) tr->be->axpby(g->data, 0.0f, g->data, 1.0f / (float)tr->dp, g->total);
    return loss;
}

/* ---- the validation forecast ------------------------------------------------------------ */

/* The sampler's network: micro-batch tr->cur_micro of the local batch in
 * tr->in with its first ns channels replaced by x / sigma_d, every sample
 * at time t. */
static void val_denoise(void *ctx, float *F, const float *x_scaled, double t) {
    swin_trainer *tr = ctx;
    const size_t o = (size_t)tr->cur_micro * (size_t)tr->model.T, cin = 2 * tr->nstate + tr->nforce;
    ts_swin_eval e = {
        &tr->model, tr->in + o * cin, tr->in_dev, tr->out_dev, tr->t_batch + (size_t)tr->cur_micro * tr->micro_batch,
        1};
    ts_swin_denoise(&e, F, x_scaled, t);
}

/* One forecast step of the prepared local batch (tr->in, tr->target, the
 * noise levels in tr->t_batch): the mean of train.val_members members
 * sampled with train.val_levels levels (forecast.* schedule keys), or the
 * regressor's output. Adds, per
 * channel, the latitude-weighted squared error of the forecast change and
 * of persistence (the true change), in physical units, to sums (2 ns);
 * sums NULL: the network calls only (a pipeline stage that does not count). */
static void val_forecast(swin_trainer *tr, int base, int nv, double *sums) {
    const size_t HW = (size_t)tr->model.h * tr->model.w, T = (size_t)tr->local_batch * HW, ns = tr->nstate;
    const size_t Tm = (size_t)tr->model.T; /* one micro-batch, the sampler's batch */
    const size_t cin = 2 * ns + tr->nforce, W = tr->grid->nlon, HWg = tr->grid->nlat * W;
    const int r = tr->layout->coord[TS_AXIS_DP];
    float *x0 = ts_malloc(sizeof(float) * T * ns), *x = ts_malloc(sizeof(float) * T * ns);
    for (size_t k = 0; k < T; k++) { /* the true normalised residual, from x_t and v */
        double t = tr->t_batch[k / HW], c = cos(t), s = sin(t);
        for (size_t ch = 0; ch < ns; ch++)
            x0[k * ns + ch] = tr->regress ? -tr->target[k * ns + ch]
                                          : (float)(c * tr->in[k * cin + ch] - s * tr->target[k * ns + ch]);
    }
    if (tr->regress) {
        for (tr->cur_micro = 0; tr->cur_micro < tr->micro; tr->cur_micro++)
            ts_sampler_regress(val_denoise, tr, x + (size_t)tr->cur_micro * Tm * ns, Tm * ns);
    } else {
        float *member = ts_malloc(sizeof(float) * T * ns);
        memset(x, 0, sizeof(float) * T * ns);
        const ts_config *cfg = tr->cfg;
        ts_sampler_config sc = {tr->val_levels,
                                ts_config_float(cfg, "forecast.rho"),
                                ts_config_float(cfg, "forecast.sigma_min"),
                                ts_config_float(cfg, "forecast.sigma_max"),
                                1.0,
                                0.0,
                                1.0};
        ts_rng_key key = ts_rng_key_make(tr->seed, TS_RNG_SAMPLER_NOISE);
        const uint64_t VAL_SAMPLER = UINT64_C(3) << 61; /* far from any forecast's stream */
        for (int e = 0; e < tr->val_members; e++) {     /* the ensemble mean of val_members members */
            for (int b = 0; b < tr->local_batch; b++) {
                uint64_t stream = VAL_SAMPLER + ((uint64_t)(base + r * tr->local_batch + b) << 16) + (uint64_t)e;
                for (size_t k = 0; k < HW; k++) {
                    size_t gidx =
                        (tr->model.row0 + k / (size_t)tr->model.w) * W + tr->model.col0 + k % (size_t)tr->model.w;
                    for (size_t ch = 0; ch < ns; ch++)
                        member[((size_t)b * HW + k) * ns + ch] = ts_rng_normal1(key, stream, ch * HWg + gidx);
                }
            }
            for (tr->cur_micro = 0; tr->cur_micro < tr->micro; tr->cur_micro++)
                ts_sampler_run(&sc, val_denoise, NULL, tr, member + (size_t)tr->cur_micro * Tm * ns, Tm * ns);
            for (size_t i = 0; i < T * ns; i++) x[i] += member[i] / (float)tr->val_members;
        }
        free(member);
    }
    for (int b = 0; sums && b < tr->local_batch; b++) {
        if (base + r * tr->local_batch + b >= nv) continue; /* padding */
        for (size_t k = (size_t)b * HW; k < (size_t)(b + 1) * HW; k++)
            for (size_t ch = 0; ch < ns; ch++) {
                double e = (x[k * ns + ch] - x0[k * ns + ch]) * tr->res_std[ch];
                double p = x0[k * ns + ch] * tr->res_std[ch] + tr->res_mean[ch];
                sums[2 * ch] += tr->w_tok[k] * e * e, sums[2 * ch + 1] += tr->w_tok[k] * p * p;
            }
    }
    free(x0), free(x);
}

/* Mean loss over fixed validation samples with fixed noise, current weights:
 * the same numbers whatever the layout. */
static double validate(swin_trainer *tr) {
    const int nv = (int)ts_config_int(tr->cfg, "train.val_samples");
    const size_t HW = (size_t)tr->model.h * tr->model.w, ns = tr->nstate, HWg = tr->grid->nlat * tr->grid->nlon;
    const uint64_t VAL_STREAM = UINT64_C(1) << 62; /* far from any training step */
    ts_rng_key tkey = ts_rng_key_make(tr->seed, TS_RNG_DIFFUSION_TIME);
    const int r = tr->layout->coord[TS_AXIS_DP];
    double total = 0;
    /* with pipeline stages, the last holds the outputs and alone counts them */
    const int last_stage = tr->model.stage == tr->model.pp - 1;
    prefetch_wait(tr); /* the reader is ours again; the prefetched batch waits in *_next */
    double *sums = tr->val_levels > 0 || tr->regress ? ts_calloc(2 * ns, sizeof(double)) : NULL;
    for (int base = 0; base < nv; base += tr->batch) {
        for (int b = 0; b < tr->local_batch; b++) {
            int j = base + r * tr->local_batch + b, k = j < nv ? j : nv - 1; /* padding repeats the last sample */
            size_t pair = tr->val[(size_t)k * tr->nval / (size_t)nv];
            double t = noise_time(tr, tkey, VAL_STREAM, (uint64_t)k);
            tr->t_batch[b] = (float)t;
            make_sample(tr, b, pair, t, VAL_STREAM + (uint64_t)k, tr->in, tr->target);
        }
        forward_backward(tr, 0);
        for (int b = 0; b < tr->local_batch && last_stage; b++)
            if (base + r * tr->local_batch + b < nv) /* each sample's own mean loss */
                total += ts_trigflow_loss(&tr->tf, tr->pred + (size_t)b * HW * ns, tr->target + (size_t)b * HW * ns,
                                          tr->w_tok + (size_t)b * HW, tr->w_chan, HW, ns, 1.0 / ((double)HWg * ns),
                                          tr->dout);
        if (sums) val_forecast(tr, base, nv, last_stage ? sums : NULL);
    }
    ts_par_sum_doubles(tr->layout, &total, 1);
    if (sums) {
        ts_par_sum_doubles(tr->layout, sums, (int)(2 * ns));
        tr->val_skill_mean = 0;
        for (size_t c = 0; c < ns; c++) {
            tr->val_skill[c] = sums[2 * c + 1] > 0 ? sqrt(sums[2 * c] / sums[2 * c + 1]) : NAN;
            tr->val_skill_mean += tr->val_skill[c] / (double)ns;
        }
        free(sums);
    }
    return total / nv;
}

static void trainer_free(void *self) {
    swin_trainer *tr = self;
    const ts_backend *be = tr->be;
    prefetch_wait(tr);
    free(tr->in_next), free(tr->target_next), free(tr->t_batch), free(tr->t_next);
    be->free(tr->in_dev), be->free(tr->out_dev), be->free(tr->dout_dev);
    ts_par_sends_free(&tr->pp_sends);
    free(tr->pp_in), free(tr->pp_out), free(tr->pp_grad);
    for (int k = 0; k < 3; k++)
        if (tr->pp_dev[k]) be->free(tr->pp_dev[k]);
    free(tr->in), free(tr->target), free(tr->pred), free(tr->dout), free(tr->raw0), free(tr->raw1), free(tr->rawf);
    free(tr->w_tok), free(tr->w_chan), free(tr->mean), free(tr->std), free(tr->res_mean), free(tr->res_std);
    free(tr->pairs), free(tr->val), free(tr->val_skill);
    ts_swin_free(&tr->model);
    ts_stats_free(&tr->stats);
    ts_era5_dataset_close(tr->ds);
    free(tr);
}

/* ---- the task ------------------------------------------------------------------------ */

/* The last validation forecast's skill as JSON fields (",\"val_skill\":..,
 * \"val_skill_z500\":.."), its RMSE over persistence's, the mean over
 * channels and each channel; "" when there is none. */
static void skill_fields(const swin_trainer *tr, char *buf, size_t cap) {
    buf[0] = '\0';
    if (isnan(tr->val_skill_mean)) return;
    size_t len = (size_t)snprintf(buf, cap, ",\"val_skill\":%.6g", tr->val_skill_mean);
    for (size_t c = 0; c < tr->nstate && len < cap; c++)
        len += (size_t)snprintf(buf + len, cap - len, ",\"val_skill_%s\":%.6g", ts_era5_state_channel(tr->ds, c)->spec,
                                tr->val_skill[c]);
}

static double task_validate(void *self, char *text, size_t tcap, char *json, size_t jcap) {
    swin_trainer *tr = self;
    double val = validate(tr);
    text[0] = '\0';
    if (!isnan(tr->val_skill_mean)) snprintf(text, tcap, "  skill %.3f", tr->val_skill_mean);
    skill_fields(tr, json, jcap);
    return val;
}

/* Strip bytes (WP) and all-to-all bytes (SP) every rank sent since the
 * start, and how many the analytic count of its layout says: the least and
 * most over ranks; the tokens of one sample (grid points); and the most
 * activation memory (the model's arena) of any rank. */
static void log_fields(void *self, char *json, size_t cap) {
    swin_trainer *tr = self;
    size_t wp_sent, wp_expected;
    ts_swin_wp_bytes(&tr->model, &wp_sent, &wp_expected);
    unsigned long long mine[6] = {wp_sent,
                                  wp_expected,
                                  ts_swin_sp_bytes(&tr->model),
                                  tr->model.sp_bytes_expected,
                                  tr->model.arena.peak,
                                  tr->pp_train_bytes},
                       lo[6], hi[6];
    ts_par_minmax_u64(tr->layout, mine, lo, hi, 6);
    snprintf(
        json, cap,
        ",\"wp_bytes_min\":%llu,\"wp_bytes_max\":%llu,\"wp_bytes_expected_min\":%llu,\"wp_bytes_expected_max\":%llu"
        ",\"sp_bytes_min\":%llu,\"sp_bytes_max\":%llu,\"sp_bytes_expected_min\":%llu,\"sp_bytes_expected_max\":%llu"
        ",\"pp_bytes_min\":%llu,\"pp_bytes_max\":%llu"
        ",\"tokens_per_sample\":%zu,\"activation_mb_max\":%.1f",
        lo[0], hi[0], lo[1], hi[1], lo[2], hi[2], lo[3], hi[3], lo[5], hi[5], tr->grid->nlat * tr->grid->nlon,
        (double)hi[4] / 1048576.0);
}

/* Beside the weights: the statistics the run normalizes with, and the grid
 * the model learned on (so that a forecast on another is refused). */
static void checkpoint_extras(void *self, ts_ckpt_contents *c) {
    swin_trainer *tr = self;
    tr->ckpt_grid[0] = (ts_ckpt_named){
        .name = "grid.latitude", .ndim = 1, .shape = {(int64_t)tr->grid->nlat_data}, .data = (double *)tr->grid->lat};
    tr->ckpt_grid[1] = (ts_ckpt_named){
        .name = "grid.longitude", .ndim = 1, .shape = {(int64_t)tr->grid->nlon}, .data = (double *)tr->grid->lon};
    c->stats = &tr->stats, c->normalizers = tr->ckpt_grid, c->nnormalizers = 2;
}

/* Normalise with the statistics the run started with, whatever the
 * statistics file holds now. */
static void resume_extras(void *self, ts_ckpt *ck, const char *path) {
    swin_trainer *tr = self;
    char err[1024];
    ts_stats saved;
    if (ts_ckpt_read_stats(ck, &saved, err, sizeof err)) ts_fatal("%s", err);
    ts_stats_free(&tr->stats);
    tr->stats = saved;
    free(tr->mean), free(tr->std), free(tr->res_mean), free(tr->res_std);
    bind_stats(tr, path);
}

ts_train_task *ts_swin_task_create(const ts_command_ctx *ctx) {
    static const char *const RESUME_KEYS[] = {"model.", NULL};
    swin_trainer *tr = ts_malloc(sizeof *tr);
    setup(tr, ctx);
    ts_train_task *t = &tr->task;
    *t = (ts_train_task){.kind = "swin",
                         .self = tr,
                         .be = tr->be,
                         .params = &tr->model.params,
                         .grads = &tr->model.grads,
                         .batch = tr->batch,
                         .has_validation = tr->nval > 0,
                         .validate_at_start = 1,
                         .resume_keys = RESUME_KEYS,
                         .loss_and_grad = loss_and_grad,
                         .validate = task_validate,
                         .log_fields = log_fields,
                         .checkpoint_extras = checkpoint_extras,
                         .resume_extras = resume_extras,
                         .free = trainer_free};
    t->flops_per_step =
        3.0 * ts_swin_forward_flops(&tr->model) * tr->micro * ctx->layout->world; /* all ranks' tokens */
    snprintf(t->summary, sizeof t->summary, "(dp %d): %zu training pairs, %zu validation pairs", tr->dp, tr->npairs,
             tr->nval);
    return t;
}
