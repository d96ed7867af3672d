/* Window attention (plain, shifted, pole-masked) against its oracle: full
 * attention over every token of a sample with the mask predicate written
 * from the definition (same shifted window, same side of the pole wrap),
 * in double precision. And its backward against central finite differences
 * of that oracle, with random non-zero weights.
 *
 * Case c draws its shapes and values from the counter RNG (stream = c), so a
 * failure replays alone: TESSERA_CASE=c.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/params.h"
#include "core/rng.h"
#include "models/window.h"
#include "models/window_attention.h"
#include "tests/cunit_run.h"

enum { CASES = 12 };
static int g_only = -1;

typedef struct {
    ts_win_geom g;
    int B, C, heads;
} shape;

static double unif(ts_rng_key k, uint64_t s, uint64_t *n) { return ts_rng_uniform1(k, s, (*n)++); }

static shape draw_shape(int c) {
    ts_rng_key k = ts_rng_key_make(77, TS_RNG_TEST);
    uint64_t n = 0;
    shape s;
    s.g.wy = 2 + (int)(unif(k, c, &n) * 3);       /* 2..4 */
    s.g.wx = 2 + (int)(unif(k, c, &n) * 3);
    s.g.H = s.g.wy * (1 + (int)(unif(k, c, &n) * 3)); /* 1..3 window rows */
    s.g.W = s.g.wx * (1 + (int)(unif(k, c, &n) * 3));
    int shifted = c % 2;
    s.g.sy = shifted ? s.g.wy / 2 : 0;
    s.g.sx = shifted ? s.g.wx / 2 : 0;
    s.B = 1 + (int)(unif(k, c, &n) * 2);
    s.heads = 1 + (int)(unif(k, c, &n) * 3);
    s.C = s.heads * (1 + (int)(unif(k, c, &n) * 4));
    return s;
}

static void fill(float *x, size_t n, int c, uint64_t which, double a) {
    ts_rng_key k = ts_rng_key_make(78 + (uint64_t)c, TS_RNG_TEST);
    for (size_t i = 0; i < n; i++) {
        double u = 2.0 * ts_rng_uniform1(k, which, i) - 1.0;
        x[i] = (float)(a * (u >= 0 ? 0.1 + 0.9 * u : -0.1 + 0.9 * u));
    }
}

/* ---- the oracle -------------------------------------------------------------- */

/* May grid tokens t and u of one sample attend to each other? From the
 * definitions: the same window of the shifted grid, and the same side of the
 * pole wrap (rows moved across the pole by the shift form their own group). */
static int allowed(const ts_win_geom *g, int t, int u) {
    int yt = t / g->W, xt = t % g->W, yu = u / g->W, xu = u % g->W;
    int Yt = ((yt - g->sy) % g->H + g->H) % g->H, Yu = ((yu - g->sy) % g->H + g->H) % g->H;
    int Xt = ((xt - g->sx) % g->W + g->W) % g->W, Xu = ((xu - g->sx) % g->W + g->W) % g->W;
    if (Yt / g->wy != Yu / g->wy || Xt / g->wx != Xu / g->wx) return 0;
    int wrap_t = yt < g->sy, wrap_u = yu < g->sy; /* rows 0..sy-1 are the ones the shift wraps */
    return wrap_t == wrap_u;
}

/* y (T, C) from x (T, C) in double: masked full attention per sample and head. */
static void oracle_forward(const shape *s, const double *x, const double *Wqkv, const double *Wo, double *y) {
    const int HW = s->g.H * s->g.W, C = s->C, hd = C / s->heads, T = s->B * HW;
    double *qkv = calloc((size_t)T * 3 * C, sizeof(double)), *o = calloc((size_t)T * C, sizeof(double));
    double *p = malloc(sizeof(double) * HW);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < 3 * C; r++) {
            double acc = 0;
            for (int c = 0; c < C; c++) acc += x[(size_t)t * C + c] * Wqkv[(size_t)r * C + c];
            qkv[(size_t)t * 3 * C + r] = acc;
        }
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->heads; h++)
            for (int t = 0; t < HW; t++) {
                const double *q = qkv + ((size_t)(b * HW + t) * 3 * C) + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int u = 0; u < HW; u++) {
                    p[u] = -INFINITY;
                    if (!allowed(&s->g, t, u)) continue;
                    const double *k = qkv + ((size_t)(b * HW + u) * 3 * C) + C + h * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += q[d] * k[d];
                    p[u] = dot / sqrt((double)hd);
                    if (p[u] > mx) mx = p[u];
                }
                for (int u = 0; u < HW; u++) sum += p[u] = p[u] == -INFINITY ? 0 : exp(p[u] - mx);
                for (int u = 0; u < HW; u++) {
                    const double *v = qkv + ((size_t)(b * HW + u) * 3 * C) + 2 * C + h * hd;
                    for (int d = 0; d < hd; d++) o[(size_t)(b * HW + t) * C + h * hd + d] += p[u] / sum * v[d];
                }
            }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < C; r++) {
            double acc = 0;
            for (int c = 0; c < C; c++) acc += o[(size_t)t * C + c] * Wo[(size_t)r * C + c];
            y[(size_t)t * C + r] = acc;
        }
    free(qkv), free(o), free(p);
}

