/* The backend harness: every op of every available backend against the
 * double-precision reference of tests/core/ref_ops.c, over random shapes.
 *
 * - Case c of an op draws its shapes and values from the counter RNG with
 *   stream = op id and index = c, so a failing case replays alone
 *   (TESSERA_CASE=c runs just that case).
 * - Error: normalized MSE, sum (a - r)^2 / sum r^2, against a per-op bound.
 *   fp32 arithmetic gives ~1e-14 per element; a K-long dot product grows it
 *   about K-fold, so GEMMs get 1e-10 and elementwise ops 1e-11.
 * - Every output buffer carries guard values on both sides; a changed guard
 *   is an out-of-bounds write. Outputs are also checked for NaN and inf.
 * - Backward ops start from a random, non-zero gradient buffer, so the +=
 *   accumulation the table promises is checked too.
 * - With no GPU the CUDA suite prints one "skipped: no GPU" line and runs
 *   nothing: it never passes silently.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/rng.h"
#include "tests/cunit_run.h"
#include "tests/core/ref_ops.h"

enum { GUARD = 64, CASES = 10 };
static const float GUARD_VALUE = -7777.25f;

static const ts_backend *g_be;
static int g_only_case = -1;

/* ---- random shapes and values --------------------------------------------- */

typedef struct {
    ts_rng_key key;
    uint64_t stream, next;
} draw;

