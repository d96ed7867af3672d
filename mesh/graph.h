/* Graph topology on ts_csr (whose building, transposing and combining are
 * in mesh/csr.h): mesh edges from cells, and k-hop powers.
 *
 * Conventions: every ts_csr these functions return owns its arrays (free
 * with ts_csr_free) and keeps the invariants of mesh/csr.h: columns ascending
 * and unique within each row. Node ids are int32 (meshes below 2^31 nodes);
 * entry counts are int64. Functions that read caller data which may be wrong
 * (cells from a file, pair lists) return 0, or -1 with one line in err
 * (err may be NULL); misuse by our own code (mismatched shapes) is fatal.
 */
#ifndef TESSERA_MESH_GRAPH_H
#define TESSERA_MESH_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"

/* ---- edges from cells (mesh/edges.c) ---------------------------------------- */

/* The undirected adjacency (symmetric, no self-loops, no repeats) of the
 * simplices in cells (n_cells × nodes_per_cell, row-major; 3 = triangles,
 * 4 = tetrahedra): every pair of nodes of a cell is an edge. -1 when
 * nodes_per_cell is not 3 or 4, or a cell names a node outside
 * [0, n_nodes): the message names the cell index and the node. */
int ts_mesh_edges_from_cells(int64_t n_nodes, int64_t n_cells, int nodes_per_cell, const int32_t *cells,
                             ts_csr *adj, char *err, size_t err_cap);

/* ---- k-hop powers (mesh/khop.c) --------------------------------------------- */

/* out(i, j) = 1 when j ≠ i is reachable from i along at most k entries of
 * the square matrix adj (a breadth-first search of depth k from each row);
 * for a symmetric adj, the nodes within k edges. k >= 1. */
void ts_csr_khop(const ts_csr *adj, int k, ts_csr *out);

#endif
