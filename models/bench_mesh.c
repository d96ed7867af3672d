#include "models/bench_mesh.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/bench.h"
#include "core/log.h"
#include "core/profile.h"
#include "core/rng.h"
#include "mesh/graph.h"
#include "mesh/mask.h"
#include "mesh/order.h"
#include "models/graph_attention.h"
#include "models/mesh_model.h"

typedef struct {
    const ts_backend *be;
    FILE *jsonl;
    double ceiling;
    char shape[160];
    int reps;
} mesh_bench;

/* The median of reps timed calls after one warm-up. */
static double median_time(int reps, void (*fn)(void *), void *ctx) {
    fn(ctx);
    double *t = ts_malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        double t0 = ts_now();
        fn(ctx);
        t[r] = ts_now() - t0;
    }
    for (int a = 0; a < reps; a++)
        for (int b = a + 1; b < reps; b++)
            if (t[b] < t[a]) {
                double x = t[a];
                t[a] = t[b], t[b] = x;
            }
    double m = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    free(t);
    return m;
}

static void row(const mesh_bench *b, const char *what, double seconds, double flops, double nnz, const char *extra) {
    double gflops = flops / seconds * 1e-9, ratio = b->ceiling > 0 ? gflops / b->ceiling : 0;
    printf("%-24s %10.1f %10.2f %8.1f%% %12.3f\n", what, seconds * 1e3, gflops, 100 * ratio, nnz / seconds * 1e-6);
    if (b->jsonl)
        fprintf(b->jsonl,
                "{\"what\":\"%s\",\"backend\":\"%s\",\"shape\":\"%s\",\"ms\":%.4f,\"gflops\":%.4f,"
                "\"ceiling_gflops\":%.4f,\"ratio\":%.5f,\"medges_per_s\":%.4f,\"reps\":%d%s}\n",
                what, b->be->name, b->shape, seconds * 1e3, gflops, b->ceiling, ratio, nnz / seconds * 1e-6, b->reps,
                extra ? extra : "");
}

/* A side x side lattice, each square cut into two triangles. */
static void lattice(int64_t side, float **pos, int32_t **cells, int64_t *ncells) {
    int64_t n = side * side;
    *pos = ts_malloc(sizeof(float) * (size_t)n * 2);
    for (int64_t j = 0; j < side; j++)
        for (int64_t i = 0; i < side; i++) (*pos)[2 * (j * side + i)] = (float)i, (*pos)[2 * (j * side + i) + 1] = (float)j;
    *ncells = 2 * (side - 1) * (side - 1);
    *cells = ts_malloc(sizeof(int32_t) * (size_t)*ncells * 3);
    int64_t c = 0;
    for (int64_t j = 0; j + 1 < side; j++)
        for (int64_t i = 0; i + 1 < side; i++) {
            int32_t a = (int32_t)(j * side + i), bb = a + 1, d = a + (int32_t)side, e = d + 1;
            int32_t t[6] = {a, bb, e, a, e, d};
            memcpy(*cells + 3 * c, t, sizeof t);
            c += 2;
        }
}

typedef struct {
    const ts_csr *mask, *mask_t;
    float *q, *k, *v, *o, *lse, *dq, *dk, *dv, *dout, *delta;
    int H, D;
} attn_ctx;

static void attn_fwd(void *p) {
    attn_ctx *a = p;
    ts_gattn_forward(a->o, a->lse, a->q, a->k, a->v, a->mask, a->H, a->D, 1.0f / sqrtf((float)a->D));
}

static void attn_bwd(void *p) {
    attn_ctx *a = p;
    ts_gattn_backward(a->dq, a->dk, a->dv, a->delta, a->dout, a->o, a->lse, a->q, a->k, a->v, a->mask, a->mask_t, a->H,
                      a->D, 1.0f / sqrtf((float)a->D));
}

typedef struct {
    ts_mesh_model *m;
    float *out, *feat, *dout;
} model_ctx;

static void model_fwd(void *p) {
    model_ctx *c = p;
    ts_mesh_model_forward(c->m, c->out, c->feat);
}

static void model_step(void *p) {
    model_ctx *c = p;
    ts_mesh_model_forward(c->m, c->out, c->feat);
    c->m->be->zero(c->m->grads.data, sizeof(float) * c->m->grads.total);
    ts_mesh_model_backward(c->m, c->dout);
}

static float *random_block(size_t n, uint64_t stream, float scale) {
    float *x = ts_malloc(sizeof(float) * n);
    ts_rng_key key = ts_rng_key_make(1, TS_RNG_TEST);
    for (size_t i = 0; i < n; i++) x[i] = scale * ts_rng_normal1(key, stream, i);
    return x;
}

