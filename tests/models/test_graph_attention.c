/* Sparse graph attention against its oracle: dense attention over all R x C
 * pairs with -inf outside the mask, in double precision, forward and
 * backward (the textbook softmax backward, Delta_i = sum_j P_ij dP_ij, not the
 * dO . O identity the fast code uses). The fast backward is also checked
 * against central finite differences of the dense double forward, the
 * partial forward + merge (both the pairwise and the all-reduce forms)
 * against the full forward, and a backward split over column subsets
 * against the whole one.
 *
 * Case c draws its shapes, mask and values from the counter RNG (stream = c),
 * so a failure replays alone: TESSERA_CASE=c. Masks are rectangular, with
 * empty rows, single-entry rows and rows of every density.
 *
 * Tolerances: the fast code works in fp32 over rows of at most 48 entries of
 * O(1) values, so its rounding is a few 1e-7 of the largest value of a
 * tensor; elementwise agreement to 2e-5 of the largest magnitude of the
 * oracle tensor (plus 1e-6 absolute) leaves a margin of ~20 and still fails
 * on any wrong term, which errs at order 1e-2 or more.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "mesh/csr.h"
#include "models/graph_attention.h"
#include "tests/cunit_run.h"

enum { CASES = 40, FD_CASES = 10, GUARD = 16 };
static const float SENTINEL = 1234.5f;
static int g_only = -1;

typedef struct {
    int R, C, H, D;
    ts_csr mask, mask_t;
    float *q, *k, *v, *dout; /* (R|C, H*D) */
} gcase;

typedef struct {
    ts_rng_key key;
    uint64_t stream, n;
} draw;

static double unif(draw *d) { return ts_rng_uniform1(d->key, d->stream, d->n++); }

static float *guarded(size_t n) {
    float *p = malloc(sizeof(float) * (n + GUARD));
    for (size_t i = 0; i < n + GUARD; i++) p[i] = SENTINEL;
    return p;
}
static int guard_intact(const float *p, size_t n) {
    for (size_t i = n; i < n + GUARD; i++)
        if (p[i] != SENTINEL) return 0;
    return 1;
}

/* Transpose by counting: column j's entries come out with rows ascending. */
static void csr_transpose(const ts_csr *a, ts_csr *t) {
    int64_t nnz = ts_csr_nnz(a);
    t->n_rows = a->n_cols, t->n_cols = a->n_rows;
    t->rowptr = calloc((size_t)a->n_cols + 1, sizeof(int64_t));
    t->col = malloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
    for (int64_t e = 0; e < nnz; e++) t->rowptr[a->col[e] + 1]++;
    for (int64_t j = 0; j < a->n_cols; j++) t->rowptr[j + 1] += t->rowptr[j];
    int64_t *fill = malloc(sizeof(int64_t) * (size_t)(a->n_cols ? a->n_cols : 1));
    memcpy(fill, t->rowptr, sizeof(int64_t) * (size_t)a->n_cols);
    for (int64_t i = 0; i < a->n_rows; i++)
        for (int64_t e = a->rowptr[i]; e < a->rowptr[i + 1]; e++) t->col[fill[a->col[e]]++] = (int32_t)i;
    free(fill);
}

static void csr_free(ts_csr *m) { free(m->rowptr), free(m->col); }

static void fill_values(float *x, size_t n, draw *d, double amp) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * (2.0 * unif(d) - 1.0));
}

