/* Sequence parallelism of the mesh graph transformer (DESIGN.md, "Parallel
 * layout", mesh; docs/mesh-model.md, "Sequence parallelism").
 *
 * The N nodes in curve order are split into contiguous chunks, one per rank
 * of an SP communicator (ts_mesh_partition). A rank computes the rows of its
 * own nodes and, redundantly and identically on every rank, the G global
 * tokens' rows. Its arrays use two row orders:
 *
 *   rows R = n_own + G:          [owned nodes | globals]          x, q, o, lse, MLP, ...
 *   rows L = n_own + n_halo + G: [owned | halo (ascending id) | globals]   k, v, dk, dv
 *
 * Per block, forward: one halo exchange of the packed K|V rows (width 2d)
 * fills the halo rows; the owned rows attend over the chunk's local mask;
 * the global rows attend to every token through per-rank partials (owned
 * node columns, plus the global columns on rank 0 only) combined by
 * all-reduce in log-sum-exp form (MAX of the maxima, then SUM of the
 * rescaled sums and values).
 *
 * Backward: SP rank 0 alone carries the global rows' chain: on entry the
 * global rows of dout are the true gradient on rank 0 and zero elsewhere.
 * Rank 0 broadcasts them; every rank runs the owned rows' backward and the
 * global rows' backward over its own columns; the global rows' dq (a sum of
 * per-rank shares) and the global columns' dk, dv (from every rank's rows)
 * are summed onto rank 0 and zeroed elsewhere; the halo rows' dk, dv go back
 * to their owners by one ts_halo_reduce. So every weight gradient is a
 * partial sum over the SP ranks, exact once summed (DESIGN.md, "Gradients").
 *
 * Bytes: each exchange sends 2 * n_send * d * 4 (ts_mesh_halo_send_bytes),
 * each reduce 2 * n_halo * d * 4 (ts_mesh_halo_recv_bytes); bytes_expected
 * adds the analytic count at every call, the plan's bytes_sent the measured.
 */
#ifndef TESSERA_MODELS_MESH_SP_H
#define TESSERA_MODELS_MESH_SP_H

#ifdef TESSERA_HAVE_MPI
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"
#include "mesh/partition.h"
#include "parallel/halo.h"

typedef struct ts_mesh_sp {
    MPI_Comm comm;            /* the SP axis */
    int rank, size;
    int64_t *start;           /* (size + 1) chunk bounds in curve order */
    ts_mesh_chunk chunk;      /* this rank's nodes, halo and send lists, local mask (n_own x L) */
    ts_halo_plan plan;        /* rows [owned | halo] */
    ts_csr local_t;           /* (L x n_own) transpose of chunk.local */
    ts_csr gmask, gmask_t;    /* (G x L) the global rows' columns held here: owned nodes (+ globals on rank 0); (L x G) */
    int64_t n_own, n_halo, G, R, L;
    float *buf;               /* packing scratch */
    size_t buf_floats;
    uint64_t bytes_expected;  /* analytic count of plan.bytes_sent */
    uint64_t exchanges, reduces; /* K|V halo exchanges and dK|dV halo reduces so far */
} ts_mesh_sp;

/* Collective over comm: partition the mask's N nodes (balance how), build
 * this rank's chunk, halo plan and partial masks. mask is (N+G) x (N+G)
 * from ts_mesh_mask. Returns 0, or -1 with one line in err. */
int ts_mesh_sp_create(ts_mesh_sp *sp, MPI_Comm comm, const ts_csr *mask, int64_t n_nodes, int n_globals,
                      ts_balance how, char *err, size_t cap);
void ts_mesh_sp_free(ts_mesh_sp *sp);

/* Halo bytes this rank sent so far (measured by the plan). */
static inline uint64_t ts_mesh_sp_bytes_sent(const ts_mesh_sp *sp) { return sp->plan.bytes_sent; }

/* o (R, H*D), lse (R, H) overwritten; q (R, H*D); k, v (L, H*D) with the
 * owned and global rows filled: the halo rows are filled here. Collective. */
void ts_mesh_sp_attn_forward(ts_mesh_sp *sp, float *o, float *lse, const float *q, float *k, float *v, int H, int D,
                             float scale);

/* Accumulates dq (R, H*D), dk, dv (L, H*D) from dout (R, H*D) as described
 * above: afterwards the owned rows of dk, dv hold every rank's share, and
 * the global rows of dq, dk, dv are complete on rank 0 and zero elsewhere.
 * dout's global rows are overwritten with rank 0's. delta (R, H) scratch.
 * Collective. */
void ts_mesh_sp_attn_backward(ts_mesh_sp *sp, float *dq, float *dk, float *dv, float *delta, float *dout,
                              const float *o, const float *lse, const float *q, const float *k, const float *v, int H,
                              int D, float scale);
#endif

#endif
