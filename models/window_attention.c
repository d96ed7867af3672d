#include "models/window_attention.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>

#include <string.h>

#ifdef TESSERA_HAVE_MPI
#include "parallel/collective.h"
#include "parallel/roll.h"
#endif

/* Where grid token t (b, y, x of the whole grid) stands after the
 * all-to-all: band q = y / (H/S) first, in rank order, then the band's own
 * tokens in grid order. The identity when S = 1. */
static size_t recv_pos(const ts_win_geom *g, int B, int S, size_t t) {
    const size_t HW = (size_t)g->H * g->W, hb = (size_t)(g->H / S), Tl = (size_t)B * hb * g->W;
    size_t b = t / HW, r = t % HW, y = r / g->W, x = r % g->W, q = y / hb;
    return q * Tl + (b * hb + (y - q * hb)) * g->W + x;
}

static int32_t *upload_index(const ts_backend *be, const int32_t *idx, size_t n) {
    int32_t *dev = be->alloc(sizeof(int32_t) * n);
    be->upload(dev, idx, sizeof(int32_t) * n);
    return dev;
}

int ts_wattn_plan_make_sp(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                          int C, int heads, const ts_wattn_sp *sp, char *err, size_t cap) {
    memset(p, 0, sizeof *p);
    if (ts_win_check(g, err, cap)) return -1;
    if (heads < 1 || C % heads) {
        return TS_FAIL(err, cap, "heads = %d does not divide dim = %d", heads, C);
    }
    const int S = sp && sp->size > 1 ? sp->size : 1;
    if (S > 1) {
#ifndef TESSERA_HAVE_MPI
        return TS_FAIL(err, cap, "sequence parallelism needs MPI, and this build has none (TESSERA_CORE_ONLY)");
#endif
        if (heads % S)
            return TS_FAIL(err, cap,
                           "model.heads = %d does not divide over parallel.sp = %d ranks (Ulysses attention "
                           "gives each rank heads / sp heads)",
                           heads, S);
        if (g->H % S)
            return TS_FAIL(err, cap, "the %d grid rows do not split into parallel.sp = %d bands of whole rows", g->H,
                           S);
        p->sp = *sp;
    } else {
        p->sp.size = 1;
    }
    p->be = be;
    p->geom = *g;
    p->B = B, p->C = C, p->heads = heads / S, p->hd = C / heads;
    p->nW = ts_win_count(g), p->L = ts_win_size(g), p->T = B * g->H * g->W / S;
    const int nh = p->heads, Tl = p->T;
    const size_t Tw = (size_t)B * g->H * g->W;
    const int rolls = S > 1 && (sp->roll_sy > 0 || sp->roll_sx > 0);
    const int Sw = rolls ? 1 : S; /* the windows read the received order, or the grid order a roll needs */

    size_t nq = (size_t)3 * B * nh * p->nW * p->L, no = Tw * nh;
    int32_t *idx = ts_malloc(sizeof(int32_t) * (nq > no ? nq : no)), *re = ts_malloc(sizeof(int32_t) * 3 * no);
    ts_win_qkv_index(g, B, nh, idx); /* rows (t * 3 + j) * nh + h of the grid-ordered tokens */
    for (size_t k = 0; k < nq; k++) {
        size_t t = (size_t)idx[k] / (3 * (size_t)nh), rest = (size_t)idx[k] % (3 * (size_t)nh);
        idx[k] = (int32_t)(recv_pos(g, B, Sw, t) * 3 * (size_t)nh + rest);
    }
    p->qkv_idx = upload_index(be, idx, nq);
    ts_win_out_index(g, B, nh, idx); /* entry t * nh + h: the windowed row of token t, head h */
    for (size_t t = 0; t < Tw; t++)
        for (int h = 0; h < nh; h++) re[recv_pos(g, B, Sw, t) * nh + (size_t)h] = idx[t * nh + (size_t)h];
    p->out_idx = upload_index(be, re, no);
    if (rolls) {
#ifdef TESSERA_HAVE_MPI
        for (size_t t = 0; t < Tw; t++)
            for (size_t r = 0; r < 3 * (size_t)nh; r++)
                re[t * 3 * nh + r] = (int32_t)(recv_pos(g, B, S, t) * 3 * nh + r);
        p->to_grid = upload_index(be, re, 3 * no);
        for (size_t t = 0; t < Tw; t++)
            for (int h = 0; h < nh; h++) re[recv_pos(g, B, S, t) * nh + (size_t)h] = (int32_t)(t * nh + (size_t)h);
        p->to_recv = upload_index(be, re, no);
        ts_roll_plan *roll = ts_calloc(2, sizeof(ts_roll_plan));
        p->roll = roll;
        for (int k = 0; k < 2; k++)
            if (ts_roll_plan_create(&roll[k], sp->wp_comm, g->H, g->W, (k ? 1 : 3) * nh * p->hd, sp->roll_sy,
                                    sp->roll_sx, err, cap)) {
                free(idx), free(re);
                return -1;
            }
#endif
    }
    free(idx), free(re);

    if (S > 1) {
        /* send block q: this rank's tokens, heads [q nh, (q + 1) nh) of q, k and v */
        size_t np = (size_t)Tl * 3 * nh * S, nu = (size_t)Tl * nh * S;
        int32_t *pk = ts_malloc(sizeof(int32_t) * np), *un = ts_malloc(sizeof(int32_t) * nu);
        for (int q = 0; q < S; q++)
            for (int t = 0; t < Tl; t++)
                for (int j = 0; j < 3; j++)
                    for (int h = 0; h < nh; h++)
                        pk[(((size_t)q * Tl + t) * 3 + j) * nh + h] =
                            (int32_t)(((size_t)t * 3 + j) * nh * S + (size_t)q * nh + h);
        /* received output block q: heads [q nh, (q + 1) nh) of this rank's tokens */
        for (int t = 0; t < Tl; t++)
            for (int h = 0; h < nh * S; h++)
                un[(size_t)t * nh * S + h] = (int32_t)(((size_t)(h / nh) * Tl + t) * nh + h % nh);
        p->pack_idx = upload_index(be, pk, np);
        p->unpack_idx = upload_index(be, un, nu);
        free(pk), free(un);
        if (be->kind != TS_BACKEND_CPU)
            for (int k = 0; k < 2; k++) p->host[k] = ts_malloc(sizeof(float) * 3 * (size_t)Tl * C);
    }

    p->mask = NULL;
    if (ts_win_needs_mask(g) || row_group) {
        size_t nm = (size_t)p->nW * p->L * p->L;
        uint8_t *m = ts_malloc(nm);
        ts_win_mask(g, row_group, m);
        p->mask = be->alloc(nm);
        be->upload(p->mask, m, nm);
        free(m);
    }
    return 0;
}

