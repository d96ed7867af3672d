/* Window, sequence and pipeline parallelism of the Swin model against the same model
 * on one rank, all weights random (so every attention layer matters): every
 * WP_y x WP_x layout of the world size splits the grid into blocks,
 * SP = world splits it into bands of rows (Ulysses attention over heads /
 * sp heads), and on 4 ranks WP 2 x 1 and 1 x 2 with SP 2 split each block
 * into bands; pipeline stages of whole blocks (PP = world, and on 4 ranks
 * WP 2 x 1 and SP 2 with PP 2) pass the residual stream from stage to
 * stage; each rank's outputs must equal its tokens of the one-rank
 * outputs, and the weight gradients summed over the ranks must equal the
 * one-rank gradients (1e-5 norm-wise relative: the sums run in another
 * order). Each rank's strip (WP) or all-to-all (SP) bytes must equal the
 * analytic count, computed here, and be non-zero when there is more than
 * one rank. Run under mpiexec with 2, 3 and 4 ranks (one rank would compare
 * the model with itself). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "models/swin.h"
#include "parallel/layout.h"
#include "parallel/mpi_env.h"
#include "tests/parallel/mpi_check.h"

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

static void check_layout(int wp_y, int wp_x, int sp, int pp, const ts_swin_config *cfg, int B) {
    int sizes[TS_AXIS_COUNT] = {1, 1, 1, 1, 1};
    sizes[TS_AXIS_WP_Y] = wp_y, sizes[TS_AXIS_WP_X] = wp_x, sizes[TS_AXIS_SP] = sp, sizes[TS_AXIS_PP] = pp;
    ts_layout lay;
    char err[512];
    if (ts_layout_create(&lay, MPI_COMM_WORLD, sizes, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    const ts_backend *be = ts_backend_cpu();
    ts_swin one, part;
    ts_swin_wp wp = {.comm = lay.wp,
                     .wp_y = wp_y,
                     .wp_x = wp_x,
                     .py = lay.coord[TS_AXIS_WP_Y],
                     .px = lay.coord[TS_AXIS_WP_X],
                     .sp_comm = lay.axis[TS_AXIS_SP],
                     .sp = sp,
                     .sp_rank = lay.coord[TS_AXIS_SP],
                     .pp_comm = lay.axis[TS_AXIS_PP],
                     .pp = pp,
                     .pp_rank = lay.coord[TS_AXIS_PP]};
    int bad_one = ts_swin_create(&one, be, cfg, B, NULL, err, sizeof err);
    CHECK(bad_one == 0, "%s", err);
    if (bad_one) {
        ts_layout_free(&lay);
        return;
    }
    int bad_part = ts_swin_create(&part, be, cfg, B, &wp, err, sizeof err);
    CHECK(bad_part == 0, "wp %d x %d, sp %d, pp %d: %s", wp_y, wp_x, sp, pp, err);
    if (bad_part) {
        ts_swin_free(&one);
        ts_layout_free(&lay);
        return;
    }
    ts_swin_init_weights(&one, 3, 0);
    ts_swin_init_weights(&part, 3, 0);

    const int H = cfg->H, W = cfg->W, h = part.h, w = part.w;
    size_t nin = (size_t)B * H * W * cfg->c_in, nout = (size_t)B * H * W * cfg->c_out;
    float *x = malloc(sizeof(float) * nin), *R = malloc(sizeof(float) * nout), *y = malloc(sizeof(float) * nout);
    float *xl = malloc(sizeof(float) * (size_t)part.T * cfg->c_in),
          *Rl = malloc(sizeof(float) * (size_t)part.T * cfg->c_out);
    float *yl = malloc(sizeof(float) * (size_t)part.T * cfg->c_out), t[4] = {0.3f, 1.1f, 0.7f, 1.4f};
    ts_rng_key key = ts_rng_key_make(4, TS_RNG_TEST);
    ts_rng_normal(key, 0, 0, nin, x);
    ts_rng_normal(key, 1, 0, nout, R);
    /* this rank's block, in local grid order */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                size_t g = ((size_t)b * H + part.row0 + i) * W + part.col0 + j, l = ((size_t)b * h + i) * w + j;
                memcpy(xl + l * cfg->c_in, x + g * cfg->c_in, sizeof(float) * cfg->c_in);
                memcpy(Rl + l * cfg->c_out, R + g * cfg->c_out, sizeof(float) * cfg->c_out);
            }
    ts_swin_forward(&one, y, x, t);
    ts_swin_forward(&part, yl, xl, t);
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < h; i++) {
            size_t g = ((size_t)b * H + part.row0 + i) * W + part.col0, l = ((size_t)b * h + i) * w;
            worst = fmax(worst, rel(yl + l * cfg->c_out, y + g * cfg->c_out, (size_t)w * cfg->c_out));
        }
    CHECK(worst < 1e-5, "wp %dx%d sp %d pp %d: output rows differ by %.2e", wp_y, wp_x, sp, pp, worst);

    memset(one.grads.data, 0, sizeof(float) * one.grads.total);
    memset(part.grads.data, 0, sizeof(float) * part.grads.total);
    ts_swin_backward(&one, R);
    ts_swin_backward(&part, Rl);
    MPI_Allreduce(MPI_IN_PLACE, part.grads.data, (int)part.grads.total, MPI_FLOAT, MPI_SUM, lay.cart);
    for (int p = 0; p < one.grads.count; p++) {
        const ts_param_entry *e = &one.grads.entries[p];
        double r = rel(part.grads.data + e->offset, one.grads.data + e->offset, e->numel);
        CHECK(r < 1e-5, "wp %dx%d sp %d pp %d: gradient of %s differs by %.2e", wp_y, wp_x, sp, pp, e->name, r);
    }
    size_t wp_sent, wp_expected;
    ts_swin_wp_bytes(&part, &wp_sent, &wp_expected);
    CHECK(wp_sent == wp_expected, "wp %dx%d sp %d: %zu strip bytes sent, %zu expected", wp_y, wp_x, sp, wp_sent,
          wp_expected);
    int rolls = 0; /* a shifted block in this rank's stage */
    for (int i = part.b0; i < part.b1; i++) rolls |= (i / (cfg->shift_group > 0 ? cfg->shift_group : 1)) % 2;
    if (wp_y * wp_x > 1 && rolls) CHECK(wp_sent > 0, "wp %dx%d sp %d pp %d: no strip was sent", wp_y, wp_x, sp, pp);
    /* Ulysses: per attention layer and pass (forward, backward) each rank
     * sends (sp - 1) / sp of its q, k, v (3 T C floats) and of its output
     * (T C), T = B H W / sp its tokens */
    size_t T = (size_t)B * H * W / ((size_t)wp_y * wp_x * sp),
           a2a = (size_t)(cfg->depth / pp) * 2 * 4 * T * cfg->dim / (size_t)sp * (size_t)(sp - 1) * 4;
    CHECK(ts_swin_sp_bytes(&part) == a2a && part.sp_bytes_expected == a2a,
          "sp %d: %zu all-to-all bytes sent, %zu counted, %zu expected", sp, ts_swin_sp_bytes(&part),
          part.sp_bytes_expected, a2a);
    /* pipeline: the forward sends a stage's output (T d floats) to the
     * next stage, the backward its input gradient to the one before */
    const int stage = lay.coord[TS_AXIS_PP];
    size_t pipe = T * cfg->dim * 4 * (size_t)((stage < pp - 1) + (stage > 0));
    CHECK(part.pp_bytes == pipe, "pp %d, stage %d: %zu stage-to-stage bytes sent, %zu expected", pp, stage,
          part.pp_bytes, pipe);
    free(x), free(R), free(y), free(xl), free(Rl), free(yl);
    ts_swin_free(&one), ts_swin_free(&part);
    ts_layout_free(&lay);
}

