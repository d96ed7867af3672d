/* Gradient check of every backward op in core/backend.h, on every backend.
 *
 * For each op and each case (random shapes and values from a PRNG seeded by
 * the op and the case index, so a failing case replays):
 *   - loss L = sum_i R_i * out_i with a random R;
 *   - analytic gradient: the BACKEND's backward op with dout = R, run on
 *     gradient buffers that already hold a random G0, so the result must be
 *     G0 + dL/dx (the table's "+=" contract);
 *   - oracle: central finite differences of L computed with the DOUBLE
 *     reference forward ops of tests/core/ref_ops.c at the very same (fp32-exact)
 *     inputs;
 *   - every device buffer sits between guard zones holding a sentinel that
 *     must survive the op.
 * The backend's forward op is also compared with the reference forward.
 *
 * Tolerances. The finite difference runs in double with h = 1e-4: truncation
 * error ~ h^2 f''' / 6 ~ 1e-9 and rounding ~ 1e-16 |L| / h ~ 1e-12, so the
 * oracle is good to ~1e-8 relative. The backend computes in fp32 (unit
 * roundoff 6e-8); with the short reductions used here (<= ~50 terms) its
 * relative error stays around 1e-6, and adding the result to G0 in fp32 costs
 * another ~1e-7. TOL = 1e-4 on ||got - (G0 + fd)|| / ||fd|| keeps a 100x margin
 * over that while any wrong or missing term shows up as an error of 1e-2 or
 * more. Forward outputs are compared with FWD_TOL = 1e-5 relative (fp32
 * rounding only, no finite difference).
 */
#include <CUnit/Basic.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "tests/cunit_run.h"
#include "tests/core/ref_ops.h"

#define NCASES 5
#define FD_H 1e-4
#define TOL 1e-4
#define FWD_TOL 1e-5
#define GUARD 64 /* floats each side: 256 bytes, keeps the middle aligned */
#define SENTINEL 1234.5f

static const ts_backend *be;      /* backend under test, set by the suite's init */
static const ts_backend *be_cpu, *be_cuda;
static const char *cur_op;        /* for failure messages */
static int cur_case;

/* ---- deterministic PRNG (splitmix64) ---------------------------------------- */

static uint64_t rng_state;

static void rng_seed(int op, int cas)
{
    rng_state = 0x9E3779B97F4A7C15ull * (uint64_t)(1000 * op + cas + 1);
}

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double urand(void) { return (double)(rng_next() >> 11) * 0x1.0p-53; } /* [0, 1) */
static int irand(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }
static float unif(double lo, double hi) { return (float)(lo + (hi - lo) * urand()); }
/* Away from zero: +-U(0.2, 0.9). */
static float nonzero(void) { return (rng_next() & 1 ? 1.0f : -1.0f) * unif(0.2, 0.9); }

/* ---- host arrays ------------------------------------------------------------- */

static float *frand(size_t n, double lo, double hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = unif(lo, hi);
    return x;
}

static float *fnonzero(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = nonzero();
    return x;
}

