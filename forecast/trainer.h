/* One trainer for every model family: the step loop, AdamW with its
 * schedule, clipping and EMA, checkpoints and resume, the polite stop on
 * SIGUSR1/SIGTERM, and the log (stderr and tessera.jsonl).
 *
 * A family (the Swin diffusion model in train_swin.c, the mesh transformer
 * in train_mesh.c) fills a ts_train_task: where its weights live, its
 * share of a step's loss and gradient, its validation, and what its
 * checkpoint holds beside the weights. The trainer owns everything else:
 * the optimizer moments and EMA, the order of the loop, and every
 * collective between steps (through parallel/collective.h).
 *
 * One step: task->loss_and_grad gives this rank's part of the global-batch
 * mean loss and leaves its part of the gradient in task->grads, so that the
 * sums over all ranks are the global batch's; the trainer sums both over the
 * grid, takes the gradient norm and applies one AdamW update (with the EMA).
 */
#ifndef TESSERA_FORECAST_TRAINER_H
#define TESSERA_FORECAST_TRAINER_H

#include <stddef.h>

#include "core/backend.h"
#include "core/params.h"
#include "forecast/commands.h"
#include "io/checkpoint.h"
#include "models/optim.h"

typedef struct ts_train_task ts_train_task;
struct ts_train_task {
    const char *kind;          /* the checkpoint's model kind: "swin", "mesh" */
    void *self;                /* the family's state, passed to every call */
    const ts_backend *be;      /* where params and grads live */
    ts_params *params, *grads; /* the network's weights (initialized) and gradients */
    int batch;                 /* the global batch */
    int has_validation;        /* validation data exists: validate every train.val_every steps */
    int validate_at_start;     /* also validate the initial weights (a step-0 point of the curves) */
    double flops_per_step;     /* all ranks' model FLOPs of one step for the log, 0 = not counted */
    /* Keys a resumed run must share with the checkpoint's configuration: key
     * names, or "prefix." for every int, string and enum key of a prefix;
     * NULL-terminated. */
    const char *const *resume_keys;
    char summary[1024]; /* for the opening line: "(dp 2): 96 training pairs, 8 validation pairs" */

    /* This rank's part of `step`'s global-batch mean loss; its part of the
     * gradient is left in grads (zeroed by the task). */
    double (*loss_and_grad)(void *self, long step);
    /* The validation loss of the current weights, the same on every rank
     * (collective). text and json receive the family's extra figures
     * ("  skill 0.45", ",\"val_skill\":0.45"), or "". */
    double (*validate)(void *self, char *text, size_t tcap, char *json, size_t jcap);
    /* Fields the step's log record carries after the common ones
     * (",\"wp_bytes_min\":..."), or NULL; collective. */
    void (*log_fields)(void *self, char *json, size_t cap);
    /* What the checkpoint holds beside weights, EMA and moments: c->stats,
     * c->normalizers (storage the task owns until the next call). */
    void (*checkpoint_extras)(void *self, ts_ckpt_contents *c);
    /* On resume, before the weights are read: refuse a checkpoint of
     * another set-up (one line naming path) and read what
     * checkpoint_extras wrote. */
    void (*resume_extras)(void *self, ts_ckpt *ck, const char *path);
    void (*free)(void *self);
};

/* What every family reads the same way: the backend of `device`, the seed,
 * train.steps and train.batch split over parallel.dp replicas (fatal, one
 * line, when a key is bad). */
typedef struct {
    const ts_backend *be;
    uint64_t seed;
    long steps;
    int batch, dp, local_batch; /* global batch, replicas, samples per replica */
} ts_train_basics;
void ts_train_basics_get(const ts_command_ctx *ctx, ts_train_basics *b);

/* The families: set up from the configuration (fatal, one line, on any bad
 * input), the weights initialized from `seed`. */
ts_train_task *ts_swin_task_create(const ts_command_ctx *ctx);
ts_train_task *ts_mesh_task_create(const ts_command_ctx *ctx);

/* Train task for train.steps steps, resuming from train.checkpoint
 * (default OUT/checkpoint.h5) when it exists; frees the task. Returns the
 * exit code. */
int ts_trainer_run(ts_train_task *task, const ts_command_ctx *ctx);

/* AdamW, schedule, clipping and EMA from the train.* keys, for a run of `steps`. */
void ts_train_optim_config(const ts_config *cfg, long steps, ts_optim_config *o);

/* A block read from a checkpoint (host, layout's table) must be finite: the
 * format keeps any bits, and a NaN weight is damage (or a diverged run) to
 * name here, not as a NaN loss a step later. Fatal, naming path/group/name. */
void ts_check_finite_block(const ts_params *layout, const float *h, const char *path, const char *group);

#endif