int ts_wattn_plan_make(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                       int C, int heads, char *err, size_t cap) {
    return ts_wattn_plan_make_sp(p, be, g, row_group, B, C, heads, NULL, err, cap);
}

/* Roll every sample's (H, W, channels) field of the gathered q, k, v
 * (which 0) or output (which 1) across the WP ranks: forward onto the
 * shifted windows, backward off them (the inverse and adjoint). */
static void roll_samples(ts_wattn_plan *p, int forward, int which, const float *in, float *out) {
#ifdef TESSERA_HAVE_MPI
    p->roll_bytes += ts_roll_fields((ts_roll_plan *)p->roll + which, p->be, forward, p->B, in, out, p->host,
                                    &p->roll_bytes_expected);
#else
    (void)p, (void)forward, (void)which, (void)in, (void)out; /* no roll without MPI */
#endif
}

size_t ts_wattn_sp_bytes_per_pass(const ts_wattn_plan *p) {
    const int S = p->sp.size;
    return S > 1 ? 4 * (size_t)p->T * p->C / (size_t)S * (size_t)(S - 1) * sizeof(float) : 0;
}

/* The all-to-all: send (S blocks of n floats) to recv, staged through the
 * host when the backend is not the CPU (no GPU-aware MPI assumed). */
static void exchange(ts_wattn_plan *p, const float *send, float *recv, size_t n) {
#ifdef TESSERA_HAVE_MPI
    const ts_backend *be = p->be;
    const size_t all = n * (size_t)p->sp.size;
    if (p->host[0]) {
        be->sync();
        be->download(p->host[0], send, sizeof(float) * all);
        p->sp_bytes += ts_par_alltoall_floats(p->host[0], p->host[1], n, p->sp.comm);
        be->upload(recv, p->host[1], sizeof(float) * all);
    } else {
        p->sp_bytes += ts_par_alltoall_floats(send, recv, n, p->sp.comm);
    }
#else
    (void)p, (void)send, (void)recv, (void)n; /* sp.size is 1 without MPI */
#endif
}