/* The exact double copy of an fp32 array (the reference sees the same inputs). */
static double *dcopy(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float *fcopy(const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

static double ddot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* ---- device buffers with guard zones ------------------------------------------ */

/* n floats on the device between GUARD sentinels each side; returns the middle. */
static float *dev_put(const float *host, size_t n)
{
    size_t tot = n + 2 * GUARD;
    float *tmp = malloc(tot * sizeof *tmp);
    for (size_t i = 0; i < tot; i++)
        tmp[i] = SENTINEL;
    if (n)
        memcpy(tmp + GUARD, host, n * sizeof *tmp);
    float *base = be->alloc(tot * sizeof *base);
    be->upload(base, tmp, tot * sizeof *tmp);
    free(tmp);
    return base + GUARD;
}

static void dev_free(float *d) { be->free(d - GUARD); }

/* Plain bytes (index and mask inputs), no guards. */
static void *dev_put_bytes(const void *host, size_t bytes)
{
    void *d = be->alloc(bytes ? bytes : 1);
    if (bytes)
        be->upload(d, host, bytes);
    return d;
}

static float *dev_get(const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    be->sync();
    if (n)
        be->download(h, d, n * sizeof *h);
    return h;
}

static void check_guards(const char *what, const float *d, size_t n)
{
    float *all = dev_get(d - GUARD, n + 2 * GUARD);
    int ok = 1;
    for (size_t i = 0; i < GUARD; i++)
        ok &= all[i] == SENTINEL && all[GUARD + n + i] == SENTINEL;
    if (!ok)
        printf("\n  [%s] %s case %d: %s: guard zone overwritten\n", be->name, cur_op, cur_case,
               what);
    CU_ASSERT(ok);
    free(all);
}

/* ||got - want|| / ||ref|| (ref all zero: absolute), printing the worst element on failure. */
static void check_close(const char *what, const float *got, const double *want,
                        const double *ref, size_t n, double tol)
{
    double num = 0.0, den = 0.0, worst = -1.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num += e * e;
        den += ref[i] * ref[i];
        if (!(fabs(e) <= worst)) { /* NaN becomes the worst */
            worst = fabs(e);
            wi = i;
        }
    }
    double err = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
    int ok = err <= tol; /* false on NaN */
    if (!ok)
        printf("\n  [%s] %s case %d: %s: normalized error %.3e > %.0e"
               " (worst [%zu]: got %.9g, want %.9g)\n",
               be->name, cur_op, cur_case, what, err, tol, wi, n ? got[wi] : 0.0f,
               n ? want[wi] : 0.0);
    CU_ASSERT(ok);
}

/* A forward output: download d, compare with the reference, check guards, free d. */
static void finish_out(const char *what, float *d, const double *want, size_t n)
{
    float *got = dev_get(d, n);
    check_close(what, got, want, want, n, FWD_TOL);
    check_guards(what, d, n);
    free(got);
    dev_free(d);
}

/* A gradient buffer that started as g0: expect g0 + fd; check guards, free d. */
static void finish_grad(const char *what, float *d, const float *g0, const double *fd, size_t n)
{
    float *got = dev_get(d, n);
    double *want = malloc((n ? n : 1) * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = (double)g0[i] + fd[i];
    check_close(what, got, want, fd, n, TOL);
    check_guards(what, d, n);
    free(want);
    free(got);
    dev_free(d);
}

/* ---- central finite differences ------------------------------------------------ */

typedef double (*loss_fn)(void *ctx);

/* g[i] = (L(x + h e_i) - L(x - h e_i)) / 2h, x being read by loss through ctx. */
static double *fd_grad(double *x, size_t n, loss_fn loss, void *ctx)
{
    double *g = malloc((n ? n : 1) * sizeof *g);
    for (size_t i = 0; i < n; i++) {
        double xi = x[i];
        x[i] = xi + FD_H;
        double lp = loss(ctx);
        x[i] = xi - FD_H;
        double lm = loss(ctx);
        x[i] = xi;
        g[i] = (lp - lm) / (2.0 * FD_H);
    }
    return g;
}

/* ---- GEMM: backward as gemms ------------------------------------------------------ */

/* A batch of row-major matrices with padded rows and padded batch stride. */
typedef struct {
    int ld;
    int64_t stride;
    size_t n;
} layout;

static layout make_layout(int rows, int cols, int batch)
{
    layout l;
    l.ld = cols + irand(0, 2);
    l.stride = (int64_t)rows * l.ld + irand(0, 3);
    l.n = (size_t)(batch - 1) * (size_t)l.stride + (size_t)rows * l.ld;
    return l;
}

typedef struct {
    int ta, tb, M, N, K, batch;
    layout la, lb, lc;
    double alpha, *A, *B, *R, *C;
} gemm_ctx;

static double gemm_loss(void *p)
{
    gemm_ctx *g = p;
    ref_gemm_batched(g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->la.ld, g->la.stride,
                     g->B, g->lb.ld, g->lb.stride, 0.0, g->C, g->lc.ld, g->lc.stride, g->batch);
    return ddot(g->R, g->C, g->lc.n); /* C's padding stays 0 */
}

/* C = alpha op(A) op(B), L = sum R . C:
 *   d op(A) = alpha R op(B)^T, so dA = alpha R op(B)^T (ta = 0) or alpha op(B) R^T (ta = 1);
 *   d op(B) = alpha op(A)^T R, so dB = alpha op(A)^T R (tb = 0) or alpha R^T op(A) (tb = 1). */
static void gemm_case(int ta, int tb, int cas)
{
    gemm_ctx g = {.ta = ta, .tb = tb, .M = irand(1, 7), .N = irand(1, 7), .K = irand(1, 7),
                  .batch = irand(1, 3)};
    int M = g.M, N = g.N, K = g.K, nb = g.batch;
    g.la = make_layout(ta ? K : M, ta ? M : K, nb);
    g.lb = make_layout(tb ? N : K, tb ? K : N, nb);
    g.lc = make_layout(M, N, nb);
    layout la = g.la, lb = g.lb, lc = g.lc;
    float alpha = nonzero() * 1.5f;
    float *A = frand(la.n, -1, 1), *B = frand(lb.n, -1, 1), *R = frand(lc.n, -1, 1);
    float *gA = frand(la.n, -1, 1), *gB = frand(lb.n, -1, 1), *C0 = frand(lc.n, -1, 1);
    cur_case = cas;

    /* forward: beta = 0 over a C whose live entries are NaN (must be ignored) */
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C0[b * lc.stride + (int64_t)i * lc.ld + j] = NAN;
    g.alpha = alpha;
    g.A = dcopy(A, la.n);
    g.B = dcopy(B, lb.n);
    g.R = dcopy(R, lc.n);
    g.C = dcopy(C0, lc.n);
    ref_gemm_batched(ta, tb, M, N, K, alpha, g.A, la.ld, la.stride, g.B, lb.ld, lb.stride, 0.0,
                     g.C, lc.ld, lc.stride, nb);
    float *dA = dev_put(A, la.n), *dB = dev_put(B, lb.n), *dR = dev_put(R, lc.n);
    float *dC = dev_put(C0, lc.n);
    be->gemm_batched(ta, tb, M, N, K, alpha, dA, la.ld, la.stride, dB, lb.ld, lb.stride, 0.0f,
                     dC, lc.ld, lc.stride, nb);
    finish_out("C", dC, g.C, lc.n);

    /* oracle */
    memset(g.C, 0, lc.n * sizeof *g.C);
    double *fdA = fd_grad(g.A, la.n, gemm_loss, &g);
    double *fdB = fd_grad(g.B, lb.n, gemm_loss, &g);

    /* backend: gradients as gemms accumulating (beta = 1) into G0 */
    float *dgA = dev_put(gA, la.n), *dgB = dev_put(gB, lb.n);
    if (!ta)
        be->gemm_batched(0, !tb, M, K, N, alpha, dR, lc.ld, lc.stride, dB, lb.ld, lb.stride, 1.0f,
                         dgA, la.ld, la.stride, nb);
    else
        be->gemm_batched(tb, 1, K, M, N, alpha, dB, lb.ld, lb.stride, dR, lc.ld, lc.stride, 1.0f,
                         dgA, la.ld, la.stride, nb);
    if (!tb)
        be->gemm_batched(!ta, 0, K, N, M, alpha, dA, la.ld, la.stride, dR, lc.ld, lc.stride, 1.0f,
                         dgB, lb.ld, lb.stride, nb);
    else
        be->gemm_batched(1, ta, N, K, M, alpha, dR, lc.ld, lc.stride, dA, la.ld, la.stride, 1.0f,
                         dgB, lb.ld, lb.stride, nb);
    finish_grad("dA", dgA, gA, fdA, la.n);
    finish_grad("dB", dgB, gB, fdB, lb.n);

    dev_free(dA); dev_free(dB); dev_free(dR);
    free(A); free(B); free(R); free(gA); free(gB); free(C0);
    free(g.A); free(g.B); free(g.R); free(g.C); free(fdA); free(fdB);
}

static void test_gemm(void)
{
    static const char *names[2][2] = {{"gemm nn", "gemm nt"}, {"gemm tn", "gemm tt"}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int cas = 0; cas < NCASES; cas++) {
                cur_op = names[ta][tb];
                rng_seed(1 + 2 * ta + tb, cas);
                gemm_case(ta, tb, cas);
            }
}

/* ---- RMSNorm ---------------------------------------------------------------------- */

typedef struct {
    int T, C;
    double eps, *inp, *w, *R, *out, *rstd;
} rms_ctx;

static double rms_loss(void *p)
{
    rms_ctx *r = p;
    ref_rmsnorm_forward(r->out, r->rstd, r->inp, r->w, r->T, r->C, r->eps);
    return ddot(r->R, r->out, (size_t)r->T * r->C);
}

static void rmsnorm_case(int with_weight, int cas)
{
    rms_ctx r = {.T = irand(1, 6), .C = irand(1, 40), .eps = 1e-5};
    size_t n = (size_t)r.T * r.C, C = (size_t)r.C;
    float *inp = fnonzero(n), *w = fnonzero(C), *R = frand(n, -1, 1);
    float *g0 = fnonzero(n), *gw0 = fnonzero(C);
    cur_case = cas;

    r.inp = dcopy(inp, n);
    r.w = with_weight ? dcopy(w, C) : NULL;
    r.R = dcopy(R, n);
    r.out = malloc(n * sizeof *r.out);
    r.rstd = malloc(r.T * sizeof *r.rstd);
    rms_loss(&r);
    float *rstd = fcopy(r.rstd, r.T);

    float *d_inp = dev_put(inp, n), *d_w = dev_put(w, C), *d_R = dev_put(R, n);
    float *rstd0 = fnonzero(r.T); /* stale contents the forward must overwrite */
    float *d_out = dev_put(g0, n), *d_rstd = dev_put(rstd0, r.T);
    be->rmsnorm_forward(d_out, d_rstd, d_inp, with_weight ? d_w : NULL, r.T, r.C, (float)r.eps);
    finish_out("out", d_out, r.out, n);
    finish_out("rstd", d_rstd, r.rstd, r.T);

    double *fdx = fd_grad(r.inp, n, rms_loss, &r);
    double *fdw = with_weight ? fd_grad(r.w, C, rms_loss, &r) : NULL;

    d_rstd = dev_put(rstd, r.T); /* the reference's rstd, rounded to fp32 */
    float *d_g = dev_put(g0, n), *d_gw = dev_put(gw0, C);
    be->rmsnorm_backward(d_g, with_weight ? d_gw : NULL, d_R, d_inp, with_weight ? d_w : NULL,
                         d_rstd, r.T, r.C);
    finish_grad("dinp", d_g, g0, fdx, n);
    if (with_weight) {
        finish_grad("dweight", d_gw, gw0, fdw, C);
    } else {
        double *zero = calloc(C, sizeof *zero); /* NULL weight: dweight untouched */
        finish_grad("dweight (untouched)", d_gw, gw0, zero, C);
        free(zero);
    }

    dev_free(d_inp); dev_free(d_w); dev_free(d_R); dev_free(d_rstd);
    free(inp); free(w); free(R); free(g0); free(gw0); free(rstd); free(rstd0);
    free(r.inp); free(r.w); free(r.R); free(r.out); free(r.rstd); free(fdx); free(fdw);
}

static void test_rmsnorm_weight(void)
{
    cur_op = "rmsnorm (weight)";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(10, cas);
        rmsnorm_case(1, cas);
    }
}

static void test_rmsnorm_noweight(void)
{
    cur_op = "rmsnorm (no weight)";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(11, cas);
        rmsnorm_case(0, cas);
    }
}

