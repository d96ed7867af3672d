/* Contiguous chunks of the node order, one per sequence-parallel rank, with
 * their halo lists, send lists and local numbering (docs/mesh.md).
 *
 * Rank r owns nodes [start[r], start[r+1]) of the curve order. Its local
 * tokens are [owned nodes | halo nodes, ascending global id | G globals]:
 * halo nodes are the remote nodes its rows attend to, whose K/V rows arrive
 * each layer; the globals' K/V are replicated on every rank, so they are
 * never part of a halo. Since chunks are contiguous and ascending, the
 * ascending halo is also grouped by owner rank.
 */
#ifndef TESSERA_MESH_PARTITION_H
#define TESSERA_MESH_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"

typedef enum {
    TS_BALANCE_NODES = 0, /* equal node counts (within one): the default, see docs/mesh.md */
    TS_BALANCE_WORK = 1,  /* equal mask entries over the chunk's node rows (attention work), within one row */
} ts_balance;

/* Split the N nodes of mask ((N + G) × (N + G), from ts_mesh_mask) into P
 * contiguous chunks: start (P + 1) gets start[0] = 0 <= … <= start[P] = N.
 * Chunks are empty only when N < P. */
void ts_mesh_partition(const ts_csr *mask, int64_t n_nodes, int P, ts_balance how, int64_t *start);

typedef struct {
    int rank, n_ranks;
    int64_t n_nodes;   /* N of the whole mesh */
    int n_globals;     /* G */
    int64_t first;     /* owned nodes are global ids [first, first + n_own) */
    int64_t n_own;
    int64_t n_halo;
    int32_t *halo;      /* (n_halo) remote node ids the owned rows reference, ascending */
    int64_t *halo_from; /* (n_ranks + 1) halo[halo_from[r] .. halo_from[r+1]) are owned by rank r */
    int64_t n_send;
    int32_t *send;      /* (n_send) owned node ids (global) other ranks reference */
    int64_t *send_to;   /* (n_ranks + 1) send[send_to[r] .. send_to[r+1]) go to rank r, ascending */
    ts_csr local;       /* n_own × (n_own + n_halo + G): the owned rows of the mask in local numbering */
} ts_mesh_chunk;

/* Chunk `rank` of the partition start (P + 1, from ts_mesh_partition or the
 * caller's own). The halo comes from the chunk's rows; the send lists from
 * the other chunks' rows, independently, so they are right for any mask
 * (symmetric or not). */
void ts_mesh_chunk_build(const ts_csr *mask, int64_t n_nodes, int n_globals, const int64_t *start, int P, int rank,
                         ts_mesh_chunk *c);
void ts_mesh_chunk_free(ts_mesh_chunk *c);

/* Local tokens of the chunk: n_own + n_halo + G. */
static inline int64_t ts_mesh_chunk_n_local(const ts_mesh_chunk *c) { return c->n_own + c->n_halo + c->n_globals; }

/* Global token id (node, or N + g for global g) → local index, or -1 when
 * the token is not local (neither owned, halo nor global). */
int64_t ts_mesh_chunk_local(const ts_mesh_chunk *c, int64_t global);
/* Local index in [0, n_local) → global token id. */
int64_t ts_mesh_chunk_global(const ts_mesh_chunk *c, int64_t local);

/* Bytes the chunk receives (halo) and sends per layer for the K and V rows
 * of its halo exchange, rows of dim floats: 2 · rows · dim · 4. */
size_t ts_mesh_halo_recv_bytes(const ts_mesh_chunk *c, int dim);
size_t ts_mesh_halo_send_bytes(const ts_mesh_chunk *c, int dim);

#endif
