/* Partition, halo and send lists, and local numbering, against brute force
 * over the dense mask: chunks cover [0, N) exactly and balance what they
 * promise; each halo is the set of remote nodes its rows' mask entries
 * name, grouped by owner; send lists are the transpose of the halos; the
 * local masks mapped back to global ids are the global rows; the byte
 * counts are 2 · rows · dim · 4. Case c draws from the counter RNG with
 * stream c: TESSERA_CASE=c replays it.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/graph.h"
#include "mesh/mask.h"
#include "mesh/partition.h"
#include "mesh_oracle.h"
#include "tests/cunit_run.h"

enum { CASES = 40 };
static int g_only = -1;
#define FOR_CASES(c) for (int c = 0; c < CASES; c++) if (g_only < 0 || g_only == c)

static int owner_of(const int64_t *start, int P, int64_t j) {
    for (int r = 0; r < P; r++)
        if (j >= start[r] && j < start[r + 1]) return r;
    return -1;
}

static void check_partition(const ts_csr *mask, int N, int G, int P, ts_balance how, const uint8_t *M, int dim) {
    const int T = N + G;
    int64_t *start = malloc(sizeof(int64_t) * (P + 1));
    ts_mesh_partition(mask, N, P, how, start);
    /* cover [0, N) exactly, in order */
    CU_ASSERT(start[0] == 0 && start[P] == N);
    for (int r = 0; r < P; r++) {
        CU_ASSERT(start[r + 1] >= start[r]);
        if (N >= P) CU_ASSERT(start[r + 1] > start[r]); /* empty only when N < P */
    }
    int64_t total = 0, longest = 0;
    for (int i = 0; i < N; i++) {
        int64_t len = mask->rowptr[i + 1] - mask->rowptr[i];
        total += len, longest = len > longest ? len : longest;
    }
    for (int r = 0; r < P; r++) {
        int64_t size = start[r + 1] - start[r], work = mask->rowptr[start[r + 1]] - mask->rowptr[start[r]];
        if (how == TS_BALANCE_NODES) {
            CU_ASSERT(size == N / P || size == N / P + 1);
        } else { /* within one row of the ideal share */
            CU_ASSERT(work * P <= total + longest * P && work * P >= total - longest * P);
        }
    }
    ts_mesh_chunk *ch = calloc(P, sizeof(ts_mesh_chunk));
    for (int r = 0; r < P; r++) ts_mesh_chunk_build(mask, N, G, start, P, r, &ch[r]);
    size_t sent = 0, received = 0;
    uint8_t *need = malloc(N + 1);
    for (int r = 0; r < P; r++) {
        ts_mesh_chunk *c = &ch[r];
        CU_ASSERT(c->first == start[r] && c->n_own == start[r + 1] - start[r]);
        /* halo by brute force: nodes outside the chunk that an owned row names */
        memset(need, 0, N + 1);
        int64_t n_need = 0;
        for (int64_t i = start[r]; i < start[r + 1]; i++)
            for (int j = 0; j < N; j++)
                if (M[i * T + j] && (j < start[r] || j >= start[r + 1]) && !need[j]) need[j] = 1, n_need++;
        CU_ASSERT_EQUAL_FATAL(c->n_halo, n_need);
        for (int64_t h = 0; h < c->n_halo; h++) {
            CU_ASSERT(need[c->halo[h]]);
            if (h) CU_ASSERT(c->halo[h] > c->halo[h - 1]);
        }
        for (int q = 0; q < P; q++)
            for (int64_t h = c->halo_from[q]; h < c->halo_from[q + 1]; h++) CU_ASSERT_EQUAL(owner_of(start, P, c->halo[h]), q);
        CU_ASSERT(c->halo_from[0] == 0 && c->halo_from[P] == c->n_halo);
        CU_ASSERT_EQUAL(c->halo_from[r + 1] - c->halo_from[r], 0);
        CU_ASSERT_EQUAL(ts_mesh_halo_recv_bytes(c, dim), 2 * (size_t)n_need * dim * 4);
        received += ts_mesh_halo_recv_bytes(c, dim), sent += ts_mesh_halo_send_bytes(c, dim);
        /* numbering: local ↔ global both ways; non-local tokens give -1 */
        const int64_t L = ts_mesh_chunk_n_local(c);
        CU_ASSERT_EQUAL(L, c->n_own + n_need + G);
        for (int64_t l = 0; l < L; l++) CU_ASSERT_EQUAL(ts_mesh_chunk_local(c, ts_mesh_chunk_global(c, l)), l);
        for (int j = 0; j < T; j++) {
            int local = (j >= start[r] && j < start[r + 1]) || j >= N || need[j];
            CU_ASSERT_EQUAL(ts_mesh_chunk_local(c, j) >= 0, local);
        }
        /* local mask mapped back equals the global rows */
        char err[256];
        CU_ASSERT_EQUAL(ts_csr_check(&c->local, err, sizeof err), 0);
        CU_ASSERT(c->local.n_rows == c->n_own && c->local.n_cols == L);
        for (int64_t i = 0; i < c->n_own; i++) {
            uint8_t *row = calloc(T, 1);
            for (int64_t e = c->local.rowptr[i]; e < c->local.rowptr[i + 1]; e++) row[ts_mesh_chunk_global(c, c->local.col[e])] = 1;
            CU_ASSERT(memcmp(row, M + (start[r] + i) * T, T) == 0);
            free(row);
        }
    }
    /* send lists: what q sends r is exactly r's halo from q */
    for (int q = 0; q < P; q++)
        for (int r = 0; r < P; r++) {
            int64_t ns = ch[q].send_to[r + 1] - ch[q].send_to[r], nh = ch[r].halo_from[q + 1] - ch[r].halo_from[q];
            CU_ASSERT_EQUAL_FATAL(ns, nh);
            CU_ASSERT(memcmp(ch[q].send + ch[q].send_to[r], ch[r].halo + ch[r].halo_from[q], sizeof(int32_t) * ns) == 0);
        }
    CU_ASSERT_EQUAL(sent, received);
    for (int r = 0; r < P; r++) ts_mesh_chunk_free(&ch[r]);
    free(ch), free(start), free(need);
}

