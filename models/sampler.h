/* The TrigFlow sampler (REFERENCE.md, "Sampling"): the deterministic ODE
 * dx/dt = sigma_d F(x / sigma_d, t) from t_0 = atan(sigma_max / sigma_d) to
 * 0 on a Karras schedule, Heun steps with an Euler last step, and optional
 * EDM-style churn. 2N - 1 network calls for N levels. */
#ifndef TESSERA_MODELS_SAMPLER_H
#define TESSERA_MODELS_SAMPLER_H

#include <stddef.h>

typedef struct {
    int levels;                  /* N noise levels */
    double rho;                  /* Karras schedule exponent, 7..10 */
    double sigma_min, sigma_max; /* range of the schedule */
    double sigma_d;              /* data standard deviation (1) */
    double churn;                /* S_churn; 0 = deterministic */
    double s_noise;              /* S_noise of the churn */
} ts_sampler_config;

/* The network: F (n) at x_scaled = x / sigma_d (n) and time t. */
typedef void (*ts_denoiser_fn)(void *ctx, float *F, const float *x_scaled, double t);
/* Fresh standard normal noise (n) for the churn of sampler step `step`. */
typedef void (*ts_noise_fn)(void *ctx, int step, float *eps);

/* t_i = atan(sigma_i / sigma_d), i < N, on the Karras schedule, and t_N = 0. */
void ts_sampler_times(const ts_sampler_config *c, double *t /* (levels + 1) */);

/* x (n): on entry sigma_d z, on return the sample at t = 0. noise may be
 * NULL when churn is 0. Returns the number of network calls. */
int ts_sampler_run(const ts_sampler_config *c, ts_denoiser_fn F, ts_noise_fn noise, void *ctx, float *x, size_t n);

/* The deterministic regressor's forecast in place of sampling: x (n) =
 * -F(0, TS_TRIGFLOW_REGRESS_T), one network call (models/trigflow.h). */
void ts_sampler_regress(ts_denoiser_fn F, void *ctx, float *x, size_t n);

#endif
