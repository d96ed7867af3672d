/* A tiny checker for MPI test programs: every rank counts its failures, and
 * the program's exit code is non-zero when the sum over ranks is. */
#ifndef TESSERA_TESTS_MPI_CHECK_H
#define TESSERA_TESTS_MPI_CHECK_H

#include <mpi.h>
#include <stdio.h>

static int g_checks_passed, g_checks_failed;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (cond) {                                                                 \
            g_checks_passed++;                                                      \
        } else {                                                                    \
            int r_;                                                                 \
            MPI_Comm_rank(MPI_COMM_WORLD, &r_);                                     \
            g_checks_failed++;                                                      \
            fprintf(stderr, "rank %d: FAIL %s:%d: %s: ", r_, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
        }                                                                           \
    } while (0)

/* Sums the counts over ranks; rank 0 prints the closing line. Returns the
 * exit code for main. */
static int mpi_check_finish(const char *name) {
    int local[2] = {g_checks_passed, g_checks_failed}, total[2] = {0, 0}, rank, size;
    MPI_Allreduce(local, total, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) printf("%s on %d ranks: %d passed, %d failed\n", name, size, total[0], total[1]);
    return total[1] == 0 && total[0] > 0 ? 0 : 1;
}

#endif