static gcase make_case(int c) {
    draw d = {ts_rng_key_make(91, TS_RNG_TEST), (uint64_t)c, 0};
    gcase g;
    g.R = 1 + (int)(unif(&d) * 48), g.C = 1 + (int)(unif(&d) * 48);
    g.H = 1 + (int)(unif(&d) * 4), g.D = 1 + (int)(unif(&d) * 8);
    g.mask.n_rows = g.R, g.mask.n_cols = g.C;
    g.mask.rowptr = calloc((size_t)g.R + 1, sizeof(int64_t));
    g.mask.col = malloc(sizeof(int32_t) * (size_t)g.R * g.C + 1);
    int64_t nnz = 0;
    for (int i = 0; i < g.R; i++) {
        double kind = unif(&d);
        if (kind < 0.05) { /* empty row */
        } else if (kind < 0.25) { /* a single entry */
            g.mask.col[nnz++] = (int32_t)(unif(&d) * g.C);
        } else {
            double p = unif(&d);
            for (int j = 0; j < g.C; j++)
                if (unif(&d) < p) g.mask.col[nnz++] = j;
        }
        g.mask.rowptr[i + 1] = nnz;
    }
    csr_transpose(&g.mask, &g.mask_t);
    size_t rq = (size_t)g.R * g.H * g.D, ck = (size_t)g.C * g.H * g.D;
    g.q = malloc(sizeof(float) * rq), g.dout = malloc(sizeof(float) * rq);
    g.k = malloc(sizeof(float) * ck), g.v = malloc(sizeof(float) * ck);
    /* amplitude 1.5 gives scores spanning several units: softmaxes far from uniform */
    fill_values(g.q, rq, &d, 1.5), fill_values(g.k, ck, &d, 1.5);
    fill_values(g.v, ck, &d, 1.0), fill_values(g.dout, rq, &d, 1.0);
    return g;
}

static void free_case(gcase *g) {
    csr_free(&g->mask), csr_free(&g->mask_t);
    free(g->q), free(g->k), free(g->v), free(g->dout);
}

/* ---- the dense double oracle ------------------------------------------------------ */

static int in_mask(const ts_csr *m, int i, int j) {
    for (int64_t e = m->rowptr[i]; e < m->rowptr[i + 1]; e++)
        if (m->col[e] == j) return 1;
    return 0;
}

/* Scores of all R x C pairs, -inf outside the mask, then softmax rows.
 * P (R*H, C); out (R, H*D); lse (R, H). q, k, v in double. */
static void dense_forward(const gcase *g, const double *q, const double *k, const double *v, double *P, double *out,
                          double *lse) {
    const int H = g->H, D = g->D, HD = H * D;
    const double scale = 1.0 / sqrt((double)D);
    for (int i = 0; i < g->R; i++)
        for (int h = 0; h < H; h++) {
            double *p = P + ((size_t)i * H + h) * g->C, mx = -INFINITY, sum = 0;
            for (int j = 0; j < g->C; j++) {
                p[j] = -INFINITY;
                if (!in_mask(&g->mask, i, j)) continue;
                double s = 0;
                for (int t = 0; t < D; t++) s += q[i * HD + h * D + t] * k[j * HD + h * D + t];
                p[j] = scale * s;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < g->C; j++) sum += p[j] = p[j] == -INFINITY ? 0.0 : exp(p[j] - mx);
            for (int j = 0; j < g->C; j++) p[j] = sum > 0 ? p[j] / sum : 0.0;
            lse[i * H + h] = sum > 0 ? mx + log(sum) : -INFINITY;
            for (int t = 0; t < D; t++) {
                double o = 0;
                for (int j = 0; j < g->C; j++) o += p[j] * v[j * HD + h * D + t];
                out[i * HD + h * D + t] = o;
            }
        }
}

