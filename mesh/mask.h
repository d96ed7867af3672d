/* The attention mask of a mesh-transformer layer (REFERENCE.md, "Mesh
 * model"; docs/mesh.md).
 *
 * Tokens [0, N) are the mesh nodes in curve order, tokens [N, N + G) the G
 * global tokens, appended at the end. Row i of a node holds the union of
 *   - itself (every token attends to itself, as in standard attention),
 *   - its k-hop neighbours (j ≠ i within khop mesh edges),
 *   - the dilated window: j in [0, N) with |i − j| <= w·d and d | (i − j),
 *   - all G global tokens.
 * Row N + g of a global token holds every token, nodes and globals, itself
 * included. The node-node part is symmetric; so is the whole mask.
 */
#ifndef TESSERA_MESH_MASK_H
#define TESSERA_MESH_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"

typedef struct {
    int khop;     /* >= 1: neighbours up to this many mesh edges away (mesh.khop) */
    int window;   /* w >= 0: window half-width in dilated steps; 0 = none (mesh.window) */
    int dilation; /* d >= 1 (mesh.dilation) */
    int globals;  /* G >= 0 (mesh.globals) */
} ts_mask_params;

/* The (N + G) × (N + G) mask from the mesh adjacency adj (N × N, nodes
 * already in curve order). -1 with a message on bad parameters or when
 * N + G does not fit int32. */
int ts_mesh_mask(const ts_csr *adj, const ts_mask_params *p, ts_csr *mask, char *err, size_t err_cap);

/* The same from a k-hop matrix already computed (near: N × N, any self
 * entries ignored), so callers that keep the k-hop matrix build it once. */
int ts_mesh_mask_from_near(const ts_csr *near, int window, int dilation, int globals, ts_csr *mask, char *err,
                           size_t err_cap);

#endif
