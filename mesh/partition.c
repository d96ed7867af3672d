/* Contiguous partition of the node order, halo and send lists, and the
 * chunk's local numbering. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/graph.h"
#include "mesh/partition.h"

static void check_mask(const ts_csr *mask, int64_t N, int G) {
    if (N < 0 || G < 0 || mask->n_rows != N + G || mask->n_cols != N + G)
        ts_fatal("partition: mask is %lld x %lld, not (N + G) = %lld + %d square", (long long)mask->n_rows,
                 (long long)mask->n_cols, (long long)N, G);
}

void ts_mesh_partition(const ts_csr *mask, int64_t n_nodes, int P, ts_balance how, int64_t *start) {
    const int64_t N = n_nodes;
    if (P < 1) ts_fatal("partition into %d chunks", P);
    check_mask(mask, N, (int)(mask->n_rows - N));
    start[0] = 0;
    if (how == TS_BALANCE_NODES) {
        for (int p = 1; p <= P; p++) start[p] = N * p / P;
        return;
    }
    /* Work balance: chunk p starts at the first node whose prefix of row
     * lengths reaches p/P of the total. Node rows start at rowptr[0] = 0,
     * so rowptr[i] is the prefix itself. */
    const int64_t total = mask->rowptr[N];
    int64_t i = 0;
    for (int p = 1; p < P; p++) {
        while (i < N && mask->rowptr[i] * P < total * p) i++;
        start[p] = i;
        /* Every rank keeps at least one node when there are enough, so no
         * rank sits out of the exchange with nothing to do. */
        if (N >= P) {
            if (start[p] < start[p - 1] + 1) start[p] = start[p - 1] + 1;
            if (start[p] > N - (P - p)) start[p] = N - (P - p);
        }
    }
    start[P] = N;
}