static double *to_double(const float *x, size_t n) {
    double *y = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num / den);
}

/* ---- one case through a backend ------------------------------------------------- */

typedef struct {
    shape s;
    size_t nx, nq, no;
    float *x, *Wqkv, *Wo, *R; /* host */
} case_data;

static case_data make_case(int c) {
    case_data d;
    d.s = draw_shape(c);
    const int T = d.s.B * d.s.g.H * d.s.g.W, C = d.s.C;
    d.nx = (size_t)T * C, d.nq = (size_t)3 * C * C, d.no = (size_t)C * C;
    d.x = malloc(sizeof(float) * d.nx), d.R = malloc(sizeof(float) * d.nx);
    d.Wqkv = malloc(sizeof(float) * d.nq), d.Wo = malloc(sizeof(float) * d.no);
    fill(d.x, d.nx, c, 0, 1.0), fill(d.R, d.nx, c, 1, 1.0);
    fill(d.Wqkv, d.nq, c, 2, 1.0 / sqrt(C)), fill(d.Wo, d.no, c, 3, 1.0 / sqrt(C));
    return d;
}

static void free_case(case_data *d) { free(d->x), free(d->R), free(d->Wqkv), free(d->Wo); }

static float *dev(const ts_backend *be, const float *h, size_t n) {
    float *p = be->alloc(sizeof(float) * n);
    if (h) be->upload(p, h, sizeof(float) * n);
    return p;
}

static float *host(const ts_backend *be, const float *d, size_t n) {
    float *h = malloc(sizeof(float) * n);
    be->sync();
    be->download(h, d, sizeof(float) * n);
    return h;
}

/* Runs forward and backward (dy = R) on a backend; returns y, dx, dWqkv, dWo on the host. */
static void run_layer(const ts_backend *be, const case_data *d, float **y, float **dx, float **dWqkv, float **dWo) {
    char err[256];
    ts_wattn_plan plan;
    if (ts_wattn_plan_make(&plan, be, &d->s.g, NULL, d->s.B, d->s.C, d->s.heads, err, sizeof err)) {
        CU_FAIL(err);
        return;
    }
    ts_arena arena;
    ts_wattn_acts acts;
    ts_arena_measure(&arena);
    ts_wattn_acts_take(&acts, &arena, &plan, NULL);
    ts_arena_alloc(&arena, be, arena.peak);
    ts_wattn_acts_take(&acts, &arena, &plan, NULL);
    float *bx = dev(be, d->x, d->nx), *bq = dev(be, d->Wqkv, d->nq), *bo = dev(be, d->Wo, d->no);
    float *by = dev(be, NULL, d->nx), *bR = dev(be, d->R, d->nx);
    float *bdx = dev(be, NULL, d->nx), *bdq = dev(be, NULL, d->nq), *bdo = dev(be, NULL, d->no);
    ts_wattn_forward(&plan, &acts, by, bx, bq, bo);
    ts_wattn_backward(&plan, &acts, bdx, bdq, bdo, bR, bx, bq, bo);
    *y = host(be, by, d->nx), *dx = host(be, bdx, d->nx), *dWqkv = host(be, bdq, d->nq), *dWo = host(be, bdo, d->no);
    be->free(bx), be->free(bq), be->free(bo), be->free(by), be->free(bR), be->free(bdx), be->free(bdq), be->free(bdo);
    ts_arena_free(&arena);
    ts_wattn_plan_free(&plan);
}

/* Central differences of L = sum R * oracle(x) for one parameter array. */
static void fd_grad(const case_data *d, int which, double *g) {
    double *x = to_double(d->x, d->nx), *q = to_double(d->Wqkv, d->nq), *o = to_double(d->Wo, d->no);
    double *R = to_double(d->R, d->nx), *y = malloc(sizeof(double) * d->nx);
    double *arr = which == 0 ? x : which == 1 ? q : o;
    size_t n = which == 0 ? d->nx : which == 1 ? d->nq : d->no;
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double keep = arr[i], lp = 0, lm = 0;
        arr[i] = keep + h;
        oracle_forward(&d->s, x, q, o, y);
        for (size_t k = 0; k < d->nx; k++) lp += R[k] * y[k];
        arr[i] = keep - h;
        oracle_forward(&d->s, x, q, o, y);
        for (size_t k = 0; k < d->nx; k++) lm += R[k] * y[k];
        arr[i] = keep;
        g[i] = (lp - lm) / (2 * h);
    }
    free(x), free(q), free(o), free(R), free(y);
}

