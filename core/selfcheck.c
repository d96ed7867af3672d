#include "core/selfcheck.h"
#include "core/backend.h"
#include "core/log.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    FILE *out;
    int passed, failed;
} checker;

static void report(checker *c, int ok, const char *backend, const char *what, double err) {
    if (ok) c->passed++;
    else c->failed++;
    fprintf(c->out, "  %-4s %-5s %-44s %s %.1e\n", ok ? "ok" : "FAIL", backend, what, ok ? "err" : "ERR", err);
}

static float *host_normal(size_t n, uint64_t stream) {
    float *h = ts_malloc(sizeof(float) * n);
    ts_rng_normal(ts_rng_key_make(11, TS_RNG_TEST), stream, 0, n, h);
    return h;
}

static float *to_dev(const ts_backend *be, const float *h, size_t n) {
    float *d = be->alloc(sizeof(float) * n);
    be->upload(d, h, sizeof(float) * n);
    return d;
}

static float *to_host(const ts_backend *be, const float *d, size_t n) {
    float *h = ts_malloc(sizeof(float) * n);
    be->sync();
    be->download(h, d, sizeof(float) * n);
    return h;
}

static void check_philox(checker *c) {
    static const uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    static const uint32_t key[2] = {0xa4093822, 0x299f31d0};
    static const uint32_t want[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    uint32_t got[4];
    ts_philox4x32_10(ctr, key, got);
    report(c, memcmp(got, want, sizeof want) == 0, "-", "Philox-4x32-10 known answer", 0.0);
}

/* C = A B^T against a double loop: catches a mislinked or broken BLAS. */
static void check_gemm(checker *c, const ts_backend *be) {
    const int M = 67, N = 45, K = 129;
    float *A = host_normal((size_t)M * K, 1), *B = host_normal((size_t)N * K, 2);
    float *dA = to_dev(be, A, (size_t)M * K), *dB = to_dev(be, B, (size_t)N * K);
    float *dC = be->alloc(sizeof(float) * M * N);
    be->gemm_batched(0, 1, M, N, K, 1.0f, dA, K, 0, dB, K, 0, 0.0f, dC, N, 0, 1);
    float *C = to_host(be, dC, (size_t)M * N);
    double num = 0, den = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[i * K + k] * B[j * K + k];
            num += (C[i * N + j] - s) * (C[i * N + j] - s), den += s * s;
        }
    report(c, num / den < 1e-10, be->name, "sgemm vs double loop (normalized MSE)", num / den);
    free(A), free(B), free(C), be->free(dA), be->free(dB), be->free(dC);
}

/* rmsnorm rows have RMS 1; softmax rows sum to 1 and masked entries are 0. */
static void check_invariants(checker *c, const ts_backend *be) {
    const int T = 33, C = 96;
    float *x = host_normal((size_t)T * C, 3);
    for (int i = 0; i < T * C; i++) x[i] = 3.0f * x[i] + 1.0f;
    float *dx = to_dev(be, x, (size_t)T * C), *dy = be->alloc(sizeof(float) * T * C), *dr = be->alloc(sizeof(float) * T);
    be->rmsnorm_forward(dy, dr, dx, NULL, T, C, 0.0f);
    float *y = to_host(be, dy, (size_t)T * C);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)y[t * C + j] * y[t * C + j];
        worst = fmax(worst, fabs(sqrt(ss / C) - 1.0));
    }
    report(c, worst < 1e-5, be->name, "rmsnorm rows have unit RMS", worst);
    free(y);

    uint8_t mask[96];
    for (int j = 0; j < C; j++) mask[j] = (uint8_t)(j % 3 != 0);
    uint8_t *dm = be->alloc(sizeof mask);
    be->upload(dm, mask, sizeof mask);
    be->softmax_forward(dy, dx, dm, 1, T, C, 0.7f);
    y = to_host(be, dy, (size_t)T * C);
    worst = 0;
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int j = 0; j < C; j++) {
            s += y[t * C + j];
            if (!mask[j]) worst = fmax(worst, fabs(y[t * C + j]));
        }
        worst = fmax(worst, fabs(s - 1.0));
    }
    report(c, worst < 1e-5, be->name, "masked softmax rows sum to 1", worst);
    free(x), free(y), be->free(dx), be->free(dy), be->free(dr), be->free(dm);
}

/* Every forward op of a device backend against the CPU backend. */
static double compare(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return den > 0 ? num / den : num;
}

static void check_against_cpu(checker *c, const ts_backend *dev) {
    const ts_backend *cpu = ts_backend_cpu();
    const int T = 64, C = 80, H = 72;
    size_t n = (size_t)T * 2 * H > (size_t)T * C ? (size_t)T * 2 * H : (size_t)T * C;
    float *x = host_normal(n, 4), *w = host_normal(6 * (size_t)C, 5);
    const ts_backend *bes[2] = {cpu, dev};
    float *res[2][5];
    for (int k = 0; k < 2; k++) {
        const ts_backend *be = bes[k];
        float *dx = to_dev(be, x, n), *dw = to_dev(be, w, 6 * (size_t)C), *dy = be->alloc(sizeof(float) * n);
        float *dr = be->alloc(sizeof(float) * T);
        be->rmsnorm_forward(dy, dr, dx, dw, T, C, 1e-6f);
        res[k][0] = to_host(be, dy, (size_t)T * C);
        be->modulate_forward(dy, dx, dw, dw + C, 1, T, C, 6 * C);
        res[k][1] = to_host(be, dy, (size_t)T * C);
        be->swiglu_forward(dy, dx, T, H);
        res[k][2] = to_host(be, dy, (size_t)T * H);
        be->geglu_forward(dy, dx, T, H);
        res[k][3] = to_host(be, dy, (size_t)T * H);
        be->softmax_forward(dy, dx, NULL, 1, T, C, 0.5f);
        res[k][4] = to_host(be, dy, (size_t)T * C);
        be->free(dx), be->free(dw), be->free(dy), be->free(dr);
    }
    static const char *names[5] = {"rmsnorm", "modulate", "swiglu", "geglu", "softmax"};
    size_t sizes[5] = {(size_t)T * C, (size_t)T * C, (size_t)T * H, (size_t)T * H, (size_t)T * C};
    for (int i = 0; i < 5; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s forward matches cpu", names[i]);
        double e = compare(res[1][i], res[0][i], sizes[i]);
        report(c, e < 1e-10, dev->name, what, e);
        free(res[0][i]), free(res[1][i]);
    }
    free(x), free(w);
}

int ts_selfcheck(FILE *out) {
    checker c = {out, 0, 0};
    fprintf(out, "self-check:\n");
    check_philox(&c);
    const ts_backend *cpu = ts_backend_cpu();
    check_gemm(&c, cpu);
    check_invariants(&c, cpu);
    const char *why = NULL;
    const ts_backend *cuda = ts_backend_cuda(&why);
    if (cuda) {
        check_gemm(&c, cuda);
        check_invariants(&c, cuda);
        check_against_cpu(&c, cuda);
    } else {
        fprintf(out, "  cuda: skipped: no GPU (%s)\n", why ? why : "unavailable");
    }
    fprintf(out, "self-check: %d passed, %d failed\n", c.passed, c.failed);
    return c.failed;
}
