/* The pieces of a training step: TrigFlow noise levels, noisy inputs and
 * targets, the weighted loss and its gradient, the learning-rate schedule,
 * clipping and the EMA. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/params.h"
#include "core/rng.h"
#include "models/optim.h"
#include "models/trigflow.h"
#include "tests/cunit_run.h"

#define M_PI_2_VALUE 1.57079632679489661923

static void test_time(void) {
    ts_trigflow tf = {0.02, 200.0, 1.0};
    CU_ASSERT(fabs(ts_trigflow_time(&tf, 0.0) - atan(0.02)) < 1e-15);
    CU_ASSERT(fabs(ts_trigflow_time(&tf, 1.0) - atan(200.0)) < 1e-12);
    /* tau is log-uniform: the median draw is the geometric mean of the range */
    CU_ASSERT(fabs(tan(ts_trigflow_time(&tf, 0.5)) - 2.0) < 1e-12);
    double prev = -1;
    for (int i = 0; i <= 100; i++) {
        double t = ts_trigflow_time(&tf, i / 100.0);
        CU_ASSERT(t > prev && t > 0 && t < M_PI_2_VALUE);
        prev = t;
    }
}

/* (x_t, v) is a rotation of (x0, z) by t: norms are kept, t = 0 gives
 * (x0, z) and t = pi/2 gives (z, -x0). */
static void test_noise(void) {
    enum { N = 1000 };
    float x0[N], z[N], xt[N], v[N];
    ts_rng_key k = ts_rng_key_make(3, TS_RNG_TEST);
    ts_rng_normal(k, 0, 0, N, x0);
    ts_rng_normal(k, 1, 0, N, z);
    ts_trigflow_noise(0.7, x0, z, N, xt, v);
    for (int i = 0; i < N; i++)
        CU_ASSERT(fabs((double)xt[i] * xt[i] + (double)v[i] * v[i] - (double)x0[i] * x0[i] - (double)z[i] * z[i]) <
                  1e-5 * (1 + x0[i] * x0[i] + z[i] * z[i]));
    ts_trigflow_noise(0.0, x0, z, N, xt, v);
    CU_ASSERT(memcmp(xt, x0, sizeof xt) == 0 && memcmp(v, z, sizeof v) == 0);
    ts_trigflow_noise(M_PI_2_VALUE, x0, z, N, xt, v);
    for (int i = 0; i < N; i++) CU_ASSERT(fabs(xt[i] - z[i]) < 1e-6 && fabs(v[i] + x0[i]) < 1e-6);
}

/* The loss gradient against central differences of the loss itself. */
static void test_loss_gradient(void) {
    enum { T = 7, C = 3 };
    ts_trigflow tf = {0.02, 200.0, 1.3};
    float F[T * C], v[T * C], wt[T], wc[C], d[T * C], scratch[T * C];
    ts_rng_key k = ts_rng_key_make(4, TS_RNG_TEST);
    ts_rng_normal(k, 0, 0, T * C, F);
    ts_rng_normal(k, 1, 0, T * C, v);
    ts_rng_uniform(k, 2, 0, T, wt);
    ts_rng_uniform(k, 3, 0, C, wc);
    double norm = 1.0 / (T * C);
    double L = ts_trigflow_loss(&tf, F, v, wt, wc, T, C, norm, d);
    double manual = 0;
    for (int i = 0; i < T; i++)
        for (int c = 0; c < C; c++) {
            double e = 1.3 * F[i * C + c] - v[i * C + c];
            manual += wt[i] * wc[c] * e * e * norm;
        }
    CU_ASSERT(fabs(L - manual) < 1e-6 * manual);
    for (int i = 0; i < T * C; i++) {
        float keep = F[i];
        double h = 1e-2;
        F[i] = keep + (float)h;
        double lp = ts_trigflow_loss(&tf, F, v, wt, wc, T, C, norm, scratch);
        F[i] = keep - (float)h;
        double lm = ts_trigflow_loss(&tf, F, v, wt, wc, T, C, norm, scratch);
        F[i] = keep;
        /* the loss is quadratic in F: central differences are exact up to rounding */
        CU_ASSERT(fabs((lp - lm) / (2 * h) - d[i]) < 1e-4 * (fabs(d[i]) + 1e-3));
    }
}

