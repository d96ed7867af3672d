/* k-hop powers of an adjacency by depth-limited breadth-first search. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/graph.h"

/* Nodes reachable from s within k steps, s excluded, into out (unsorted);
 * returns their count. seen[] holds the last source that reached a node,
 * so it is never cleared between sources. queue has room for every node. */
static int64_t reach(const ts_csr *adj, int k, int32_t s, int32_t *seen, int32_t *queue, int32_t *out) {
    int64_t head = 0, tail = 0, n = 0;
    seen[s] = s;
    queue[tail++] = s;
    for (int depth = 0; depth < k && head < tail; depth++) {
        int64_t level_end = tail;
        for (; head < level_end; head++) {
            int32_t u = queue[head];
            for (int64_t e = adj->rowptr[u]; e < adj->rowptr[u + 1]; e++) {
                int32_t v = adj->col[e];
                if (seen[v] == s) continue;
                seen[v] = s;
                queue[tail++] = v;
                if (out) out[n] = v;
                n++;
            }
        }
    }
    return n;
}

void ts_csr_khop(const ts_csr *adj, int k, ts_csr *out) {
    if (k < 1) ts_fatal("k-hop power with k = %d; k must be at least 1", k);
    if (adj->n_rows != adj->n_cols)
        ts_fatal("k-hop power of a %lld x %lld matrix; it must be square", (long long)adj->n_rows,
                 (long long)adj->n_cols);
    const int64_t N = adj->n_rows;
    /* Two passes (count, then fill) so the result is one allocation and no
     * thread needs a growing buffer. */
    int64_t *len = ts_calloc((size_t)N + 1, sizeof(int64_t));
#pragma omp parallel
    {
        int32_t *seen = ts_malloc(sizeof(int32_t) * (size_t)(N ? N : 1));
        int32_t *queue = ts_malloc(sizeof(int32_t) * (size_t)(N ? N : 1));
        for (int64_t i = 0; i < N; i++) seen[i] = -1;
#pragma omp for schedule(dynamic, 256)
        for (int64_t i = 0; i < N; i++) len[i] = reach(adj, k, (int32_t)i, seen, queue, NULL);
        free(seen), free(queue);
    }
    int64_t nnz = 0;
    for (int64_t i = 0; i < N; i++) nnz += len[i];
    ts_csr_alloc(out, N, N, nnz);
    for (int64_t i = 0; i < N; i++) out->rowptr[i + 1] = out->rowptr[i] + len[i];
    free(len);
#pragma omp parallel
    {
        int32_t *seen = ts_malloc(sizeof(int32_t) * (size_t)(N ? N : 1));
        int32_t *queue = ts_malloc(sizeof(int32_t) * (size_t)(N ? N : 1));
        for (int64_t i = 0; i < N; i++) seen[i] = -1;
#pragma omp for schedule(dynamic, 256)
        for (int64_t i = 0; i < N; i++) {
            int32_t *row = out->col + out->rowptr[i];
            int64_t n = reach(adj, k, (int32_t)i, seen, queue, row);
            ts_sort_unique_i32(row, n); /* already unique: sorts */
        }
        free(seen), free(queue);
    }
}
