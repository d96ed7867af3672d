/* Sequence parallelism of the mesh transformer against the same model on
 * one rank (the oracle, run whole on every rank): a triangulated 12 x 10
 * lattice in Hilbert order, window 2, G = 2 global tokens, all weights
 * random and non-zero. For each partition balance and with activation
 * recomputation off and on:
 *   - each rank's outputs equal the oracle's rows of the nodes it owns;
 *   - the loss parts summed over ranks equal the oracle's loss;
 *   - every parameter gradient summed over ranks equals the oracle's;
 * all within 1e-5 norm-wise relative difference ‖a − b‖/‖b‖ (b the oracle):
 * the SP run sums the same terms in another order (log-sum-exp partials,
 * reductions over ranks), fp32 rounding of a few 1e-7 per operation.
 *   - each rank's halo bytes equal the analytic count from its send and
 *     halo lists times the exchanges and reduces a forward + backward does
 *     (depth exchanges, depth reduces, depth more exchanges with
 *     recomputation), and are non-zero with more than one rank.
 * Run under mpiexec with 1, 2 and 4 ranks (1 rank: no halo, no bytes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/rng.h"
#include "mesh/graph.h"
#include "mesh/mask.h"
#include "mesh/order.h"
#include "models/mesh_model.h"
#include "models/mesh_sp.h"
#include "parallel/mpi_env.h"
#include "tests/parallel/mpi_check.h"

enum { NX = 12, NY = 10, N_FIELDS = 3, C_OUT = 2, G = 2 };

typedef struct {
    int64_t N;
    ts_csr mask;
    float *feat, *target; /* (N, c_in), (N, C_OUT) */
    uint8_t *lmask;       /* (N) */
    int64_t counted;
} graph;

static const ts_mesh_model_config CFG = {.c_in = N_FIELDS + TS_MESH_MODEL_NODE_TYPES, .c_out = C_OUT, .dim = 16,
                                         .heads = 2, .hidden = 48, .depth = 2, .n_globals = G};

static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

/* The lattice, each square split into two triangles, nodes in Hilbert order. */
static void make_graph(graph *g) {
    char err[256];
    const int64_t N = NX * NY, ncells = 2 * (NX - 1) * (NY - 1);
    g->N = N;
    float *pos = malloc(sizeof(float) * 2 * N);
    for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) pos[2 * (y * NX + x)] = (float)x, pos[2 * (y * NX + x) + 1] = (float)y;
    int32_t *cells = malloc(sizeof(int32_t) * 3 * ncells), *perm = malloc(sizeof(int32_t) * N),
            *inv = malloc(sizeof(int32_t) * N);
    int64_t c = 0;
    for (int y = 0; y + 1 < NY; y++)
        for (int x = 0; x + 1 < NX; x++) {
            int32_t a = y * NX + x, b = a + 1, d = a + NX, e = d + 1;
            cells[3 * c] = a, cells[3 * c + 1] = b, cells[3 * c + 2] = e, c++;
            cells[3 * c] = a, cells[3 * c + 1] = e, cells[3 * c + 2] = d, c++;
        }
    if (ts_curve_order(pos, N, 2, TS_CURVE_HILBERT, 0, perm, inv, err, sizeof err)) CHECK(0, "%s", err);
    ts_renumber_ids(cells, (size_t)(3 * ncells), inv);
    ts_csr adj;
    if (ts_mesh_edges_from_cells(N, ncells, 3, cells, &adj, err, sizeof err)) CHECK(0, "%s", err);
    ts_mask_params mp = {.khop = 1, .window = 2, .dilation = 1, .globals = G};
    if (ts_mesh_mask(&adj, &mp, &g->mask, err, sizeof err)) CHECK(0, "%s", err);
    ts_csr_free(&adj);

    ts_rng_key key = ts_rng_key_make(11, TS_RNG_TEST);
    int32_t *type = malloc(sizeof(int32_t) * N);
    for (int64_t i = 0; i < N; i++) type[i] = (int32_t)(ts_rng_uniform1(key, 1, (uint64_t)i) * 7); /* 0..6 */
    g->lmask = malloc((size_t)N);
    ts_mesh_model_loss_mask(g->lmask, type, N);
    g->counted = 0;
    for (int64_t i = 0; i < N; i++) g->counted += g->lmask[i] != 0;
    float *fields = malloc(sizeof(float) * N * N_FIELDS);
    ts_rng_normal(key, 2, 0, (size_t)N * N_FIELDS, fields);
    g->feat = malloc(sizeof(float) * N * CFG.c_in);
    ts_mesh_model_features(g->feat, fields, N_FIELDS, type, N);
    g->target = malloc(sizeof(float) * N * C_OUT);
    ts_rng_normal(key, 3, 0, (size_t)N * C_OUT, g->target);
    free(pos), free(cells), free(perm), free(inv), free(type), free(fields);
}

static double g_worst_out, g_worst_loss, g_worst_grad;

