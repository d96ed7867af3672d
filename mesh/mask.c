/* The attention mask: k-hop ∪ self ∪ dilated window ∪ global tokens. */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "mesh/graph.h"
#include "mesh/mask.h"

/* Row i of a node: merge the sorted k-hop row with the window's arithmetic
 * progression (which holds i itself), then the globals. Writes into out
 * when it is not NULL; returns the length either way, so one function
 * counts and fills and the two passes cannot disagree. */
static int64_t node_row(const ts_csr *near, int64_t N, int64_t i, int64_t w, int64_t d, int64_t G, int32_t *out) {
    const int32_t *a = near->col + near->rowptr[i];
    const int64_t na = near->rowptr[i + 1] - near->rowptr[i];
    const int64_t below = w < i / d ? w : i / d, above = w < (N - 1 - i) / d ? w : (N - 1 - i) / d;
    int64_t j = i - below * d; /* next window member */
    const int64_t j_end = i + above * d;
    int64_t ia = 0, n = 0;
    while (ia < na || j <= j_end) {
        int64_t next;
        if (j > j_end || (ia < na && a[ia] < j)) {
            next = a[ia++];
        } else {
            if (ia < na && a[ia] == j) ia++;
            next = j;
            j += d;
        }
        if (out) out[n] = (int32_t)next;
        n++;
    }
    for (int64_t g = 0; g < G; g++) {
        if (out) out[n] = (int32_t)(N + g);
        n++;
    }
    return n;
}

static int bad_params(const ts_csr *near, int khop, int window, int dilation, int globals, char *err,
                      size_t err_cap) {
    if (near->n_rows == near->n_cols && khop >= 1 && window >= 0 && dilation >= 1 && globals >= 0 &&
        near->n_rows + globals <= INT32_MAX)
        return 0;
    return TS_FAIL(err, err_cap, "mask: bad parameters (%lld x %lld mesh, khop %d, window %d, dilation %d, %d globals)",
                 (long long)near->n_rows, (long long)near->n_cols, khop, window, dilation, globals);
}

int ts_mesh_mask_from_near(const ts_csr *near, int window, int dilation, int globals, ts_csr *mask, char *err,
                           size_t err_cap) {
    if (bad_params(near, 1, window, dilation, globals, err, err_cap)) return -1;
    const int64_t N = near->n_rows, G = globals, w = window, d = dilation;
    /* k-hop rows never hold i itself (ts_csr_khop); a caller's matrix might,
     * and the merge absorbs it because the window always holds i. */
    const int64_t T = N + G;
    mask->n_rows = mask->n_cols = T;
    mask->rowptr = ts_malloc(sizeof(int64_t) * ((size_t)T + 1));
    mask->rowptr[0] = 0;
#pragma omp parallel for schedule(dynamic, 4096)
    for (int64_t i = 0; i < N; i++) mask->rowptr[i + 1] = node_row(near, N, i, w, d, G, NULL);
    for (int64_t g = 0; g < G; g++) mask->rowptr[N + g + 1] = T;
    for (int64_t i = 0; i < T; i++) mask->rowptr[i + 1] += mask->rowptr[i];
    mask->col = ts_malloc(sizeof(int32_t) * (size_t)(mask->rowptr[T] ? mask->rowptr[T] : 1));
#pragma omp parallel for schedule(dynamic, 4096)
    for (int64_t i = 0; i < N; i++) node_row(near, N, i, w, d, G, mask->col + mask->rowptr[i]);
    for (int64_t g = 0; g < G; g++) {
        int32_t *row = mask->col + mask->rowptr[N + g];
        for (int64_t j = 0; j < T; j++) row[j] = (int32_t)j;
    }
    return 0;
}

int ts_mesh_mask(const ts_csr *adj, const ts_mask_params *p, ts_csr *mask, char *err, size_t err_cap) {
    if (bad_params(adj, p->khop, p->window, p->dilation, p->globals, err, err_cap)) return -1;
    ts_csr near;
    ts_csr_khop(adj, p->khop, &near);
    int rc = ts_mesh_mask_from_near(&near, p->window, p->dilation, p->globals, mask, err, err_cap);
    ts_csr_free(&near);
    return rc;
}