/* ---- modulate ---------------------------------------------------------------------- */

/* shift = P, scale = P + C: both rows of one (B, ld) matrix, as with adaLN. */
typedef struct {
    int B, T, C, ld;
    double *inp, *P, *R, *out;
} mod_ctx;

static double mod_loss(void *p)
{
    mod_ctx *m = p;
    ref_modulate_forward(m->out, m->inp, m->P, m->P + m->C, m->B, m->T, m->C, m->ld);
    return ddot(m->R, m->out, (size_t)m->B * m->T * m->C);
}

static void test_modulate(void)
{
    cur_op = "modulate";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(20, cas);
        cur_case = cas;
        mod_ctx m = {.B = irand(1, 3), .T = irand(1, 5), .C = irand(1, 24)};
        m.ld = 2 * m.C + irand(0, 3);
        size_t n = (size_t)m.B * m.T * m.C, np = (size_t)m.B * m.ld;
        float *inp = fnonzero(n), *P = fnonzero(np), *R = frand(n, -1, 1);
        float *g0 = fnonzero(n), *gP0 = fnonzero(np);

        m.inp = dcopy(inp, n);
        m.P = dcopy(P, np);
        m.R = dcopy(R, n);
        m.out = malloc(n * sizeof *m.out);
        mod_loss(&m);

        float *d_inp = dev_put(inp, n), *d_P = dev_put(P, np), *d_R = dev_put(R, n);
        float *d_out = dev_put(g0, n);
        be->modulate_forward(d_out, d_inp, d_P, d_P + m.C, m.B, m.T, m.C, m.ld);
        finish_out("out", d_out, m.out, n);

        double *fdx = fd_grad(m.inp, n, mod_loss, &m);
        double *fdP = fd_grad(m.P, np, mod_loss, &m); /* dshift and dscale, padding 0 */

        float *d_g = dev_put(g0, n), *d_gP = dev_put(gP0, np);
        be->modulate_backward(d_g, d_gP, d_gP + m.C, d_R, d_inp, d_P + m.C, m.B, m.T, m.C, m.ld);
        finish_grad("dinp", d_g, g0, fdx, n);
        finish_grad("dshift|dscale", d_gP, gP0, fdP, np);

        dev_free(d_inp); dev_free(d_P); dev_free(d_R);
        free(inp); free(P); free(R); free(g0); free(gP0);
        free(m.inp); free(m.P); free(m.R); free(m.out); free(fdx); free(fdP);
    }
}

