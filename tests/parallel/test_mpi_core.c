/* MPI tests of the foundation: the rank layout and layout-independent
 * random numbers. Run by ctest under mpiexec with 1, 2 and 4 ranks. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "parallel/layout.h"
#include "parallel/mpi_env.h"
#include "tests/parallel/mpi_check.h"

/* Every factorisation of the world size into the five axes. */
static int next_layout(int size[TS_AXIS_COUNT], int world) {
    for (;;) {
        int a = 0;
        while (a < TS_AXIS_COUNT && ++size[a] > world) size[a++] = 1;
        if (a == TS_AXIS_COUNT) return 0;
        long long p = 1;
        for (int k = 0; k < TS_AXIS_COUNT; k++) p *= size[k];
        if (p == world) return 1;
    }
}

static void test_layouts(int world) {
    int size[TS_AXIS_COUNT] = {1, 1, 1, 1, 0}; /* first next_layout() gives 1,1,1,1,1 or the first fit */
    int count = 0;
    char err[256];
    while (next_layout(size, world)) {
        ts_layout lay;
        int rc = ts_layout_create(&lay, MPI_COMM_WORLD, size, err, sizeof err);
        CHECK(rc == 0, "%s", err);
        if (rc) continue;
        count++;
        /* Coordinates are a bijection of ranks, in the documented order
         * (SP fastest, DP slowest). */
        int expect = 0;
        for (int a = 0; a < TS_AXIS_COUNT; a++) expect = expect * size[a] + lay.coord[a];
        CHECK(expect == lay.rank, "rank %d has coords giving %d", lay.rank, expect);
        int seen = 0;
        MPI_Allreduce(&(int){1 << lay.rank}, &seen, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
        CHECK(seen == (1 << world) - 1, "ranks seen %x", seen);
        for (int a = 0; a < TS_AXIS_COUNT; a++) {
            int n = 0, r = -1;
            MPI_Comm_size(lay.axis[a], &n);
            MPI_Comm_rank(lay.axis[a], &r);
            CHECK(n == size[a], "axis %s has %d ranks, want %d", TS_AXIS_NAMES[a], n, size[a]);
            CHECK(r == lay.coord[a], "axis %s rank %d, coord %d", TS_AXIS_NAMES[a], r, lay.coord[a]);
            /* Members of an axis communicator agree on every other coordinate. */
            int mine[TS_AXIS_COUNT], lo[TS_AXIS_COUNT], hi[TS_AXIS_COUNT];
            memcpy(mine, lay.coord, sizeof mine);
            MPI_Allreduce(mine, lo, TS_AXIS_COUNT, MPI_INT, MPI_MIN, lay.axis[a]);
            MPI_Allreduce(mine, hi, TS_AXIS_COUNT, MPI_INT, MPI_MAX, lay.axis[a]);
            for (int b = 0; b < TS_AXIS_COUNT; b++)
                if (b != a) CHECK(lo[b] == hi[b], "axis %s mixes %s coords", TS_AXIS_NAMES[a], TS_AXIS_NAMES[b]);
        }
        int nwp = 0;
        MPI_Comm_size(lay.wp, &nwp);
        CHECK(nwp == size[TS_AXIS_WP_Y] * size[TS_AXIS_WP_X], "wp communicator has %d ranks", nwp);
        /* Longitude wraps: the west neighbour of the first column is the last. */
        int src, dst;
        MPI_Cart_shift(lay.cart, TS_AXIS_WP_X, 1, &src, &dst);
        CHECK(src != MPI_PROC_NULL && dst != MPI_PROC_NULL, "wp_x must be periodic");
        MPI_Cart_shift(lay.cart, TS_AXIS_WP_Y, 1, &src, &dst);
        if (lay.coord[TS_AXIS_WP_Y] == 0) CHECK(src == MPI_PROC_NULL, "wp_y must not wrap at the pole");
        ts_layout_free(&lay);
    }
    /* Number of ordered factorisations of world into 5 factors: 1 -> 1, 2 -> 5, 4 -> 15. */
    int expected = world == 1 ? 1 : world == 2 ? 5 : world == 4 ? 15 : count;
    CHECK(count == expected, "%d layouts built, %d expected", count, expected);

    /* A layout whose product is not the world size is refused with a line
     * naming the keys. */
    int bad[TS_AXIS_COUNT] = {world + 1, 1, 1, 1, 1};
    CHECK(ts_layout_check(bad, world, err, sizeof err) == -1 && strstr(err, "parallel.dp"), "%s", err);
    int zero[TS_AXIS_COUNT] = {1, 1, 0, 1, 1};
    CHECK(ts_layout_check(zero, world, err, sizeof err) == -1 && strstr(err, "parallel.wp_y"), "%s", err);
}

/* Each rank draws only its own slice of a global stream; gathered, the
 * slices equal one serial draw of the whole stream, whatever the split. */
static void test_rng_layout_independence(int world, int rank) {
    const size_t n = 100003; /* prime: slices cut Philox blocks mid-way */
    ts_rng_key key = ts_rng_key_make(42, TS_RNG_TRAIN_NOISE);
    float *serial = malloc(sizeof(float) * n), *gathered = malloc(sizeof(float) * n);
    int *counts = malloc(sizeof(int) * world), *displs = malloc(sizeof(int) * world);
    for (int kind = 0; kind < 2; kind++) {
        (kind ? ts_rng_normal : ts_rng_uniform)(key, 7, 0, n, serial);
        for (int r = 0; r < world; r++) {
            size_t lo = n * (size_t)r / world, hi = n * (size_t)(r + 1) / world;
            counts[r] = (int)(hi - lo), displs[r] = (int)lo;
        }
        float *mine = malloc(sizeof(float) * (counts[rank] + 1));
        (kind ? ts_rng_normal : ts_rng_uniform)(key, 7, (uint64_t)displs[rank], (size_t)counts[rank], mine);
        MPI_Allgatherv(mine, counts[rank], MPI_FLOAT, gathered, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
        CHECK(memcmp(serial, gathered, sizeof(float) * n) == 0, "%s draws differ between layouts",
              kind ? "normal" : "uniform");
        free(mine);
    }
    free(serial), free(gathered), free(counts), free(displs);
}

int main(int argc, char **argv) {
    ts_mpi_init(&argc, &argv);
    int world = ts_mpi_size(), rank = ts_mpi_rank();
    test_layouts(world);
    test_rng_layout_independence(world, rank);
    int rc = mpi_check_finish("test_mpi_core");
    ts_mpi_finalize();
    return rc;
}