int main(int argc, char **argv) {
    ts_mpi_init(&argc, &argv);
    int world = ts_mpi_size();
    /* grids that split into whole windows over 1, 2, 3 and 4 ranks either way */
    ts_swin_config cfg = {.H = 24,
                          .W = 24,
                          .window = 2,
                          .c_in = 3,
                          .c_out = 2,
                          .dim = 8,
                          .heads = 2,
                          .hidden = 12,
                          .depth = 3,
                          .t_freq = 8};
    ts_swin_config big = {.H = 48,
                          .W = 48,
                          .window = 4,
                          .c_in = 2,
                          .c_out = 3,
                          .dim = 12,
                          .heads = 3,
                          .hidden = 8,
                          .depth = 2,
                          .t_freq = 6};
    /* 12 heads divide over 2, 3 and 4 ranks; 24 rows split into their bands */
    ts_swin_config many = {.H = 24,
                           .W = 16,
                           .window = 4,
                           .c_in = 3,
                           .c_out = 2,
                           .dim = 24,
                           .heads = 12,
                           .hidden = 16,
                           .depth = 3,
                           .t_freq = 8};
    for (int wy = 1; wy <= world; wy++)
        if (world % wy == 0) {
            check_layout(wy, world / wy, 1, 1, &cfg, 2);
            check_layout(wy, world / wy, 1, 1, &big, 1);
        }
    check_layout(1, 1, world, 1, &many, 2);
    /* one shift per group of 2 blocks (model.shift=stage), every layout */
    ts_swin_config stage_wp = cfg, stage_sp = many;
    stage_wp.depth = stage_sp.depth = 4, stage_wp.shift_group = stage_sp.shift_group = 2;
    for (int wy = 1; wy <= world; wy++)
        if (world % wy == 0) check_layout(wy, world / wy, 1, 1, &stage_wp, 1);
    check_layout(1, 1, world, 1, &stage_sp, 1);
    if (world == 4) { /* WP x SP: bands of each block; shifted layers roll the gathered heads */
        check_layout(2, 1, 2, 1, &many, 2);
        check_layout(1, 2, 2, 1, &many, 2);
    }
    if (world == 3) check_layout(1, 1, world, 1, &big, 1); /* 3 heads of 4 channels */
    /* pipeline stages of whole blocks, one shift a stage (model.shift=stage),
     * alone and with WP and SP */
    if (world == 2 || world == 4) check_layout(1, 1, 1, world, &stage_wp, 2);
    if (world == 3) check_layout(1, 1, 1, 3, &cfg, 2);
    if (world == 4) {
        check_layout(2, 1, 1, 2, &stage_wp, 1);
        check_layout(1, 1, 2, 2, &stage_sp, 2);
    }
    int rc = mpi_check_finish("test_mpi_swin_parallel");
    ts_mpi_finalize();
    return rc;
}
