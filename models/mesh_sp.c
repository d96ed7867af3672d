/* Sequence parallelism of the mesh transformer's attention: halo K/V,
 * the global rows' cross-rank softmax, and their backward (mesh_sp.h). */
#include "models/mesh_sp.h"

#ifdef TESSERA_HAVE_MPI
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mesh/graph.h"
#include "models/graph_attention.h"
#include "parallel/collective.h"

int ts_mesh_sp_create(ts_mesh_sp *sp, MPI_Comm comm, const ts_csr *mask, int64_t n_nodes, int n_globals,
                      ts_balance how, char *err, size_t cap) {
    memset(sp, 0, sizeof *sp);
    sp->comm = comm;
    ts_par_comm_place(comm, &sp->rank, &sp->size);
    if (n_nodes < 1 || n_globals < 0 || mask->n_rows != n_nodes + n_globals || mask->n_cols != mask->n_rows) {
        return TS_FAIL(err, cap, "sequence parallelism: a %lld x %lld mask for %lld nodes + %d global tokens",
                 (long long)mask->n_rows, (long long)mask->n_cols, (long long)n_nodes, n_globals);
    }
    const int P = sp->size;
    sp->start = ts_malloc(sizeof(int64_t) * ((size_t)P + 1));
    ts_mesh_partition(mask, n_nodes, P, how, sp->start);
    ts_mesh_chunk_build(mask, n_nodes, n_globals, sp->start, P, sp->rank, &sp->chunk);
    const ts_mesh_chunk *c = &sp->chunk;
    sp->n_own = c->n_own, sp->n_halo = c->n_halo, sp->G = n_globals;
    sp->R = sp->n_own + sp->G, sp->L = ts_mesh_chunk_n_local(c);

    int64_t *halo = ts_malloc(sizeof(int64_t) * (size_t)(c->n_halo ? c->n_halo : 1));
    for (int64_t h = 0; h < c->n_halo; h++) halo[h] = c->halo[h];
    int rc = ts_halo_plan_create(&sp->plan, comm, sp->start, halo, c->n_halo, err, cap);
    free(halo);
    if (rc) return -1;
    if (ts_halo_rows_sent(&sp->plan) != c->n_send)
        ts_fatal("sequence parallelism: the halo plan sends %lld rows, the chunk's send lists %lld",
                 (long long)ts_halo_rows_sent(&sp->plan), (long long)c->n_send);
    ts_csr_transpose(&c->local, &sp->local_t, NULL);

    /* the global rows' columns here: the owned nodes, and the globals on rank 0 only, so each column counts once */
    const int64_t G = sp->G, own = sp->n_own, gcols = own + (sp->rank == 0 ? G : 0);
    ts_csr_alloc(&sp->gmask, G, sp->L, G * gcols);
    for (int64_t g = 0, at = 0; g < G; g++) {
        for (int64_t j = 0; j < own; j++) sp->gmask.col[at++] = (int32_t)j;
        if (sp->rank == 0)
            for (int64_t j = sp->L - G; j < sp->L; j++) sp->gmask.col[at++] = (int32_t)j;
        sp->gmask.rowptr[g + 1] = at;
    }
    ts_csr_transpose(&sp->gmask, &sp->gmask_t, NULL);
    return 0;
}

void ts_mesh_sp_free(ts_mesh_sp *sp) {
    if (!sp->start) return;
    free(sp->start), free(sp->buf);
    ts_mesh_chunk_free(&sp->chunk);
    ts_halo_plan_free(&sp->plan);
    ts_csr_free(&sp->local_t), ts_csr_free(&sp->gmask), ts_csr_free(&sp->gmask_t);
    memset(sp, 0, sizeof *sp);
}

static float *scratch(ts_mesh_sp *sp, size_t floats) {
    if (floats > sp->buf_floats) {
        free(sp->buf);
        sp->buf = ts_malloc(sizeof(float) * floats);
        sp->buf_floats = floats;
    }
    return sp->buf;
}

/* ---- forward ----------------------------------------------------------------------- */

/* The halo rows of k and v from their owners: one exchange of rows K|V. */
static void exchange_kv(ts_mesh_sp *sp, float *k, float *v, int d) {
    const size_t w = (size_t)d, rows = (size_t)(sp->n_own + sp->n_halo);
    float *kv = scratch(sp, rows * 2 * w);
    for (size_t i = 0; i < (size_t)sp->n_own; i++) {
        memcpy(kv + i * 2 * w, k + i * w, sizeof(float) * w);
        memcpy(kv + i * 2 * w + w, v + i * w, sizeof(float) * w);
    }
    ts_halo_exchange(&sp->plan, kv, 2 * d);
    for (size_t i = (size_t)sp->n_own; i < rows; i++) {
        memcpy(k + i * w, kv + i * 2 * w, sizeof(float) * w);
        memcpy(v + i * w, kv + i * 2 * w + w, sizeof(float) * w);
    }
    sp->exchanges++;
    sp->bytes_expected += ts_mesh_halo_send_bytes(&sp->chunk, d);
}

