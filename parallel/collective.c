#include "parallel/collective.h"

#include <limits.h>
#include <stdlib.h>

#include "core/log.h"
#include "parallel/mpi_env.h"

void ts_par_sum_floats(float *buf, size_t n, MPI_Comm comm) {
    const size_t chunk = (size_t)1 << 28;
    for (size_t off = 0; off < n; off += chunk) {
        size_t m = n - off < chunk ? n - off : chunk;
        TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)m, MPI_FLOAT, MPI_SUM, comm));
    }
}


void ts_par_comm_place(MPI_Comm comm, int *rank, int *size) {
    TS_MPI_CHECK(MPI_Comm_rank(comm, rank));
    TS_MPI_CHECK(MPI_Comm_size(comm, size));
}

/* One MPI message of n values. */
static int message(size_t n) {
    if (n > (size_t)INT_MAX) ts_fatal("internal: %zu values exceed what one MPI message holds", n);
    return (int)n;
}

void ts_par_gather_chunks(float *buf, const int64_t *start, int size, int width, MPI_Comm comm) {
    /* displacements are ints too: the whole buffer must fit one message */
    message((size_t)start[size] * (size_t)width);
    int *counts = ts_malloc(sizeof(int) * (size_t)size), *displs = ts_malloc(sizeof(int) * (size_t)size);
    for (int q = 0; q < size; q++)
        counts[q] = (int)((start[q + 1] - start[q]) * width), displs[q] = (int)(start[q] * width);
    TS_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, comm));
    free(counts), free(displs);
}

size_t ts_par_alltoall_floats(const float *send, float *recv, size_t n, MPI_Comm comm) {
    int size;
    TS_MPI_CHECK(MPI_Comm_size(comm, &size));
    TS_MPI_CHECK(MPI_Alltoall(send, message(n), MPI_FLOAT, recv, message(n), MPI_FLOAT, comm));
    return (size_t)(size - 1) * n * sizeof(float);
}

void ts_par_max_floats(const float *in, float *out, size_t n, MPI_Comm comm) {
    TS_MPI_CHECK(MPI_Allreduce(in, out, message(n), MPI_FLOAT, MPI_MAX, comm));
}

void ts_par_bcast_floats_on(float *buf, size_t n, MPI_Comm comm) {
    TS_MPI_CHECK(MPI_Bcast(buf, message(n), MPI_FLOAT, 0, comm));
}

void ts_par_reduce_floats(float *buf, size_t n, MPI_Comm comm) {
    int rank;
    TS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
    TS_MPI_CHECK(MPI_Reduce(rank ? buf : MPI_IN_PLACE, rank ? NULL : buf, message(n), MPI_FLOAT, MPI_SUM, 0, comm));
}

void ts_par_sum_doubles(const ts_layout *lay, double *buf, int n) {
    if (lay->world > 1) TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, lay->cart));
}

void ts_par_sum_grads(const ts_layout *lay, const ts_backend *be, ts_params *grads) {
    if (lay->world == 1) return;
    float *host = grads->data;
    if (be->kind != TS_BACKEND_CPU) {
        host = ts_malloc(sizeof(float) * grads->total);
        be->sync();
        be->download(host, grads->data, sizeof(float) * grads->total);
    }
    ts_par_sum_floats(host, grads->total, lay->cart);
    if (host != grads->data) {
        be->upload(grads->data, host, sizeof(float) * grads->total);
        free(host);
    }
}

int ts_par_any(const ts_layout *lay, int flag) {
    int any = flag != 0;
    if (lay->world > 1) TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, lay->cart));
    return any;
}

void ts_par_minmax_u64(const ts_layout *lay, const unsigned long long *mine, unsigned long long *lo,
                       unsigned long long *hi, int n) {
    for (int i = 0; i < n; i++) lo[i] = hi[i] = mine[i];
    if (lay->world == 1) return;
    TS_MPI_CHECK(MPI_Allreduce(mine, lo, n, MPI_UNSIGNED_LONG_LONG, MPI_MIN, lay->cart));
    TS_MPI_CHECK(MPI_Allreduce(mine, hi, n, MPI_UNSIGNED_LONG_LONG, MPI_MAX, lay->cart));
}

void ts_par_barrier(const ts_layout *lay) {
    if (lay->world > 1) TS_MPI_CHECK(MPI_Barrier(lay->cart));
}

void ts_par_bcast_bytes(const ts_layout *lay, void *buf, size_t n) {
    if (lay->world == 1) return;
    for (size_t at = 0; at < n;) {
        size_t part = n - at < (size_t)INT_MAX ? n - at : (size_t)INT_MAX;
        TS_MPI_CHECK(MPI_Bcast((char *)buf + at, (int)part, MPI_BYTE, 0, lay->cart));
        at += part;
    }
}

