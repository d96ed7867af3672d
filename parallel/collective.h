/* Collectives over a layout's whole grid for the state every rank shares:
 * gradients, losses and validation sums, the stop flag, and min/max of
 * per-rank counters. Every function is a no-op (or the identity) on one
 * rank and collective over lay->cart otherwise, so the floors above call
 * them without asking how many ranks run. */
#ifndef TESSERA_PARALLEL_COLLECTIVE_H
#define TESSERA_PARALLEL_COLLECTIVE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/params.h"
#include "parallel/layout.h"

/* In-place sum over comm of n floats, in messages MPI's int counts can hold. */
void ts_par_sum_floats(float *buf, size_t n, MPI_Comm comm);
/* buf holds rows [start[rank], start[rank + 1]) of `width` floats each,
 * in place; afterwards every rank of comm (size ranks, rank order) holds
 * all rows [start[0], start[size]). */
void ts_par_gather_chunks(float *buf, const int64_t *start, int size, int width, MPI_Comm comm);
/* send holds `size` blocks of n floats, block q for rank q of comm; recv
 * receives them, block q from rank q (the all-to-all of sequence
 * parallelism; send and recv must not overlap). Returns the bytes this rank
 * sent to other ranks. */
size_t ts_par_alltoall_floats(const float *send, float *recv, size_t n, MPI_Comm comm);
/* Point-to-point messages of a pipeline on comm (the layout's pp axis):
 * sends are started and left to complete (buf untouched until
 * ts_par_sends_wait), receives wait. Messages of one tag between two ranks
 * arrive in the order they were sent. */
typedef struct {
    MPI_Request *req;
    int n, cap;
    size_t bytes; /* sent since the struct was zeroed */
} ts_par_sends;
void ts_par_isend_floats(ts_par_sends *s, const float *buf, size_t n, int to, int tag, MPI_Comm comm);
void ts_par_recv_floats(float *buf, size_t n, int from, int tag, MPI_Comm comm);
/* The blocking send, and root's buf (n) to every rank of comm. */
void ts_par_send_floats(const float *buf, size_t n, int to, int tag, MPI_Comm comm);
void ts_par_bcast_floats_from(float *buf, size_t n, int root, MPI_Comm comm);
void ts_par_sends_wait(ts_par_sends *s);
void ts_par_sends_free(ts_par_sends *s);
/* On any communicator (an axis of the layout): this rank's place in it. */
void ts_par_comm_place(MPI_Comm comm, int *rank, int *size);
/* out (n) = the element-wise maximum over comm of in (n). */
void ts_par_max_floats(const float *in, float *out, size_t n, MPI_Comm comm);
/* Rank 0's buf (n) to every rank of comm. */
void ts_par_bcast_floats_on(float *buf, size_t n, MPI_Comm comm);
/* The sum over comm of buf (n) onto rank 0's buf; other ranks' buf is
 * left as it was. */
void ts_par_reduce_floats(float *buf, size_t n, MPI_Comm comm);
/* In-place sum over the grid of n doubles. */
void ts_par_sum_doubles(const ts_layout *lay, double *buf, int n);
/* In-place sum over the grid of a gradient block on backend be (staged
 * through the host when be is not the CPU: no GPU-aware MPI assumed). */
void ts_par_sum_grads(const ts_layout *lay, const ts_backend *be, ts_params *grads);
/* Whether flag is non-zero on any rank. */
int ts_par_any(const ts_layout *lay, int flag);
/* lo[i] and hi[i]: the least and most of mine[i] over the grid. */
void ts_par_minmax_u64(const ts_layout *lay, const unsigned long long *mine, unsigned long long *lo,
                       unsigned long long *hi, int n);
/* The log fields ",\"rss_peak_mb_min\":...,\"rss_peak_mb_max\":..." of every
 * rank's peak resident memory so far (collective). */
void ts_par_peak_rss_fields(const ts_layout *lay, char *buf, size_t cap);
/* Rank 0's n bytes to every rank of the grid (any size: in messages MPI's
 * int counts can hold). */
void ts_par_bcast_bytes(const ts_layout *lay, void *buf, size_t n);
/* Rank 0's n values to every rank of the grid. */
void ts_par_bcast_ints(const ts_layout *lay, int *buf, int n);
void ts_par_bcast_i64(const ts_layout *lay, int64_t *buf, int n);
void ts_par_bcast_floats(const ts_layout *lay, float *buf, size_t n);
/* n values of every rank to rank 0's all (world * n, rank order; all is
 * used on rank 0 only), and back: rank 0's all to every rank's n. */
void ts_par_gather_ints(const ts_layout *lay, const int *mine, int *all, int n);
void ts_par_gather_floats(const ts_layout *lay, const float *mine, float *all, size_t n);
void ts_par_scatter_floats(const ts_layout *lay, const float *all, float *mine, size_t n);
/* The sum over the grid of n doubles onto rank 0's buf (other ranks' buf
 * is left as it was). */
void ts_par_reduce_doubles(const ts_layout *lay, double *buf, size_t n);
/* No rank passes until every rank has reached it. */
void ts_par_barrier(const ts_layout *lay);

#endif