/* ---- gated add ---------------------------------------------------------------------- */

/* x_out = x + gate * y with gate = P + off, a row slice of a (B, ld) matrix. */
typedef struct {
    int B, T, C, ld, off;
    double *x, *y, *P, *R, *out;
} gate_ctx;

static double gate_loss(void *p)
{
    gate_ctx *g = p;
    size_t n = (size_t)g->B * g->T * g->C;
    memcpy(g->out, g->x, n * sizeof *g->out);
    ref_gated_add_forward(g->out, g->y, g->P + g->off, g->B, g->T, g->C, g->ld);
    return ddot(g->R, g->out, n);
}

static void test_gated_add(void)
{
    cur_op = "gated_add";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(30, cas);
        cur_case = cas;
        gate_ctx g = {.B = irand(1, 3), .T = irand(1, 5), .C = irand(1, 24)};
        g.ld = 3 * g.C + irand(0, 3);
        g.off = irand(0, g.ld - g.C);
        size_t n = (size_t)g.B * g.T * g.C, np = (size_t)g.B * g.ld;
        float *x = fnonzero(n), *y = fnonzero(n), *P = fnonzero(np), *R = frand(n, -1, 1);
        float *gy0 = fnonzero(n), *gP0 = fnonzero(np);

        g.x = dcopy(x, n);
        g.y = dcopy(y, n);
        g.P = dcopy(P, np);
        g.R = dcopy(R, n);
        g.out = malloc(n * sizeof *g.out);
        gate_loss(&g);

        float *d_x = dev_put(x, n), *d_y = dev_put(y, n), *d_P = dev_put(P, np);
        float *d_R = dev_put(R, n);
        be->gated_add_forward(d_x, d_y, d_P + g.off, g.B, g.T, g.C, g.ld);
        finish_out("x", d_x, g.out, n);

        double *fdy = fd_grad(g.y, n, gate_loss, &g);
        double *fdP = fd_grad(g.P, np, gate_loss, &g); /* dgate, 0 outside the slice */

        float *d_gy = dev_put(gy0, n), *d_gP = dev_put(gP0, np);
        be->gated_add_backward(d_gy, d_gP + g.off, d_R, d_y, d_P + g.off, g.B, g.T, g.C, g.ld);
        finish_grad("dy", d_gy, gy0, fdy, n);
        finish_grad("dgate", d_gP, gP0, fdP, np);
        double *Rd = dcopy(R, n); /* dx is an input: must come back unchanged */
        finish_out("dx (unchanged)", d_R, Rd, n);

        dev_free(d_y); dev_free(d_P);
        free(x); free(y); free(P); free(R); free(gy0); free(gP0); free(Rd);
        free(g.x); free(g.y); free(g.P); free(g.R); free(g.out); free(fdy); free(fdP);
    }
}

