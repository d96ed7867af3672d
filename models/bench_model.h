/* The whole Swin model on a bench shape: forward and training-step GFLOP/s
 * (FLOPs as REFERENCE.md counts them) beside the ceiling measured by
 * ts_bench_run, its memory, and where a training step's time goes, op by
 * op (core/profile.h). Used by `tessera bench` and `tessera-bench`. */
#ifndef TESSERA_MODELS_BENCH_MODEL_H
#define TESSERA_MODELS_BENCH_MODEL_H

#include <stdio.h>

#include "core/backend.h"
#include "core/bench.h"

/* Prints the rows and appends them to jsonl (may be NULL). */
void ts_bench_model(const ts_backend *be, const ts_bench_shape *s, int depth, double ceiling_gflops, FILE *jsonl);

#endif