void ts_wattn_plan_free(ts_wattn_plan *p) {
    p->be->free(p->qkv_idx);
    p->be->free(p->out_idx);
    if (p->mask) p->be->free(p->mask);
    if (p->pack_idx) p->be->free(p->pack_idx), p->be->free(p->unpack_idx);
    if (p->to_grid) p->be->free(p->to_grid);
    if (p->to_recv) p->be->free(p->to_recv);
#ifdef TESSERA_HAVE_MPI
    if (p->roll)
        for (int k = 0; k < 2; k++) ts_roll_plan_free((ts_roll_plan *)p->roll + k);
#endif
    free(p->roll);
    p->roll = NULL, p->to_grid = p->to_recv = NULL;
    free(p->host[0]), free(p->host[1]);
    p->qkv_idx = p->out_idx = p->pack_idx = p->unpack_idx = NULL, p->mask = NULL, p->host[0] = p->host[1] = NULL;
}

void ts_wattn_acts_take(ts_wattn_acts *a, ts_arena *arena, const ts_wattn_plan *p, const ts_wattn_acts *share) {
    size_t tc = (size_t)p->T * p->C, win = (size_t)p->B * p->heads * p->nW * p->L;
    /* kept from forward to backward */
    a->qkvw = ts_arena_take(arena, 3 * win * p->hd, "attn.qkvw");
    a->P = ts_arena_take(arena, win * p->L, "attn.P");
    a->ow = ts_arena_take(arena, win * p->hd, "attn.ow");
    a->o = ts_arena_take(arena, tc, "attn.o");
    if (share) {
        a->qkv = share->qkv, a->d_o = share->d_o, a->d_ow = share->d_ow, a->d_P = share->d_P;
        a->d_S = share->d_S, a->d_qkvw = share->d_qkvw, a->d_qkv = share->d_qkv;
        a->sp_a = share->sp_a, a->sp_b = share->sp_b;
        return;
    }
    a->qkv = ts_arena_take(arena, 3 * tc, "attn.qkv");
    a->d_o = ts_arena_take(arena, tc, "attn.d_o");
    a->d_ow = ts_arena_take(arena, win * p->hd, "attn.d_ow");
    a->d_P = ts_arena_take(arena, win * p->L, "attn.d_P");
    a->d_S = ts_arena_take(arena, win * p->L, "attn.d_S");
    a->d_qkvw = ts_arena_take(arena, 3 * win * p->hd, "attn.d_qkvw");
    a->d_qkv = ts_arena_take(arena, 3 * tc, "attn.d_qkv");
    a->sp_a = p->sp.size > 1 ? ts_arena_take(arena, 3 * tc, "attn.sp_a") : NULL;
    a->sp_b = p->sp.size > 1 ? ts_arena_take(arena, 3 * tc, "attn.sp_b") : NULL;
}

