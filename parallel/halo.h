/* Halo exchange of the mesh path's sequence parallelism (DESIGN.md,
 * "Parallel layout", mesh).
 *
 * The node order is split into contiguous chunks, one per rank of a
 * communicator: rank r owns global nodes [chunk_start[r], chunk_start[r+1]).
 * A rank's local rows are its owned nodes (local row i = global node
 * chunk_start[rank] + i), then its halo rows: the remote nodes its attention
 * reads, in ascending global id (so grouped by owner rank).
 *
 *   exchange: owners send the rows their neighbours read (K and V of halo
 *             nodes) into the neighbours' halo rows;
 *   reduce:   the reverse, for backward: each halo row's gradient goes back to
 *             its owner and is added to the owned row.
 *
 * Each call adds the bytes this rank sent to bytes_sent, so tests and logs
 * compare it with the analytic count (4 * width * rows sent).
 */
#ifndef TESSERA_PARALLEL_HALO_H
#define TESSERA_PARALLEL_HALO_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    MPI_Comm comm;
    int rank, size;
    int64_t n_own, n_halo;
    int nneigh;           /* ranks this rank talks to (either way) */
    int *neigh;           /* (nneigh) */
    int *send_off;        /* (nneigh + 1) into send_rows */
    int32_t *send_rows;   /* owned local rows each neighbour reads, ascending per neighbour */
    int *recv_off;        /* (nneigh + 1): halo rows [recv_off[k], recv_off[k+1]) come from neigh[k] */
    float *sendbuf, *recvbuf;
    size_t buf_floats;
    uint64_t bytes_sent;  /* running total over every exchange and reduce */
} ts_halo_plan;

/* Collective over comm. chunk_start (size + 1) is the same on every rank;
 * halo (n_halo) are the remote global node ids this rank reads, ascending,
 * none of them its own. Returns 0, or -1 with a message in err. */
int ts_halo_plan_create(ts_halo_plan *p, MPI_Comm comm, const int64_t *chunk_start, const int64_t *halo,
                        int64_t n_halo, char *err, size_t errcap);
void ts_halo_plan_free(ts_halo_plan *p);

/* rows (n_own + n_halo, width): fill the halo rows from their owners. */
void ts_halo_exchange(ts_halo_plan *p, float *rows, int width);
/* rows (n_own + n_halo, width): add each halo row into its owner's row (and
 * leave the halo rows as they were). */
void ts_halo_reduce(ts_halo_plan *p, float *rows, int width);

/* Rows this rank sends in one exchange (and receives in one reduce). */
int64_t ts_halo_rows_sent(const ts_halo_plan *p);

#endif
