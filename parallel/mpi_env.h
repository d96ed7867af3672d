/* MPI start-up and shutdown for every tessera command and MPI test. */
#ifndef TESSERA_PARALLEL_MPI_ENV_H
#define TESSERA_PARALLEL_MPI_ENV_H

#include <mpi.h>

/* MPI_Init_thread (FUNNELED), rank-0 logging, and a fatal-error hook that
 * aborts the whole job when more than one rank runs (one rank's error must
 * not leave the others waiting in a collective). */
void ts_mpi_init(int *argc, char ***argv);
void ts_mpi_finalize(void);
int ts_mpi_rank(void);
int ts_mpi_size(void);

/* Check an MPI return code: one line with file:line and MPI's message. */
#define TS_MPI_CHECK(call) ts_mpi_check((call), #call, __FILE__, __LINE__)
void ts_mpi_check(int err, const char *what, const char *file, int line);

#endif
