/* The attention mask against its definition (REFERENCE.md, docs/mesh.md):
 * a dense predicate built from the cells by dense boolean products, the
 * analytic window count clipped at the ends, and the global tokens seeing
 * and seen by every token. Case c draws from the counter RNG with stream c:
 * TESSERA_CASE=c replays it.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/graph.h"
#include "mesh/mask.h"
#include "mesh_oracle.h"
#include "tests/cunit_run.h"

enum { CASES = 40 };
static int g_only = -1;
#define FOR_CASES(c) for (int c = 0; c < CASES; c++) if (g_only < 0 || g_only == c)

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* No mesh edges: a node's row is its window (itself included) and the
 * globals: min(w, ⌊i/d⌋) + min(w, ⌊(N−1−i)/d⌋) + 1 + G entries. */
static void test_window_count(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int N = draw_int(c, &k, 1, 200);
        ts_mask_params p = {draw_int(c, &k, 1, 3), draw_int(c, &k, 0, 9), draw_int(c, &k, 1, 7), draw_int(c, &k, 0, 5)};
        ts_csr adj, mask;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(N, 0, 3, NULL, &adj, err, sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(ts_mesh_mask(&adj, &p, &mask, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ts_csr_check(&mask, err, sizeof err), 0);
        const int64_t w = p.window, d = p.dilation;
        for (int64_t i = 0; i < N; i++) {
            int64_t want = min64(w, i / d) + min64(w, (N - 1 - i) / d) + 1 + p.globals;
            CU_ASSERT_EQUAL(mask.rowptr[i + 1] - mask.rowptr[i], want);
        }
        ts_csr_free(&adj), ts_csr_free(&mask);
    }
}

/* Random meshes and parameters: the mask equals the dense predicate
 *   i == j, or i or j global, or (both nodes and (within khop edges, or
 *   |i − j| <= w·d with d | i − j)),
 * where "within khop edges" is (A + I)^k by dense products from the cells. */
static void test_against_predicate(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int N = draw_int(c, &k, 3, 45), n_cells = draw_int(c, &k, 0, N);
        ts_mask_params p = {draw_int(c, &k, 1, 3), draw_int(c, &k, 0, 6), draw_int(c, &k, 1, 5), draw_int(c, &k, 0, 4)};
        int32_t *cells = random_triangles(c, &k, N, n_cells);
        ts_csr adj, mask;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(N, n_cells, 3, cells, &adj, err, sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(ts_mesh_mask(&adj, &p, &mask, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ts_csr_check(&mask, err, sizeof err), 0);
        const int T = N + p.globals;
        CU_ASSERT_FATAL(mask.n_rows == T && mask.n_cols == T);
        uint8_t *A = dense_adjacency(N, cells, n_cells, 3), *H = dense_khop(A, N, p.khop), *M = dense_of(&mask);
        int64_t wrong = 0;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                int gap = abs(i - j), want;
                if (i == j || i >= N || j >= N) want = 1;
                else want = H[i * N + j] || (gap <= p.window * p.dilation && gap % p.dilation == 0);
                wrong += M[(size_t)i * T + j] != want;
                CU_ASSERT_EQUAL(M[(size_t)i * T + j], M[(size_t)j * T + i]); /* symmetric */
            }
        CU_ASSERT_EQUAL(wrong, 0);
        if (wrong) printf("\ncase %d: %lld entries differ\n", c, (long long)wrong);
        /* the same through a k-hop matrix built once */
        ts_csr near, mask2;
        ts_csr_khop(&adj, p.khop, &near);
        CU_ASSERT_EQUAL(ts_mesh_mask_from_near(&near, p.window, p.dilation, p.globals, &mask2, err, sizeof err), 0);
        CU_ASSERT(ts_csr_equal(&mask, &mask2));
        free(A), free(H), free(M), free(cells);
        ts_csr_free(&adj), ts_csr_free(&mask), ts_csr_free(&near), ts_csr_free(&mask2);
    }
}

/* Globals are the last G tokens; each row of a global holds all tokens and
 * each global's column is in every row. */
static void test_globals(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int N = draw_int(c, &k, 1, 100), G = draw_int(c, &k, 1, 6), n_cells = draw_int(c, &k, 0, N);
        int32_t *cells = N >= 3 ? random_triangles(c, &k, N, n_cells) : NULL;
        if (N < 3) n_cells = 0;
        ts_mask_params p = {1, draw_int(c, &k, 0, 4), 1, G};
        ts_csr adj, mask;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(N, n_cells, 3, cells, &adj, err, sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(ts_mesh_mask(&adj, &p, &mask, err, sizeof err), 0);
        const int T = N + G;
        for (int g = N; g < T; g++) {
            CU_ASSERT_EQUAL(mask.rowptr[g + 1] - mask.rowptr[g], T);
            for (int i = 0; i < T; i++) CU_ASSERT(ts_csr_find(&mask, i, g) >= 0);
        }
        for (int i = 0; i < T; i++) CU_ASSERT(ts_csr_find(&mask, i, i) >= 0); /* every token sees itself */
        free(cells), ts_csr_free(&adj), ts_csr_free(&mask);
    }
}

static void test_bad_params(void) {
    char err[256];
    ts_csr adj, mask;
    CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(4, 0, 3, NULL, &adj, err, sizeof err), 0);
    ts_mask_params bad[4] = {{0, 1, 1, 0}, {1, -1, 1, 0}, {1, 1, 0, 0}, {1, 1, 1, -1}};
    for (int b = 0; b < 4; b++) {
        err[0] = 0;
        CU_ASSERT_EQUAL(ts_mesh_mask(&adj, &bad[b], &mask, err, sizeof err), -1);
        CU_ASSERT(strlen(err) > 0);
    }
    ts_csr_free(&adj);
}

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("mesh mask", NULL, NULL);
    if (!s || !CU_add_test(s, "window count: analytic, clipped at the ends", test_window_count) ||
        !CU_add_test(s, "mask equals the dense predicate of the union", test_against_predicate) ||
        !CU_add_test(s, "globals see and are seen by every token", test_globals) ||
        !CU_add_test(s, "bad parameters are errors", test_bad_params))
        return 2;
    return ts_cunit_run();
}
