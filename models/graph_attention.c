#include "models/graph_attention.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The simd reduction lets the compiler split the sum into vector lanes: a
 * fixed order for a given build, whatever the thread count. */
static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < n; t++) s += a[t] * b[t];
    return s;
}

/* Online softmax over row i's columns, all heads at once so each k_j and v_j
 * row is read once: m (H) running max, l (H) running sum, o (H*D) the
 * unnormalized output. */
static void row_partial(float *o, float *m, float *l, const float *qi, const float *k, const float *v,
                        const int32_t *cols, int64_t n, int H, int D, float scale) {
    const size_t HD = (size_t)H * D;
    for (int h = 0; h < H; h++) m[h] = -INFINITY, l[h] = 0.0f;
    memset(o, 0, sizeof(float) * HD);
    for (int64_t e = 0; e < n; e++) {
        const float *kj = k + (size_t)cols[e] * HD, *vj = v + (size_t)cols[e] * HD;
        for (int h = 0; h < H; h++) {
            float s = scale * dot(qi + h * D, kj + h * D, D);
            float *oh = o + h * D;
            if (s > m[h]) { /* a new max: rescale what was summed so far (exp(-inf) = 0 at the first entry) */
                float c = expf(m[h] - s);
                l[h] *= c;
                for (int t = 0; t < D; t++) oh[t] *= c;
                m[h] = s;
            }
            float p = expf(s - m[h]);
            l[h] += p;
            const float *vh = vj + h * D;
            for (int t = 0; t < D; t++) oh[t] += p * vh[t];
        }
    }
}

void ts_gattn_partial_forward(float *o, float *m, float *l, const float *q, const float *k, const float *v,
                              const ts_csr *mask, int H, int D, float scale) {
    const int64_t R = mask->n_rows;
    const size_t HD = (size_t)H * D;
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < R; i++) {
        int64_t b = mask->rowptr[i], n = mask->rowptr[i + 1] - b;
        row_partial(o + i * HD, m + i * H, l + i * H, q + i * HD, k, v, mask->col + b, n, H, D, scale);
    }
}

/* out = o / l and lse = m + log l for the H heads of one row. */
static void finish_row(float *out, float *lse, const float *o, const float *m, const float *l, int H, int D) {
    for (int h = 0; h < H; h++) {
        const float *oh = o + (size_t)h * D;
        float *yh = out + (size_t)h * D;
        if (l[h] > 0.0f) {
            float inv = 1.0f / l[h];
            for (int t = 0; t < D; t++) yh[t] = oh[t] * inv;
            lse[h] = m[h] + logf(l[h]);
        } else {
            for (int t = 0; t < D; t++) yh[t] = 0.0f;
            lse[h] = -INFINITY;
        }
    }
}

void ts_gattn_finish(float *out, float *lse, const float *o, const float *m, const float *l, int64_t R, int H,
                     int D) {
    const size_t HD = (size_t)H * D;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R; i++) finish_row(out + i * HD, lse + i * H, o + i * HD, m + i * H, l + i * H, H, D);
}

void ts_gattn_forward(float *out, float *lse, const float *q, const float *k, const float *v, const ts_csr *mask,
                      int H, int D, float scale) {
    const int64_t R = mask->n_rows;
    const size_t HD = (size_t)H * D;
#pragma omp parallel
    {
        /* per-thread (m, l); o accumulates in place in out, normalized at the end of the row */
        float *ml = ts_malloc(sizeof(float) * 2 * (size_t)H);
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < R; i++) {
            int64_t b = mask->rowptr[i], n = mask->rowptr[i + 1] - b;
            float *oi = out + i * HD;
            row_partial(oi, ml, ml + H, q + i * HD, k, v, mask->col + b, n, H, D, scale);
            finish_row(oi, lse + i * H, oi, ml, ml + H, H, D);
        }
        free(ml);
    }
}