/* ---- SiLU ---------------------------------------------------------------------------- */

typedef struct {
    size_t N;
    double *inp, *R, *out;
} silu_ctx;

static double silu_loss(void *p)
{
    silu_ctx *s = p;
    ref_silu_forward(s->out, s->inp, s->N);
    return ddot(s->R, s->out, s->N);
}

static void test_silu(void)
{
    cur_op = "silu";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(40, cas);
        cur_case = cas;
        silu_ctx s = {.N = (size_t)irand(1, 300)};
        size_t n = s.N;
        float *inp = frand(n, -5, 5), *R = frand(n, -1, 1), *g0 = fnonzero(n);

        s.inp = dcopy(inp, n);
        s.R = dcopy(R, n);
        s.out = malloc(n * sizeof *s.out);
        silu_loss(&s);

        float *d_inp = dev_put(inp, n), *d_R = dev_put(R, n), *d_out = dev_put(g0, n);
        be->silu_forward(d_out, d_inp, n);
        finish_out("out", d_out, s.out, n);

        double *fdx = fd_grad(s.inp, n, silu_loss, &s);
        float *d_g = dev_put(g0, n);
        be->silu_backward(d_g, d_R, d_inp, n);
        finish_grad("dinp", d_g, g0, fdx, n);

        dev_free(d_inp); dev_free(d_R);
        free(inp); free(R); free(g0); free(s.inp); free(s.R); free(s.out); free(fdx);
    }
}

