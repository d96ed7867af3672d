/* A quick check that an installation computes correctly: the RNG's known
 * answers, each backend's GEMM against a plain double loop, invariants of
 * the normalisation and softmax ops, and, with a GPU, every forward op of
 * the CUDA backend against the CPU backend. Seconds, not minutes: the full
 * proof is the test suite. */
#ifndef TESSERA_CORE_SELFCHECK_H
#define TESSERA_CORE_SELFCHECK_H

#include <stdio.h>

/* Prints one line per check to `out`; returns the number of failures. */
int ts_selfcheck(FILE *out);

#endif
