/* OpenMP wait policy: tessera's loops and OpenBLAS share one OpenMP runtime,
 * and with libgomp's default (threads spin between parallel regions) the
 * spinning threads of one steal the cores of the other: a training step on 2
 * cores ran 1.7x slower (docs/bench.md). libgomp reads OMP_WAIT_POLICY only
 * when it loads, so a process that was started without it sets it and
 * replaces itself with a fresh image of the same program, once, before
 * anything else (MPI_Init included) has run. */
#ifndef TESSERA_CORE_OMP_POLICY_H
#define TESSERA_CORE_OMP_POLICY_H

/* When OMP_WAIT_POLICY is unset: set it to PASSIVE and re-execute argv on
 * /proc/self/exe. Returns (and changes nothing else) when the variable is
 * set, TESSERA_KEEP_OMP_POLICY=1 is set, or the re-execution fails. Set
 * OMP_WAIT_POLICY=ACTIVE to keep spinning threads (a node with spare cores
 * and latency-bound loops). */
void ts_omp_prefer_passive(char **argv);

#endif