static void test_lat_weights(void) {
    double lat[4] = {67.5, 22.5, -22.5, -67.5};
    float w[4];
    ts_trigflow_lat_weights(lat, 4, w);
    double s = w[0] + w[1] + w[2] + w[3];
    CU_ASSERT(fabs(s - 4) < 1e-6);
    CU_ASSERT(fabs(w[0] / w[1] - (cos(67.5 * M_PI_2_VALUE / 90) + 0.01) / (cos(22.5 * M_PI_2_VALUE / 90) + 0.01)) < 1e-6);
    CU_ASSERT(w[0] == w[3] && w[1] == w[2]);
}

static void test_schedule(void) {
    ts_optim_config c = {.lr = 2e-4, .lr_min = 2e-6, .warmup = 100, .total = 1100};
    CU_ASSERT(fabs(ts_optim_lr(&c, 50) - 1e-4) < 1e-15);
    CU_ASSERT(fabs(ts_optim_lr(&c, 100) - 2e-4) < 1e-15);
    CU_ASSERT(fabs(ts_optim_lr(&c, 600) - 0.5 * (2e-4 + 2e-6)) < 1e-15);
    CU_ASSERT(fabs(ts_optim_lr(&c, 1100) - 2e-6) < 1e-15);
    CU_ASSERT(fabs(ts_optim_lr(&c, 5000) - 2e-6) < 1e-15);
    for (long s = 101; s < 1100; s++) CU_ASSERT(ts_optim_lr(&c, s + 1) <= ts_optim_lr(&c, s));
}

/* Clipping scales the gradient to the limit; the EMA follows the weights. */
static void test_step(void) {
    const ts_backend *be = ts_backend_cpu();
    ts_params p, g, m, v, e;
    ts_params_init(&p);
    int64_t shape[1] = {5};
    ts_params_add(&p, "w", 1, shape);
    ts_params_alloc(&p, be);
    ts_params_alloc_like(&g, &p), ts_params_alloc_like(&m, &p), ts_params_alloc_like(&v, &p);
    ts_params_alloc_like(&e, &p);
    for (int i = 0; i < 5; i++) p.data[i] = e.data[i] = 1.0f, g.data[i] = 4.0f * (i + 1);
    double norm = sqrt(be->sumsq(g.data, 5));
    ts_optim_config c = {.lr = 1e-2, .lr_min = 0, .warmup = 0, .total = 10, .beta1 = 0.9, .beta2 = 0.95,
                         .eps = 1e-8, .weight_decay = 0, .clip = 1.0, .ema_decay = 0.75};
    double scale = ts_optim_step(&c, 1, &p, &g, &m, &v, &e, norm), lr = ts_optim_lr(&c, 1);
    CU_ASSERT(fabs(scale - 1.0 / norm) < 1e-12);
    for (int i = 0; i < 5; i++) {
        /* Adam's first step moves every weight by lr against the sign of g. */
        CU_ASSERT(fabs(p.data[i] - (1.0 - lr)) < 1e-6);
        CU_ASSERT(fabs(m.data[i] - 0.1 * 4.0 * (i + 1) / norm) < 1e-6);
        CU_ASSERT(fabs(e.data[i] - (0.75 * 1.0 + 0.25 * p.data[i])) < 1e-7);
    }
    ts_params_free(&p), ts_params_free(&g), ts_params_free(&m), ts_params_free(&v), ts_params_free(&e);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("training step parts", NULL, NULL);
    if (!s || !CU_add_test(s, "noise level", test_time) || !CU_add_test(s, "noisy input and target", test_noise) ||
        !CU_add_test(s, "loss gradient", test_loss_gradient) || !CU_add_test(s, "latitude weights", test_lat_weights) ||
        !CU_add_test(s, "schedule", test_schedule) || !CU_add_test(s, "clip, AdamW, EMA", test_step))
        return 2;
    return ts_cunit_run();
}