/* ---- SwiGLU / GeGLU -------------------------------------------------------------------- */

typedef struct {
    int geglu, T, H;
    double *inp, *R, *out;
} glu_ctx;

static double glu_loss(void *p)
{
    glu_ctx *g = p;
    if (g->geglu)
        ref_geglu_forward(g->out, g->inp, g->T, g->H);
    else
        ref_swiglu_forward(g->out, g->inp, g->T, g->H);
    return ddot(g->R, g->out, (size_t)g->T * g->H);
}

static void glu_case(int geglu, int cas)
{
    glu_ctx g = {.geglu = geglu, .T = irand(1, 5), .H = irand(1, 24)};
    size_t no = (size_t)g.T * g.H, ni = 2 * no;
    float *inp = frand(ni, -3, 3), *R = frand(no, -1, 1), *g0 = fnonzero(ni), *o0 = fnonzero(no);
    cur_case = cas;

    g.inp = dcopy(inp, ni);
    g.R = dcopy(R, no);
    g.out = malloc(no * sizeof *g.out);
    glu_loss(&g);

    float *d_inp = dev_put(inp, ni), *d_R = dev_put(R, no), *d_out = dev_put(o0, no);
    (geglu ? be->geglu_forward : be->swiglu_forward)(d_out, d_inp, g.T, g.H);
    finish_out("out", d_out, g.out, no);

    double *fdx = fd_grad(g.inp, ni, glu_loss, &g);
    float *d_g = dev_put(g0, ni);
    (geglu ? be->geglu_backward : be->swiglu_backward)(d_g, d_R, d_inp, g.T, g.H);
    finish_grad("dinp", d_g, g0, fdx, ni);

    dev_free(d_inp); dev_free(d_R);
    free(inp); free(R); free(g0); free(o0); free(g.inp); free(g.R); free(g.out); free(fdx);
}

static void test_swiglu(void)
{
    cur_op = "swiglu";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(50, cas);
        glu_case(0, cas);
    }
}

static void test_geglu(void)
{
    cur_op = "geglu";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(51, cas);
        glu_case(1, cas);
    }
}

/* ---- softmax ------------------------------------------------------------------------- */

typedef struct {
    int R, N, mask_rows;
    double scale, *inp, *Rw, *out;
    const uint8_t *mask;
} sm_ctx;

static double sm_loss(void *p)
{
    sm_ctx *s = p;
    ref_softmax_forward(s->out, s->inp, s->mask, s->mask_rows, s->R, s->N, s->scale);
    return ddot(s->Rw, s->out, (size_t)s->R * s->N);
}