static const ts_backend *g_be;

/* Forward within 1e-5 (fp32 GEMMs and softmax against double); gradients
 * within 1e-4 of the finite differences (h = 1e-5 in double: truncation
 * ~1e-10, so the bound measures the fp32 backward alone). */
static void test_against_oracle(void) {
    int failed = 0;
    for (int c = 0; c < CASES; c++) {
        if (g_only >= 0 && c != g_only) continue;
        case_data d = make_case(c);
        float *y = NULL, *dx = NULL, *dq = NULL, *dO = NULL;
        run_layer(g_be, &d, &y, &dx, &dq, &dO);
        if (!y) { free_case(&d); failed++; continue; }
        double *xd = to_double(d.x, d.nx), *qd = to_double(d.Wqkv, d.nq), *od = to_double(d.Wo, d.no);
        double *yref = malloc(sizeof(double) * d.nx);
        oracle_forward(&d.s, xd, qd, od, yref);
        double ef = rel_err(y, yref, d.nx);
        double *gx = malloc(sizeof(double) * d.nx), *gq = malloc(sizeof(double) * d.nq), *go = malloc(sizeof(double) * d.no);
        fd_grad(&d, 0, gx), fd_grad(&d, 1, gq), fd_grad(&d, 2, go);
        double ex = rel_err(dx, gx, d.nx), eq = rel_err(dq, gq, d.nq), eo = rel_err(dO, go, d.no);
        int ok = ef < 1e-5 && ex < 1e-4 && eq < 1e-4 && eo < 1e-4;
        printf("\n  %-4s case %2d: grid %dx%d win %dx%d shift (%d,%d) B %d C %d heads %d: y %.1e dx %.1e dWqkv %.1e "
               "dWo %.1e %s",
               g_be->name, c, d.s.g.H, d.s.g.W, d.s.g.wy, d.s.g.wx, d.s.g.sy, d.s.g.sx, d.s.B, d.s.C, d.s.heads, ef,
               ex, eq, eo, ok ? "ok" : "FAIL");
        failed += !ok;
        free(y), free(dx), free(dq), free(dO), free(xd), free(qd), free(od), free(yref), free(gx), free(gq), free(go);
        free_case(&d);
    }
    CU_ASSERT_EQUAL(failed, 0);
}

/* The index maths alone: every (window, place) is one grid token and back;
 * the out index inverts the qkv index; the mask is symmetric, has a true
 * diagonal, and is all ones without a latitude shift. */
static void test_window_index(void) {
    for (int c = 0; c < CASES; c++) {
        shape s = draw_shape(c);
        const ts_win_geom *g = &s.g;
        int nW = ts_win_count(g), L = ts_win_size(g), HW = g->H * g->W;
        char *seen = calloc(HW, 1);
        for (int w = 0; w < nW; w++)
            for (int i = 0; i < L; i++) {
                int t = ts_win_token(g, w, i), w2, i2;
                CU_ASSERT(t >= 0 && t < HW);
                seen[t]++;
                ts_win_of_token(g, t, &w2, &i2);
                CU_ASSERT(w2 == w && i2 == i);
            }
        for (int t = 0; t < HW; t++) CU_ASSERT_EQUAL(seen[t], 1);
        free(seen);
        uint8_t *m = malloc((size_t)nW * L * L);
        ts_win_mask(g, NULL, m);
        for (int w = 0; w < nW; w++)
            for (int i = 0; i < L; i++)
                for (int j = 0; j < L; j++) {
                    uint8_t a = m[((size_t)w * L + i) * L + j];
                    CU_ASSERT_EQUAL(a, m[((size_t)w * L + j) * L + i]);
                    if (i == j || !ts_win_needs_mask(g)) CU_ASSERT_EQUAL(a, 1);
                    CU_ASSERT_EQUAL(a, allowed(g, ts_win_token(g, w, i), ts_win_token(g, w, j)));
                }
        free(m);
    }
}

static const ts_backend *g_cuda;
static int use_cpu(void) { return g_be = ts_backend_cpu(), 0; }
static int use_cuda(void) { return g_be = g_cuda, 0; }

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    const char *why = NULL;
    g_cuda = ts_backend_cuda(&why);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("window attention", use_cpu, NULL);
    if (!s || !CU_add_test(s, "window index maths", test_window_index)) return 2;
    if (!CU_add_test(s, "cpu: against masked full attention", test_against_oracle)) return 2;
    if (g_cuda) {
        CU_pSuite s2 = CU_add_suite("window attention cuda", use_cuda, NULL);
        if (!s2 || !CU_add_test(s2, "cuda: against masked full attention", test_against_oracle)) return 2;
    } else {
        printf("cuda: skipped: no GPU (%s)\n", why ? why : "unavailable");
    }
    return ts_cunit_run();
}
