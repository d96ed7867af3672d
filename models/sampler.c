#include "models/sampler.h"
#include "core/log.h"
#include "models/trigflow.h"

#include <math.h>
#include <stdlib.h>

void ts_sampler_times(const ts_sampler_config *c, double *t) {
    const int N = c->levels;
    double a = pow(c->sigma_max, 1.0 / c->rho), b = pow(c->sigma_min, 1.0 / c->rho);
    for (int i = 0; i < N; i++) {
        double frac = N > 1 ? (double)i / (N - 1) : 0.0;
        t[i] = atan(pow(a + frac * (b - a), c->rho) / c->sigma_d);
    }
    t[N] = 0.0;
}

/* d = sigma_d F(x / sigma_d, t) */
static void slope(const ts_sampler_config *c, ts_denoiser_fn F, void *ctx, const float *x, float *scaled, float *d,
                  size_t n, double t) {
    float inv = (float)(1.0 / c->sigma_d), sd = (float)c->sigma_d;
    for (size_t i = 0; i < n; i++) scaled[i] = x[i] * inv;
    F(ctx, d, scaled, t);
    for (size_t i = 0; i < n; i++) d[i] *= sd;
}

/* EDM churn in y = x / cos t, whose noise level is sigma = sigma_d tan t:
 * raise it to sigma (1 + gamma) with fresh noise, map back. Returns t-hat. */
static double churn_step(const ts_sampler_config *c, ts_noise_fn noise, void *ctx, int step, double t, float *x,
                         float *eps, size_t n) {
    double gamma = fmin(c->churn / c->levels, sqrt(2.0) - 1.0);
    double sigma = c->sigma_d * tan(t), sigma_hat = sigma * (1.0 + gamma);
    double t_hat = atan(sigma_hat / c->sigma_d);
    double add = sqrt(sigma_hat * sigma_hat - sigma * sigma) * c->s_noise;
    noise(ctx, step, eps);
    double to_y = 1.0 / cos(t), to_x = cos(t_hat);
    for (size_t i = 0; i < n; i++) x[i] = (float)((x[i] * to_y + add * eps[i]) * to_x);
    return t_hat;
}

int ts_sampler_run(const ts_sampler_config *c, ts_denoiser_fn F, ts_noise_fn noise, void *ctx, float *x, size_t n) {
    const int N = c->levels;
    double *t = ts_malloc(sizeof(double) * (size_t)(N + 1));
    ts_sampler_times(c, t);
    float *d = ts_malloc(sizeof(float) * n), *d2 = ts_malloc(sizeof(float) * n);
    float *xe = ts_malloc(sizeof(float) * n), *scaled = ts_malloc(sizeof(float) * n);
    int calls = 0;
    for (int i = 0; i < N; i++) {
        double ti = t[i];
        if (c->churn > 0 && noise) ti = churn_step(c, noise, ctx, i + 1, ti, x, d2, n);
        double h = t[i + 1] - ti;
        slope(c, F, ctx, x, scaled, d, n, ti);
        calls++;
        for (size_t k = 0; k < n; k++) xe[k] = x[k] + (float)h * d[k];
        if (i == N - 1) { /* the last step, to t = 0, is Euler only */
            for (size_t k = 0; k < n; k++) x[k] = xe[k];
            break;
        }
        slope(c, F, ctx, xe, scaled, d2, n, t[i + 1]);
        calls++;
        for (size_t k = 0; k < n; k++) x[k] += (float)(0.5 * h) * (d[k] + d2[k]);
    }
    free(t), free(d), free(d2), free(xe), free(scaled);
    return calls;
}

void ts_sampler_regress(ts_denoiser_fn F, void *ctx, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.0f;
    F(ctx, x, x, TS_TRIGFLOW_REGRESS_T); /* the network reads x before it writes F */
    for (size_t i = 0; i < n; i++) x[i] = -x[i];
}
