/* Node orders along space-filling curves, against properties of the curves
 * themselves: on a full 2^k lattice the Hilbert order is a permutation whose
 * consecutive points are one lattice step apart (2-D and 3-D); both curves
 * visit every aligned 2^j block as one run; the Morton order equals a sort
 * by Chan's most-significant-differing-bit comparison (no interleaving);
 * ties keep the old order; and renumbering commutes with building edges.
 * Case c draws from the counter RNG with stream c: TESSERA_CASE=c replays.
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/graph.h"
#include "mesh/order.h"
#include "mesh_oracle.h"
#include "tests/cunit_run.h"

enum { CASES = 16 };
static int g_only = -1;
#define FOR_CASES(c) for (int c = 0; c < CASES; c++) if (g_only < 0 || g_only == c)

static int is_permutation(const int32_t *p, int64_t n) {
    char *seen = calloc(n + 1, 1);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= n || seen[p[i]]) ok = 0;
        else seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

/* The full 2^k lattice in 2-D and 3-D, listed in a shuffled order so the
 * curve, not the input order, decides the result. */
static float *lattice(int dim, int k, int c, int64_t *n_out) {
    const int64_t side = 1 << k, n = dim == 2 ? side * side : side * side * side;
    float *pos = malloc(sizeof(float) * dim * n);
    int64_t *ids = malloc(sizeof(int64_t) * n);
    uint64_t draws = 0;
    for (int64_t i = 0; i < n; i++) ids[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = draw_int(c, &draws, 0, (int)i), t = ids[i];
        ids[i] = ids[j], ids[j] = t;
    }
    for (int64_t i = 0; i < n; i++)
        for (int a = 0; a < dim; a++) pos[i * dim + a] = (float)(ids[i] / (a == 0 ? 1 : a == 1 ? side : side * side) % side);
    *n_out = n;
    free(ids);
    return pos;
}

/* Every aligned run of 2^(dim·j) consecutive points covers one aligned
 * block of side 2^j. */
static void assert_blocks(const float *pos, const int32_t *perm, int64_t n, int dim, int k) {
    for (int j = 1; j <= k; j++) {
        const int64_t run = (int64_t)1 << (dim * j), bside = 1 << j;
        for (int64_t s = 0; s < n; s += run) {
            int ok = 1;
            int base[3];
            for (int a = 0; a < dim; a++) base[a] = (int)pos[perm[s] * dim + a] / bside;
            for (int64_t i = s; i < s + run; i++)
                for (int a = 0; a < dim; a++) ok &= (int)pos[perm[i] * dim + a] / bside == base[a];
            CU_ASSERT(ok); /* a run of distinct points inside one block of run points is the block */
        }
    }
}

static void test_hilbert_lattice(void) {
    char err[256];
    for (int dim = 2; dim <= 3; dim++)
        for (int k = 1; k <= (dim == 2 ? 7 : 4); k++) {
            int64_t n;
            float *pos = lattice(dim, k, k, &n);
            int32_t *perm = malloc(sizeof(int32_t) * n), *inv = malloc(sizeof(int32_t) * n);
            CU_ASSERT_EQUAL_FATAL(ts_curve_order(pos, n, dim, TS_CURVE_HILBERT, k, perm, inv, err, sizeof err), 0);
            CU_ASSERT_FATAL(is_permutation(perm, n));
            for (int64_t i = 0; i < n; i++) CU_ASSERT_EQUAL(inv[perm[i]], i);
            int64_t bad = 0;
            for (int64_t i = 1; i < n; i++) {
                float step = 0;
                for (int a = 0; a < dim; a++) step += fabsf(pos[perm[i] * dim + a] - pos[perm[i - 1] * dim + a]);
                bad += step != 1.0f;
            }
            CU_ASSERT_EQUAL(bad, 0);
            assert_blocks(pos, perm, n, dim, k);
            /* deterministic: the same input gives the same order */
            int32_t *again = malloc(sizeof(int32_t) * n);
            ts_curve_order(pos, n, dim, TS_CURVE_HILBERT, k, again, NULL, err, sizeof err);
            CU_ASSERT(memcmp(perm, again, sizeof(int32_t) * n) == 0);
            /* finer quantization of the same lattice gives the same order:
             * the lattice points sit on the corners of the finer cells */
            if (dim == 2) {
                ts_curve_order(pos, n, dim, TS_CURVE_HILBERT, 0, again, NULL, err, sizeof err);
                int64_t bad2 = 0;
                for (int64_t i = 1; i < n; i++) {
                    float step = fabsf(pos[again[i] * 2] - pos[again[i - 1] * 2]) +
                                 fabsf(pos[again[i] * 2 + 1] - pos[again[i - 1] * 2 + 1]);
                    bad2 += step != 1.0f;
                }
                CU_ASSERT_EQUAL(bad2, 0);
            }
            free(pos), free(perm), free(inv), free(again);
        }
}