static draw draw_for(int op, int c) {
    draw d = {ts_rng_key_make(1000 + (uint64_t)c, TS_RNG_TEST), (uint64_t)op, 0};
    return d;
}
static double unif(draw *d) { return ts_rng_uniform1(d->key, d->stream, d->next++); }
static int irange(draw *d, int lo, int hi) { return lo + (int)(unif(d) * (hi - lo + 1)); }
/* Values in [-a, a] pushed away from zero a little: non-zero, random signs. */
static void fill(draw *d, float *x, size_t n, double a) {
    for (size_t i = 0; i < n; i++) {
        double u = 2.0 * unif(d) - 1.0;
        x[i] = (float)(a * (u >= 0 ? 0.05 + 0.95 * u : -0.05 + 0.95 * u));
    }
}
static double *to_double(const float *x, size_t n) {
    double *y = malloc(sizeof(double) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* ---- device buffers with guards ------------------------------------------- */

typedef struct {
    float *base; /* (n + 2*GUARD) on the device */
    float *p;    /* base + GUARD */
    size_t n;
} dbuf;

static dbuf dbuf_make(const float *host, size_t n) {
    dbuf b = {NULL, NULL, n};
    size_t total = n + 2 * GUARD;
    float *h = malloc(sizeof(float) * total);
    for (size_t i = 0; i < total; i++) h[i] = GUARD_VALUE;
    if (host) memcpy(h + GUARD, host, sizeof(float) * n);
    else memset(h + GUARD, 0, sizeof(float) * n);
    b.base = g_be->alloc(sizeof(float) * total);
    g_be->upload(b.base, h, sizeof(float) * total);
    b.p = b.base + GUARD;
    free(h);
    return b;
}

static void *dbytes(const void *host, size_t bytes) {
    void *p = g_be->alloc(bytes ? bytes : 1);
    if (bytes) g_be->upload(p, host, bytes);
    return p;
}

/* Downloads into out (n floats); returns the number of guard values changed. */
static int dbuf_fetch(dbuf b, float *out) {
    size_t total = b.n + 2 * GUARD;
    float *h = malloc(sizeof(float) * total);
    g_be->sync();
    g_be->download(h, b.base, sizeof(float) * total);
    int bad = 0;
    for (size_t i = 0; i < GUARD; i++) bad += h[i] != GUARD_VALUE;
    for (size_t i = 0; i < GUARD; i++) bad += h[GUARD + b.n + i] != GUARD_VALUE;
    memcpy(out, h + GUARD, sizeof(float) * b.n);
    free(h);
    return bad;
}

static void dbuf_free(dbuf b) { g_be->free(b.base); }

/* ---- comparison ---------------------------------------------------------------- */

typedef struct {
    const char *op;
    int cases;
    double worst;
    int failed;
} tally;

/* Compare one output: guards, finiteness, normalized MSE. */
static void check_output(tally *t, int c, const char *what, dbuf b, const double *ref, double bound) {
    float *got = malloc(sizeof(float) * (b.n ? b.n : 1));
    int guards = dbuf_fetch(b, got);
    double num = 0.0, den = 0.0;
    int nonfinite = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (!isfinite(got[i])) nonfinite++;
        double e = (double)got[i] - ref[i];
        num += e * e;
        den += ref[i] * ref[i];
    }
    double nmse = den > 0 ? num / den : num;
    if (nmse > t->worst) t->worst = nmse;
    if (guards || nonfinite || !(nmse <= bound)) {
        t->failed++;
        printf("\n  FAIL %s %s case %d (%s): nmse %.3e (bound %.1e), %d guard values overwritten, "
               "%d non-finite\n",
               g_be->name, t->op, c, what, nmse, bound, guards, nonfinite);
    }
    free(got);
}

static void report(tally *t) {
    printf("\n  %-5s %-22s %2d cases  worst nmse %.2e  %s", g_be->name, t->op, t->cases, t->worst,
           t->failed ? "FAILED" : "ok");
    CU_ASSERT_EQUAL(t->failed, 0);
}

#define FOR_CASES(t)                                                   \
    for (int c = 0; c < CASES; c++)                                    \
        if (g_only_case >= 0 && c != g_only_case) continue;           \
        else if (((t)->cases++), 1)

/* ---- GEMM ------------------------------------------------------------------------- */

static void test_gemm(void) {
    tally t = {"gemm_batched", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(1, c);
        int ta = c & 1, tb = (c >> 1) & 1;
        int M = irange(&d, 1, 70), N = irange(&d, 1, 70), K = irange(&d, 1, 300);
        int batch = irange(&d, 1, 5);
        int pad = irange(&d, 0, 3); /* leading dimensions larger than the rows */
        int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
        int lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
        int64_t sA = (int64_t)arows * lda + pad, sB = (int64_t)brows * ldb, sC = (int64_t)M * ldc + 2 * pad;
        size_t nA = (size_t)sA * batch, nB = (size_t)sB * batch, nC = (size_t)sC * batch;
        float *A = malloc(sizeof(float) * nA), *B = malloc(sizeof(float) * nB), *C = malloc(sizeof(float) * nC);
        fill(&d, A, nA, 1.0), fill(&d, B, nB, 1.0), fill(&d, C, nC, 1.0);
        float alpha = (float)(0.5 + unif(&d)), beta = (c % 3 == 0) ? 0.0f : (float)(unif(&d) - 0.5);
        if (beta == 0.0f) /* beta = 0 must ignore what C held, NaN included */
            for (size_t i = 0; i < nC; i += 7) C[i] = NAN;
        double *rA = to_double(A, nA), *rB = to_double(B, nB), *rC = to_double(C, nC);
        ref_gemm_batched(ta, tb, M, N, K, alpha, rA, lda, sA, rB, ldb, sB, beta, rC, ldc, sC, batch);
        /* Entries between rows (padding) are untouched: the reference keeps
         * them as they were, NaN included, so compare only the matrices. */
        dbuf dA = dbuf_make(A, nA), dB = dbuf_make(B, nB), dC = dbuf_make(C, nC);
        g_be->gemm_batched(ta, tb, M, N, K, alpha, dA.p, lda, sA, dB.p, ldb, sB, beta, dC.p, ldc, sC, batch);
        float *got = malloc(sizeof(float) * nC);
        int guards = dbuf_fetch(dC, got);
        double num = 0, den = 0;
        int nonfinite = 0, pad_changed = 0;
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < (int)(sC); i++) {
                size_t k = (size_t)b * sC + i;
                int inside = i < M * ldc && i % ldc < N;
                if (!inside) {
                    pad_changed += !(got[k] == C[k] || (isnan(got[k]) && isnan(C[k])));
                    continue;
                }
                if (!isfinite(got[k])) nonfinite++;
                double e = got[k] - rC[k];
                num += e * e, den += rC[k] * rC[k];
            }
        double nmse = num / den;
        if (nmse > t.worst) t.worst = nmse;
        if (guards || nonfinite || pad_changed || !(nmse <= 1e-10)) {
            t.failed++;
            printf("\n  FAIL %s gemm case %d (ta %d tb %d M %d N %d K %d batch %d beta %g): nmse %.3e, "
                   "%d guards, %d non-finite, %d padding entries changed",
                   g_be->name, c, ta, tb, M, N, K, batch, beta, nmse, guards, nonfinite, pad_changed);
        }
        dbuf_free(dA), dbuf_free(dB), dbuf_free(dC);
        free(A), free(B), free(C), free(rA), free(rB), free(rC), free(got);
    }
    report(&t);
}

