/* MPI tests of the window-strip roll (parallel/roll.h). Run by ctest under
 * mpiexec with 1, 2 and 4 ranks.
 *
 * For every rank layout the world allows and a set of block shapes and
 * shifts, each rank builds its block of a global field given by a formula of
 * (y, x, c), rolls it, and compares with the formula at the rolled
 * coordinates. Values are small integers plus a quarter, exact in float, so
 * the comparison is bit for bit: a roll moves floats, it never computes. The
 * bytes sent are checked against the analytic count and against a
 * brute-force count over every grid point of every rank. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/layout.h"
#include "parallel/mpi_env.h"
#include "parallel/roll.h"
#include "tests/parallel/mpi_check.h"

typedef struct {
    int h, w, C, sy, sx; /* block shape and shift */
} roll_case;

static const roll_case FIXED_CASES[] = {
    {4, 6, 3, 2, 3},     /* a half-window shift */
    {4, 6, 2, 0, 3},     /* sy = 0: nothing moves along y */
    {4, 6, 2, 2, 0},     /* sx = 0: nothing moves along x */
    {4, 6, 1, 0, 0},     /* no shift: a plain copy */
    {5, 3, 2, 4, 2},     /* sy = h-1, sx = w-1: almost the whole block moves */
    {1, 5, 2, 0, 2},     /* blocks of one row */
    {5, 1, 3, 3, 0},     /* blocks of one column */
    {1, 1, 4, 0, 0},     /* one point per rank */
    {48, 40, 8, 24, 20}, /* 15 KiB strips: past the eager limit, sends wait for receives */
};
enum { RANDOM_CASES = 24, GUARD = 16 };

/* The global field; below 2^21 the + 0.25 stays exact in float. */
static float field(int y, int x, int c, int W, int C) {
    return (float)(((size_t)y * (size_t)W + (size_t)x) * (size_t)C + (size_t)c) + 0.25f;
}

/* Random case number k; the seed is k, so any failure replays. */
static roll_case random_case(int k) {
    uint32_t s = 2654435761u * (uint32_t)(k + 1);
    int v[5];
    for (int i = 0; i < 5; i++) s = s * 1664525u + 1013904223u, v[i] = (int)(s >> 8);
    roll_case rc = {1 + v[0] % 6, 1 + v[1] % 6, 1 + v[2] % 3, 0, 0};
    rc.sy = v[3] % rc.h, rc.sx = v[4] % rc.w;
    return rc;
}

/* The (h, w, C) block of rank (py, px) of the field rolled by (-dy, -dx):
 * out(i, j) = field(py*h + i + dy, px*w + j + dx), cyclic. The oracle. */
static void rolled_block(const roll_case *rc, int wy, int wx, int py, int px, int dy, int dx, float *out) {
    const int H = wy * rc->h, W = wx * rc->w;
    for (int i = 0; i < rc->h; i++)
        for (int j = 0; j < rc->w; j++) {
            int y = ((py * rc->h + i + dy) % H + H) % H, x = ((px * rc->w + j + dx) % W + W) % W;
            for (int c = 0; c < rc->C; c++) out[((size_t)i * rc->w + j) * rc->C + c] = field(y, x, c, W, rc->C);
        }
}

/* Brute force over every output point of every rank of the wy x wx grid
 * after a roll by (-dy, -dx): the owner of its source point sends it unless
 * that is the receiving rank itself. sent[q] (q = qy*wx + qx) gets the bytes
 * rank q sends; partners[q] the number of distinct ranks it sends to. */
static void brute_force_sent(const roll_case *rc, int wy, int wx, int dy, int dx, size_t *sent, int *partners) {
    const int H = wy * rc->h, W = wx * rc->w, n = wy * wx;
    char *link = calloc((size_t)n * n, 1); /* (sender, receiver) */
    memset(sent, 0, sizeof(size_t) * n);
    for (int qy = 0; qy < wy; qy++)
        for (int qx = 0; qx < wx; qx++)
            for (int i = 0; i < rc->h; i++)
                for (int j = 0; j < rc->w; j++) {
                    int y = ((qy * rc->h + i + dy) % H + H) % H, x = ((qx * rc->w + j + dx) % W + W) % W;
                    int owner = (y / rc->h) * wx + x / rc->w, me = qy * wx + qx;
                    if (owner == me) continue;
                    sent[owner] += sizeof(float) * (size_t)rc->C;
                    link[owner * n + me] = 1;
                }
    for (int q = 0; q < n; q++) {
        partners[q] = 0;
        for (int r = 0; r < n; r++) partners[q] += link[q * n + r];
    }
    free(link);
}

/* An output buffer with GUARD floats either side, all set to a NaN pattern:
 * a point the roll forgets stays NaN, a stray write shows in the guards. */
