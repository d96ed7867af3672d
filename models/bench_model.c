#include "models/bench_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/log.h"
#include "core/profile.h"
#include "models/optim.h"
#include "models/swin.h"

/* The default data channels: 9 state, 3 forcings; input = noisy target,
 * state and forcings. */
enum { BENCH_STATE = 9, BENCH_FORCING = 3 };

typedef struct {
    ts_swin model;
    ts_params m, v;
    float *x, *out, *dout, t[64];
    ts_optim_config opt;
} bench_model;

static void make_model(bench_model *b, const ts_backend *be, const ts_swin_config *mc, int B) {
    char err[512];
    memset(b, 0, sizeof *b);
    if (ts_swin_create(&b->model, be, mc, B, NULL, err, sizeof err)) ts_usage_error("%s", err);
    ts_swin_init_weights(&b->model, 1, 0); /* random everywhere: timing must not meet zeros */
    ts_params_alloc_like(&b->m, &b->model.params);
    ts_params_alloc_like(&b->v, &b->model.params);
    size_t T = (size_t)b->model.T;
    b->x = be->alloc(sizeof(float) * T * mc->c_in);
    b->out = be->alloc(sizeof(float) * T * mc->c_out);
    b->dout = be->alloc(sizeof(float) * T * mc->c_out);
    float *h = malloc(sizeof(float) * T * mc->c_in);
    for (size_t i = 0; i < T * mc->c_in; i++) h[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    be->upload(b->x, h, sizeof(float) * T * mc->c_in);
    be->upload(b->dout, h, sizeof(float) * T * mc->c_out);
    free(h);
    for (int k = 0; k < B && k < 64; k++) b->t[k] = 0.2f + 0.02f * k;
    b->opt = (ts_optim_config){.lr = 1e-4, .lr_min = 1e-6, .warmup = 10, .total = 1000, .beta1 = 0.85, .beta2 = 0.9,
                               .eps = 1e-8, .weight_decay = 0.2, .clip = 1.0, .ema_decay = 0};
}

static void free_model(bench_model *b) {
    const ts_backend *be = b->model.be;
    be->free(b->x), be->free(b->out), be->free(b->dout);
    ts_params_free(&b->m), ts_params_free(&b->v);
    ts_swin_free(&b->model);
}

static void train_step(bench_model *b, long step) {
    const ts_backend *be = b->model.be;
    ts_swin_forward(&b->model, b->out, b->x, b->t);
    be->zero(b->model.grads.data, sizeof(float) * b->model.grads.total);
    ts_swin_backward(&b->model, b->dout);
    double norm = be->sumsq(b->model.grads.data, b->model.grads.total);
    ts_optim_step(&b->opt, step, &b->model.params, &b->model.grads, &b->m, &b->v, NULL, norm > 0 ? norm : 1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void row(FILE *jsonl, const char *what, const char *backend, const char *shape, double ms, double gflops,
                double ceiling, const char *extra) {
    printf("%-20s %-30s %10.3f %10.2f %9.1f%%\n", what, "", ms, gflops, 100.0 * gflops / ceiling);
    if (jsonl)
        fprintf(jsonl,
                "{\"what\":\"%s\",\"backend\":\"%s\",\"shape\":\"%s\",\"ms\":%.6f,\"gflops\":%.4f,"
                "\"ceiling_gflops\":%.4f,\"ratio\":%.5f%s}\n",
                what, backend, shape, ms, gflops, ceiling, gflops / ceiling, extra ? extra : "");
}

/* The whole model: forward, training step, memory, per-op profile. */
void ts_bench_model(const ts_backend *be, const ts_bench_shape *s, int depth, double ceiling, FILE *jsonl) {
    ts_swin_config mc = {.H = s->grid_h, .W = s->grid_w, .window = s->window, .c_in = 2 * BENCH_STATE + BENCH_FORCING,
                         .c_out = BENCH_STATE, .dim = s->dim, .heads = s->heads, .hidden = s->hidden, .depth = depth,
                         .t_freq = 256};
    bench_model b;
    make_model(&b, be, &mc, s->batch);
    double fwd_flops = ts_swin_forward_flops(&b.model), *t = malloc(sizeof(double) * (size_t)s->reps);
    char shape[160];
    snprintf(shape, sizeof shape, "B%d %dx%d dim%d heads%d hidden%d win%d depth%d", s->batch, s->grid_h, s->grid_w,
             s->dim, s->heads, s->hidden, s->window, depth);
    printf("\nwhole model: %s, %zu parameters\n", shape, ts_params_count(&b.model.params));
    ts_swin_forward(&b.model, b.out, b.x, b.t); /* warm-up */
    for (int r = 0; r < s->reps; r++) {
        be->sync();
        double t0 = ts_now();
        ts_swin_forward(&b.model, b.out, b.x, b.t);
        be->sync();
        t[r] = ts_now() - t0;
    }
    double fwd = median_of(t, s->reps);
    train_step(&b, 1);
    for (int r = 0; r < s->reps; r++) {
        be->sync();
        double t0 = ts_now();
        train_step(&b, r + 2);
        be->sync();
        t[r] = ts_now() - t0;
    }
    double step = median_of(t, s->reps);
    /* memory: the five parameter-sized blocks of a run (weights, gradients,
     * two moments, EMA) and the activation arena, and the process peak */
    double block_mb = 4.0 * (double)b.model.params.total / 1048576.0, arena_mb = (double)b.model.arena.capacity / 1048576.0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char extra[256];
    snprintf(extra, sizeof extra, ",\"model_memory_mb\":%.2f,\"activations_mb\":%.2f,\"max_rss_mb\":%.1f",
             5 * block_mb + arena_mb, arena_mb, ru.ru_maxrss / 1024.0);
    row(jsonl, "swin_forward", be->name, shape, fwd * 1e3, fwd_flops / fwd * 1e-9, ceiling, extra);
    row(jsonl, "swin_train_step", be->name, shape, step * 1e3, 3.0 * fwd_flops / step * 1e-9, ceiling, extra);
    printf("memory: %.1f MB model state (5 x %.1f MB parameter blocks) + %.1f MB activations; process peak %.1f MB\n",
           5 * block_mb, block_mb, arena_mb, ru.ru_maxrss / 1024.0);
    free_model(&b);

    /* where a training step's time goes: one step through the profiler */
    const ts_backend *prof = ts_profile_backend(be);
    make_model(&b, prof, &mc, s->batch);
    train_step(&b, 1);
    ts_profile_reset();
    double t0 = ts_now();
    train_step(&b, 2);
    double total = ts_now() - t0;
    ts_profile_entry e[TS_PROFILE_OPS];
    int n = ts_profile_entries(e, TS_PROFILE_OPS);
    printf("\ntraining step profile (%.3f ms):\n%-20s %8s %10s %8s\n", total * 1e3, "op", "calls", "ms", "share");
    double listed = 0;
    for (int i = 0; i < n; i++) {
        printf("%-20s %8ld %10.3f %7.1f%%\n", e[i].name, e[i].calls, e[i].seconds * 1e3, 100 * e[i].seconds / total);
        listed += e[i].seconds;
        if (jsonl)
            fprintf(jsonl, "{\"what\":\"profile\",\"op\":\"%s\",\"backend\":\"%s\",\"shape\":\"%s\",\"calls\":%ld,"
                           "\"ms\":%.6f,\"share\":%.5f}\n",
                    e[i].name, be->name, shape, e[i].calls, e[i].seconds * 1e3, e[i].seconds / total);
    }
    printf("%-20s %8s %10.3f %7.1f%%\n", "(host work)", "", (total - listed) * 1e3, 100 * (total - listed) / total);
    free_model(&b);
    free(t);
}