static void check_sp(const graph *g, ts_balance how, int recompute) {
    char err[512];
    const int64_t N = g->N;
    ts_mesh_model_config cfg = CFG;
    cfg.recompute = recompute;
    ts_mesh_model one, part;
    ts_mesh_sp sp;
    CHECK(ts_mesh_model_create(&one, ts_backend_cpu(), &cfg, err, sizeof err) == 0, "%s", err);
    CHECK(ts_mesh_model_create(&part, ts_backend_cpu(), &cfg, err, sizeof err) == 0, "%s", err);
    ts_mesh_model_init_weights(&one, 5, 1);
    ts_mesh_model_init_weights(&part, 5, 1);
    CHECK(ts_mesh_model_prepare(&one, N, &g->mask, err, sizeof err) == 0, "%s", err);
    if (ts_mesh_sp_create(&sp, MPI_COMM_WORLD, &g->mask, N, G, how, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    CHECK(ts_mesh_model_prepare_sp(&part, N, &g->mask, &sp, err, sizeof err) == 0, "%s", err);

    /* the oracle */
    float *out = malloc(sizeof(float) * N * C_OUT), *dout = malloc(sizeof(float) * N * C_OUT);
    double loss1 = ts_mesh_model_loss(&one, dout, (ts_mesh_model_forward(&one, out, g->feat), out), g->target,
                                      g->lmask);
    memset(one.grads.data, 0, sizeof(float) * one.grads.total);
    ts_mesh_model_backward(&one, dout);

    /* this rank's chunk */
    const int64_t first = sp.chunk.first, n = sp.n_own;
    float *pout = malloc(sizeof(float) * (n ? n : 1) * C_OUT), *pdout = malloc(sizeof(float) * (n ? n : 1) * C_OUT);
    ts_mesh_model_forward(&part, pout, g->feat + first * CFG.c_in);
    double loss = ts_mesh_model_loss_part(&part, pdout, pout, g->target + first * C_OUT, g->lmask + first, g->counted);
    MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    memset(part.grads.data, 0, sizeof(float) * part.grads.total);
    ts_mesh_model_backward(&part, pdout);
    MPI_Allreduce(MPI_IN_PLACE, part.grads.data, (int)part.grads.total, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);

    const char *hname = how == TS_BALANCE_NODES ? "nodes" : "work";
    double r = n ? rel(pout, out + first * C_OUT, (size_t)(n * C_OUT)) : 0;
    g_worst_out = fmax(g_worst_out, r);
    CHECK(r < 1e-5, "balance %s, recompute %d: owned output rows differ by %.2e", hname, recompute, r);
    r = fabs(loss - loss1) / fabs(loss1);
    g_worst_loss = fmax(g_worst_loss, r);
    CHECK(r < 1e-5, "balance %s, recompute %d: loss %.9g, one rank %.9g", hname, recompute, loss, loss1);
    for (int p = 0; p < one.grads.count; p++) {
        const ts_param_entry *e = &one.grads.entries[p];
        r = rel(part.grads.data + e->offset, one.grads.data + e->offset, e->numel);
        g_worst_grad = fmax(g_worst_grad, r);
        CHECK(r < 1e-5, "balance %s, recompute %d: gradient of %s differs by %.2e", hname, recompute, e->name, r);
    }

    /* bytes: the plan's own count against send and halo lists times the calls */
    const uint64_t row = 2 * (uint64_t)CFG.dim * sizeof(float);
    uint64_t send = (uint64_t)ts_halo_rows_sent(&sp.plan) * row, recv = (uint64_t)sp.chunk.n_halo * row;
    CHECK(send == ts_mesh_halo_send_bytes(&sp.chunk, CFG.dim), "send list %zu bytes, plan %llu",
          ts_mesh_halo_send_bytes(&sp.chunk, CFG.dim), (unsigned long long)send);
    uint64_t want = (uint64_t)CFG.depth * ((recompute ? 2 : 1) * send + recv);
    CHECK(ts_mesh_sp_bytes_sent(&sp) == want, "balance %s, recompute %d: %llu halo bytes sent, %llu expected", hname,
          recompute, (unsigned long long)ts_mesh_sp_bytes_sent(&sp), (unsigned long long)want);
    CHECK(sp.bytes_expected == want, "the model's analytic count %llu, want %llu",
          (unsigned long long)sp.bytes_expected, (unsigned long long)want);
    if (sp.size > 1) CHECK(ts_mesh_sp_bytes_sent(&sp) > 0, "no halo was sent");
    else CHECK(ts_mesh_sp_bytes_sent(&sp) == 0, "one rank sent %llu bytes", (unsigned long long)ts_mesh_sp_bytes_sent(&sp));

    free(out), free(dout), free(pout), free(pdout);
    ts_mesh_model_free(&one), ts_mesh_model_free(&part);
    ts_mesh_sp_free(&sp);
}

int main(int argc, char **argv) {
    ts_mpi_init(&argc, &argv);
    graph g;
    make_graph(&g);
    for (int how = 0; how < 2; how++)
        for (int recompute = 0; recompute < 2; recompute++) check_sp(&g, (ts_balance)how, recompute);
    double worst[3] = {g_worst_out, g_worst_loss, g_worst_grad};
    MPI_Allreduce(MPI_IN_PLACE, worst, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (ts_mpi_rank() == 0)
        printf("worst relative differences: outputs %.2e, loss %.2e, gradients %.2e\n", worst[0], worst[1], worst[2]);
    ts_csr_free(&g.mask);
    free(g.feat), free(g.target), free(g.lmask);
    int rc = mpi_check_finish("test_mpi_mesh_sp");
    ts_mpi_finalize();
    return rc;
}
