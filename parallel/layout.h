/* The rank layout: a Cartesian grid DP x PP x WP_y x WP_x x SP.
 *
 * Rank order puts SP fastest, then WP_x, WP_y, PP, DP slowest, so the axes
 * that talk most (the Ulysses all-to-all, window strips) sit on neighbouring
 * ranks, normally the same node. WP_x is periodic (longitude wraps); WP_y is
 * not (latitude ends at the poles).
 */
#ifndef TESSERA_PARALLEL_LAYOUT_H
#define TESSERA_PARALLEL_LAYOUT_H

#include <mpi.h>
#include <stddef.h>

typedef enum { TS_AXIS_DP = 0, TS_AXIS_PP, TS_AXIS_WP_Y, TS_AXIS_WP_X, TS_AXIS_SP, TS_AXIS_COUNT } ts_axis;

typedef struct {
    int size[TS_AXIS_COUNT];  /* ranks along each axis */
    int coord[TS_AXIS_COUNT]; /* this rank's position */
    int rank, world;
    MPI_Comm cart;                  /* the whole grid */
    MPI_Comm axis[TS_AXIS_COUNT];   /* ranks that differ only along one axis */
    MPI_Comm wp;                    /* WP_y x WP_x together (one field's windows) */
} ts_layout;

extern const char *const TS_AXIS_NAMES[TS_AXIS_COUNT]; /* "parallel.dp", ... */

/* Check sizes against the communicator: each >= 1, product == its size.
 * Returns 0, or -1 with a message naming the keys in err. */
int ts_layout_check(const int size[TS_AXIS_COUNT], int world, char *err, size_t cap);
/* Build the grid (collective over comm). Returns 0 or -1 with err set. */
int ts_layout_create(ts_layout *lay, MPI_Comm comm, const int size[TS_AXIS_COUNT], char *err, size_t cap);
void ts_layout_free(ts_layout *lay);

#endif