static double *to_double(const float *x, size_t n) {
    double *y = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* dq, dk, dv (overwritten) of L = sum(dout * out). */
static void dense_backward(const gcase *g, double *dq, double *dk, double *dv) {
    const int H = g->H, D = g->D, HD = H * D;
    const size_t rq = (size_t)g->R * HD, ck = (size_t)g->C * HD;
    const double scale = 1.0 / sqrt((double)D);
    double *q = to_double(g->q, rq), *k = to_double(g->k, ck), *v = to_double(g->v, ck), *dO = to_double(g->dout, rq);
    double *P = malloc(sizeof(double) * (size_t)g->R * H * g->C + 1), *out = malloc(sizeof(double) * rq + 1);
    double *lse = malloc(sizeof(double) * (size_t)g->R * H + 1), *dP = malloc(sizeof(double) * (size_t)g->C + 1);
    dense_forward(g, q, k, v, P, out, lse);
    memset(dq, 0, sizeof(double) * rq), memset(dk, 0, sizeof(double) * ck), memset(dv, 0, sizeof(double) * ck);
    for (int i = 0; i < g->R; i++)
        for (int h = 0; h < H; h++) {
            const double *p = P + ((size_t)i * H + h) * g->C;
            double Delta = 0;
            for (int j = 0; j < g->C; j++) {
                dP[j] = 0;
                for (int t = 0; t < D; t++) dP[j] += dO[i * HD + h * D + t] * v[j * HD + h * D + t];
                Delta += p[j] * dP[j];
            }
            for (int j = 0; j < g->C; j++) {
                double dS = p[j] * (dP[j] - Delta);
                for (int t = 0; t < D; t++) {
                    dv[j * HD + h * D + t] += p[j] * dO[i * HD + h * D + t];
                    dq[i * HD + h * D + t] += scale * dS * k[j * HD + h * D + t];
                    dk[j * HD + h * D + t] += scale * dS * q[i * HD + h * D + t];
                }
            }
        }
    free(q), free(k), free(v), free(dO), free(P), free(out), free(lse), free(dP);
}

/* ---- comparisons -------------------------------------------------------------------- */

static double max_abs(const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(b[i]));
    return m;
}

/* |a - base - b| <= 2e-5 max|b| + 1e-6 elementwise (base: what a held before accumulating, or NULL). */
static int close_to(const float *a, const float *base, const double *b, size_t n, const char *what, int c) {
    double tol = 2e-5 * max_abs(b, n) + 1e-6, worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (base ? base[i] : 0.0) - b[i]));
    if (worst > tol || getenv("VERBOSE"))
        printf("\n  case %d %s: max error %.3e (tolerance %.3e)", c, what, worst, tol);
    return worst <= tol;
}

/* log-sum-exps: -inf exactly where the oracle's is (empty rows), else within
 * 1e-5 (1 + |lse|). */
static int lse_close(const float *a, const double *b, size_t n, const char *what, int c) {
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isinf(b[i]) ? (isinf(a[i]) && a[i] < 0) : fabs(a[i] - b[i]) <= 1e-5 * (1 + fabs(b[i]));
    if (!ok) printf("\n  case %d %s differs", c, what);
    return ok;
}

static int run_case(int c) { return g_only < 0 || g_only == c; }

/* ---- tests ---------------------------------------------------------------------------- */

static void test_forward(void) {
    for (int c = 0; c < CASES; c++) {
        if (!run_case(c)) continue;
        gcase g = make_case(c);
        const size_t rq = (size_t)g.R * g.H * g.D, ck = (size_t)g.C * g.H * g.D, rh = (size_t)g.R * g.H;
        float *out = guarded(rq), *lse = guarded(rh);
        ts_gattn_forward(out, lse, g.q, g.k, g.v, &g.mask, g.H, g.D, 1.0f / sqrtf((float)g.D));
        double *q = to_double(g.q, rq), *k = to_double(g.k, ck), *v = to_double(g.v, ck);
        double *P = malloc(sizeof(double) * rh * g.C + 1), *o = malloc(sizeof(double) * rq), *l = malloc(sizeof(double) * rh);
        dense_forward(&g, q, k, v, P, o, l);
        CU_ASSERT(close_to(out, NULL, o, rq, "out", c));
        CU_ASSERT(lse_close(lse, l, rh, "lse", c));
        CU_ASSERT(guard_intact(out, rq) && guard_intact(lse, rh));
        free(out), free(lse), free(q), free(k), free(v), free(P), free(o), free(l);
        free_case(&g);
    }
}

/* Backward against the dense double backward, accumulating onto random
 * previous contents, identical whatever the thread count. */
