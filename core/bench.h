/* Op throughput on a Swin block's shapes, beside the machine's own GEMM
 * ceiling measured in the same run (OpenBLAS sgemm on the CPU, cuBLAS on a
 * GPU), each figure the median of repeated runs. */
#ifndef TESSERA_CORE_BENCH_H
#define TESSERA_CORE_BENCH_H

#include <stdio.h>

#include "core/backend.h"

typedef struct {
    int dim, heads, hidden, window, grid_h, grid_w, batch;
    int reps;        /* median over this many timed runs (after one warm-up) */
    int ceiling_n;   /* square SGEMM size of the ceiling */
    const char *ops; /* "all" or a comma list of row names */
} ts_bench_shape;

/* Runs the benchmark; prints the table to `table` and writes one JSON line
 * per row to `jsonl` (either may be NULL); the ceiling measured goes to
 * *ceiling_gflops when not NULL. Returns 0, or -1 with a message in err
 * when the shape is invalid. */
int ts_bench_run(const ts_backend *be, const ts_bench_shape *s, FILE *table, FILE *jsonl, double *ceiling_gflops,
                 char *err, size_t errcap);

/* The ceiling alone: GFLOP/s of the fastest of reps + 2 square SGEMMs of
 * side n after warm-up (what ts_bench_run measures first). */
double ts_bench_ceiling(const ts_backend *be, int n, int reps);

#endif
