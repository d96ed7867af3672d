/* The mesh graph transformer on a synthetic mesh (`tessera bench
 * model.kind=mesh`): a triangulated square lattice of about `nodes` nodes in
 * Hilbert order, its mask widened by a sliding window until it holds about
 * `edges` entries. Rows: the sparse attention alone (forward, backward), one
 * layer of the model (forward, training step), and a `depth`-layer training
 * step with activation recomputation, with memory. Each figure is a median
 * beside the SGEMM ceiling measured in the same run. */
#ifndef TESSERA_MODELS_BENCH_MESH_H
#define TESSERA_MODELS_BENCH_MESH_H

#include <stdint.h>
#include <stdio.h>

#include "core/backend.h"

typedef struct {
    int64_t nodes, edges;      /* wanted; the lattice and window round them */
    int dim, heads, hidden, depth, globals;
    int reps, ceiling_n;
} ts_bench_mesh_shape;

/* Prints the rows and appends them as JSON lines to jsonl (may be NULL).
 * Returns 0, or -1 with a message in err for a shape the model refuses. */
int ts_bench_mesh(const ts_backend *be, const ts_bench_mesh_shape *s, FILE *jsonl, char *err, size_t errcap);

#endif
