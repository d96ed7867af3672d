#include "parallel/halo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parallel/mpi_env.h"

enum { TAG_HALO = 7301 };

/* Owner of global node g: the r with chunk_start[r] <= g < chunk_start[r+1]. */
static int owner_of(const int64_t *chunk_start, int size, int64_t g) {
    int lo = 0, hi = size - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (chunk_start[mid] <= g) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int ts_halo_plan_create(ts_halo_plan *p, MPI_Comm comm, const int64_t *chunk_start, const int64_t *halo,
                        int64_t n_halo, char *err, size_t errcap) {
    memset(p, 0, sizeof *p);
    p->comm = comm;
    TS_MPI_CHECK(MPI_Comm_rank(comm, &p->rank));
    TS_MPI_CHECK(MPI_Comm_size(comm, &p->size));
    const int P = p->size, me = p->rank;
    const int64_t first = chunk_start[me];
    p->n_own = chunk_start[me + 1] - first, p->n_halo = n_halo;
    int bad = 0;
    for (int64_t k = 0; k < n_halo; k++)
        if (halo[k] < 0 || halo[k] >= chunk_start[P] || (halo[k] >= first && halo[k] < chunk_start[me + 1]) ||
            (k && halo[k] <= halo[k - 1]) || halo[k] - chunk_start[owner_of(chunk_start, P, halo[k])] > INT32_MAX)
            bad = 1;
    int any_bad = 0;
    TS_MPI_CHECK(MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, comm));
    if (any_bad) {
        return TS_FAIL(err, errcap, "halo plan: %s halo list is not ascending remote node ids within the mesh",
                 bad ? "this rank's" : "another rank's");
    }

    /* what this rank reads from each owner, and what each reader reads from it */
    int *want = ts_calloc((size_t)P, sizeof(int)), *give = ts_calloc((size_t)P, sizeof(int));
    for (int64_t k = 0; k < n_halo; k++) want[owner_of(chunk_start, P, halo[k])]++;
    TS_MPI_CHECK(MPI_Alltoall(want, 1, MPI_INT, give, 1, MPI_INT, comm));
    int *wdis = ts_calloc((size_t)P + 1, sizeof(int)), *gdis = ts_calloc((size_t)P + 1, sizeof(int));
    for (int r = 0; r < P; r++) wdis[r + 1] = wdis[r] + want[r], gdis[r + 1] = gdis[r] + give[r];
    int64_t *asked = ts_malloc(sizeof(int64_t) * (size_t)(gdis[P] ? gdis[P] : 1));
    TS_MPI_CHECK(MPI_Alltoallv(halo, want, wdis, MPI_INT64_T, asked, give, gdis, MPI_INT64_T, comm));

    for (int r = 0; r < P; r++) p->nneigh += (want[r] || give[r]);
    p->neigh = ts_malloc(sizeof(int) * (size_t)(p->nneigh ? p->nneigh : 1));
    p->send_off = ts_calloc((size_t)p->nneigh + 1, sizeof(int));
    p->recv_off = ts_calloc((size_t)p->nneigh + 1, sizeof(int));
    p->send_rows = ts_malloc(sizeof(int32_t) * (size_t)(gdis[P] ? gdis[P] : 1));
    int k = 0;
    for (int r = 0; r < P; r++) {
        if (!(want[r] || give[r])) continue;
        p->neigh[k] = r;
        p->send_off[k + 1] = p->send_off[k] + give[r];
        p->recv_off[k + 1] = p->recv_off[k] + want[r];
        for (int i = 0; i < give[r]; i++) p->send_rows[p->send_off[k] + i] = (int32_t)(asked[gdis[r] + i] - first);
        k++;
    }
    free(want), free(give), free(wdis), free(gdis), free(asked);
    return 0;
}

void ts_halo_plan_free(ts_halo_plan *p) {
    free(p->neigh), free(p->send_off), free(p->recv_off), free(p->send_rows), free(p->sendbuf), free(p->recvbuf);
    memset(p, 0, sizeof *p);
}

int64_t ts_halo_rows_sent(const ts_halo_plan *p) { return p->nneigh ? p->send_off[p->nneigh] : 0; }

static void reserve(ts_halo_plan *p, int width) {
    size_t rows = (size_t)(ts_halo_rows_sent(p) > p->n_halo ? ts_halo_rows_sent(p) : p->n_halo);
    size_t need = rows * (size_t)width;
    if (need <= p->buf_floats) return;
    if ((size_t)ts_halo_rows_sent(p) * (size_t)width > (size_t)INT_MAX || (size_t)p->n_halo * (size_t)width > (size_t)INT_MAX)
        ts_fatal("halo exchange of %zu rows x %d floats exceeds one MPI message", rows, width);
    free(p->sendbuf), free(p->recvbuf);
    p->sendbuf = ts_malloc(sizeof(float) * (need ? need : 1));
    p->recvbuf = ts_malloc(sizeof(float) * (need ? need : 1));
    p->buf_floats = need;
}

/* One round: this rank sends the packed `out` blocks of out_off and receives
 * into `in` by in_off, neighbour by neighbour. */
static void swap(ts_halo_plan *p, const float *out, const int *out_off, float *in, const int *in_off, int width) {
    MPI_Request *req = ts_malloc(sizeof(MPI_Request) * (size_t)(2 * p->nneigh + 1));
    int n = 0;
    for (int k = 0; k < p->nneigh; k++) {
        int cnt = (in_off[k + 1] - in_off[k]) * width;
        if (cnt)
            TS_MPI_CHECK(MPI_Irecv(in + (size_t)in_off[k] * (size_t)width, cnt, MPI_FLOAT, p->neigh[k], TAG_HALO, p->comm,
                                   &req[n++]));
    }
    for (int k = 0; k < p->nneigh; k++) {
        int cnt = (out_off[k + 1] - out_off[k]) * width;
        if (cnt) {
            TS_MPI_CHECK(MPI_Isend(out + (size_t)out_off[k] * (size_t)width, cnt, MPI_FLOAT, p->neigh[k], TAG_HALO,
                                   p->comm, &req[n++]));
            p->bytes_sent += (uint64_t)cnt * sizeof(float);
        }
    }
    TS_MPI_CHECK(MPI_Waitall(n, req, MPI_STATUSES_IGNORE));
    free(req);
}

void ts_halo_exchange(ts_halo_plan *p, float *rows, int width) {
    reserve(p, width);
    const size_t w = (size_t)width;
    int64_t ns = ts_halo_rows_sent(p);
    for (int64_t i = 0; i < ns; i++) memcpy(p->sendbuf + (size_t)i * w, rows + (size_t)p->send_rows[i] * w, sizeof(float) * w);
    /* halo rows arrive in owner order, which is ascending global id: straight into place */
    swap(p, p->sendbuf, p->send_off, rows + (size_t)p->n_own * w, p->recv_off, width);
}

void ts_halo_reduce(ts_halo_plan *p, float *rows, int width) {
    reserve(p, width);
    const size_t w = (size_t)width;
    swap(p, rows + (size_t)p->n_own * w, p->recv_off, p->recvbuf, p->send_off, width);
    /* a fixed order of additions (by neighbour, then row) keeps it deterministic */
    int64_t ns = ts_halo_rows_sent(p);
    for (int64_t i = 0; i < ns; i++) {
        float *dst = rows + (size_t)p->send_rows[i] * w;
        const float *src = p->recvbuf + (size_t)i * w;
        for (size_t c = 0; c < w; c++) dst[c] += src[c];
    }
}
