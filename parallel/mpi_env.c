#include "parallel/mpi_env.h"
#include "core/log.h"

static int g_rank = 0, g_size = 1;

static void abort_job(int code) {
    int up = 0;
    MPI_Initialized(&up);
    if (up && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void ts_mpi_init(int *argc, char ***argv) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    ts_log_set_rank(g_rank);
    ts_set_exit_hook(abort_job);
    if (provided < MPI_THREAD_FUNNELED) ts_warn("MPI gives thread level %d below FUNNELED", provided);
}

void ts_mpi_finalize(void) {
    ts_set_exit_hook(NULL);
    MPI_Finalize();
}

int ts_mpi_rank(void) { return g_rank; }
int ts_mpi_size(void) { return g_size; }

void ts_mpi_check(int err, const char *what, const char *file, int line) {
    if (err == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    ts_fatal_at(file, line, TS_EXIT_FAILURE, "%s failed: %s", what, msg);
}