void ts_wattn_forward(ts_wattn_plan *p, ts_wattn_acts *a, float *y, const float *x, const float *Wqkv,
                      const float *Wo) {
    const ts_backend *be = p->be;
    const int S = p->sp.size, T = p->T, C = p->C, L = p->L, hd = p->hd, nb = p->B * p->heads * p->nW;
    const size_t part = (size_t)nb * L * hd; /* one of q, k, v in the windowed layout */
    const size_t tc = (size_t)T * C;         /* T C: a rank's share of any token field */
    const int64_t sq = (int64_t)L * hd, sp = (int64_t)L * L;
    be->gemm_batched(0, 1, T, 3 * C, C, 1.0f, x, C, 0, Wqkv, C, 0, 0.0f, a->qkv, 3 * C, 0, 1);
    const float *all = a->qkv; /* (3 T C) every token the windows need, rows of hd */
    if (S > 1) {               /* own tokens, all heads -> all tokens, own heads */
        be->gather_rows(a->sp_a, a->qkv, p->pack_idx, T * 3 * p->heads * S, hd);
        exchange(p, a->sp_a, a->sp_b, 3 * tc / (size_t)S);
        all = a->sp_b;
        if (p->roll) { /* a shifted layer over WP blocks: the gathered heads roll onto the shifted windows */
            be->gather_rows(a->sp_a, a->sp_b, p->to_grid, T * S * 3 * p->heads, hd);
            roll_samples(p, 1, 0, a->sp_a, a->sp_b);
        }
    }
    be->gather_rows(a->qkvw, all, p->qkv_idx, 3 * nb * L, hd);
    const float *q = a->qkvw, *k = q + part, *v = k + part;
    /* raw scores go to d_S, which backward overwrites: only P is kept */
    be->gemm_batched(0, 1, L, L, hd, 1.0f, q, hd, sq, k, hd, sq, 0.0f, a->d_S, L, sp, nb);
    be->softmax_forward(a->P, a->d_S, p->mask, p->nW * L, nb * L, L, 1.0f / sqrtf((float)hd));
    be->gemm_batched(0, 0, L, hd, L, 1.0f, a->P, L, sp, v, hd, sq, 0.0f, a->ow, hd, sq, nb);
    if (S > 1) { /* and back: all tokens, own heads -> own tokens, all heads */
        be->gather_rows(a->sp_a, a->ow, p->out_idx, T * S * p->heads, hd);
        if (p->roll) { /* off the shifted windows, then into the order of the trade */
            roll_samples(p, 0, 1, a->sp_a, a->sp_b);
            be->gather_rows(a->sp_a, a->sp_b, p->to_recv, T * S * p->heads, hd);
        }
        exchange(p, a->sp_a, a->sp_b, tc / (size_t)S);
        be->gather_rows(a->o, a->sp_b, p->unpack_idx, T * p->heads * S, hd);
    } else {
        be->gather_rows(a->o, a->ow, p->out_idx, T * p->heads, hd);
    }
    be->gemm_batched(0, 1, T, C, C, 1.0f, a->o, C, 0, Wo, C, 0, 0.0f, y, C, 0, 1);
}