static void test_backward(void) {
    for (int c = 0; c < CASES; c++) {
        if (!run_case(c)) continue;
        gcase g = make_case(c);
        const size_t rq = (size_t)g.R * g.H * g.D, ck = (size_t)g.C * g.H * g.D, rh = (size_t)g.R * g.H;
        const float scale = 1.0f / sqrtf((float)g.D);
        float *out = malloc(sizeof(float) * rq), *lse = malloc(sizeof(float) * rh), *delta = guarded(rh);
        ts_gattn_forward(out, lse, g.q, g.k, g.v, &g.mask, g.H, g.D, scale);
        float *dq = guarded(rq), *dk = guarded(ck), *dv = guarded(ck);
        float *dq0 = malloc(sizeof(float) * rq), *dk0 = malloc(sizeof(float) * ck), *dv0 = malloc(sizeof(float) * ck);
        draw d = {ts_rng_key_make(92, TS_RNG_TEST), (uint64_t)c, 0};
        fill_values(dq0, rq, &d, 1.0), fill_values(dk0, ck, &d, 1.0), fill_values(dv0, ck, &d, 1.0);
        memcpy(dq, dq0, sizeof(float) * rq), memcpy(dk, dk0, sizeof(float) * ck), memcpy(dv, dv0, sizeof(float) * ck);
        ts_gattn_backward(dq, dk, dv, delta, g.dout, out, lse, g.q, g.k, g.v, &g.mask, &g.mask_t, g.H, g.D, scale);

        double *eq = malloc(sizeof(double) * rq), *ek = malloc(sizeof(double) * ck), *ev = malloc(sizeof(double) * ck);
        dense_backward(&g, eq, ek, ev);
        CU_ASSERT(close_to(dq, dq0, eq, rq, "dq", c));
        CU_ASSERT(close_to(dk, dk0, ek, ck, "dk", c));
        CU_ASSERT(close_to(dv, dv0, ev, ck, "dv", c));
        CU_ASSERT(guard_intact(dq, rq) && guard_intact(dk, ck) && guard_intact(dv, ck) && guard_intact(delta, rh));

        /* deterministic: one thread and three give the same bits */
        float *b1 = calloc(rq + 2 * ck, sizeof(float)), *b3 = calloc(rq + 2 * ck, sizeof(float));
        int threads = omp_get_max_threads();
        for (int pass = 0; pass < 2; pass++) {
            float *b = pass ? b3 : b1;
            omp_set_num_threads(pass ? 3 : 1);
            ts_gattn_backward(b, b + rq, b + rq + ck, delta, g.dout, out, lse, g.q, g.k, g.v, &g.mask, &g.mask_t, g.H,
                              g.D, scale);
        }
        omp_set_num_threads(threads);
        CU_ASSERT(memcmp(b1, b3, sizeof(float) * (rq + 2 * ck)) == 0);
        free(b1), free(b3);
        free(out), free(lse), free(delta), free(dq), free(dk), free(dv), free(dq0), free(dk0), free(dv0);
        free(eq), free(ek), free(ev);
        free_case(&g);
    }
}

/* dq, dk, dv of L = sum(dout * out) against central differences of the
 * dense double forward (step 1e-5: truncation ~1e-10, rounding ~1e-11),
 * every coordinate. */