/* A random mask (~70% allowed) with mask row `dead` fully masked and every
 * other row keeping at least one allowed entry. */
static uint8_t *make_mask(int rows, int N, int dead)
{
    uint8_t *m = malloc((size_t)rows * N);
    for (int r = 0; r < rows; r++) {
        int any = 0;
        for (int j = 0; j < N; j++)
            any |= m[(size_t)r * N + j] = (r != dead && urand() < 0.7);
        if (r != dead && !any)
            m[(size_t)r * N + irand(0, N - 1)] = 1;
    }
    return m;
}

static void softmax_case(int masked, int cas)
{
    sm_ctx s = {.R = irand(2, 8), .N = irand(1, 20), .mask_rows = 1};
    s.scale = unif(0.3, 2.0);
    int dead = -1;
    uint8_t *mask = NULL;
    if (masked) {
        s.mask_rows = irand(2, s.R);
        dead = irand(0, s.mask_rows - 1);
        mask = make_mask(s.mask_rows, s.N, dead);
    }
    s.mask = mask;
    size_t n = (size_t)s.R * s.N;
    float *inp = frand(n, -2, 2), *R = frand(n, -1, 1), *g0 = fnonzero(n), *o0 = fnonzero(n);
    cur_case = cas;

    s.inp = dcopy(inp, n);
    s.Rw = dcopy(R, n);
    s.out = malloc(n * sizeof *s.out);
    sm_loss(&s);
    float *out = fcopy(s.out, n); /* the backward's input: reference output in fp32 */

    float *d_inp = dev_put(inp, n), *d_R = dev_put(R, n), *d_out = dev_put(o0, n);
    uint8_t *d_mask = masked ? dev_put_bytes(mask, (size_t)s.mask_rows * s.N) : NULL;
    be->softmax_forward(d_out, d_inp, d_mask, s.mask_rows, s.R, s.N, (float)s.scale);
    float *got = dev_get(d_out, n);
    for (int r = 0; r < s.R; r++) { /* a fully masked row is exactly zero */
        if (!masked || r % s.mask_rows != dead)
            continue;
        for (int j = 0; j < s.N; j++)
            if (got[(size_t)r * s.N + j] != 0.0f) {
                printf("\n  [%s] %s case %d: masked row %d out[%d] = %g, want 0\n", be->name,
                       cur_op, cas, r, j, got[(size_t)r * s.N + j]);
                CU_FAIL("fully masked row not zero");
            }
    }
    free(got);
    finish_out("out", d_out, s.out, n);

    double *fdx = fd_grad(s.inp, n, sm_loss, &s);
    float *d_o = dev_put(out, n), *d_g = dev_put(g0, n);
    be->softmax_backward(d_g, d_R, d_o, s.R, s.N, (float)s.scale);
    finish_grad("dinp", d_g, g0, fdx, n);

    dev_free(d_inp); dev_free(d_R); dev_free(d_o);
    if (d_mask)
        be->free(d_mask);
    free(mask); free(inp); free(R); free(g0); free(o0); free(out);
    free(s.inp); free(s.Rw); free(s.out); free(fdx);
}

static void test_softmax_nomask(void)
{
    cur_op = "softmax (no mask)";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(60, cas);
        softmax_case(0, cas);
    }
}

static void test_softmax_mask(void)
{
    cur_op = "softmax (mask, one fully masked mask row)";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(61, cas);
        softmax_case(1, cas);
    }
}

/* ---- gather / scatter-add ------------------------------------------------------------- */

typedef struct {
    int n, C;
    const int32_t *idx;
    double *inp, *R, *out;
} gat_ctx;

static double gat_loss(void *p)
{
    gat_ctx *g = p;
    ref_gather_rows(g->out, g->inp, g->idx, g->n, g->C);
    return ddot(g->R, g->out, (size_t)g->n * g->C);
}