/* ---- RMSNorm ------------------------------------------------------------------------ */

static void test_rmsnorm(void) {
    tally t = {"rmsnorm fwd+bwd", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(2, c);
        int T = irange(&d, 1, 200), C = irange(&d, 1, 700), use_w = c % 4 != 3;
        size_t n = (size_t)T * C;
        float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * C), *dy = malloc(sizeof(float) * n);
        float *dx0 = malloc(sizeof(float) * n), *dw0 = malloc(sizeof(float) * C);
        fill(&d, x, n, 2.0), fill(&d, w, C, 1.5), fill(&d, dy, n, 1.0), fill(&d, dx0, n, 0.5), fill(&d, dw0, C, 0.5);
        double *rx = to_double(x, n), *rw = to_double(w, C), *rdy = to_double(dy, n);
        double *ry = calloc(n, sizeof(double)), *rr = calloc(T, sizeof(double));
        double *rdx = to_double(dx0, n), *rdw = to_double(dw0, C);
        ref_rmsnorm_forward(ry, rr, rx, use_w ? rw : NULL, T, C, 1e-6);
        ref_rmsnorm_backward(rdx, use_w ? rdw : NULL, rdy, rx, use_w ? rw : NULL, rr, T, C);

        dbuf bx = dbuf_make(x, n), bw = dbuf_make(w, C), by = dbuf_make(NULL, n), br = dbuf_make(NULL, T);
        dbuf bdy = dbuf_make(dy, n), bdx = dbuf_make(dx0, n), bdw = dbuf_make(dw0, C);
        g_be->rmsnorm_forward(by.p, br.p, bx.p, use_w ? bw.p : NULL, T, C, 1e-6f);
        g_be->rmsnorm_backward(bdx.p, use_w ? bdw.p : NULL, bdy.p, bx.p, use_w ? bw.p : NULL, br.p, T, C);
        check_output(&t, c, "out", by, ry, 1e-11);
        check_output(&t, c, "rstd", br, rr, 1e-11);
        check_output(&t, c, "dinp", bdx, rdx, 1e-10);
        check_output(&t, c, "dweight", bdw, rdw, 1e-10);
        dbuf_free(bx), dbuf_free(bw), dbuf_free(by), dbuf_free(br), dbuf_free(bdy), dbuf_free(bdx), dbuf_free(bdw);
        free(x), free(w), free(dy), free(dx0), free(dw0);
        free(rx), free(rw), free(rdy), free(ry), free(rr), free(rdx), free(rdw);
    }
    report(&t);
}

/* ---- modulate and gated residual ---------------------------------------------------- */

