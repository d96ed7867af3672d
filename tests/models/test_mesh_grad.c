/* The mesh graph transformer's backward against finite differences of its
 * forward and loss, on a tiny random graph whose weights are ALL random and
 * non-zero (biases, norm gains and global tokens included, so no gradient
 * is vacuously zero); activation recomputation against none, bit for bit;
 * the loss against its definition; relabelling the nodes relabels the
 * outputs; and the running normalizer against two-pass statistics.
 *
 * Gradient tolerance. L is the masked MSE loss (about 1 here), accumulated
 * in double from an fp32 forward. Each check compares the backward's value
 * with central differences with Richardson extrapolation, (4 D(e) - D(2e)) / 3
 * (truncation O(e^4)), e = 1e-2, along a unit coordinate or a random
 * direction. The fp32 forward leaves ~1e-6 of rounding in L, i.e. a few 1e-5
 * in a difference quotient of step 2e: measured on a correct backward, the
 * worst absolute disagreement of a small gradient is 3.3e-5 and the worst
 * relative one of gradients above 0.1 is 5e-4. Agreement is demanded to
 * 3e-3 |g| + 1e-4 (margins of 3 and 6); a missing or wrong term errs at
 * order 1 of that gradient (dropping any one term was checked to fail).
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/rng.h"
#include "mesh/csr.h"
#include "models/mesh_model.h"
#include "models/mesh_norm.h"
#include "tests/cunit_run.h"

enum { N_NODES = 30, N_GLOBALS = 2, N_FIELDS = 3, C_OUT = 2 };
static const double REL_TOL = 3e-3, ABS_TOL = 1e-4;

typedef struct {
    int64_t N, G;
    ts_csr mask;
    float *feat;     /* (N, c_in) */
    float *target;   /* (N, C_OUT) */
    int32_t *type;   /* (N) */
    uint8_t *lmask;  /* (N) */
    uint8_t *adj;    /* (T, T) the mask as a dense 0/1 matrix */
} graph;

static const ts_mesh_model_config CFG = {.c_in = N_FIELDS + TS_MESH_MODEL_NODE_TYPES, .c_out = C_OUT, .dim = 16,
                                         .heads = 2, .hidden = 48, .depth = 2, .n_globals = N_GLOBALS};

/* CSR of a dense 0/1 matrix (columns ascending by construction). */
static void dense_to_csr(const uint8_t *adj, int64_t T, ts_csr *m) {
    m->n_rows = m->n_cols = T;
    m->rowptr = calloc((size_t)T + 1, sizeof(int64_t));
    int64_t nnz = 0;
    for (int64_t i = 0; i < T * T; i++) nnz += adj[i];
    m->col = malloc(sizeof(int32_t) * (size_t)nnz);
    nnz = 0;
    for (int64_t i = 0; i < T; i++) {
        for (int64_t j = 0; j < T; j++)
            if (adj[i * T + j]) m->col[nnz++] = (int32_t)j;
        m->rowptr[i + 1] = nnz;
    }
}

/* A random symmetric graph (each pair an edge with probability 0.12, a
 * sliding window |i-j| <= 2), plus the global tokens' rows and columns. */
static graph make_graph(uint64_t seed) {
    graph g;
    g.N = N_NODES, g.G = N_GLOBALS;
    const int64_t N = g.N, T = N + g.G;
    ts_rng_key key = ts_rng_key_make(seed, TS_RNG_TEST);
    g.adj = calloc((size_t)(T * T), 1);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j <= i; j++)
            if (i - j <= 2 || ts_rng_uniform1(key, 1, (uint64_t)(i * T + j)) < 0.12f)
                g.adj[i * T + j] = g.adj[j * T + i] = 1;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++)
            if (i >= N || j >= N) g.adj[i * T + j] = 1;
    dense_to_csr(g.adj, T, &g.mask);

    g.type = malloc(sizeof(int32_t) * (size_t)N);
    g.lmask = malloc((size_t)N);
    for (int64_t i = 0; i < N; i++) g.type[i] = (int32_t)(ts_rng_uniform1(key, 2, (uint64_t)i) * 7); /* 0..6 */
    ts_mesh_model_loss_mask(g.lmask, g.type, N);
    float *fields = malloc(sizeof(float) * (size_t)N * N_FIELDS);
    ts_rng_normal(key, 3, 0, (size_t)N * N_FIELDS, fields);
    g.feat = malloc(sizeof(float) * (size_t)N * CFG.c_in);
    ts_mesh_model_features(g.feat, fields, N_FIELDS, g.type, N);
    free(fields);
    g.target = malloc(sizeof(float) * (size_t)N * C_OUT);
    ts_rng_normal(key, 4, 0, (size_t)N * C_OUT, g.target);
    return g;
}