static void test_partition(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int N = draw_int(c, &k, 3, 80), n_cells = draw_int(c, &k, 0, N), P = draw_int(c, &k, 1, 9);
        ts_mask_params p = {draw_int(c, &k, 1, 2), draw_int(c, &k, 0, 4), draw_int(c, &k, 1, 3), draw_int(c, &k, 0, 3)};
        int32_t *cells = random_triangles(c, &k, N, n_cells);
        ts_csr adj, mask;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(N, n_cells, 3, cells, &adj, err, sizeof err), 0);
        CU_ASSERT_EQUAL_FATAL(ts_mesh_mask(&adj, &p, &mask, err, sizeof err), 0);
        uint8_t *M = dense_of(&mask);
        check_partition(&mask, N, p.globals, P, TS_BALANCE_NODES, M, 1 + c % 5);
        check_partition(&mask, N, p.globals, P, TS_BALANCE_WORK, M, 1 + c % 5);
        free(M), free(cells), ts_csr_free(&adj), ts_csr_free(&mask);
    }
}

/* A structured strip (a triangulated 2 × L ribbon in its natural order)
 * with khop 1 and no window: its edges join nodes at most 3 apart in the
 * order, so a halo holds at most 3 nodes across each cut. */
static void test_ribbon_halo(void) {
    char err[256];
    const int L = 200, N = 2 * (L + 1), P = 4;
    int32_t *cells = malloc(sizeof(int32_t) * 6 * L);
    for (int x = 0; x < L; x++) { /* column x holds nodes 2x (bottom), 2x + 1 (top) */
        int32_t a = 2 * x, b = a + 1, d = a + 2, e = a + 3, v[6] = {a, d, e, a, e, b};
        memcpy(cells + 6 * x, v, sizeof v);
    }
    ts_csr adj, mask;
    CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(N, 2 * L, 3, cells, &adj, err, sizeof err), 0);
    ts_mask_params p = {1, 0, 1, 2};
    CU_ASSERT_EQUAL_FATAL(ts_mesh_mask(&adj, &p, &mask, err, sizeof err), 0);
    uint8_t *M = dense_of(&mask);
    check_partition(&mask, N, 2, P, TS_BALANCE_NODES, M, 64);
    int64_t start[P + 1];
    ts_mesh_partition(&mask, N, P, TS_BALANCE_NODES, start);
    for (int r = 0; r < P; r++) {
        ts_mesh_chunk c;
        ts_mesh_chunk_build(&mask, N, 2, start, P, r, &c);
        CU_ASSERT(c.n_halo <= (r > 0 ? 3 : 0) + (r < P - 1 ? 3 : 0));
        CU_ASSERT(c.n_halo >= (r > 0 ? 1 : 0) + (r < P - 1 ? 1 : 0)); /* the ribbon is connected */
        ts_mesh_chunk_free(&c);
    }
    free(M), free(cells), ts_csr_free(&adj), ts_csr_free(&mask);
}

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("mesh partition", NULL, NULL);
    if (!s || !CU_add_test(s, "chunks, halos, send lists, local masks against brute force", test_partition) ||
        !CU_add_test(s, "ribbon: halos only across the cuts", test_ribbon_halo))
        return 2;
    return ts_cunit_run();
}