static void test_finite_differences(void) {
    for (int c = 0; c < FD_CASES; c++) {
        if (!run_case(c)) continue;
        gcase g = make_case(c);
        const size_t rq = (size_t)g.R * g.H * g.D, ck = (size_t)g.C * g.H * g.D, rh = (size_t)g.R * g.H;
        const float scale = 1.0f / sqrtf((float)g.D);
        float *out = malloc(sizeof(float) * rq), *lse = malloc(sizeof(float) * rh), *delta = malloc(sizeof(float) * rh);
        float *grad = calloc(rq + 2 * ck, sizeof(float));
        ts_gattn_forward(out, lse, g.q, g.k, g.v, &g.mask, g.H, g.D, scale);
        ts_gattn_backward(grad, grad + rq, grad + rq + ck, delta, g.dout, out, lse, g.q, g.k, g.v, &g.mask, &g.mask_t,
                          g.H, g.D, scale);

        double *x[3] = {to_double(g.q, rq), to_double(g.k, ck), to_double(g.v, ck)};
        size_t n[3] = {rq, ck, ck};
        double *P = malloc(sizeof(double) * rh * g.C + 1), *o = malloc(sizeof(double) * rq), *l = malloc(sizeof(double) * rh);
        double *fd = malloc(sizeof(double) * (rq + 2 * ck));
        const char *names[3] = {"dq (fd)", "dk (fd)", "dv (fd)"};
        size_t off = 0;
        for (int which = 0; which < 3; which++) {
            for (size_t i = 0; i < n[which]; i++) {
                double keep = x[which][i], L[2];
                for (int s = 0; s < 2; s++) {
                    x[which][i] = keep + (s ? -1e-5 : 1e-5);
                    dense_forward(&g, x[0], x[1], x[2], P, o, l);
                    L[s] = 0;
                    for (size_t r = 0; r < rq; r++) L[s] += (double)g.dout[r] * o[r];
                }
                x[which][i] = keep;
                fd[off + i] = (L[0] - L[1]) / 2e-5;
            }
            CU_ASSERT(close_to(grad + off, NULL, fd + off, n[which], names[which], c));
            off += n[which];
        }
        for (int w = 0; w < 3; w++) free(x[w]);
        free(out), free(lse), free(delta), free(grad), free(P), free(o), free(l), free(fd);
        free_case(&g);
    }
}

/* The mask restricted to the columns whose part is p. */
static void column_subset(const ts_csr *m, const int *part, int p, ts_csr *s) {
    s->n_rows = m->n_rows, s->n_cols = m->n_cols;
    s->rowptr = calloc((size_t)m->n_rows + 1, sizeof(int64_t));
    s->col = malloc(sizeof(int32_t) * (size_t)(ts_csr_nnz(m) + 1));
    int64_t n = 0;
    for (int64_t i = 0; i < m->n_rows; i++) {
        for (int64_t e = m->rowptr[i]; e < m->rowptr[i + 1]; e++)
            if (part[m->col[e]] == p) s->col[n++] = m->col[e];
        s->rowptr[i + 1] = n;
    }
}

/* Columns dealt at random to 1..4 parts (as ranks would hold them): the
 * partials merged pairwise, and combined as an all-reduce would (max, rescale,
 * sum), equal the full forward; per-part backwards given the merged
 * (out, lse) sum to the full dq and together give the full dk, dv. */
