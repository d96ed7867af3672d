/* MPI tests of the mesh halo exchange (parallel/halo.h), under mpiexec with
 * 1, 2 and 4 ranks.
 *
 * For random contiguous partitions and random halo lists (both drawn from a
 * seed every rank shares, so each rank can rebuild every other rank's lists
 * by brute force):
 * - exchange fills each halo row with its owner's row, exactly (values are
 *   small integers plus a quarter: moves, never arithmetic);
 * - reduce adds every reader's halo row into the owner's row, equal to the
 *   brute-force sum over the readers (integers, exact in float);
 * - bytes sent equal 4 * width * (rows other ranks read from this one), per
 *   exchange and per reduce (where the reduce sends what was received). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/halo.h"
#include "parallel/mpi_env.h"
#include "tests/parallel/mpi_check.h"

enum { CASES = 20 };

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static float owned_value(int64_t g, int c) { return (float)(g * 8 + c) + 0.25f; }
static float reader_value(int r, int64_t g, int c) { return (float)((r + 1) * 3 + (g % 5) + c); }

/* Rank r's halo list in case k: each remote node with probability 1/3. */
static int64_t make_halo(int k, int r, const int64_t *start, int P, int64_t *halo) {
    int64_t n = 0;
    for (int64_t g = 0; g < start[P]; g++) {
        if (g >= start[r] && g < start[r + 1]) continue;
        if (mix((uint64_t)k * 1000003u + (uint64_t)r * 7919u + (uint64_t)g) % 3 == 0) halo[n++] = g;
    }
    return n;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    for (int k = 0; k < CASES; k++) {
        /* a partition with some empty chunks when k is odd */
        int64_t *start = calloc((size_t)P + 1, sizeof(int64_t));
        for (int r = 1; r <= P; r++) start[r] = start[r - 1] + (int64_t)(mix((uint64_t)(k * 31 + r)) % (k % 2 ? 7 : 40)) + (k % 2 ? 0 : 1);
        const int64_t N = start[P];
        const int width = 1 + k % 5;
        int64_t *halo = malloc(sizeof(int64_t) * (size_t)(N + 1));
        int64_t nh = make_halo(k, rank, start, P, halo);
        ts_halo_plan plan;
        char err[256];
        int rc = ts_halo_plan_create(&plan, MPI_COMM_WORLD, start, halo, nh, err, sizeof err);
        CHECK(rc == 0, "case %d: %s", k, err);
        if (rc) break;
        const int64_t n_own = start[rank + 1] - start[rank];
        float *rows = malloc(sizeof(float) * (size_t)(n_own + nh + 1) * (size_t)width);
        for (int64_t i = 0; i < n_own; i++)
            for (int c = 0; c < width; c++) rows[i * width + c] = owned_value(start[rank] + i, c);
        for (int64_t i = 0; i < nh; i++)
            for (int c = 0; c < width; c++) rows[(n_own + i) * width + c] = -1.0f;

        ts_halo_exchange(&plan, rows, width);
        int bad = 0;
        for (int64_t i = 0; i < nh; i++)
            for (int c = 0; c < width; c++) bad += rows[(n_own + i) * width + c] != owned_value(halo[i], c);
        CHECK(bad == 0, "case %d: %d halo values differ from their owners'", k, bad);

        /* brute force: rows the other ranks read from this one */
        int64_t readers_rows = 0, *other = malloc(sizeof(int64_t) * (size_t)(N + 1));
        float *want = calloc((size_t)(n_own + 1) * (size_t)width, sizeof(float));
        for (int64_t i = 0; i < n_own; i++)
            for (int c = 0; c < width; c++) want[i * width + c] = owned_value(start[rank] + i, c);
        for (int r = 0; r < P; r++) {
            if (r == rank) continue;
            int64_t no = make_halo(k, r, start, P, other);
            for (int64_t i = 0; i < no; i++)
                if (other[i] >= start[rank] && other[i] < start[rank + 1]) {
                    readers_rows++;
                    for (int c = 0; c < width; c++) want[(other[i] - start[rank]) * width + c] += reader_value(r, other[i], c);
                }
        }
        CHECK(ts_halo_rows_sent(&plan) == readers_rows, "case %d: plan sends %lld rows, brute force %lld", k,
              (long long)ts_halo_rows_sent(&plan), (long long)readers_rows);
        CHECK(plan.bytes_sent == (uint64_t)readers_rows * (uint64_t)width * 4u, "case %d: %llu bytes sent, expected %llu",
              k, (unsigned long long)plan.bytes_sent, (unsigned long long)readers_rows * (unsigned long long)width * 4u);

        for (int64_t i = 0; i < nh; i++)
            for (int c = 0; c < width; c++) rows[(n_own + i) * width + c] = reader_value(rank, halo[i], c);
        uint64_t before = plan.bytes_sent;
        ts_halo_reduce(&plan, rows, width);
        bad = 0;
        for (int64_t i = 0; i < n_own * width; i++) bad += rows[i] != want[i];
        CHECK(bad == 0, "case %d: %d owned values differ from the brute-force sum over readers", k, bad);
        CHECK(plan.bytes_sent - before == (uint64_t)nh * (uint64_t)width * 4u, "case %d: reduce sent %llu bytes, expected %llu",
              k, (unsigned long long)(plan.bytes_sent - before), (unsigned long long)nh * (unsigned long long)width * 4u);

        ts_halo_plan_free(&plan);
        free(rows), free(want), free(other), free(halo), free(start);
    }

    /* a halo list naming one of this rank's own nodes is refused on every rank */
    if (P > 1) {
        int64_t start[65] = {0};
        for (int r = 1; r <= P && r <= 64; r++) start[r] = 4 * r;
        int64_t mine = start[rank];
        ts_halo_plan plan;
        char err[256] = "";
        int rc = ts_halo_plan_create(&plan, MPI_COMM_WORLD, start, &mine, rank == 0 ? 1 : 0, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "halo plan") != NULL, "own node in the halo list accepted: %s", err);
    }
    int code = mpi_check_finish("test_mpi_halo");
    MPI_Finalize();
    return code;
}