static void free_graph(graph *g) {
    free(g->mask.rowptr), free(g->mask.col), free(g->feat), free(g->target), free(g->type), free(g->lmask),
        free(g->adj);
}

static int make_model(ts_mesh_model *m, const graph *g, int recompute, uint64_t seed) {
    char err[256];
    ts_mesh_model_config cfg = CFG;
    cfg.recompute = recompute;
    if (ts_mesh_model_create(m, ts_backend_cpu(), &cfg, err, sizeof err) ||
        ts_mesh_model_prepare(m, g->N, &g->mask, err, sizeof err)) {
        printf("\n  %s", err);
        return -1;
    }
    ts_mesh_model_init_weights(m, seed, 1);
    return 0;
}

static double loss_of(ts_mesh_model *m, const graph *g, float *out, float *d_out) {
    ts_mesh_model_forward(m, out, g->feat);
    return ts_mesh_model_loss(m, d_out, out, g->target, g->lmask);
}

/* Richardson-extrapolated central difference of the loss along v (n
 * floats at p). */
static double fd_along(ts_mesh_model *m, const graph *g, float *p, const float *v, size_t n, float *out) {
    float *keep = malloc(sizeof(float) * n);
    memcpy(keep, p, sizeof(float) * n);
    double D[2];
    for (int s = 0; s < 2; s++) {
        double h = 1e-2 * (s + 1), L[2];
        for (int sign = 0; sign < 2; sign++) {
            for (size_t k = 0; k < n; k++) p[k] = keep[k] + (float)(sign ? -h : h) * v[k];
            L[sign] = loss_of(m, g, out, NULL);
        }
        D[s] = (L[0] - L[1]) / (2 * h);
    }
    memcpy(p, keep, sizeof(float) * n);
    free(keep);
    return (4 * D[0] - D[1]) / 3;
}

static int agrees(double analytic, double fd) { return fabs(fd - analytic) <= REL_TOL * fabs(analytic) + ABS_TOL; }

static void test_gradients(void) {
    graph g = make_graph(11);
    ts_mesh_model m;
    CU_ASSERT_FATAL(make_model(&m, &g, 0, 12) == 0);
    float *out = malloc(sizeof(float) * (size_t)g.N * C_OUT), *d_out = malloc(sizeof(float) * (size_t)g.N * C_OUT);
    loss_of(&m, &g, out, d_out);
    memset(m.grads.data, 0, sizeof(float) * m.grads.total);
    ts_mesh_model_backward(&m, d_out);

    ts_rng_key key = ts_rng_key_make(13, TS_RNG_TEST);
    int failed = 0, checks = 0;
    for (int p = 0; p < m.params.count; p++) {
        const ts_param_entry *e = &m.params.entries[p];
        float *theta = m.params.data + e->offset;
        const float *grad = m.grads.data + e->offset;
        /* coordinates: the largest gradient (so the check is never of noise only) and two at random */
        size_t coord[3] = {0, 0, 0};
        for (size_t k = 1; k < e->numel; k++)
            if (fabsf(grad[k]) > fabsf(grad[coord[0]])) coord[0] = k;
        for (int r = 1; r < 3; r++) coord[r] = (size_t)(ts_rng_uniform1(key, (uint64_t)p, (uint64_t)r) * e->numel);
        for (int r = 0; r < 3; r++) {
            float one = 1.0f;
            double fd = fd_along(&m, &g, theta + coord[r], &one, 1, out);
            int ok = agrees(grad[coord[r]], fd);
            failed += !ok, checks++;
            if (!ok || getenv("VERBOSE"))
                printf("\n  %s %-28s [%zu] analytic %.6e fd %.6e", ok ? "ok" : "FAIL", e->name, coord[r],
                       grad[coord[r]], fd);
        }
        /* and a random direction through every coordinate of the tensor */
        float *v = malloc(sizeof(float) * e->numel);
        ts_rng_normal(key, 1000 + (uint64_t)p, 0, e->numel, v);
        double analytic = 0;
        for (size_t k = 0; k < e->numel; k++) analytic += (double)grad[k] * v[k];
        double fd = fd_along(&m, &g, theta, v, e->numel, out);
        int ok = agrees(analytic, fd);
        failed += !ok, checks++;
        if (!ok || getenv("VERBOSE"))
            printf("\n  %s %-28s along v  analytic %.6e fd %.6e", ok ? "ok" : "FAIL", e->name, analytic, fd);
        free(v);
    }
    printf("\n  %d parameter tensors, %d checks, %d failed", m.params.count, checks, failed);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(m.params.count == 4 + 1 + 7 * CFG.depth + 1 + 4);
    free(out), free(d_out);
    ts_mesh_model_free(&m);
    free_graph(&g);
}