/* Rows of one model (depth layers): forward and training step. */
static int bench_model(mesh_bench *b, const ts_bench_mesh_shape *s, int depth, int recompute, const ts_csr *mask,
                       int64_t N, const char *fwd_name, const char *step_name, char *err, size_t errcap) {
    ts_mesh_model m;
    ts_mesh_model_config mc = {.c_in = 2 + TS_MESH_MODEL_NODE_TYPES, .c_out = 2, .dim = s->dim, .heads = s->heads,
                               .hidden = s->hidden, .depth = depth, .n_globals = s->globals, .recompute = recompute};
    if (ts_mesh_model_create(&m, b->be, &mc, err, errcap)) return -1;
    ts_mesh_model_init_weights(&m, 1, 1);
    if (ts_mesh_model_prepare(&m, N, mask, err, errcap)) {
        ts_mesh_model_free(&m);
        return -1;
    }
    model_ctx c = {&m, ts_malloc(sizeof(float) * (size_t)N * 2), random_block((size_t)N * (size_t)mc.c_in, 21, 1.0f),
                   random_block((size_t)N * 2, 22, 1e-3f)};
    double flops = ts_mesh_model_forward_flops(&m), nnz = (double)ts_csr_nnz(mask) * depth;
    if (fwd_name) row(b, fwd_name, median_time(b->reps, model_fwd, &c), flops, nnz, NULL);
    double t = median_time(b->reps, model_step, &c);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char extra[200];
    snprintf(extra, sizeof extra, ",\"depth\":%d,\"recompute\":%d,\"activations_mb\":%.1f,\"max_rss_mb\":%.1f", depth,
             recompute, (double)m.arena.peak / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    row(b, step_name, t, 3 * flops, nnz, extra);
    printf("  %s: %d layers%s, activations %.0f MB, peak resident %.0f MB\n", step_name, depth,
           recompute ? " (recomputed)" : "", (double)m.arena.peak / 1048576.0, (double)ru.ru_maxrss / 1024.0);
    free(c.out), free(c.feat), free(c.dout);
    ts_mesh_model_free(&m);
    return 0;
}

/* Where a one-layer training step's time goes: the backend's ops through the
 * profiler; the rest is host work, the sparse attention above all. */
static int profile_step(mesh_bench *b, const ts_bench_mesh_shape *s, const ts_csr *mask, int64_t N, char *err,
                        size_t errcap) {
    const ts_backend *prof = ts_profile_backend(b->be);
    ts_mesh_model m;
    ts_mesh_model_config mc = {.c_in = 2 + TS_MESH_MODEL_NODE_TYPES, .c_out = 2, .dim = s->dim, .heads = s->heads,
                               .hidden = s->hidden, .depth = 1, .n_globals = s->globals, .recompute = 0};
    if (ts_mesh_model_create(&m, prof, &mc, err, errcap)) return -1;
    ts_mesh_model_init_weights(&m, 1, 1);
    if (ts_mesh_model_prepare(&m, N, mask, err, errcap)) {
        ts_mesh_model_free(&m);
        return -1;
    }
    model_ctx c = {&m, ts_malloc(sizeof(float) * (size_t)N * 2), random_block((size_t)N * (size_t)mc.c_in, 21, 1.0f),
                   random_block((size_t)N * 2, 22, 1e-3f)};
    model_step(&c);
    ts_profile_reset();
    double t0 = ts_now();
    model_step(&c);
    double total = ts_now() - t0;
    ts_profile_entry e[TS_PROFILE_OPS];
    int n = ts_profile_entries(e, TS_PROFILE_OPS);
    printf("\none-layer training step profile (%.1f ms):\n%-20s %8s %10s %8s\n", total * 1e3, "op", "calls", "ms", "share");
    double listed = 0;
    for (int i = 0; i < n; i++) {
        printf("%-20s %8ld %10.1f %7.1f%%\n", e[i].name, e[i].calls, e[i].seconds * 1e3, 100 * e[i].seconds / total);
        listed += e[i].seconds;
        if (b->jsonl)
            fprintf(b->jsonl, "{\"what\":\"profile\",\"op\":\"%s\",\"backend\":\"%s\",\"shape\":\"%s\",\"calls\":%ld,"
                              "\"ms\":%.6f,\"share\":%.5f}\n",
                    e[i].name, b->be->name, b->shape, e[i].calls, e[i].seconds * 1e3, e[i].seconds / total);
    }
    printf("%-20s %8s %10.1f %7.1f%%\n", "(host: attention)", "", (total - listed) * 1e3, 100 * (total - listed) / total);
    free(c.out), free(c.feat), free(c.dout);
    ts_mesh_model_free(&m);
    return 0;
}

int ts_bench_mesh(const ts_backend *be, const ts_bench_mesh_shape *s, FILE *jsonl, char *err, size_t errcap) {
    if (be->kind != TS_BACKEND_CPU) {
        return TS_FAIL(err, errcap, "the mesh model runs on the cpu backend only (its sparse attention has no %s kernel yet)",
                 be->name);
    }
    mesh_bench b = {be, jsonl, 0, "", s->reps};
    int64_t side = (int64_t)ceil(sqrt((double)s->nodes)), N = side * side;
    float *pos;
    int32_t *cells;
    int64_t ncells;
    lattice(side, &pos, &cells, &ncells);
    int32_t *perm = ts_malloc(sizeof(int32_t) * (size_t)N), *inv = ts_malloc(sizeof(int32_t) * (size_t)N);
    if (ts_curve_order(pos, N, 2, TS_CURVE_HILBERT, 0, perm, inv, err, errcap)) return -1;
    ts_renumber_ids(cells, (size_t)ncells * 3, inv);
    ts_csr adj, mask;
    if (ts_mesh_edges_from_cells(N, ncells, 3, cells, &adj, err, errcap)) return -1;
    /* the lattice gives 7 entries a row (6 neighbours and itself), the G
     * global tokens 2G (a column in every row, and their own full rows), a
     * window of half-width w up to 2w more */
    double per_row = (double)s->edges / (double)N - 7.0 - 2.0 * s->globals;
    int w = per_row > 0 ? (int)lround(per_row / 2) : 0;
    ts_mask_params mp = {1, w, 1, s->globals};
    if (ts_mesh_mask(&adj, &mp, &mask, err, errcap)) return -1;
    snprintf(b.shape, sizeof b.shape, "nodes %lld mask %lld dim%d heads%d hidden%d G%d", (long long)N,
             (long long)ts_csr_nnz(&mask), s->dim, s->heads, s->hidden, s->globals);
    b.ceiling = ts_bench_ceiling(be, s->ceiling_n, s->reps);
    printf("tessera bench model.kind=mesh on %s: %lldx%lld lattice, %lld nodes, %lld mask entries (khop 1, window %d), "
           "dim %d, %d heads, hidden %d, median of %d\n",
           be->name, (long long)side, (long long)side, (long long)N, (long long)ts_csr_nnz(&mask), w, s->dim, s->heads,
           s->hidden, s->reps);
    printf("ceiling: sgemm %dx%dx%d = %.2f GFLOP/s\n\n", s->ceiling_n, s->ceiling_n, s->ceiling_n, b.ceiling);
    printf("%-24s %10s %10s %9s %12s\n", "row", "ms", "GFLOP/s", "of ceil", "Medges/s");
    if (jsonl)
        fprintf(jsonl, "{\"what\":\"ceiling_sgemm\",\"backend\":\"%s\",\"shape\":\"square %d\",\"gflops\":%.4f}\n",
                be->name, s->ceiling_n, b.ceiling);

    /* the attention alone, over the whole mask */
    const int64_t T = mask.n_rows;
    const int H = s->heads, D = s->dim / s->heads;
    ts_csr mask_t;
    ts_csr_transpose(&mask, &mask_t, NULL);
    size_t nd = (size_t)T * (size_t)s->dim;
    attn_ctx a = {&mask, &mask_t, random_block(nd, 1, 1.0f), random_block(nd, 2, 1.0f), random_block(nd, 3, 1.0f),
                  ts_malloc(sizeof(float) * nd), ts_malloc(sizeof(float) * (size_t)T * (size_t)H),
                  ts_calloc(nd, sizeof(float)), ts_calloc(nd, sizeof(float)), ts_calloc(nd, sizeof(float)),
                  random_block(nd, 4, 1.0f), ts_malloc(sizeof(float) * (size_t)T * (size_t)H), H, D};
    double af = ts_gattn_flops(&mask, H, D), nnz = (double)ts_csr_nnz(&mask);
    row(&b, "mesh_attention_fwd", median_time(s->reps, attn_fwd, &a), af, nnz, NULL);
    row(&b, "mesh_attention_bwd", median_time(s->reps, attn_bwd, &a), 2 * af, nnz, NULL);
    free(a.q), free(a.k), free(a.v), free(a.o), free(a.lse), free(a.dq), free(a.dk), free(a.dv), free(a.dout), free(a.delta);
    ts_csr_free(&mask_t);

    int rc = bench_model(&b, s, 1, 0, &mask, N, "mesh_layer_fwd", "mesh_layer_train_step", err, errcap);
    if (!rc) rc = profile_step(&b, s, &mask, N, err, errcap);
    if (!rc && s->depth > 1)
        rc = bench_model(&b, s, s->depth, 1, &mask, N, NULL, "mesh_train_step", err, errcap);
    ts_csr_free(&adj), ts_csr_free(&mask);
    free(pos), free(cells), free(perm), free(inv);
    return rc;
}
