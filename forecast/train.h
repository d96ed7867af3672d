/* The training run of the Swin diffusion model, split so tests and the
 * benchmark can drive single steps. */
#ifndef TESSERA_FORECAST_TRAIN_H
#define TESSERA_FORECAST_TRAIN_H

#include <pthread.h>
#include <stdint.h>

#include "forecast/commands.h"
#include "io/era5_read.h"
#include "io/stats_file.h"
#include "models/optim.h"
#include "models/swin.h"
#include "models/trigflow.h"

typedef struct {
    const ts_config *cfg;
    const ts_layout *layout;
    const char *out_dir;
    const ts_backend *be;
    uint64_t seed;
    long steps;
    int batch, dp, local_batch;   /* global batch, replicas, samples per replica */
    int64_t step_seconds;         /* forecast step */
    ts_era5_dataset *ds;
    const ts_era5_grid *grid;
    size_t nstate, nforce;
    ts_stats stats;               /* as read from the statistics file */
    char stats_path[4096];
    double *mean, *std;           /* (nstate + nforce) in the data's channel order */
    double *res_mean, *res_std;   /* (nstate) for the forecast step */
    size_t *pairs, npairs;        /* time indices of training pairs */
    size_t *val, nval;            /* time indices of validation pairs */
    ts_swin model;
    ts_params m, v, ema;          /* AdamW moments, EMA weights */
    ts_optim_config optim;
    ts_trigflow tf;
    int regress;                  /* model.objective = regress: t = pi/2, no noise, target -x0 */
    int val_levels;               /* train.val_levels: sampler levels of the validation forecast, 0 = none */
    int val_members;              /* train.val_members: members of its ensemble mean */
    double *val_skill;            /* (nstate) RMSE / persistence RMSE of the last validation forecast, NaN = none */
    double val_skill_mean;        /* their mean over channels */
    float *w_tok;                 /* (T) latitude weights per token */
    float *w_chan;                /* (nstate) loss weights */
    float *raw0, *raw1, *rawf;    /* (nstate, HW), (nstate, HW), (nforce, HW) as read */
    float *in;                    /* (T, 2 nstate + nforce) network input, host */
    float *target, *pred, *dout;  /* (T, nstate) host */
    float *t_batch;               /* (local_batch) noise levels of the batch in `in` */
    /* the next step's batch, read by a thread while the current step computes */
    float *in_next, *target_next, *t_next;
    pthread_t prefetch;
    int prefetch_running;
    long prefetched_step;         /* the step whose batch is in *_next, 0 for none */
    float *in_dev, *out_dev, *dout_dev; /* device copies */
} ts_trainer;

int ts_train_setup(ts_trainer *tr, const ts_command_ctx *ctx);
void ts_train_bind_stats(ts_trainer *tr, const char *path);
/* Sample slot b of a batch into in (T, cin) and target (T, nstate). */
void ts_train_make_sample(ts_trainer *tr, int b, size_t pair, double t, uint64_t stream, float *in, float *target);
/* Wait for the prefetch thread (before anything else reads data). */
void ts_train_prefetch_wait(ts_trainer *tr);
double ts_train_forward_backward(ts_trainer *tr, const float *t_local, int train);
double ts_train_step(ts_trainer *tr, long step, double *grad_norm);
/* Mean validation loss; with train.val_levels > 0 (or the regressor) also a
 * one-step forecast of each validation sample, scored into tr->val_skill. */
double ts_train_validate(ts_trainer *tr);
void ts_train_free(ts_trainer *tr);

/* Checkpoints (forecast/train_checkpoint.c): write the full training state
 * at `step` (rank 0 writes; every rank holds the same weights), and resume
 * from train.checkpoint (default OUT/checkpoint.h5) when it exists:
 * returns the step it holds, 0 when starting fresh. */
void ts_train_checkpoint(ts_trainer *tr, long step);
long ts_train_resume(ts_trainer *tr);

#endif