static void test_modulate_and_gate(int gate) {
    tally t = {gate ? "gated_add fwd+bwd" : "modulate fwd+bwd", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(gate ? 4 : 3, c);
        int B = irange(&d, 1, 3), T = irange(&d, 1, 150), C = irange(&d, 1, 300);
        int ld = C * (c % 2 ? 6 : 1); /* rows of a (B, 6C) adaLN output */
        size_t n = (size_t)B * T * C, nm = (size_t)B * ld;
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n);
        float *sh = malloc(sizeof(float) * nm), *sc = malloc(sizeof(float) * nm);
        float *g0 = malloc(sizeof(float) * n), *m0 = malloc(sizeof(float) * nm), *m1 = malloc(sizeof(float) * nm);
        fill(&d, x, n, 1.0), fill(&d, y, n, 1.0), fill(&d, dy, n, 1.0), fill(&d, sh, nm, 0.5), fill(&d, sc, nm, 0.5);
        fill(&d, g0, n, 0.3), fill(&d, m0, nm, 0.3), fill(&d, m1, nm, 0.3);
        double *rx = to_double(x, n), *ry = to_double(y, n), *rdy = to_double(dy, n), *rsh = to_double(sh, nm);
        double *rsc = to_double(sc, nm), *rg = to_double(g0, n), *rm0 = to_double(m0, nm), *rm1 = to_double(m1, nm);
        double *rout = calloc(n, sizeof(double));
        dbuf bx = dbuf_make(x, n), by = dbuf_make(y, n), bdy = dbuf_make(dy, n), bsh = dbuf_make(sh, nm);
        dbuf bsc = dbuf_make(sc, nm), bg = dbuf_make(g0, n), bm0 = dbuf_make(m0, nm), bm1 = dbuf_make(m1, nm);
        dbuf bout = dbuf_make(NULL, n);
        if (!gate) {
            ref_modulate_forward(rout, rx, rsh, rsc, B, T, C, ld);
            ref_modulate_backward(rg, rm0, rm1, rdy, rx, rsc, B, T, C, ld);
            g_be->modulate_forward(bout.p, bx.p, bsh.p, bsc.p, B, T, C, ld);
            g_be->modulate_backward(bg.p, bm0.p, bm1.p, bdy.p, bx.p, bsc.p, B, T, C, ld);
            check_output(&t, c, "out", bout, rout, 1e-11);
            check_output(&t, c, "dinp", bg, rg, 1e-11);
            check_output(&t, c, "dshift", bm0, rm0, 1e-10);
            check_output(&t, c, "dscale", bm1, rm1, 1e-10);
        } else {
            /* x += gate*y in place: x is the output */
            ref_gated_add_forward(rx, ry, rsh, B, T, C, ld);
            ref_gated_add_backward(rg, rm0, rdy, ry, rsh, B, T, C, ld);
            g_be->gated_add_forward(bx.p, by.p, bsh.p, B, T, C, ld);
            g_be->gated_add_backward(bg.p, bm0.p, bdy.p, by.p, bsh.p, B, T, C, ld);
            check_output(&t, c, "x", bx, rx, 1e-11);
            check_output(&t, c, "dy", bg, rg, 1e-11);
            check_output(&t, c, "dgate", bm0, rm0, 1e-10);
        }
        dbuf_free(bx), dbuf_free(by), dbuf_free(bdy), dbuf_free(bsh), dbuf_free(bsc), dbuf_free(bg);
        dbuf_free(bm0), dbuf_free(bm1), dbuf_free(bout);
        free(x), free(y), free(dy), free(sh), free(sc), free(g0), free(m0), free(m1);
        free(rx), free(ry), free(rdy), free(rsh), free(rsc), free(rg), free(rm0), free(rm1), free(rout);
    }
    report(&t);
}
static void test_modulate(void) { test_modulate_and_gate(0); }
static void test_gated_add(void) { test_modulate_and_gate(1); }

/* ---- activations ---------------------------------------------------------------------- */

typedef enum { ACT_SILU, ACT_SWIGLU, ACT_GEGLU } act_kind;

