/* The optimizer of both model families: AdamW with a linear warm-up and a
 * cosine decay, gradient clipping by global norm, and an EMA of the weights
 * for sampling (REFERENCE.md: AERIS AdamW lr 2e-4, betas (0.85, 0.9),
 * weight decay 0.2). */
#ifndef TESSERA_MODELS_OPTIM_H
#define TESSERA_MODELS_OPTIM_H

#include "core/params.h"

typedef struct {
    double lr, lr_min;       /* peak and final learning rate */
    int warmup, total;       /* steps of linear warm-up; steps of the whole schedule */
    double beta1, beta2, eps, weight_decay;
    double clip;             /* global gradient norm limit; 0 = no clipping */
    double ema_decay;        /* 0 = no EMA */
} ts_optim_config;

/* Learning rate at step s (1-based): s/warmup * lr during warm-up, then a
 * cosine from lr down to lr_min at `total`, lr_min after it. */
double ts_optim_lr(const ts_optim_config *c, long step);

/* One step: clip (scale = min(1, clip / ||g||)), AdamW on every parameter,
 * EMA update. grad_norm is the norm of the gradient as given (the caller has
 * already reduced it over ranks). Returns the scale applied. */
double ts_optim_step(const ts_optim_config *c, long step, ts_params *params, const ts_params *grads, ts_params *m,
                     ts_params *v, ts_params *ema, double grad_norm);

#endif