void ts_par_bcast_ints(const ts_layout *lay, int *buf, int n) {
    if (lay->world > 1) TS_MPI_CHECK(MPI_Bcast(buf, n, MPI_INT, 0, lay->cart));
}

void ts_par_bcast_i64(const ts_layout *lay, int64_t *buf, int n) {
    if (lay->world > 1) TS_MPI_CHECK(MPI_Bcast(buf, n, MPI_INT64_T, 0, lay->cart));
}

void ts_par_bcast_floats(const ts_layout *lay, float *buf, size_t n) {
    const size_t chunk = (size_t)1 << 28;
    for (size_t off = 0; lay->world > 1 && off < n; off += chunk)
        TS_MPI_CHECK(MPI_Bcast(buf + off, (int)(n - off < chunk ? n - off : chunk), MPI_FLOAT, 0, lay->cart));
}

void ts_par_gather_ints(const ts_layout *lay, const int *mine, int *all, int n) {
    TS_MPI_CHECK(MPI_Gather(mine, n, MPI_INT, all, n, MPI_INT, 0, lay->cart));
}

void ts_par_gather_floats(const ts_layout *lay, const float *mine, float *all, size_t n) {
    TS_MPI_CHECK(MPI_Gather(mine, message(n), MPI_FLOAT, all, message(n), MPI_FLOAT, 0, lay->cart));
}

void ts_par_scatter_floats(const ts_layout *lay, const float *all, float *mine, size_t n) {
    TS_MPI_CHECK(MPI_Scatter(all, message(n), MPI_FLOAT, mine, message(n), MPI_FLOAT, 0, lay->cart));
}

void ts_par_reduce_doubles(const ts_layout *lay, double *buf, size_t n) {
    const size_t chunk = (size_t)1 << 26;
    for (size_t off = 0; off < n; off += chunk) {
        int m = (int)(n - off < chunk ? n - off : chunk);
        TS_MPI_CHECK(MPI_Reduce(lay->rank ? buf + off : MPI_IN_PLACE, buf + off, m, MPI_DOUBLE, MPI_SUM, 0, lay->cart));
    }
}

void ts_par_peak_rss_fields(const ts_layout *lay, char *buf, size_t cap) {
    unsigned long long mine = ts_peak_rss(), lo, hi;
    ts_par_minmax_u64(lay, &mine, &lo, &hi, 1);
    snprintf(buf, cap, ",\"rss_peak_mb_min\":%.1f,\"rss_peak_mb_max\":%.1f", (double)lo / 1048576.0,
             (double)hi / 1048576.0);
}

void ts_par_isend_floats(ts_par_sends *s, const float *buf, size_t n, int to, int tag, MPI_Comm comm) {
    if (n > (size_t)INT_MAX) ts_fatal("a pipeline message of %zu floats does not fit MPI's int count", n);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->req = realloc(s->req, sizeof(MPI_Request) * (size_t)s->cap);
        if (!s->req) ts_fatal("out of memory for %d MPI requests", s->cap);
    }
    TS_MPI_CHECK(MPI_Isend(buf, (int)n, MPI_FLOAT, to, tag, comm, &s->req[s->n++]));
    s->bytes += sizeof(float) * n;
}

void ts_par_recv_floats(float *buf, size_t n, int from, int tag, MPI_Comm comm) {
    if (n > (size_t)INT_MAX) ts_fatal("a pipeline message of %zu floats does not fit MPI's int count", n);
    TS_MPI_CHECK(MPI_Recv(buf, (int)n, MPI_FLOAT, from, tag, comm, MPI_STATUS_IGNORE));
}

void ts_par_sends_wait(ts_par_sends *s) {
    if (s->n) TS_MPI_CHECK(MPI_Waitall(s->n, s->req, MPI_STATUSES_IGNORE));
    s->n = 0;
}

void ts_par_sends_free(ts_par_sends *s) {
    ts_par_sends_wait(s);
    free(s->req);
    s->req = NULL, s->cap = 0;
}

void ts_par_send_floats(const float *buf, size_t n, int to, int tag, MPI_Comm comm) {
    if (n > (size_t)INT_MAX) ts_fatal("a pipeline message of %zu floats does not fit MPI's int count", n);
    TS_MPI_CHECK(MPI_Send(buf, (int)n, MPI_FLOAT, to, tag, comm));
}

void ts_par_bcast_floats_from(float *buf, size_t n, int root, MPI_Comm comm) {
    if (n > (size_t)INT_MAX) ts_fatal("a broadcast of %zu floats does not fit MPI's int count", n);
    TS_MPI_CHECK(MPI_Bcast(buf, (int)n, MPI_FLOAT, root, comm));
}