static void test_activation(act_kind kind) {
    static const char *names[] = {"silu fwd+bwd", "swiglu fwd+bwd", "geglu fwd+bwd"};
    tally t = {names[kind], 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(5 + kind, c);
        int T = irange(&d, 1, 300), H = irange(&d, 1, 400);
        size_t nin = kind == ACT_SILU ? (size_t)T * H : (size_t)T * 2 * H, nout = (size_t)T * H;
        float *x = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout), *dx0 = malloc(sizeof(float) * nin);
        fill(&d, x, nin, 6.0), fill(&d, dy, nout, 1.0), fill(&d, dx0, nin, 0.5);
        double *rx = to_double(x, nin), *rdy = to_double(dy, nout), *rdx = to_double(dx0, nin);
        double *ry = calloc(nout, sizeof(double));
        dbuf bx = dbuf_make(x, nin), bdy = dbuf_make(dy, nout), bdx = dbuf_make(dx0, nin), by = dbuf_make(NULL, nout);
        switch (kind) {
        case ACT_SILU:
            ref_silu_forward(ry, rx, nout), ref_silu_backward(rdx, rdy, rx, nout);
            g_be->silu_forward(by.p, bx.p, nout), g_be->silu_backward(bdx.p, bdy.p, bx.p, nout);
            break;
        case ACT_SWIGLU:
            ref_swiglu_forward(ry, rx, T, H), ref_swiglu_backward(rdx, rdy, rx, T, H);
            g_be->swiglu_forward(by.p, bx.p, T, H), g_be->swiglu_backward(bdx.p, bdy.p, bx.p, T, H);
            break;
        case ACT_GEGLU:
            ref_geglu_forward(ry, rx, T, H), ref_geglu_backward(rdx, rdy, rx, T, H);
            g_be->geglu_forward(by.p, bx.p, T, H), g_be->geglu_backward(bdx.p, bdy.p, bx.p, T, H);
            break;
        }
        check_output(&t, c, "out", by, ry, 1e-11);
        check_output(&t, c, "dinp", bdx, rdx, 1e-11);
        dbuf_free(bx), dbuf_free(bdy), dbuf_free(bdx), dbuf_free(by);
        free(x), free(dy), free(dx0), free(rx), free(rdy), free(rdx), free(ry);
    }
    report(&t);
}
static void test_silu(void) { test_activation(ACT_SILU); }
static void test_swiglu(void) { test_activation(ACT_SWIGLU); }
static void test_geglu(void) { test_activation(ACT_GEGLU); }

/* ---- softmax ----------------------------------------------------------------------------- */

static void test_softmax(void) {
    tally t = {"softmax fwd+bwd", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(8, c);
        int N = c == 9 ? 4096 : irange(&d, 1, 300), R = c == 9 ? 3 : irange(&d, 1, 200);
        int use_mask = c % 3 != 0, mask_rows = irange(&d, 1, R);
        size_t n = (size_t)R * N;
        float *x = malloc(sizeof(float) * n), *dy = malloc(sizeof(float) * n), *dx0 = malloc(sizeof(float) * n);
        uint8_t *mask = malloc((size_t)mask_rows * N);
        fill(&d, x, n, 8.0), fill(&d, dy, n, 1.0), fill(&d, dx0, n, 0.5);
        for (size_t i = 0; i < (size_t)mask_rows * N; i++) mask[i] = unif(&d) < 0.7;
        if (mask_rows > 1) memset(mask, 0, N); /* a fully masked row must give zeros */
        float scale = (float)(0.1 + unif(&d));
        double *rx = to_double(x, n), *rdy = to_double(dy, n), *rdx = to_double(dx0, n), *ry = calloc(n, sizeof(double));
        ref_softmax_forward(ry, rx, use_mask ? mask : NULL, mask_rows, R, N, scale);
        ref_softmax_backward(rdx, rdy, ry, R, N, scale);
        dbuf bx = dbuf_make(x, n), bdy = dbuf_make(dy, n), bdx = dbuf_make(dx0, n), by = dbuf_make(NULL, n);
        uint8_t *bm = dbytes(mask, (size_t)mask_rows * N);
        g_be->softmax_forward(by.p, bx.p, use_mask ? bm : NULL, mask_rows, R, N, scale);
        /* Backward from the reference's forward output: each op is checked alone. */
        float *yf = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) yf[i] = (float)ry[i];
        dbuf byf = dbuf_make(yf, n);
        g_be->softmax_backward(bdx.p, bdy.p, byf.p, R, N, scale);
        check_output(&t, c, "out", by, ry, 1e-11);
        check_output(&t, c, "dinp", bdx, rdx, 1e-10);
        if (use_mask && mask_rows > 1) { /* masked entries are exactly zero */
            float *got = malloc(sizeof(float) * n);
            dbuf_fetch(by, got);
            for (int r = 0; r < R; r += mask_rows)
                for (int j = 0; j < N; j++)
                    if (got[(size_t)r * N + j] != 0.0f) {
                        t.failed++;
                        printf("\n  FAIL %s softmax case %d: fully masked row %d has %g at %d", g_be->name, c, r,
                               got[(size_t)r * N + j], j);
                        r = R, j = N;
                    }
            free(got);
        }
        dbuf_free(bx), dbuf_free(bdy), dbuf_free(bdx), dbuf_free(by), dbuf_free(byf), g_be->free(bm);
        free(x), free(dy), free(dx0), free(mask), free(yf), free(rx), free(rdy), free(rdx), free(ry);
    }
    report(&t);
}

