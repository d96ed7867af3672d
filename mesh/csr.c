/* CSR basics: allocation, building from pair lists, transpose, union. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/csr.h"

void ts_csr_alloc(ts_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz) {
    if (n_rows < 0 || n_cols < 0 || n_cols > INT32_MAX || nnz < 0)
        ts_fatal("csr: bad shape %lld x %lld with %lld entries", (long long)n_rows, (long long)n_cols,
                 (long long)nnz);
    m->n_rows = n_rows, m->n_cols = n_cols;
    m->rowptr = ts_calloc((size_t)n_rows + 1, sizeof(int64_t));
    m->col = ts_malloc(sizeof(int32_t) * (size_t)nnz);
}

void ts_csr_free(ts_csr *m) {
    free(m->rowptr), free(m->col);
    m->rowptr = NULL, m->col = NULL, m->n_rows = m->n_cols = 0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int64_t ts_sort_unique_i32(int32_t *v, int64_t n) {
    if (n < 2) return n;
    /* Mesh rows are short (degrees of 6 to 40), where insertion sort wins;
     * long rows (global tokens) go to qsort. */
    if (n <= 32) {
        for (int64_t i = 1; i < n; i++) {
            int32_t x = v[i];
            int64_t j = i;
            for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
            v[j] = x;
        }
    } else {
        qsort(v, (size_t)n, sizeof(int32_t), cmp_i32);
    }
    int64_t m = 1;
    for (int64_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

/* Rows of m hold unsorted entries in col[rowptr[i] .. rowptr[i+1]); sort and
 * dedup each, then close the gaps. */
static void sort_rows_and_compact(ts_csr *m) {
    const int64_t R = m->n_rows;
    int64_t *len = ts_malloc(sizeof(int64_t) * ((size_t)R + 1));
#pragma omp parallel for schedule(dynamic, 1024)
    for (int64_t i = 0; i < R; i++)
        len[i] = ts_sort_unique_i32(m->col + m->rowptr[i], m->rowptr[i + 1] - m->rowptr[i]);
    /* In row order each row moves down (or stays), so memmove in place. */
    int64_t at = 0;
    for (int64_t i = 0; i < R; i++) {
        int64_t from = m->rowptr[i];
        if (from != at) memmove(m->col + at, m->col + from, sizeof(int32_t) * (size_t)len[i]);
        m->rowptr[i] = at;
        at += len[i];
    }
    m->rowptr[R] = at;
    free(len);
    int32_t *shrunk = realloc(m->col, sizeof(int32_t) * (size_t)(at ? at : 1));
    if (shrunk) m->col = shrunk;
}

int ts_csr_from_pairs(int64_t n_rows, int64_t n_cols, int64_t n_pairs, const int32_t *row, const int32_t *col,
                      ts_csr *out, char *err, size_t err_cap) {
    if (n_rows < 0 || n_rows > INT32_MAX || n_cols < 0 || n_cols > INT32_MAX || n_pairs < 0) {
        return TS_FAIL(err, err_cap, "csr: bad shape %lld x %lld", (long long)n_rows, (long long)n_cols);
    }
    for (int64_t e = 0; e < n_pairs; e++)
        if (row[e] < 0 || row[e] >= n_rows || col[e] < 0 || col[e] >= n_cols) {
            return TS_FAIL(err, err_cap, "pair %lld is (%d, %d), outside %lld x %lld", (long long)e, (int)row[e],
                         (int)col[e], (long long)n_rows, (long long)n_cols);
        }
    ts_csr_alloc(out, n_rows, n_cols, n_pairs);
    /* Counting sort by row, then each row on its own. */
    for (int64_t e = 0; e < n_pairs; e++) out->rowptr[row[e] + 1]++;
    for (int64_t i = 0; i < n_rows; i++) out->rowptr[i + 1] += out->rowptr[i];
    int64_t *next = ts_malloc(sizeof(int64_t) * ((size_t)n_rows + 1));
    memcpy(next, out->rowptr, sizeof(int64_t) * ((size_t)n_rows + 1));
    for (int64_t e = 0; e < n_pairs; e++) out->col[next[row[e]]++] = col[e];
    free(next);
    sort_rows_and_compact(out);
    return 0;
}

void ts_csr_transpose(const ts_csr *a, ts_csr *t, int64_t *src) {
    const int64_t nnz = ts_csr_nnz(a);
    if (a->n_rows > INT32_MAX) ts_fatal("csr transpose: %lld rows do not fit int32 columns", (long long)a->n_rows);
    ts_csr_alloc(t, a->n_cols, a->n_rows, nnz);
    for (int64_t e = 0; e < nnz; e++) t->rowptr[a->col[e] + 1]++;
    for (int64_t j = 0; j < t->n_rows; j++) t->rowptr[j + 1] += t->rowptr[j];
    int64_t *next = ts_malloc(sizeof(int64_t) * ((size_t)t->n_rows + 1));
    memcpy(next, t->rowptr, sizeof(int64_t) * ((size_t)t->n_rows + 1));
    /* Visiting a's rows in order fills each row of t in ascending order. */
    for (int64_t i = 0; i < a->n_rows; i++)
        for (int64_t e = a->rowptr[i]; e < a->rowptr[i + 1]; e++) {
            int64_t at = next[a->col[e]]++;
            t->col[at] = (int32_t)i;
            if (src) src[at] = e;
        }
    free(next);
}

void ts_csr_union(int n, const ts_csr *const *m, ts_csr *out) {
    if (n < 1) ts_fatal("csr union of %d matrices", n);
    const int64_t R = m[0]->n_rows, C = m[0]->n_cols;
    int64_t nnz = 0;
    for (int k = 0; k < n; k++) {
        if (m[k]->n_rows != R || m[k]->n_cols != C)
            ts_fatal("csr union: matrix %d is %lld x %lld, not %lld x %lld", k, (long long)m[k]->n_rows,
                     (long long)m[k]->n_cols, (long long)R, (long long)C);
        nnz += ts_csr_nnz(m[k]);
    }
    /* Concatenate the rows, then sort and dedup each. */
    ts_csr_alloc(out, R, C, nnz);
    for (int64_t i = 0; i < R; i++) {
        int64_t len = 0;
        for (int k = 0; k < n; k++) len += m[k]->rowptr[i + 1] - m[k]->rowptr[i];
        out->rowptr[i + 1] = out->rowptr[i] + len;
    }
#pragma omp parallel for schedule(dynamic, 1024)
    for (int64_t i = 0; i < R; i++) {
        int64_t at = out->rowptr[i];
        for (int k = 0; k < n; k++) {
            int64_t len = m[k]->rowptr[i + 1] - m[k]->rowptr[i];
            memcpy(out->col + at, m[k]->col + m[k]->rowptr[i], sizeof(int32_t) * (size_t)len);
            at += len;
        }
    }
    sort_rows_and_compact(out);
}

int64_t ts_csr_find(const ts_csr *a, int64_t i, int32_t j) {
    int64_t lo = a->rowptr[i], hi = a->rowptr[i + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a->col[mid] < j) lo = mid + 1;
        else hi = mid;
    }
    return lo < a->rowptr[i + 1] && a->col[lo] == j ? lo : -1;
}