void ts_mesh_sp_attn_forward(ts_mesh_sp *sp, float *o, float *lse, const float *q, float *k, float *v, int H, int D,
                             float scale) {
    const int d = H * D;
    const int64_t own = sp->n_own, G = sp->G;
    exchange_kv(sp, k, v, d);
    ts_gattn_forward(o, lse, q, k, v, &sp->chunk.local, H, D, scale);
    if (!G) return;

    /* global rows: this rank's partial, then the log-sum-exp all-reduce */
    const size_t gh = (size_t)G * H, gd = (size_t)G * d;
    float *og = o + own * d, *lg = lse + own * H;
    float *buf = scratch(sp, 2 * gh + gh + gd);
    float *mloc = buf, *mmax = buf + gh, *lo = buf + 2 * gh; /* lo = [l (G, H) | o~ (G, d)] */
    ts_gattn_partial_forward(og, mloc, lo, q + own * d, k, v, &sp->gmask, H, D, scale);
    ts_par_max_floats(mloc, mmax, gh, sp->comm);
    ts_gattn_rescale(og, lo, mloc, mmax, G, H, D);
    memcpy(lo + gh, og, sizeof(float) * gd);
    ts_par_sum_floats(lo, gh + gd, sp->comm);
    ts_gattn_finish(og, lg, lo + gh, mmax, lo, G, H, D);
}

/* ---- backward ---------------------------------------------------------------------- */

void ts_mesh_sp_attn_backward(ts_mesh_sp *sp, float *dq, float *dk, float *dv, float *delta, float *dout,
                              const float *o, const float *lse, const float *q, const float *k, const float *v, int H,
                              int D, float scale) {
    const int d = H * D;
    const int64_t own = sp->n_own, G = sp->G, L = sp->L;
    const size_t gd = (size_t)G * d, w = (size_t)d;
    /* rank 0 carries the global rows' chain: everyone needs their dO */
    if (G) ts_par_bcast_floats_on(dout + own * d, gd, sp->comm);
    ts_gattn_backward(dq, dk, dv, delta, dout, o, lse, q, k, v, &sp->chunk.local, &sp->local_t, H, D, scale);
    if (G) {
        ts_gattn_backward(dq + own * d, dk, dv, delta + own * H, dout + own * d, o + own * d, lse + own * H,
                          q + own * d, k, v, &sp->gmask, &sp->gmask_t, H, D, scale);
        /* the global rows' dq and the global columns' dk, dv: summed onto rank 0, zero elsewhere */
        float *buf = scratch(sp, 3 * gd);
        float *dst[3] = {dq + own * d, dk + (L - G) * d, dv + (L - G) * d};
        for (int s = 0; s < 3; s++) memcpy(buf + s * gd, dst[s], sizeof(float) * gd);
        ts_par_reduce_floats(buf, 3 * gd, sp->comm);
        for (int s = 0; s < 3; s++) {
            if (sp->rank == 0) memcpy(dst[s], buf + s * gd, sizeof(float) * gd);
            else memset(dst[s], 0, sizeof(float) * gd);
        }
    }

    /* the halo rows' dK|dV back to their owners: one reduce */
    const size_t rows = (size_t)(own + sp->n_halo);
    float *kv = scratch(sp, rows * 2 * w);
    for (size_t i = 0; i < rows; i++) {
        memcpy(kv + i * 2 * w, dk + i * w, sizeof(float) * w);
        memcpy(kv + i * 2 * w + w, dv + i * w, sizeof(float) * w);
    }
    ts_halo_reduce(&sp->plan, kv, 2 * d);
    for (size_t i = 0; i < (size_t)own; i++) {
        memcpy(dk + i * w, kv + i * 2 * w, sizeof(float) * w);
        memcpy(dv + i * w, kv + i * 2 * w + w, sizeof(float) * w);
    }
    sp->reduces++;
    sp->bytes_expected += ts_mesh_halo_recv_bytes(&sp->chunk, d);
}

#else
/* Without MPI (TESSERA_CORE_ONLY) the model runs on one rank only. */
typedef int ts_mesh_sp_needs_mpi;
#endif