/* ---- gather / scatter ------------------------------------------------------------------- */

static void test_permute(void) {
    tally t = {"gather+scatter_add", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(9, c);
        int rows = irange(&d, 1, 500), C = irange(&d, 1, 100), n = irange(&d, 1, rows);
        /* An injection: the first n entries of a random permutation. */
        int32_t *perm = malloc(sizeof(int32_t) * rows);
        for (int i = 0; i < rows; i++) perm[i] = i;
        for (int i = rows - 1; i > 0; i--) {
            int j = (int)(unif(&d) * (i + 1));
            int32_t tmp = perm[i];
            perm[i] = perm[j], perm[j] = tmp;
        }
        size_t nin = (size_t)rows * C, nout = (size_t)n * C;
        float *x = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout), *dx0 = malloc(sizeof(float) * nin);
        fill(&d, x, nin, 1.0), fill(&d, dy, nout, 1.0), fill(&d, dx0, nin, 1.0);
        double *rx = to_double(x, nin), *rdy = to_double(dy, nout), *rdx = to_double(dx0, nin), *ry = calloc(nout, sizeof(double));
        ref_gather_rows(ry, rx, perm, n, C);
        ref_scatter_add_rows(rdx, rdy, perm, n, C);
        dbuf bx = dbuf_make(x, nin), bdy = dbuf_make(dy, nout), bdx = dbuf_make(dx0, nin), by = dbuf_make(NULL, nout);
        int32_t *bidx = dbytes(perm, sizeof(int32_t) * n);
        g_be->gather_rows(by.p, bx.p, bidx, n, C);
        g_be->scatter_add_rows(bdx.p, bdy.p, bidx, n, C);
        check_output(&t, c, "gather", by, ry, 0.0); /* a copy: exact */
        check_output(&t, c, "scatter_add", bdx, rdx, 1e-14);
        dbuf_free(bx), dbuf_free(bdy), dbuf_free(bdx), dbuf_free(by), g_be->free(bidx);
        free(perm), free(x), free(dy), free(dx0), free(rx), free(rdy), free(rdx), free(ry);
    }
    report(&t);
}

/* ---- AdamW and sumsq ------------------------------------------------------------------------ */

static void test_adamw(void) {
    tally t = {"adamw", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(10, c);
        size_t N = (size_t)irange(&d, 1, 100000);
        int step = irange(&d, 1, 50);
        float *p = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N), *m = malloc(sizeof(float) * N);
        float *v = malloc(sizeof(float) * N);
        fill(&d, p, N, 1.0), fill(&d, g, N, 1.0), fill(&d, m, N, 0.1);
        for (size_t i = 0; i < N; i++) v[i] = (float)(0.01 * unif(&d) + 1e-4);
        float lr = (float)(1e-3 * (0.5 + unif(&d))), wd = (float)(0.2 * unif(&d)), gs = (float)(0.3 + unif(&d));
        double *rp = to_double(p, N), *rg = to_double(g, N), *rm = to_double(m, N), *rv = to_double(v, N);
        ref_adamw(rp, rg, rm, rv, N, lr, 0.85f, 0.9f, 1e-8f, wd, step, gs);
        dbuf bp = dbuf_make(p, N), bg = dbuf_make(g, N), bm = dbuf_make(m, N), bv = dbuf_make(v, N);
        g_be->adamw(bp.p, bg.p, bm.p, bv.p, N, lr, 0.85f, 0.9f, 1e-8f, wd, step, gs);
        /* The parameter moves by ~lr per step: compare the update, not the
         * parameter, or the bound would say nothing. The update is rounded
         * to the fp32 grid of a parameter of size ~1 (ulp 6e-8 against an
         * update of ~5e-4, relative 1e-4), hence a bound of 1e-7. */
        float *got = malloc(sizeof(float) * N);
        int guards = dbuf_fetch(bp, got);
        double num = 0, den = 0;
        for (size_t i = 0; i < N; i++) {
            double e = (got[i] - p[i]) - (rp[i] - p[i]);
            num += e * e, den += (rp[i] - p[i]) * (rp[i] - p[i]);
        }
        double nmse = num / den;
        if (nmse > t.worst) t.worst = nmse;
        if (guards || !(nmse <= 1e-7)) {
            t.failed++;
            printf("\n  FAIL %s adamw case %d: update nmse %.3e, %d guards", g_be->name, c, nmse, guards);
        }
        check_output(&t, c, "m", bm, rm, 1e-12);
        check_output(&t, c, "v", bv, rv, 1e-12);
        dbuf_free(bp), dbuf_free(bg), dbuf_free(bm), dbuf_free(bv);
        free(p), free(g), free(m), free(v), free(rp), free(rg), free(rm), free(rv), free(got);
    }
    report(&t);
}

