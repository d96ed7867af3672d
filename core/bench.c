#include "core/bench.h"
#include "core/log.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const ts_backend *be;
    const ts_bench_shape *s;
    FILE *table, *jsonl;
    double ceiling; /* GFLOP/s */
    char shape_text[160];
} bench;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The op runs through a callback so every row is timed the same way: one
 * warm-up, then `reps` timed runs, each bracketed by the backend's sync. */
typedef void (*op_fn)(void *ctx);

static double median_seconds(bench *b, op_fn fn, void *ctx) {
    int reps = b->s->reps;
    double *t = ts_malloc(sizeof(double) * (size_t)reps);
    fn(ctx);
    b->be->sync();
    for (int r = 0; r < reps; r++) {
        double t0 = ts_now();
        fn(ctx);
        b->be->sync();
        t[r] = ts_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double m = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    free(t);
    return m;
}

static int wanted(const bench *b, const char *what) {
    const char *ops = b->s->ops;
    if (!ops || !*ops || strcmp(ops, "all") == 0) return 1;
    size_t n = strlen(what);
    for (const char *p = ops; (p = strstr(p, what)) != NULL; p += n)
        if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

static void emit(bench *b, const char *what, const char *detail, double seconds, double flops,
                 double bytes) {
    double gflops = flops / seconds * 1e-9, gbps = bytes / seconds * 1e-9;
    double ratio = b->ceiling > 0 ? gflops / b->ceiling : 0.0;
    if (b->table)
        fprintf(b->table, "%-20s %-30s %10.3f %10.2f %9.1f%% %10.2f\n", what, detail, seconds * 1e3, gflops,
                100.0 * ratio, gbps);
    if (b->jsonl) {
        fprintf(b->jsonl,
                "{\"what\":\"%s\",\"backend\":\"%s\",\"shape\":\"%s\",\"detail\":\"%s\",\"ms\":%.6f,"
                "\"gflops\":%.4f,\"ceiling_gflops\":%.4f,\"ratio\":%.5f,\"gbytes_per_s\":%.4f,\"reps\":%d}\n",
                what, b->be->name, b->shape_text, detail, seconds * 1e3, gflops, b->ceiling, ratio, gbps,
                b->s->reps);
        fflush(b->jsonl);
    }
}

/* ---- the op calls -------------------------------------------------------------- */

typedef struct {
    const ts_backend *be;
    int ta, tb, M, N, K, batch;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    int64_t sA, sB, sC;
} gemm_ctx;

static void run_gemm(void *p) {
    gemm_ctx *g = p;
    g->be->gemm_batched(g->ta, g->tb, g->M, g->N, g->K, 1.0f, g->A, g->lda, g->sA, g->B, g->ldb, g->sB, 0.0f,
                        g->C, g->ldc, g->sC, g->batch);
}

typedef struct {
    const ts_backend *be;
    float *x, *y, *z, *w, *r, *m, *v; /* buffers, meaning per op */
    const uint8_t *mask;
    const int32_t *idx;
    int T, C, B, H, R, N, mask_rows;
    size_t n;
} op_ctx;

static void run_rmsnorm_fwd(void *p) { op_ctx *o = p; o->be->rmsnorm_forward(o->y, o->r, o->x, o->w, o->T, o->C, 1e-6f); }
static void run_rmsnorm_bwd(void *p) {
    op_ctx *o = p;
    o->be->rmsnorm_backward(o->z, o->m, o->y, o->x, o->w, o->r, o->T, o->C);
}
static void run_modulate_fwd(void *p) {
    op_ctx *o = p;
    o->be->modulate_forward(o->y, o->x, o->w, o->w + o->C, o->B, o->T / o->B, o->C, 6 * o->C);
}
static void run_gated_add(void *p) {
    op_ctx *o = p;
    o->be->gated_add_forward(o->y, o->x, o->w, o->B, o->T / o->B, o->C, 6 * o->C);
}
static void run_swiglu_fwd(void *p) { op_ctx *o = p; o->be->swiglu_forward(o->y, o->x, o->T, o->H); }
static void run_swiglu_bwd(void *p) { op_ctx *o = p; o->be->swiglu_backward(o->z, o->y, o->x, o->T, o->H); }
static void run_softmax_fwd(void *p) {
    op_ctx *o = p;
    o->be->softmax_forward(o->y, o->x, o->mask, o->mask_rows, o->R, o->N, 0.125f);
}
static void run_softmax_bwd(void *p) { op_ctx *o = p; o->be->softmax_backward(o->z, o->x, o->y, o->R, o->N, 0.125f); }
static void run_gather(void *p) { op_ctx *o = p; o->be->gather_rows(o->y, o->x, o->idx, o->T, o->C); }
static void run_adamw(void *p) {
    op_ctx *o = p;
    o->be->adamw(o->x, o->y, o->m, o->v, o->n, 1e-4f, 0.85f, 0.9f, 1e-8f, 0.2f, 10, 1.0f);
}

/* ---- buffers -------------------------------------------------------------------- */

static float *dev_random(const ts_backend *be, size_t n, uint64_t stream, float scale) {
    float *h = ts_malloc(sizeof(float) * n);
    ts_rng_normal(ts_rng_key_make(7, TS_RNG_TEST), stream, 0, n, h);
    for (size_t i = 0; i < n; i++) h[i] *= scale;
    float *d = be->alloc(sizeof(float) * n);
    be->upload(d, h, sizeof(float) * n);
    free(h);
    return d;
}

static int check_shape(const ts_bench_shape *s, char *err, size_t cap) {
    if (s->dim % s->heads) {
        return TS_FAIL(err, cap, "bench.heads = %d does not divide bench.dim = %d", s->heads, s->dim);
    }
    if (s->grid_h % s->window || s->grid_w % s->window) {
        return TS_FAIL(err, cap, "bench.window = %d does not divide the grid %d x %d", s->window, s->grid_h,
                 s->grid_w);
    }
    return 0;
}

/* The ceiling is what the machine can do: the fastest of the runs, after a
 * few warm-up runs (thread pools start, clocks ramp up), where the ops get
 * medians. A median ceiling swung by 50 % on a shared 2-core machine. */
static double measure_ceiling(bench *b) {
    const ts_backend *be = b->be;
    int n = b->s->ceiling_n;
    float *A = dev_random(be, (size_t)n * n, 100, 1.0f), *B = dev_random(be, (size_t)n * n, 101, 1.0f);
    float *C = be->alloc(sizeof(float) * (size_t)n * n);
    gemm_ctx g = {be, 0, 0, n, n, n, 1, A, B, C, n, n, n, 0, 0, 0};
    for (int w = 0; w < 3; w++) run_gemm(&g);
    be->sync();
    double t = 1e300;
    for (int r = 0; r < b->s->reps + 2; r++) {
        double t0 = ts_now();
        run_gemm(&g);
        be->sync();
        double dt = ts_now() - t0;
        if (dt < t) t = dt;
    }
    be->free(A), be->free(B), be->free(C);
    return 2.0 * n * n * (double)n / t * 1e-9;
}

double ts_bench_ceiling(const ts_backend *be, int n, int reps) {
    ts_bench_shape s = {.ceiling_n = n, .reps = reps};
    bench b = {be, &s, NULL, NULL, 0.0, {0}};
    return measure_ceiling(&b);
}

int ts_bench_run(const ts_backend *be, const ts_bench_shape *s, FILE *table, FILE *jsonl, double *ceiling_gflops,
                 char *err, size_t errcap) {
    if (check_shape(s, err, errcap)) return -1;
    bench b = {be, s, table, jsonl, 0.0, {0}};
    const int B = s->batch, d = s->dim, Hh = s->heads, hd = d / Hh, Fh = s->hidden;
    const int Lw = s->window * s->window, T = B * s->grid_h * s->grid_w, nW = s->grid_h * s->grid_w / Lw; /* windows per sample */
    snprintf(b.shape_text, sizeof b.shape_text, "B%d %dx%d dim%d heads%d hidden%d win%d", B, s->grid_h,
             s->grid_w, d, Hh, Fh, s->window);

    b.ceiling = measure_ceiling(&b);
    if (ceiling_gflops) *ceiling_gflops = b.ceiling;
    if (table) {
        fprintf(table, "tessera bench on %s: %s, median of %d\n", be->name, b.shape_text, s->reps);
        fprintf(table, "ceiling: sgemm %dx%dx%d = %.2f GFLOP/s\n\n", s->ceiling_n, s->ceiling_n, s->ceiling_n,
                b.ceiling);
        fprintf(table, "%-20s %-30s %10s %10s %10s %10s\n", "op", "shape", "ms", "GFLOP/s", "of ceil",
                "GB/s");
    }
    emit(&b, "ceiling_sgemm", "square", 2.0 * pow(s->ceiling_n, 3) / (b.ceiling * 1e9), 2.0 * pow(s->ceiling_n, 3),
         3.0 * 4 * (double)s->ceiling_n * s->ceiling_n);

    /* Activations of one block, token-major (T, C). */
    float *x = dev_random(be, (size_t)T * d, 1, 1.0f);            /* (T, d) */
    float *qkv = dev_random(be, (size_t)T * 3 * d, 2, 1.0f);      /* (T, 3d) */
    float *Wqkv = dev_random(be, (size_t)3 * d * d, 3, 0.02f);    /* (3d, d) */
    float *Wo = dev_random(be, (size_t)d * d, 4, 0.02f);          /* (d, d) */
    float *W13 = dev_random(be, (size_t)2 * Fh * d, 5, 0.02f);    /* (2F, d) */
    float *W2 = dev_random(be, (size_t)d * Fh, 6, 0.02f);         /* (d, F) */
    float *up = dev_random(be, (size_t)T * 2 * Fh, 7, 1.0f);      /* (T, 2F) */
    float *hid = dev_random(be, (size_t)T * Fh, 8, 1.0f);         /* (T, F) */
    float *dhid = dev_random(be, (size_t)T * 2 * Fh, 9, 1.0f);    /* (T, 2F) */
    float *att = dev_random(be, (size_t)B * Hh * nW * Lw * Lw, 10, 1.0f); /* (B, H, nW, Lw, Lw) */
    float *att2 = be->alloc(sizeof(float) * (size_t)B * Hh * nW * Lw * Lw);
    float *datt = be->alloc(sizeof(float) * (size_t)B * Hh * nW * Lw * Lw);
    float *y = be->alloc(sizeof(float) * (size_t)T * d), *dx = be->alloc(sizeof(float) * (size_t)T * d);
    float *w = dev_random(be, (size_t)B * 6 * d, 11, 0.1f);       /* (B, 6d) adaLN rows; also rmsnorm weight */
    float *dw = be->alloc(sizeof(float) * (size_t)B * 6 * d);
    float *rstd = be->alloc(sizeof(float) * (size_t)T);
    /* q, k, v as (3, B, H, nW, Lw, hd) after the window permutation */
    float *qkvp = dev_random(be, (size_t)3 * T * d, 12, 1.0f);

    size_t nproj = (size_t)T * d;
    /* Time of the forward rows, summed for the whole-block figure below. */
    double fwd_seconds = 0.0;

#define TIMED_ROW(NAME, DETAIL, FN, CTX, FLOPS, BYTES, FORWARD)            \
    if (wanted(&b, NAME)) {                                               \
        double t_ = median_seconds(&b, FN, CTX);                          \
        if (FORWARD) fwd_seconds += t_;                        \
        emit(&b, NAME, DETAIL, t_, FLOPS, BYTES);                          \
    }
#define ROW(NAME, DETAIL, FN, CTX, FLOPS, BYTES) TIMED_ROW(NAME, DETAIL, FN, CTX, FLOPS, BYTES, 1)
#define BWD_ROW(NAME, DETAIL, FN, CTX, FLOPS, BYTES) TIMED_ROW(NAME, DETAIL, FN, CTX, FLOPS, BYTES, 0)

    char det[96];
    /* Linear layers: one GEMM over all local tokens, y = x W^T. */
    gemm_ctx g_qkv = {be, 0, 1, T, 3 * d, d, 1, x, Wqkv, qkv, d, d, 3 * d, 0, 0, 0};
    snprintf(det, sizeof det, "%dx%dx%d", T, 3 * d, d);
    ROW("qkv_gemm", det, run_gemm, &g_qkv, 2.0 * T * 3.0 * d * d, 4.0 * ((double)T * d + 3.0 * d * d + 3.0 * T * d));

    /* Window attention: one batched GEMM over (B, H, nW). */
    const float *q = qkvp, *k = qkvp + nproj, *v = qkvp + 2 * nproj;
    gemm_ctx g_s = {be, 0, 1, Lw, Lw, hd, B * Hh * nW, q, k, att, hd, hd, Lw, (int64_t)Lw * hd,
                    (int64_t)Lw * hd, (int64_t)Lw * Lw};
    snprintf(det, sizeof det, "%d x %dx%dx%d", B * Hh * nW, Lw, Lw, hd);
    ROW("attn_scores_gemm", det, run_gemm, &g_s, 2.0 * B * Hh * nW * (double)Lw * Lw * hd,
        4.0 * B * Hh * nW * (2.0 * Lw * hd + (double)Lw * Lw));

    op_ctx o_sm = {.be = be, .x = att, .y = att2, .z = datt, .R = B * Hh * nW * Lw, .N = Lw};
    double natt = (double)B * Hh * nW * Lw * Lw;
    snprintf(det, sizeof det, "%d x %d", o_sm.R, Lw);
    ROW("softmax_fwd", det, run_softmax_fwd, &o_sm, 5.0 * natt, 8.0 * natt);
    BWD_ROW("softmax_bwd", det, run_softmax_bwd, &o_sm, 5.0 * natt, 16.0 * natt);

    gemm_ctx g_v = {be, 0, 0, Lw, hd, Lw, B * Hh * nW, att2, v, y, Lw, hd, hd, (int64_t)Lw * Lw,
                    (int64_t)Lw * hd, (int64_t)Lw * hd};
    snprintf(det, sizeof det, "%d x %dx%dx%d", B * Hh * nW, Lw, hd, Lw);
    ROW("attn_values_gemm", det, run_gemm, &g_v, 2.0 * B * Hh * nW * (double)Lw * Lw * hd,
        4.0 * B * Hh * nW * (2.0 * Lw * hd + (double)Lw * Lw));

    gemm_ctx g_o = {be, 0, 1, T, d, d, 1, y, Wo, dx, d, d, d, 0, 0, 0};
    snprintf(det, sizeof det, "%dx%dx%d", T, d, d);
    ROW("proj_gemm", det, run_gemm, &g_o, 2.0 * T * (double)d * d, 4.0 * (2.0 * T * d + (double)d * d));

    gemm_ctx g_up = {be, 0, 1, T, 2 * Fh, d, 1, x, W13, up, d, d, 2 * Fh, 0, 0, 0};
    snprintf(det, sizeof det, "%dx%dx%d", T, 2 * Fh, d);
    ROW("mlp_up_gemm", det, run_gemm, &g_up, 2.0 * T * 2.0 * Fh * d, 4.0 * ((double)T * d + 2.0 * Fh * d + 2.0 * T * Fh));

    op_ctx o_sw = {.be = be, .x = up, .y = hid, .z = dhid, .T = T, .H = Fh};
    snprintf(det, sizeof det, "%d x %d", T, Fh);
    ROW("swiglu_fwd", det, run_swiglu_fwd, &o_sw, 6.0 * T * Fh, 12.0 * T * Fh);
    BWD_ROW("swiglu_bwd", det, run_swiglu_bwd, &o_sw, 12.0 * T * Fh, 28.0 * T * Fh);

    gemm_ctx g_dn = {be, 0, 1, T, d, Fh, 1, hid, W2, y, Fh, Fh, d, 0, 0, 0};
    snprintf(det, sizeof det, "%dx%dx%d", T, d, Fh);
    ROW("mlp_down_gemm", det, run_gemm, &g_dn, 2.0 * T * (double)d * Fh, 4.0 * ((double)T * Fh + (double)d * Fh + (double)T * d));

    op_ctx o_n = {.be = be, .x = x, .y = y, .z = dx, .w = w, .r = rstd, .m = dw, .T = T, .C = d, .B = B};
    snprintf(det, sizeof det, "%d x %d", T, d);
    ROW("rmsnorm_fwd", det, run_rmsnorm_fwd, &o_n, 4.0 * T * d, 8.0 * T * d);
    BWD_ROW("rmsnorm_bwd", det, run_rmsnorm_bwd, &o_n, 10.0 * T * d, 16.0 * T * d);
    ROW("modulate_fwd", det, run_modulate_fwd, &o_n, 2.0 * T * d, 8.0 * T * d);
    ROW("gated_add_fwd", det, run_gated_add, &o_n, 2.0 * T * d, 12.0 * T * d);

    /* The shift permutation of a whole (T, d) field. */
    int32_t *perm_h = ts_malloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) perm_h[i] = (int32_t)((i + T / 2 + s->window / 2) % T);
    int32_t *perm = be->alloc(sizeof(int32_t) * (size_t)T);
    be->upload(perm, perm_h, sizeof(int32_t) * (size_t)T);
    op_ctx o_g = {.be = be, .x = x, .y = y, .idx = perm, .T = T, .C = d};
    ROW("gather_rows", det, run_gather, &o_g, 0.0, 8.0 * T * d);

    /* One block's forward: the FLOPs of REFERENCE.md's formula,
     * 8 T d^2 + 4 T Lw d + 6 T d F, over the summed time of the forward rows
     * above (elementwise ops included; a block runs rmsnorm, modulate and
     * gated_add twice, counted here once each, so this is an upper bound). */
    if (!s->ops || !*s->ops || strcmp(s->ops, "all") == 0) {
        double flops = 8.0 * T * (double)d * d + 4.0 * T * (double)Lw * d + 6.0 * T * (double)d * Fh;
        emit(&b, "swin_block_fwd", "sum of forward rows", fwd_seconds, flops, 0.0);
    }

    /* AdamW over one block's parameters. */
    size_t np = (size_t)3 * d * d + (size_t)d * d + (size_t)3 * Fh * d + (size_t)6 * d * d;
    float *p = dev_random(be, np, 13, 0.02f), *gr = dev_random(be, np, 14, 1e-3f);
    float *m = be->alloc(sizeof(float) * np), *vv = be->alloc(sizeof(float) * np);
    op_ctx o_a = {.be = be, .x = p, .y = gr, .m = m, .v = vv, .n = np};
    snprintf(det, sizeof det, "%zu params", np);
    if (wanted(&b, "adamw")) emit(&b, "adamw", det, median_seconds(&b, run_adamw, &o_a), 12.0 * np, 28.0 * np);

    be->free(perm), free(perm_h);
    be->free(p), be->free(gr), be->free(m), be->free(vv);
    be->free(x), be->free(qkv), be->free(Wqkv), be->free(Wo), be->free(W13), be->free(W2), be->free(up);
    be->free(hid), be->free(dhid), be->free(att), be->free(att2), be->free(datt), be->free(y), be->free(dx);
    be->free(w), be->free(dw), be->free(rstd), be->free(qkvp);
#undef ROW
#undef BWD_ROW
#undef TIMED_ROW
    return 0;
}
