/* The Swin diffusion model's input, packed one way for training and for
 * forecasting. A token's row holds c_in = 2 ns + nf channels,
 *
 *   [ x_t / sigma_d (ns) | state at t, normalized (ns) | forcings at t + step, normalized (nf) ]
 *
 * over a rank's block of the grid (HW tokens a sample, token-major), from
 * the channel-major fields the reader gives: x_t is the noisy normalized
 * residual the sampler or the training sample sets, the rest the
 * condition. Normalized = (value - mean) / std with the statistics of
 * tessera stats, computed in double and stored as float.
 */
#ifndef TESSERA_MODELS_SWIN_INPUT_H
#define TESSERA_MODELS_SWIN_INPUT_H

#include <stddef.h>

#include "models/swin.h"

typedef struct {
    size_t ns, nf;            /* state and forcing channels */
    const double *mean, *std; /* (ns + nf): state channels, then forcings */
} ts_swin_norm;

/* The condition columns (ns .. 2 ns + nf) of HW token rows, rows[k * ld
 * + ns + c]: state (ns, HW) and forcing (nf, HW; NULL when nf = 0), both
 * channel-major. */
void ts_swin_pack_condition(const ts_swin_norm *n, const float *state, const float *forcing, size_t HW, float *rows,
                            size_t ld);

/* The host side of one network evaluation: rows (T, c_in) with its
 * condition packed, device copies of input and output, and the noise
 * levels of the model's B samples. */
typedef struct {
    ts_swin *model;
    float *in;      /* (T, c_in) host */
    float *in_dev;  /* (T, c_in) on the model's backend */
    float *out_dev; /* (T, c_out) on the model's backend */
    float *t_batch; /* (B) host; (chunks B) */
    int chunks;     /* micro-batches of the model's batch evaluated together (0 or 1: one); the
                       buffers above hold all of them (ts_swin_forward_batches) */
} ts_swin_eval;

/* The sampler's network: F (T, c_out) = the model at x_t / sigma_d =
 * x_scaled (T, ns), which replaces the first ns columns of e->in, every
 * sample at noise level t (TrigFlow time). */
void ts_swin_denoise(ts_swin_eval *e, float *F, const float *x_scaled, double t);

#endif