static void test_sumsq(void) {
    tally t = {"sumsq", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(11, c);
        size_t N = (size_t)irange(&d, 1, 3000000);
        float *x = malloc(sizeof(float) * N);
        fill(&d, x, N, 3.0);
        double *rx = to_double(x, N);
        double ref = ref_sumsq(rx, N);
        dbuf bx = dbuf_make(x, N);
        double got = g_be->sumsq(bx.p, N);
        double rel = fabs(got - ref) / ref;
        double e = rel * rel;
        if (e > t.worst) t.worst = e;
        if (!(rel <= 1e-12)) { /* accumulated in double: near exact */
            t.failed++;
            printf("\n  FAIL %s sumsq case %d (N %zu): %.17g vs %.17g", g_be->name, c, N, got, ref);
        }
        dbuf_free(bx), free(x), free(rx);
    }
    report(&t);
}

static void test_axpby(void) {
    tally t = {"axpby", 0, 0, 0};
    FOR_CASES(&t) {
        draw d = draw_for(12, c);
        size_t N = (size_t)irange(&d, 1, 200000);
        float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
        fill(&d, x, N, 2.0), fill(&d, y, N, 2.0);
        float a = (float)(unif(&d) - 0.5), b = (float)(0.5 + unif(&d));
        double *rx = to_double(x, N), *ry = to_double(y, N);
        ref_axpby(ry, a, rx, b, N);
        dbuf bx = dbuf_make(x, N), by = dbuf_make(y, N);
        g_be->axpby(by.p, a, bx.p, b, N);
        check_output(&t, c, "y", by, ry, 1e-13);
        dbuf_free(bx), dbuf_free(by), free(x), free(y), free(rx), free(ry);
    }
    report(&t);
}

/* ---- registration -------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} TESTS[] = {
    {"gemm_batched", test_gemm}, {"rmsnorm", test_rmsnorm}, {"modulate", test_modulate},
    {"gated_add", test_gated_add}, {"silu", test_silu}, {"swiglu", test_swiglu},
    {"geglu", test_geglu}, {"softmax", test_softmax}, {"gather_scatter", test_permute},
    {"adamw", test_adamw}, {"sumsq", test_sumsq}, {"axpby", test_axpby},
};

static const ts_backend *g_suite_backends[TS_BACKEND_COUNT];
static int suite_init_cpu(void) { g_be = g_suite_backends[TS_BACKEND_CPU]; return 0; }
static int suite_init_cuda(void) { g_be = g_suite_backends[TS_BACKEND_CUDA]; return 0; }

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only_case = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    const char *why = NULL;
    g_suite_backends[TS_BACKEND_CPU] = ts_backend_cpu();
    g_suite_backends[TS_BACKEND_CUDA] = ts_backend_cuda(&why);
    int (*inits[])(void) = {suite_init_cpu, suite_init_cuda};
    int suites = 0;
    for (int k = 0; k < TS_BACKEND_COUNT; k++) {
        if (!g_suite_backends[k]) {
            printf("cuda: skipped: no GPU (%s)\n", why ? why : "unavailable");
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "backend %s vs double reference", g_suite_backends[k]->name);
        CU_pSuite s = CU_add_suite(name, inits[k], NULL);
        if (!s) return 2;
        for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
            if (!CU_add_test(s, TESTS[i].name, TESTS[i].fn)) return 2;
        suites++;
    }
    return ts_cunit_run();
}