/* Trainability from the real initialization (ts_mesh_model_init_weights(..,
 * 0): biases 0, gains 1, global tokens small): one backward pass must give
 * every parameter tensor a non-zero gradient, since no branch of the mesh
 * model multiplies two factors that both start at zero. */
static void test_trainable_from_init(void) {
    graph g = make_graph(31);
    ts_mesh_model m;
    CU_ASSERT_FATAL(make_model(&m, &g, 0, 32) == 0);
    ts_mesh_model_init_weights(&m, 32, 0); /* the initialization training uses */
    float *out = malloc(sizeof(float) * (size_t)g.N * C_OUT), *d_out = malloc(sizeof(float) * (size_t)g.N * C_OUT);
    loss_of(&m, &g, out, d_out);
    memset(m.grads.data, 0, sizeof(float) * m.grads.total);
    ts_mesh_model_backward(&m, d_out);
    int stuck = 0;
    for (int p = 0; p < m.params.count; p++) {
        const ts_param_entry *e = &m.params.entries[p];
        double ss = 0;
        for (size_t k = 0; k < e->numel; k++) ss += (double)m.grads.data[e->offset + k] * m.grads.data[e->offset + k];
        if (ss == 0) printf("\n  %s has a zero gradient from the real initialization", e->name), stuck++;
    }
    printf("\n  real init: %d of %d tensors with a zero gradient", stuck, m.params.count);
    CU_ASSERT_EQUAL(stuck, 0);
    free(out), free(d_out);
    ts_mesh_model_free(&m);
    free_graph(&g);
}

/* Recomputing each block inside backward gives the same bits as keeping its
 * activations: the same ops on the same inputs. */
static void test_recompute(void) {
    graph g = make_graph(21);
    ts_mesh_model a, b;
    CU_ASSERT_FATAL(make_model(&a, &g, 0, 22) == 0);
    CU_ASSERT_FATAL(make_model(&b, &g, 1, 22) == 0);
    CU_ASSERT(b.arena.capacity < a.arena.capacity); /* the point of the switch */
    size_t n = (size_t)g.N * C_OUT;
    float *oa = malloc(sizeof(float) * n), *ob = malloc(sizeof(float) * n);
    float *da = malloc(sizeof(float) * n), *db = malloc(sizeof(float) * n);
    double La = loss_of(&a, &g, oa, da), Lb = loss_of(&b, &g, ob, db);
    CU_ASSERT(La == Lb);
    CU_ASSERT(memcmp(oa, ob, sizeof(float) * n) == 0);
    ts_mesh_model_backward(&a, da);
    ts_mesh_model_backward(&b, db);
    CU_ASSERT(memcmp(a.grads.data, b.grads.data, sizeof(float) * a.grads.total) == 0);
    double gnorm = 0;
    for (size_t k = 0; k < a.grads.total; k++) gnorm += (double)a.grads.data[k] * a.grads.data[k];
    CU_ASSERT(gnorm > 0);
    free(oa), free(ob), free(da), free(db);
    ts_mesh_model_free(&a), ts_mesh_model_free(&b);
    free_graph(&g);
}

/* The loss is the mean of (out - target)^2 over NORMAL and OUTFLOW nodes
 * and all components; changing the targets of the other nodes changes
 * neither the loss nor any gradient. */