static void test_partials(void) {
    for (int c = 0; c < CASES; c++) {
        if (!run_case(c)) continue;
        gcase g = make_case(c);
        const size_t rq = (size_t)g.R * g.H * g.D, ck = (size_t)g.C * g.H * g.D, rh = (size_t)g.R * g.H;
        const float scale = 1.0f / sqrtf((float)g.D);
        draw d = {ts_rng_key_make(93, TS_RNG_TEST), (uint64_t)c, 0};
        int nparts = 1 + (int)(unif(&d) * 4);
        int *part = malloc(sizeof(int) * (size_t)g.C);
        for (int j = 0; j < g.C; j++) part[j] = (int)(unif(&d) * nparts);

        float *out = malloc(sizeof(float) * rq), *lse = malloc(sizeof(float) * rh);
        ts_gattn_forward(out, lse, g.q, g.k, g.v, &g.mask, g.H, g.D, scale);
        double *outd = to_double(out, rq), *lsed = to_double(lse, rh);

        ts_csr *sub = malloc(sizeof(ts_csr) * (size_t)nparts);
        float *o = malloc(sizeof(float) * rq * nparts), *m = malloc(sizeof(float) * rh * nparts);
        float *l = malloc(sizeof(float) * rh * nparts);
        for (int p = 0; p < nparts; p++) {
            column_subset(&g.mask, part, p, &sub[p]);
            ts_gattn_partial_forward(o + p * rq, m + p * rh, l + p * rh, g.q, g.k, g.v, &sub[p], g.H, g.D, scale);
        }

        /* pairwise, onto copies of part 0 */
        float *oa = malloc(sizeof(float) * rq), *ma = malloc(sizeof(float) * rh), *la = malloc(sizeof(float) * rh);
        memcpy(oa, o, sizeof(float) * rq), memcpy(ma, m, sizeof(float) * rh), memcpy(la, l, sizeof(float) * rh);
        for (int p = 1; p < nparts; p++) ts_gattn_merge(oa, ma, la, o + p * rq, m + p * rh, l + p * rh, g.R, g.H, g.D);
        float *y = malloc(sizeof(float) * rq), *ly = malloc(sizeof(float) * rh);
        ts_gattn_finish(y, ly, oa, ma, la, g.R, g.H, g.D);
        CU_ASSERT(close_to(y, NULL, outd, rq, "pairwise merge out", c));
        CU_ASSERT(lse_close(ly, lsed, rh, "pairwise merge lse", c));

        /* all-reduce form: max over parts, rescale each, sum */
        float *mmax = malloc(sizeof(float) * rh);
        for (size_t r = 0; r < rh; r++) {
            mmax[r] = -INFINITY;
            for (int p = 0; p < nparts; p++) mmax[r] = fmaxf(mmax[r], m[p * rh + r]);
        }
        memset(oa, 0, sizeof(float) * rq), memset(la, 0, sizeof(float) * rh);
        for (int p = 0; p < nparts; p++) {
            ts_gattn_rescale(o + p * rq, l + p * rh, m + p * rh, mmax, g.R, g.H, g.D);
            for (size_t r = 0; r < rq; r++) oa[r] += o[p * rq + r];
            for (size_t r = 0; r < rh; r++) la[r] += l[p * rh + r];
        }
        ts_gattn_finish(y, ly, oa, mmax, la, g.R, g.H, g.D);
        CU_ASSERT(close_to(y, NULL, outd, rq, "all-reduce out", c));
        CU_ASSERT(lse_close(ly, lsed, rh, "all-reduce lse", c));

        /* backward split over the parts */
        float *delta = malloc(sizeof(float) * rh), *full = calloc(rq + 2 * ck, sizeof(float));
        float *split = calloc(rq + 2 * ck, sizeof(float));
        ts_gattn_backward(full, full + rq, full + rq + ck, delta, g.dout, out, lse, g.q, g.k, g.v, &g.mask, &g.mask_t,
                          g.H, g.D, scale);
        for (int p = 0; p < nparts; p++) {
            ts_csr t;
            csr_transpose(&sub[p], &t);
            ts_gattn_backward(split, split + rq, split + rq + ck, delta, g.dout, out, lse, g.q, g.k, g.v, &sub[p], &t,
                              g.H, g.D, scale);
            csr_free(&t);
        }
        double *fulld = to_double(full, rq + 2 * ck);
        CU_ASSERT(close_to(split, NULL, fulld, rq + 2 * ck, "split backward", c));

        for (int p = 0; p < nparts; p++) csr_free(&sub[p]);
        free(sub), free(part), free(out), free(lse), free(outd), free(lsed), free(o), free(m), free(l);
        free(oa), free(ma), free(la), free(y), free(ly), free(mmax), free(delta), free(full), free(split), free(fulld);
        free_case(&g);
    }
}

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("graph attention", NULL, NULL);
    if (!s || !CU_add_test(s, "forward = dense masked oracle", test_forward) ||
        !CU_add_test(s, "backward = dense oracle backward, accumulating, thread-independent", test_backward) ||
        !CU_add_test(s, "backward = finite differences", test_finite_differences) ||
        !CU_add_test(s, "partials merged = full (pairwise, all-reduce, split backward)", test_partials))
        return 2;
    return ts_cunit_run();
}