static const uint32_t SENTINEL = 0x7fc0deadu;

static float *guarded_alloc(size_t n) {
    float *buf = malloc(sizeof(float) * (n + 2 * GUARD));
    for (size_t k = 0; k < n + 2 * GUARD; k++) memcpy(&buf[k], &SENTINEL, sizeof SENTINEL);
    return buf + GUARD;
}

static int guards_intact(const float *out, size_t n) {
    for (int k = 0; k < GUARD; k++) {
        uint32_t a, b;
        memcpy(&a, &out[-GUARD + k], sizeof a);
        memcpy(&b, &out[n + (size_t)k], sizeof b);
        if (a != SENTINEL || b != SENTINEL) return 0;
    }
    return 1;
}

/* The bytes a call sent: the analytic count, the brute-force count for this
 * rank, and the brute-force total over the wp group. */
static void check_bytes(const ts_roll_plan *plan, const ts_layout *lay, const roll_case *rc, int dir,
                        const char *what) {
    const int wy = lay->size[TS_AXIS_WP_Y], wx = lay->size[TS_AXIS_WP_X];
    const int me = lay->coord[TS_AXIS_WP_Y] * wx + lay->coord[TS_AXIS_WP_X];
    size_t *sent = malloc(sizeof(size_t) * wy * wx);
    int *partners = malloc(sizeof(int) * wy * wx);
    brute_force_sent(rc, wy, wx, dir * rc->sy, dir * rc->sx, sent, partners);
    size_t expect = ts_roll_expected_bytes(rc->h, rc->w, rc->C, rc->sy, rc->sx, wy, wx), brute_total = 0;
    for (int q = 0; q < wy * wx; q++) brute_total += sent[q];
    CHECK(plan->bytes_last == expect, "%s: sent %zu bytes, formula says %zu", what, plan->bytes_last, expect);
    CHECK(plan->bytes_last == sent[me], "%s: sent %zu bytes, brute force says %zu", what, plan->bytes_last,
          sent[me]);
    /* One message per strip: at least one per partner, at most the three
     * strips, none when nothing leaves the rank. */
    CHECK(plan->messages_last >= (size_t)partners[me] && plan->messages_last <= 3 &&
              (plan->messages_last == 0) == (plan->bytes_last == 0),
          "%s: %zu messages for %zu bytes to %d ranks", what, plan->messages_last, plan->bytes_last, partners[me]);
    unsigned long long mine = plan->bytes_last, total = 0;
    TS_MPI_CHECK(MPI_Allreduce(&mine, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, lay->wp));
    CHECK(total == brute_total, "%s: group sent %llu bytes, brute force says %zu", what, total, brute_total);
    free(sent), free(partners);
}

static void test_case(const ts_layout *lay, const roll_case *rc) {
    const int wy = lay->size[TS_AXIS_WP_Y], wx = lay->size[TS_AXIS_WP_X];
    const int py = lay->coord[TS_AXIS_WP_Y], px = lay->coord[TS_AXIS_WP_X];
    const size_t n = (size_t)rc->h * rc->w * rc->C;
    char what[160], err[256];
    snprintf(what, sizeof what, "wp %dx%d block %dx%dx%d shift (%d,%d)", wy, wx, rc->h, rc->w, rc->C, rc->sy, rc->sx);
    float *block = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n); /* (h, w, C) each */
    float *out = guarded_alloc(n), *back = guarded_alloc(n);                       /* (h, w, C) each */
    rolled_block(rc, wy, wx, py, px, 0, 0, block);

    ts_roll_plan plan;
    int rc_create = ts_roll_plan_create(&plan, lay->wp, rc->h, rc->w, rc->C, rc->sy, rc->sx, err, sizeof err);
    CHECK(rc_create == 0, "%s: %s", what, err);
    if (rc_create == 0) {
        /* Forward equals the field at the rolled coordinates. */
        ts_roll_forward(&plan, block, out);
        rolled_block(rc, wy, wx, py, px, rc->sy, rc->sx, want);
        CHECK(memcmp(out, want, sizeof(float) * n) == 0, "%s: forward differs from the rolled field", what);
        CHECK(guards_intact(out, n), "%s: forward wrote outside its block", what);
        check_bytes(&plan, lay, rc, +1, what);
        /* Backward undoes it bit for bit. */
        ts_roll_backward(&plan, out, back);
        CHECK(memcmp(back, block, sizeof(float) * n) == 0, "%s: backward(forward(x)) != x", what);
        CHECK(guards_intact(back, n), "%s: backward wrote outside its block", what);
        check_bytes(&plan, lay, rc, -1, what);
        /* Backward on its own is the roll the other way. */
        ts_roll_backward(&plan, block, out);
        rolled_block(rc, wy, wx, py, px, -rc->sy, -rc->sx, want);
        CHECK(memcmp(out, want, sizeof(float) * n) == 0, "%s: backward differs from the field rolled back", what);
        size_t expect = ts_roll_expected_bytes(rc->h, rc->w, rc->C, rc->sy, rc->sx, wy, wx);
        CHECK(plan.bytes_total == 3 * expect, "%s: %zu bytes in total, want 3 x %zu", what, plan.bytes_total, expect);
        CHECK(plan.messages_total == 3 * plan.messages_last, "%s: %zu messages in total", what, plan.messages_total);
        ts_roll_plan_free(&plan);
    }
    free(block), free(want), free(out - GUARD), free(back - GUARD);
}