static void test_loss_mask(void) {
    graph g = make_graph(31);
    ts_mesh_model m;
    CU_ASSERT_FATAL(make_model(&m, &g, 0, 32) == 0);
    size_t n = (size_t)g.N * C_OUT;
    int counted = 0, others = 0;
    for (int64_t i = 0; i < g.N; i++) {
        CU_ASSERT(g.lmask[i] == (g.type[i] == 0 || g.type[i] == 5));
        counted += g.lmask[i], others += !g.lmask[i];
    }
    CU_ASSERT_FATAL(counted > 0 && others > 0);
    float *out = malloc(sizeof(float) * n), *d1 = malloc(sizeof(float) * n), *d2 = malloc(sizeof(float) * n);
    double L1 = loss_of(&m, &g, out, d1), expect = 0;
    for (int64_t i = 0; i < g.N; i++)
        for (int c = 0; c < C_OUT; c++)
            if (g.type[i] == 0 || g.type[i] == 5) expect += pow((double)out[i * C_OUT + c] - g.target[i * C_OUT + c], 2);
    expect /= (double)counted * C_OUT;
    CU_ASSERT(fabs(L1 - expect) <= 1e-12 * expect);
    ts_mesh_model_backward(&m, d1);
    float *g1 = malloc(sizeof(float) * m.grads.total);
    memcpy(g1, m.grads.data, sizeof(float) * m.grads.total);

    for (int64_t i = 0; i < g.N; i++)
        if (!g.lmask[i])
            for (int c = 0; c < C_OUT; c++) g.target[i * C_OUT + c] += 100.0f * (c + 1);
    memset(m.grads.data, 0, sizeof(float) * m.grads.total);
    double L2 = loss_of(&m, &g, out, d2);
    ts_mesh_model_backward(&m, d2);
    CU_ASSERT(L1 == L2);
    CU_ASSERT(memcmp(d1, d2, sizeof(float) * n) == 0);
    CU_ASSERT(memcmp(g1, m.grads.data, sizeof(float) * m.grads.total) == 0);
    free(out), free(d1), free(d2), free(g1);
    ts_mesh_model_free(&m);
    free_graph(&g);
}

/* Attention over a mask is equivariant: numbering the nodes differently
 * (features and mask alike) numbers the outputs the same way. Only the
 * summation order changes, so agreement to 1e-5 of the output scale. */
static void test_relabel(void) {
    graph g = make_graph(41), h = make_graph(41);
    const int64_t N = g.N, T = N + g.G;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)N); /* new node i is old node perm[i] */
    for (int64_t i = 0; i < N; i++) perm[i] = (i * 7 + 3) % N; /* 7 is prime to 30 */
    free(h.mask.rowptr), free(h.mask.col);
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            int64_t oi = i < N ? perm[i] : i, oj = j < N ? perm[j] : j;
            h.adj[i * T + j] = g.adj[oi * T + oj];
        }
    dense_to_csr(h.adj, T, &h.mask);
    for (int64_t i = 0; i < N; i++) memcpy(h.feat + i * CFG.c_in, g.feat + perm[i] * CFG.c_in, sizeof(float) * CFG.c_in);
    ts_mesh_model a;
    CU_ASSERT_FATAL(make_model(&a, &g, 0, 42) == 0);
    size_t n = (size_t)N * C_OUT;
    float *og = malloc(sizeof(float) * n), *oh = malloc(sizeof(float) * n);
    ts_mesh_model_forward(&a, og, g.feat);
    char err[256];
    CU_ASSERT_FATAL(ts_mesh_model_prepare(&a, N, &h.mask, err, sizeof err) == 0);
    ts_mesh_model_forward(&a, oh, h.feat);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < C_OUT; c++) {
            worst = fmax(worst, fabs(oh[i * C_OUT + c] - og[perm[i] * C_OUT + c]));
            scale = fmax(scale, fabs(og[perm[i] * C_OUT + c]));
        }
    CU_ASSERT(worst <= 1e-5 * scale);
    free(perm), free(og), free(oh);
    ts_mesh_model_free(&a);
    free_graph(&g), free_graph(&h);
}