int ts_csr_equal(const ts_csr *a, const ts_csr *b) {
    if (a->n_rows != b->n_rows || a->n_cols != b->n_cols) return 0;
    if (memcmp(a->rowptr, b->rowptr, sizeof(int64_t) * ((size_t)a->n_rows + 1))) return 0;
    return memcmp(a->col, b->col, sizeof(int32_t) * (size_t)ts_csr_nnz(a)) == 0;
}

int ts_csr_check(const ts_csr *m, char *err, size_t err_cap) {
    if (m->n_rows < 0 || m->n_cols < 0 || m->n_cols > INT32_MAX || !m->rowptr || m->rowptr[0] != 0) {
        return TS_FAIL(err, err_cap, "csr: bad shape %lld x %lld or row pointers", (long long)m->n_rows,
                          (long long)m->n_cols);
    }
    for (int64_t i = 0; i < m->n_rows; i++) {
        if (m->rowptr[i + 1] < m->rowptr[i]) {
            return TS_FAIL(err, err_cap, "csr: row %lld ends before it starts", (long long)i);
        }
        for (int64_t e = m->rowptr[i]; e < m->rowptr[i + 1]; e++) {
            if (m->col[e] < 0 || m->col[e] >= m->n_cols || (e > m->rowptr[i] && m->col[e] <= m->col[e - 1])) {
                return TS_FAIL(err, err_cap, "csr: row %lld, entry %lld: column %d out of range or not ascending",
                             (long long)i, (long long)(e - m->rowptr[i]), (int)m->col[e]);
            }
        }
    }
    return 0;
}