static void test_gather_scatter(void)
{
    cur_op = "gather_rows / scatter_add_rows";
    for (int cas = 0; cas < NCASES; cas++) {
        rng_seed(70, cas);
        cur_case = cas;
        int rows = irand(1, 12);
        gat_ctx g = {.n = irand(1, rows), .C = irand(1, 16)};
        int32_t *perm = malloc(rows * sizeof *perm); /* first n of a permutation: an injection */
        for (int i = 0; i < rows; i++)
            perm[i] = i;
        for (int i = rows - 1; i > 0; i--) {
            int j = irand(0, i);
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        g.idx = perm;
        size_t ni = (size_t)rows * g.C, no = (size_t)g.n * g.C;
        float *inp = frand(ni, -1, 1), *R = frand(no, -1, 1), *g0 = fnonzero(ni), *o0 = fnonzero(no);

        g.inp = dcopy(inp, ni);
        g.R = dcopy(R, no);
        g.out = malloc(no * sizeof *g.out);
        gat_loss(&g);

        float *d_inp = dev_put(inp, ni), *d_R = dev_put(R, no), *d_out = dev_put(o0, no);
        int32_t *d_idx = dev_put_bytes(perm, (size_t)g.n * sizeof *perm);
        be->gather_rows(d_out, d_inp, d_idx, g.n, g.C);
        finish_out("out", d_out, g.out, no);

        double *fdx = fd_grad(g.inp, ni, gat_loss, &g); /* rows not gathered: 0 */
        float *d_g = dev_put(g0, ni);
        be->scatter_add_rows(d_g, d_R, d_idx, g.n, g.C);
        finish_grad("dinp", d_g, g0, fdx, ni);

        dev_free(d_inp); dev_free(d_R);
        be->free(d_idx);
        free(perm); free(inp); free(R); free(g0); free(o0);
        free(g.inp); free(g.R); free(g.out); free(fdx);
    }
}

/* ---- registry ------------------------------------------------------------------------- */

static int init_cpu(void) { be = be_cpu; return 0; }
static int init_cuda(void) { be = be_cuda; return 0; }

static const struct {
    const char *suite, *test;
    CU_TestFunc fn;
} TESTS[] = {
    {"gemm", "backward as gemms (nn, nt, tn, tt)", test_gemm},
    {"rmsnorm", "with weight", test_rmsnorm_weight},
    {"rmsnorm", "without weight", test_rmsnorm_noweight},
    {"modulate", "dinp, dshift, dscale", test_modulate},
    {"gated_add", "dy, dgate", test_gated_add},
    {"silu", "dinp", test_silu},
    {"swiglu", "dinp", test_swiglu},
    {"geglu", "dinp", test_geglu},
    {"softmax", "no mask", test_softmax_nomask},
    {"softmax", "mask with a fully masked row", test_softmax_mask},
    {"gather_rows", "scatter_add_rows is its backward", test_gather_scatter},
};

/* One suite per op for backend `name`; 0 or -1 on a registry error. */
static int add_suites(const char *name, CU_InitializeFunc init)
{
    size_t nt = sizeof TESTS / sizeof TESTS[0];
    CU_pSuite suite = NULL;
    for (size_t i = 0; i < nt; i++) {
        if (i == 0 || strcmp(TESTS[i].suite, TESTS[i - 1].suite) != 0) {
            char sname[64];
            snprintf(sname, sizeof sname, "%s: %s", name, TESTS[i].suite);
            suite = CU_add_suite(sname, init, NULL);
            if (!suite)
                return -1;
        }
        if (!CU_add_test(suite, TESTS[i].test, TESTS[i].fn))
            return -1;
    }
    return 0;
}

int main(void)
{
    be_cpu = ts_backend_cpu();
    const char *why = NULL;
    be_cuda = ts_backend_cuda(&why);
    if (!be_cuda)
        printf("cuda: skipped: no GPU (%s)\n", why ? why : "no reason given");
    if (!be_cpu) {
        fprintf(stderr, "test_gradcheck: ts_backend_cpu() returned NULL\n");
        return 1;
    }

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "test_gradcheck: CUnit registry: %s\n", CU_get_error_msg());
        return 1;
    }
    if (add_suites("cpu", init_cpu) != 0 || (be_cuda && add_suites("cuda", init_cuda) != 0)) {
        fprintf(stderr, "test_gradcheck: CUnit setup: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    return ts_cunit_run();
}