/* Masks that break the token layout are refused with a line saying why. */
static void test_bad_mask(void) {
    graph g = make_graph(51);
    ts_mesh_model m;
    char err[256];
    CU_ASSERT_FATAL(ts_mesh_model_create(&m, ts_backend_cpu(), &CFG, err, sizeof err) == 0);
    CU_ASSERT(ts_mesh_model_prepare(&m, g.N + 1, &g.mask, err, sizeof err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "global tokens need"));
    const int64_t T = g.N + g.G;
    g.adj[3 * T + g.N + 1] = 0; /* node 3 no longer sees global 1 */
    free(g.mask.rowptr), free(g.mask.col);
    dense_to_csr(g.adj, T, &g.mask);
    CU_ASSERT(ts_mesh_model_prepare(&m, g.N, &g.mask, err, sizeof err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "row 3"));
    ts_mesh_model_config bad = CFG;
    bad.heads = 3;
    ts_mesh_model_free(&m);
    CU_ASSERT(ts_mesh_model_create(&m, ts_backend_cpu(), &bad, err, sizeof err) == -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "heads"));
    free_graph(&g);
}

/* The running normalizer: mean and std of everything accumulated in
 * batches equal two-pass statistics of the concatenation; accumulation stops
 * after max_accumulations; a constant channel's std is the floor eps;
 * denormalize inverts normalize. */
static void test_normalizer(void) {
    enum { C = 3, BATCHES = 5, ROWS = 40 };
    ts_mesh_norm n;
    ts_mesh_norm_init(&n, C, 4, 1e-8);
    float *x = malloc(sizeof(float) * BATCHES * ROWS * C);
    ts_rng_normal(ts_rng_key_make(61, TS_RNG_TEST), 0, 0, (size_t)BATCHES * ROWS * C, x);
    for (int r = 0; r < BATCHES * ROWS; r++) x[r * C] = 3.0f + 2.0f * x[r * C], x[r * C + 2] = 7.0f;
    for (int b = 0; b < BATCHES; b++) ts_mesh_norm_accumulate(&n, x + (size_t)b * ROWS * C, ROWS);
    CU_ASSERT(n.n_accumulations == 4 && n.count == 4 * ROWS); /* the fifth batch is past the maximum */
    double mean[C], std[C];
    ts_mesh_norm_stats(&n, mean, std);
    for (int c = 0; c < C; c++) {
        double mu = 0, var = 0;
        for (int r = 0; r < 4 * ROWS; r++) mu += x[r * C + c];
        mu /= 4 * ROWS;
        for (int r = 0; r < 4 * ROWS; r++) var += pow(x[r * C + c] - mu, 2);
        double sd = fmax(sqrt(var / (4 * ROWS)), 1e-8); /* population std, as MeshGraphNets */
        CU_ASSERT(fabs(mean[c] - mu) <= 1e-12 * (1 + fabs(mu)));
        CU_ASSERT(c == 2 ? std[c] == 1e-8 : fabs(std[c] - sd) <= 1e-9 * sd);
    }
    float *y = malloc(sizeof(float) * ROWS * C), *z = malloc(sizeof(float) * ROWS * C);
    ts_mesh_norm_normalize(&n, y, x, ROWS);
    ts_mesh_norm_denormalize(&n, z, y, ROWS);
    double worst = 0;
    for (int k = 0; k < ROWS * C; k++)
        if (k % C != 2) worst = fmax(worst, fabs(z[k] - x[k]) / (1 + fabs(x[k])));
    CU_ASSERT(worst <= 1e-6);
    free(x), free(y), free(z);
    ts_mesh_norm_free(&n);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("mesh graph transformer", NULL, NULL);
    if (!s || !CU_add_test(s, "gradient check, every tensor", test_gradients) ||
        !CU_add_test(s, "every tensor trains from the real init", test_trainable_from_init) ||
        !CU_add_test(s, "recompute: identical gradients", test_recompute) ||
        !CU_add_test(s, "loss counts NORMAL and OUTFLOW only", test_loss_mask) ||
        !CU_add_test(s, "relabelling nodes relabels outputs", test_relabel) ||
        !CU_add_test(s, "bad masks refused", test_bad_mask) ||
        !CU_add_test(s, "running normalizer", test_normalizer))
        return 2;
    return ts_cunit_run();
}