void ts_wattn_backward(ts_wattn_plan *p, ts_wattn_acts *a, float *dx, float *dWqkv, float *dWo, const float *dy,
                       const float *x, const float *Wqkv, const float *Wo) {
    const ts_backend *be = p->be;
    const int S = p->sp.size, T = p->T, C = p->C, L = p->L, hd = p->hd, nb = p->B * p->heads * p->nW;
    const size_t part = (size_t)nb * L * hd, tc = (size_t)T * C;
    const int64_t sq = (int64_t)L * hd, sp = (int64_t)L * L;
    const float *q = a->qkvw, *k = q + part, *v = k + part;
    float *dq = a->d_qkvw, *dk = dq + part, *dv = dk + part;

    /* output projection */
    be->gemm_batched(1, 0, C, C, T, 1.0f, dy, C, 0, a->o, C, 0, 1.0f, dWo, C, 0, 1);
    be->gemm_batched(0, 0, T, C, C, 1.0f, dy, C, 0, Wo, C, 0, 0.0f, a->d_o, C, 0, 1);
    /* back to windows: each gather is a bijection, so a scatter-add into
     * zeros is its exact inverse (and adjoint); an all-to-all's adjoint is
     * the all-to-all of the gradients */
    const float *d_out = a->d_o;
    if (S > 1) {
        be->zero(a->sp_a, sizeof(float) * tc);
        be->scatter_add_rows(a->sp_a, a->d_o, p->unpack_idx, T * p->heads * S, hd);
        exchange(p, a->sp_a, a->sp_b, tc / (size_t)S);
        d_out = a->sp_b;
        if (p->roll) {
            be->zero(a->sp_a, sizeof(float) * tc);
            be->scatter_add_rows(a->sp_a, a->sp_b, p->to_recv, T * S * p->heads, hd);
            roll_samples(p, 1, 1, a->sp_a, a->sp_b);
        }
    }
    be->zero(a->d_ow, sizeof(float) * part);
    be->scatter_add_rows(a->d_ow, d_out, p->out_idx, T * S * p->heads, hd);
    /* O = P v */
    be->gemm_batched(0, 1, L, L, hd, 1.0f, a->d_ow, hd, sq, v, hd, sq, 0.0f, a->d_P, L, sp, nb);
    be->gemm_batched(1, 0, L, hd, L, 1.0f, a->P, L, sp, a->d_ow, hd, sq, 0.0f, dv, hd, sq, nb);
    /* P = softmax(S / sqrt(hd)) */
    be->zero(a->d_S, sizeof(float) * (size_t)nb * L * L);
    be->softmax_backward(a->d_S, a->d_P, a->P, nb * L, L, 1.0f / sqrtf((float)hd));
    /* S = q k^T */
    be->gemm_batched(0, 0, L, hd, L, 1.0f, a->d_S, L, sp, k, hd, sq, 0.0f, dq, hd, sq, nb);
    be->gemm_batched(1, 0, L, hd, L, 1.0f, a->d_S, L, sp, q, hd, sq, 0.0f, dk, hd, sq, nb);
    /* back to grid order (and to this rank's tokens), then the input projection */
    float *d_all = S > 1 ? a->sp_a : a->d_qkv;
    be->zero(d_all, sizeof(float) * 3 * tc);
    be->scatter_add_rows(d_all, a->d_qkvw, p->qkv_idx, 3 * nb * L, hd);
    if (S > 1) {
        if (p->roll) {
            roll_samples(p, 0, 0, a->sp_a, a->sp_b);
            be->zero(a->sp_a, sizeof(float) * 3 * tc);
            be->scatter_add_rows(a->sp_a, a->sp_b, p->to_grid, T * S * 3 * p->heads, hd);
        }
        exchange(p, a->sp_a, a->sp_b, 3 * tc / (size_t)S);
        be->zero(a->d_qkv, sizeof(float) * 3 * tc);
        be->scatter_add_rows(a->d_qkv, a->sp_b, p->pack_idx, T * 3 * p->heads * S, hd);
    }
    be->gemm_batched(1, 0, 3 * C, C, T, 1.0f, a->d_qkv, 3 * C, 0, x, C, 0, 1.0f, dWqkv, C, 0, 1);
    be->gemm_batched(0, 0, T, C, 3 * C, 1.0f, a->d_qkv, 3 * C, 0, Wqkv, C, 0, 1.0f, dx, C, 0, 1);
}

double ts_wattn_flops(const ts_wattn_plan *p) {
    return 8.0 * p->T * (double)p->C * p->C + 4.0 * p->T * (double)p->L * p->C; /* T: this rank's tokens */
}