/* Chan's comparison: the axis holding the highest differing bit decides;
 * at an equal bit the later axis wins (x is the fastest axis). Ties (the
 * same point) by old index. */
static const uint32_t *g_q;
static int g_dim;
static int less_msb(uint32_t a, uint32_t b) { return a < b && a < (a ^ b); }
static int cmp_morton(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    const uint32_t *qa = g_q + a * g_dim, *qb = g_q + b * g_dim;
    int top = 0;
    uint32_t x = 0;
    for (int d = 0; d < g_dim; d++) {
        uint32_t y = qa[d] ^ qb[d];
        if (!less_msb(y, x)) top = d, x = y;
    }
    if (qa[top] != qb[top]) return qa[top] < qb[top] ? -1 : 1;
    return (a > b) - (a < b);
}

static void test_morton(void) {
    char err[256];
    /* the Z on the 2-D lattice: blocks, and the first four points */
    for (int k = 1; k <= 6; k++) {
        int64_t n;
        float *pos = lattice(2, k, k, &n);
        int32_t *perm = malloc(sizeof(int32_t) * n);
        CU_ASSERT_EQUAL_FATAL(ts_curve_order(pos, n, 2, TS_CURVE_MORTON, k, perm, NULL, err, sizeof err), 0);
        CU_ASSERT_FATAL(is_permutation(perm, n));
        assert_blocks(pos, perm, n, 2, k);
        static const float z[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
        for (int i = 0; i < 4; i++) CU_ASSERT(pos[perm[i] * 2] == z[i][0] && pos[perm[i] * 2 + 1] == z[i][1]);
        free(pos), free(perm);
    }
    /* random points of a 2^b lattice, repeats included, both corners
     * present so the quantization is the identity: equal to Chan's sort */
    FOR_CASES(c) {
        uint64_t k = 0;
        int dim = 2 + c % 2, b = draw_int(c, &k, 1, 10), n = draw_int(c, &k, 2, 300), side = (1 << b) - 1;
        float *pos = malloc(sizeof(float) * dim * n);
        uint32_t *q = malloc(sizeof(uint32_t) * dim * n);
        for (int i = 0; i < n; i++)
            for (int a = 0; a < dim; a++) {
                q[i * dim + a] = i == 0 ? 0 : i == 1 ? (uint32_t)side : (uint32_t)draw_int(c, &k, 0, side);
                if (i > 2 && draw_int(c, &k, 0, 3) == 0) q[i * dim + a] = q[(i - 1) * dim + a]; /* repeats */
            }
        for (int i = 0; i < n * dim; i++) pos[i] = (float)q[i];
        int32_t *perm = malloc(sizeof(int32_t) * n), *want = malloc(sizeof(int32_t) * n);
        CU_ASSERT_EQUAL_FATAL(ts_curve_order(pos, n, dim, TS_CURVE_MORTON, b, perm, NULL, err, sizeof err), 0);
        for (int i = 0; i < n; i++) want[i] = i;
        g_q = q, g_dim = dim;
        qsort(want, n, sizeof(int32_t), cmp_morton);
        CU_ASSERT(memcmp(perm, want, sizeof(int32_t) * n) == 0);
        free(pos), free(q), free(perm), free(want);
    }
}

/* Repeated positions keep their old order, for both curves; scaling and
 * shifting the positions changes nothing (the grid follows the bounding
 * cube). */
static void test_ties_and_invariance(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int dim = 2 + c % 2, n = draw_int(c, &k, 1, 400);
        ts_curve curve = c % 4 < 2 ? TS_CURVE_HILBERT : TS_CURVE_MORTON;
        float *pos = malloc(sizeof(float) * dim * n), *moved = malloc(sizeof(float) * dim * n);
        for (int i = 0; i < n; i++)
            for (int a = 0; a < dim; a++)
                pos[i * dim + a] = i > 0 && draw_int(c, &k, 0, 2) == 0 ? pos[(i - 1) * dim + a] : (float)draw_int(c, &k, 0, 50);
        for (int i = 0; i < n * dim; i++) moved[i] = pos[i] * 0.25f - 3.0f; /* exact in float */
        int32_t *perm = malloc(sizeof(int32_t) * n), *perm2 = malloc(sizeof(int32_t) * n);
        CU_ASSERT_EQUAL_FATAL(ts_curve_order(pos, n, dim, curve, 0, perm, NULL, err, sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(ts_curve_order(moved, n, dim, curve, 0, perm2, NULL, err, sizeof err), 0);
        CU_ASSERT(is_permutation(perm, n));
        CU_ASSERT(memcmp(perm, perm2, sizeof(int32_t) * n) == 0);
        for (int i = 1; i < n; i++)
            if (!memcmp(pos + perm[i] * dim, pos + perm[i - 1] * dim, sizeof(float) * dim)) CU_ASSERT(perm[i] > perm[i - 1]);
        free(pos), free(moved), free(perm), free(perm2);
    }
    float bad[6] = {0, 0, 1, NAN, 2, 2};
    int32_t p[3];
    err[0] = 0;
    CU_ASSERT_EQUAL(ts_curve_order(bad, 3, 2, TS_CURVE_HILBERT, 0, p, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "node 1"));
    CU_ASSERT_EQUAL(ts_curve_order(bad, 3, 4, TS_CURVE_HILBERT, 0, p, NULL, err, sizeof err), -1);
}

/* Renumbering commutes with building edges: edges of the renumbered cells
 * equal the permuted edges; permuted rows are the old rows gathered. */
static void test_apply(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int n = draw_int(c, &k, 3, 60), n_cells = draw_int(c, &k, 0, 2 * n);
        int32_t *cells = random_triangles(c, &k, n, n_cells);
        float *pos = malloc(sizeof(float) * 2 * n), *pos2 = malloc(sizeof(float) * 2 * n);
        int32_t *type = malloc(sizeof(int32_t) * n), *type2 = malloc(sizeof(int32_t) * n);
        for (int i = 0; i < n; i++) pos[2 * i] = (float)draw_int(c, &k, 0, 99), pos[2 * i + 1] = (float)draw_int(c, &k, 0, 99), type[i] = i;
        int32_t *perm = malloc(sizeof(int32_t) * n), *inv = malloc(sizeof(int32_t) * n);
        CU_ASSERT_EQUAL_FATAL(ts_curve_order(pos, n, 2, TS_CURVE_HILBERT, 0, perm, inv, err, sizeof err), 0);
        ts_permute_rows(pos, pos2, n, 2 * sizeof(float), perm);
        ts_permute_rows(type, type2, n, sizeof(int32_t), perm);
        for (int i = 0; i < n; i++)
            CU_ASSERT(pos2[2 * i] == pos[2 * perm[i]] && pos2[2 * i + 1] == pos[2 * perm[i] + 1] && type2[i] == perm[i]);
        ts_csr adj, padj, adj2;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(n, n_cells, 3, cells, &adj, err, sizeof err), 0);
        ts_csr_permute(&adj, perm, inv, &padj);
        ts_renumber_ids(cells, (size_t)3 * n_cells, inv);
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(n, n_cells, 3, cells, &adj2, err, sizeof err), 0);
        CU_ASSERT(ts_csr_equal(&padj, &adj2));
        uint8_t *d = dense_of(&adj), *pd = dense_of(&padj);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) CU_ASSERT_EQUAL(pd[i * n + j], d[perm[i] * n + perm[j]]);
        free(d), free(pd), free(cells), free(pos), free(pos2), free(type), free(type2), free(perm), free(inv);
        ts_csr_free(&adj), ts_csr_free(&padj), ts_csr_free(&adj2);
    }
}

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("mesh order", NULL, NULL);
    if (!s || !CU_add_test(s, "hilbert: lattice steps of one, aligned blocks (2-D, 3-D)", test_hilbert_lattice) ||
        !CU_add_test(s, "morton: Z blocks, equal to Chan's msb sort", test_morton) ||
        !CU_add_test(s, "ties keep the old order; scale and shift invariant", test_ties_and_invariance) ||
        !CU_add_test(s, "permuting rows, cells and CSRs agree", test_apply))
        return 2;
    return ts_cunit_run();
}
