/* Space-filling-curve node orders and permutations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/graph.h"
#include "mesh/order.h"

static void check_curve_args(int dim, int bits) {
    if ((dim != 2 && dim != 3) || bits < 1 || bits > 32 || dim * bits > 64)
        ts_fatal("curve index in %d dimensions with %d bits per axis", dim, bits);
}

/* Skilling, "Programming the Hilbert curve" (AIP Conf. Proc. 707, 2004):
 * turns axes into the "transposed" Hilbert index in place, for any number of
 * dimensions; its bits, read level by level, give the index. */
static void axes_to_transpose(uint32_t *X, int bits, int dim) {
    const uint32_t M = (uint32_t)1 << (bits - 1);
    for (uint32_t Q = M; Q > 1; Q >>= 1) { /* undo excess work */
        uint32_t P = Q - 1;
        for (int i = 0; i < dim; i++) {
            if (X[i] & Q) {
                X[0] ^= P; /* invert */
            } else {
                uint32_t t = (X[0] ^ X[i]) & P; /* exchange */
                X[0] ^= t, X[i] ^= t;
            }
        }
    }
    for (int i = 1; i < dim; i++) X[i] ^= X[i - 1]; /* Gray encode */
    uint32_t t = 0;
    for (uint32_t Q = M; Q > 1; Q >>= 1)
        if (X[dim - 1] & Q) t ^= Q - 1;
    for (int i = 0; i < dim; i++) X[i] ^= t;
}

uint64_t ts_hilbert_index(const uint32_t *q, int dim, int bits) {
    check_curve_args(dim, bits);
    uint32_t X[3] = {0, 0, 0};
    /* Skilling's axis 0 is the most significant: reversed, x is the fastest
     * axis as in the Morton index below. */
    for (int i = 0; i < dim; i++) X[i] = q[dim - 1 - i];
    axes_to_transpose(X, bits, dim);
    uint64_t h = 0;
    for (int b = bits - 1; b >= 0; b--)
        for (int i = 0; i < dim; i++) h = h << 1 | ((X[i] >> b) & 1u);
    return h;
}

uint64_t ts_morton_index(const uint32_t *q, int dim, int bits) {
    check_curve_args(dim, bits);
    /* Bit b of axis a goes to bit b·dim + a: x is the fastest axis. */
    uint64_t m = 0;
    for (int b = 0; b < bits; b++)
        for (int a = 0; a < dim; a++) m |= (uint64_t)((q[a] >> b) & 1u) << (b * dim + a);
    return m;
}

typedef struct {
    uint64_t key;
    int32_t old;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return (a->old > b->old) - (a->old < b->old);
}

int ts_curve_order(const float *pos, int64_t n, int dim, ts_curve curve, int bits, int32_t *perm, int32_t *inv,
                   char *err, size_t err_cap) {
    if (bits == 0) bits = TS_CURVE_BITS_DEFAULT;
    if ((dim != 2 && dim != 3) || n < 0 || n > INT32_MAX || bits < 1 || bits > (dim == 2 ? 32 : 21) ||
        (curve != TS_CURVE_HILBERT && curve != TS_CURVE_MORTON)) {
        return TS_FAIL(err, err_cap, "curve order: bad arguments (%lld nodes, %d dimensions, %d bits, curve %d)",
                     (long long)n, dim, bits, (int)curve);
    }
    double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int64_t i = 0; i < n; i++)
        for (int a = 0; a < dim; a++) {
            double x = pos[i * dim + a];
            if (!isfinite(x)) {
                return TS_FAIL(err, err_cap, "node %lld has a non-finite position (axis %d)", (long long)i, a);
            }
            if (i == 0 || x < lo[a]) lo[a] = x;
            if (i == 0 || x > hi[a]) hi[a] = x;
        }
    double side = 0;
    for (int a = 0; a < dim; a++) side = fmax(side, hi[a] - lo[a]);
    const double cells = ldexp(1.0, bits), top = cells - 1;
    const double scale = side > 0 ? cells / side : 0; /* one point, or all equal: every node in cell 0 */
    keyed *k = ts_malloc(sizeof(keyed) * (size_t)n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        uint32_t q[3];
        for (int a = 0; a < dim; a++) q[a] = (uint32_t)fmin(floor((pos[i * dim + a] - lo[a]) * scale), top);
        k[i].key = curve == TS_CURVE_HILBERT ? ts_hilbert_index(q, dim, bits) : ts_morton_index(q, dim, bits);
        k[i].old = (int32_t)i;
    }
    qsort(k, (size_t)n, sizeof(keyed), cmp_keyed);
    for (int64_t i = 0; i < n; i++) perm[i] = k[i].old;
    free(k);
    if (inv) ts_perm_invert(perm, n, inv);
    return 0;
}

void ts_perm_invert(const int32_t *perm, int64_t n, int32_t *inv) {
    for (int64_t i = 0; i < n; i++) inv[perm[i]] = (int32_t)i;
}

void ts_permute_rows(const void *src, void *dst, int64_t n, size_t row_bytes, const int32_t *perm) {
    const char *s = src;
    char *d = dst;
    for (int64_t i = 0; i < n; i++) memcpy(d + (size_t)i * row_bytes, s + (size_t)perm[i] * row_bytes, row_bytes);
}

void ts_renumber_ids(int32_t *ids, size_t n, const int32_t *inv) {
    for (size_t e = 0; e < n; e++) ids[e] = inv[ids[e]];
}

void ts_csr_permute(const ts_csr *a, const int32_t *perm, const int32_t *inv, ts_csr *out) {
    if (a->n_rows != a->n_cols)
        ts_fatal("csr permute: %lld x %lld is not square", (long long)a->n_rows, (long long)a->n_cols);
    const int64_t N = a->n_rows;
    ts_csr_alloc(out, N, N, ts_csr_nnz(a));
    for (int64_t i = 0; i < N; i++) out->rowptr[i + 1] = out->rowptr[i] + (a->rowptr[perm[i] + 1] - a->rowptr[perm[i]]);
#pragma omp parallel for schedule(dynamic, 1024)
    for (int64_t i = 0; i < N; i++) {
        const int64_t from = a->rowptr[perm[i]], len = a->rowptr[perm[i] + 1] - from;
        int32_t *row = out->col + out->rowptr[i];
        for (int64_t e = 0; e < len; e++) row[e] = inv[a->col[from + e]];
        ts_sort_unique_i32(row, len); /* unique already: sorts */
    }
}