/* Every factorisation of the world size into the five axes (as in
 * test_mpi_core.c): WP-only layouts, and mixed ones where each DP/PP/SP
 * group rolls its own field on its own wp communicator. */
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
    int size[TS_AXIS_COUNT] = {1, 1, 1, 1, 0};
    char err[256];
    while (next_layout(size, world)) {
        ts_layout lay;
        int rc = ts_layout_create(&lay, MPI_COMM_WORLD, size, err, sizeof err);
        CHECK(rc == 0, "%s", err);
        if (rc) continue;
        for (size_t k = 0; k < sizeof FIXED_CASES / sizeof FIXED_CASES[0]; k++) test_case(&lay, &FIXED_CASES[k]);
        for (int k = 0; k < RANDOM_CASES; k++) {
            roll_case c = random_case(k);
            test_case(&lay, &c);
        }
        ts_layout_free(&lay);
    }
}

/* The analytic count on shapes worked by hand: a 2x2 grid sends all but
 * the (h-sy) x (w-sx) part that stays; a row of ranks sends h*sx points, a
 * column sy*w; a single rank nothing. */
static void test_expected_bytes_by_hand(void) {
    CHECK(ts_roll_expected_bytes(8, 8, 2, 4, 4, 2, 2) == (64 - 16) * 2 * 4, "2x2 grid");
    CHECK(ts_roll_expected_bytes(8, 6, 1, 4, 3, 1, 4) == 8 * 3 * 4, "row of ranks");
    CHECK(ts_roll_expected_bytes(8, 6, 1, 4, 3, 4, 1) == 4 * 6 * 4, "column of ranks");
    CHECK(ts_roll_expected_bytes(8, 6, 3, 4, 3, 1, 1) == 0, "one rank");
    CHECK(ts_roll_expected_bytes(8, 6, 3, 0, 0, 2, 2) == 0, "no shift");
}

/* Refusals: shifts outside the block, a communicator without a 2-d grid,
 * and ranks passing different shapes all fail on every rank, with a message. */
static void test_refusals(int world, int rank) {
    MPI_Comm grid;
    char err[256] = "";
    ts_roll_plan plan;
    TS_MPI_CHECK(MPI_Cart_create(MPI_COMM_WORLD, 2, (int[2]){1, world}, (int[2]){0, 1}, 0, &grid));
    CHECK(ts_roll_plan_create(&plan, grid, 4, 4, 1, 4, 0, err, sizeof err) == -1 && strstr(err, "shift"),
          "sy = h accepted: %s", err);
    CHECK(ts_roll_plan_create(&plan, grid, 4, 4, 1, 0, -1, err, sizeof err) == -1 && strstr(err, "shift"),
          "sx < 0 accepted: %s", err);
    CHECK(ts_roll_plan_create(&plan, grid, 0, 4, 1, 0, 0, err, sizeof err) == -1, "empty block accepted");
    CHECK(ts_roll_plan_create(&plan, MPI_COMM_WORLD, 4, 4, 1, 0, 0, err, sizeof err) == -1 &&
              strstr(err, "Cartesian"),
          "no topology accepted: %s", err);
    if (world > 1) {
        int sx = rank == 0 ? 1 : 2;
        CHECK(ts_roll_plan_create(&plan, grid, 4, 4, 1, 0, sx, err, sizeof err) == -1 && strstr(err, "disagree"),
              "ranks with different shifts accepted: %s", err);
        /* A rank with bad arguments stops the others too (no hang). */
        int sy = rank == 0 ? 9 : 1;
        CHECK(ts_roll_plan_create(&plan, grid, 4, 4, 1, sy, 0, err, sizeof err) == -1,
              "one rank's bad shift accepted elsewhere");
    }
    TS_MPI_CHECK(MPI_Comm_free(&grid));
}

int main(int argc, char **argv) {
    ts_mpi_init(&argc, &argv);
    int world = ts_mpi_size(), rank = ts_mpi_rank();
    test_expected_bytes_by_hand();
    test_refusals(world, rank);
    test_layouts(world);
    int rc = mpi_check_finish("test_mpi_roll");
    ts_mpi_finalize();
    return rc;
}