void ts_mesh_chunk_build(const ts_csr *mask, int64_t n_nodes, int n_globals, const int64_t *start, int P, int rank,
                         ts_mesh_chunk *c) {
    const int64_t N = n_nodes, G = n_globals;
    check_mask(mask, N, n_globals);
    if (P < 1 || rank < 0 || rank >= P || start[0] != 0 || start[P] != N)
        ts_fatal("partition: rank %d of %d, or chunks not covering [0, %lld)", rank, P, (long long)N);
    for (int p = 0; p < P; p++)
        if (start[p + 1] < start[p]) ts_fatal("partition: chunk %d ends before it starts", p);
    memset(c, 0, sizeof(*c));
    c->rank = rank, c->n_ranks = P, c->n_nodes = N, c->n_globals = n_globals;
    const int64_t lo = start[rank], hi = start[rank + 1];
    c->first = lo, c->n_own = hi - lo;

    /* Halo: the remote nodes (not globals) in the owned rows. */
    int64_t cap = 0;
    for (int64_t e = mask->rowptr[lo]; e < mask->rowptr[hi]; e++) {
        int32_t j = mask->col[e];
        cap += j < N && (j < lo || j >= hi);
    }
    c->halo = ts_malloc(sizeof(int32_t) * (size_t)(cap ? cap : 1));
    int64_t n = 0;
    for (int64_t e = mask->rowptr[lo]; e < mask->rowptr[hi]; e++) {
        int32_t j = mask->col[e];
        if (j < N && (j < lo || j >= hi)) c->halo[n++] = j;
    }
    c->n_halo = ts_sort_unique_i32(c->halo, n);
    c->halo_from = ts_malloc(sizeof(int64_t) * ((size_t)P + 1));
    for (int r = 0, h = 0; r <= P; r++) { /* first halo entry owned by rank r or later */
        while (h < c->n_halo && c->halo[h] < start[r]) h++;
        c->halo_from[r] = r == P ? c->n_halo : h;
    }

    /* Send lists: which owned nodes each other chunk's rows reference,
     * found from those rows, not from our own halo (that would assume a
     * symmetric mask). seen[] remembers the last rank that took a node. */
    c->send_to = ts_malloc(sizeof(int64_t) * ((size_t)P + 1));
    int32_t *seen = ts_malloc(sizeof(int32_t) * (size_t)(c->n_own ? c->n_own : 1));
    for (int64_t i = 0; i < c->n_own; i++) seen[i] = -1;
    int64_t send_cap = 0;
    for (int pass = 0; pass < 2; pass++) { /* count, then fill */
        if (pass == 1) {
            c->send = ts_malloc(sizeof(int32_t) * (size_t)(send_cap ? send_cap : 1));
            for (int64_t i = 0; i < c->n_own; i++) seen[i] = -1;
        }
        int64_t m = 0;
        for (int r = 0; r < P; r++) {
            c->send_to[r] = m;
            if (r == rank) continue;
            for (int64_t e = mask->rowptr[start[r]]; e < mask->rowptr[start[r + 1]]; e++) {
                int32_t j = mask->col[e];
                if (j < lo || j >= hi || seen[j - lo] == r) continue;
                seen[j - lo] = r;
                if (pass == 1) c->send[m] = j;
                m++;
            }
            if (pass == 1) ts_sort_unique_i32(c->send + c->send_to[r], m - c->send_to[r]);
        }
        c->send_to[P] = m;
        send_cap = c->n_send = m;
    }
    free(seen);

    /* Local mask. A row ascending in global ids reads [halo below | owned |
     * halo above | globals]; local ids put owned first, and keep the rest in
     * global order, so emitting owned columns first keeps the row ascending. */
    const int64_t L = c->n_own + c->n_halo + G;
    ts_csr_alloc(&c->local, c->n_own, L, mask->rowptr[hi] - mask->rowptr[lo]);
    int64_t at = 0;
    for (int64_t i = lo; i < hi; i++) {
        for (int64_t e = mask->rowptr[i]; e < mask->rowptr[i + 1]; e++)
            if (mask->col[e] >= lo && mask->col[e] < hi) c->local.col[at++] = mask->col[e] - (int32_t)lo;
        for (int64_t e = mask->rowptr[i]; e < mask->rowptr[i + 1]; e++)
            if (mask->col[e] < lo || mask->col[e] >= hi) c->local.col[at++] = (int32_t)ts_mesh_chunk_local(c, mask->col[e]);
        c->local.rowptr[i - lo + 1] = at;
    }
}

void ts_mesh_chunk_free(ts_mesh_chunk *c) {
    free(c->halo), free(c->halo_from), free(c->send), free(c->send_to);
    ts_csr_free(&c->local);
    memset(c, 0, sizeof(*c));
}

int64_t ts_mesh_chunk_local(const ts_mesh_chunk *c, int64_t global) {
    const int64_t N = c->n_nodes;
    if (global < 0 || global >= N + c->n_globals) return -1;
    if (global >= N) return c->n_own + c->n_halo + (global - N);
    if (global >= c->first && global < c->first + c->n_own) return global - c->first;
    int64_t lo = 0, hi = c->n_halo; /* first halo entry >= global */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (c->halo[mid] < global) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n_halo && c->halo[lo] == global ? c->n_own + lo : -1;
}

int64_t ts_mesh_chunk_global(const ts_mesh_chunk *c, int64_t local) {
    if (local < 0 || local >= ts_mesh_chunk_n_local(c))
        ts_fatal("chunk %d: local index %lld outside [0, %lld)", c->rank, (long long)local,
                 (long long)ts_mesh_chunk_n_local(c));
    if (local < c->n_own) return c->first + local;
    if (local < c->n_own + c->n_halo) return c->halo[local - c->n_own];
    return c->n_nodes + (local - c->n_own - c->n_halo);
}

size_t ts_mesh_halo_recv_bytes(const ts_mesh_chunk *c, int dim) {
    return 2 * (size_t)c->n_halo * (size_t)dim * sizeof(float);
}

size_t ts_mesh_halo_send_bytes(const ts_mesh_chunk *c, int dim) {
    return 2 * (size_t)c->n_send * (size_t)dim * sizeof(float);
}
