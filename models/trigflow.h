/* TrigFlow diffusion with v-prediction (REFERENCE.md, "TrigFlow diffusion"):
 * the per-sample noise level, the noisy input and target, and the weighted
 * loss with its gradient. Host-side arithmetic on fields that are small next
 * to the network (T x C values a step). */
#ifndef TESSERA_MODELS_TRIGFLOW_H
#define TESSERA_MODELS_TRIGFLOW_H

#include <stddef.h>

/* The deterministic regressor (model.objective=regress, docs/model.md) is
 * the network at this time with zero noisy-target channels, whose target
 * is -x0: TrigFlow's v at t = pi/2 with z = 0. */
#define TS_TRIGFLOW_REGRESS_T 1.57079632679489661923

typedef struct {
    double sigma_min, sigma_max; /* range of tau, log-uniform */
    double sigma_d;              /* data standard deviation, 1 for normalized targets */
} ts_trigflow;

/* t = atan(tau / sigma_d), tau = exp(log smin + u (log smax - log smin)),
 * for a uniform draw u in (0, 1). */
double ts_trigflow_time(const ts_trigflow *tf, double u);

/* x_t = cos t x0 + sin t z and v = cos t z - sin t x0, over n values. */
void ts_trigflow_noise(double t, const float *x0, const float *z, size_t n, float *x_t, float *v);

/* L = norm * sum_{k < T, c < C} w_tok[k] w_chan[c] (sigma_d F[k,c] - v[k,c])^2
 * and d_out = dL/dF (overwritten), F, v, d_out (T, C). `norm` is 1 / (the
 * number of values the loss is the mean over). */
double ts_trigflow_loss(const ts_trigflow *tf, const float *F, const float *v, const float *w_tok,
                        const float *w_chan, size_t T, size_t C, double norm, float *d_out);

/* AERIS's latitude weights cos(lat) + 0.01, normalised to mean 1 over rows. */
void ts_trigflow_lat_weights(const double *lat_deg, size_t nlat, float *w);

#endif