void ts_gattn_merge(float *o, float *m, float *l, const float *o2, const float *m2, const float *l2, int64_t R, int H,
                    int D) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R; i++)
        for (int h = 0; h < H; h++) {
            size_t rh = (size_t)i * H + h;
            float M = fmaxf(m[rh], m2[rh]);
            if (M == -INFINITY) continue; /* both empty: stays (0, -inf, 0) */
            float a = expf(m[rh] - M), b = expf(m2[rh] - M);
            float *oh = o + rh * D;
            const float *o2h = o2 + rh * D;
            for (int t = 0; t < D; t++) oh[t] = a * oh[t] + b * o2h[t];
            l[rh] = a * l[rh] + b * l2[rh];
            m[rh] = M;
        }
}

void ts_gattn_rescale(float *o, float *l, const float *m, const float *m_max, int64_t R, int H, int D) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < R; i++)
        for (int h = 0; h < H; h++) {
            size_t rh = (size_t)i * H + h;
            if (m_max[rh] == -INFINITY) continue; /* no rank has a column: all zeros already */
            float c = expf(m[rh] - m_max[rh]);
            float *oh = o + rh * D;
            for (int t = 0; t < D; t++) oh[t] *= c;
            l[rh] *= c;
        }
}

void ts_gattn_backward(float *dq, float *dk, float *dv, float *delta, const float *dout, const float *out,
                       const float *lse, const float *q, const float *k, const float *v, const ts_csr *mask,
                       const ts_csr *mask_t, int H, int D, float scale) {
    const int64_t R = mask->n_rows, C = mask->n_cols;
    const size_t HD = (size_t)H * D;
    if (mask_t->n_rows != C || mask_t->n_cols != R || ts_csr_nnz(mask_t) != ts_csr_nnz(mask))
        ts_fatal("graph attention backward: the transposed mask is %lld x %lld with %lld entries, expected %lld x %lld "
                 "with %lld",
                 (long long)mask_t->n_rows, (long long)mask_t->n_cols, (long long)ts_csr_nnz(mask_t), (long long)C,
                 (long long)R, (long long)ts_csr_nnz(mask));

    /* rows: Delta_i, then dq_i += scale * sum_j dS_ij k_j */
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < R; i++) {
        const float *qi = q + i * HD, *doi = dout + i * HD;
        float *dqi = dq + i * HD, *di = delta + i * H;
        for (int h = 0; h < H; h++) di[h] = dot(doi + h * D, out + i * HD + h * D, D);
        for (int64_t e = mask->rowptr[i]; e < mask->rowptr[i + 1]; e++) {
            const float *kj = k + (size_t)mask->col[e] * HD, *vj = v + (size_t)mask->col[e] * HD;
            for (int h = 0; h < H; h++) {
                float p = expf(scale * dot(qi + h * D, kj + h * D, D) - lse[i * H + h]);
                float ds = scale * p * (dot(doi + h * D, vj + h * D, D) - di[h]);
                float *dqh = dqi + h * D;
                const float *kh = kj + h * D;
                for (int t = 0; t < D; t++) dqh[t] += ds * kh[t];
            }
        }
    }

    /* columns, over the transpose: dk_j += scale * sum_i dS_ij q_i, dv_j += sum_i P_ij dO_i */
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t j = 0; j < C; j++) {
        const float *kj = k + j * HD, *vj = v + j * HD;
        float *dkj = dk + j * HD, *dvj = dv + j * HD;
        for (int64_t e = mask_t->rowptr[j]; e < mask_t->rowptr[j + 1]; e++) {
            int64_t i = mask_t->col[e];
            const float *qi = q + i * HD, *doi = dout + i * HD;
            for (int h = 0; h < H; h++) {
                const float *qh = qi + h * D, *doh = doi + h * D;
                float p = expf(scale * dot(qh, kj + h * D, D) - lse[i * H + h]);
                float ds = scale * p * (dot(doh, vj + h * D, D) - delta[i * H + h]);
                float *dkh = dkj + h * D, *dvh = dvj + h * D;
                for (int t = 0; t < D; t++) dkh[t] += ds * qh[t], dvh[t] += p * doh[t];
            }
        }
    }
}

double ts_gattn_flops(const ts_csr *mask, int H, int D) { return 4.0 * (double)ts_csr_nnz(mask) * H * D; }
