#include "parallel/layout.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "parallel/mpi_env.h"

const char *const TS_AXIS_NAMES[TS_AXIS_COUNT] = {"parallel.dp", "parallel.pp", "parallel.wp_y",
                                                  "parallel.wp_x", "parallel.sp"};

int ts_layout_check(const int size[TS_AXIS_COUNT], int world, char *err, size_t cap) {
    long long product = 1;
    for (int a = 0; a < TS_AXIS_COUNT; a++) {
        if (size[a] < 1) {
            return TS_FAIL(err, cap, "%s = %d: every layout axis needs at least 1 rank", TS_AXIS_NAMES[a], size[a]);
        }
        product *= size[a];
    }
    if (product != world) {
        snprintf(err, cap,
                 "rank layout parallel.dp x pp x wp_y x wp_x x sp = %d x %d x %d x %d x %d = %lld ranks, "
                 "but the job has %d MPI ranks",
                 size[TS_AXIS_DP], size[TS_AXIS_PP], size[TS_AXIS_WP_Y], size[TS_AXIS_WP_X], size[TS_AXIS_SP],
                 product, world);
        return -1;
    }
    return 0;
}

int ts_layout_create(ts_layout *lay, MPI_Comm comm, const int size[TS_AXIS_COUNT], char *err, size_t cap) {
    memset(lay, 0, sizeof *lay);
    MPI_Comm_size(comm, &lay->world);
    if (ts_layout_check(size, lay->world, err, cap)) return -1;
    int periods[TS_AXIS_COUNT] = {0};
    periods[TS_AXIS_WP_X] = 1;
    memcpy(lay->size, size, sizeof lay->size);
    /* reorder = 0: rank numbers stay those of the launcher, whose placement
     * (ranks per node) the order above was chosen for. */
    TS_MPI_CHECK(MPI_Cart_create(comm, TS_AXIS_COUNT, lay->size, periods, 0, &lay->cart));
    TS_MPI_CHECK(MPI_Comm_rank(lay->cart, &lay->rank));
    TS_MPI_CHECK(MPI_Cart_coords(lay->cart, lay->rank, TS_AXIS_COUNT, lay->coord));
    for (int a = 0; a < TS_AXIS_COUNT; a++) {
        int keep[TS_AXIS_COUNT] = {0};
        keep[a] = 1;
        TS_MPI_CHECK(MPI_Cart_sub(lay->cart, keep, &lay->axis[a]));
    }
    int keep_wp[TS_AXIS_COUNT] = {0};
    keep_wp[TS_AXIS_WP_Y] = keep_wp[TS_AXIS_WP_X] = 1;
    TS_MPI_CHECK(MPI_Cart_sub(lay->cart, keep_wp, &lay->wp));
    return 0;
}

void ts_layout_free(ts_layout *lay) {
    for (int a = 0; a < TS_AXIS_COUNT; a++)
        if (lay->axis[a] != MPI_COMM_NULL && lay->axis[a]) MPI_Comm_free(&lay->axis[a]);
    if (lay->wp) MPI_Comm_free(&lay->wp);
    if (lay->cart) MPI_Comm_free(&lay->cart);
    memset(lay, 0, sizeof *lay);
}
