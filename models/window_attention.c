#include "models/window_attention.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>

int ts_wattn_plan_make(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                       int C, int heads, char *err, size_t cap) {
    if (ts_win_check(g, err, cap)) return -1;
    if (heads < 1 || C % heads) {
        return TS_FAIL(err, cap, "heads = %d does not divide dim = %d", heads, C);
    }
    p->be = be;
    p->geom = *g;
    p->B = B, p->C = C, p->heads = heads, p->hd = C / heads;
    p->nW = ts_win_count(g), p->L = ts_win_size(g), p->T = B * g->H * g->W;

    size_t nq = (size_t)3 * B * heads * p->nW * p->L, no = (size_t)p->T * heads;
    int32_t *idx = ts_malloc(sizeof(int32_t) * (nq > no ? nq : no));
    ts_win_qkv_index(g, B, heads, idx);
    p->qkv_idx = be->alloc(sizeof(int32_t) * nq);
    be->upload(p->qkv_idx, idx, sizeof(int32_t) * nq);
    ts_win_out_index(g, B, heads, idx);
    p->out_idx = be->alloc(sizeof(int32_t) * no);
    be->upload(p->out_idx, idx, sizeof(int32_t) * no);
    free(idx);

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

void ts_wattn_plan_free(ts_wattn_plan *p) {
    p->be->free(p->qkv_idx);
    p->be->free(p->out_idx);
    if (p->mask) p->be->free(p->mask);
    p->qkv_idx = p->out_idx = NULL, p->mask = NULL;
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
        return;
    }
    a->qkv = ts_arena_take(arena, 3 * tc, "attn.qkv");
    a->d_o = ts_arena_take(arena, tc, "attn.d_o");
    a->d_ow = ts_arena_take(arena, win * p->hd, "attn.d_ow");
    a->d_P = ts_arena_take(arena, win * p->L, "attn.d_P");
    a->d_S = ts_arena_take(arena, win * p->L, "attn.d_S");
    a->d_qkvw = ts_arena_take(arena, 3 * win * p->hd, "attn.d_qkvw");
    a->d_qkv = ts_arena_take(arena, 3 * tc, "attn.d_qkv");
}

void ts_wattn_forward(const ts_wattn_plan *p, ts_wattn_acts *a, float *y, const float *x, const float *Wqkv,
                      const float *Wo) {
    const ts_backend *be = p->be;
    const int T = p->T, C = p->C, L = p->L, hd = p->hd, nb = p->B * p->heads * p->nW;
    const size_t part = (size_t)nb * L * hd; /* one of q, k, v in the windowed layout */
    const int64_t sq = (int64_t)L * hd, sp = (int64_t)L * L;
    be->gemm_batched(0, 1, T, 3 * C, C, 1.0f, x, C, 0, Wqkv, C, 0, 0.0f, a->qkv, 3 * C, 0, 1);
    be->gather_rows(a->qkvw, a->qkv, p->qkv_idx, 3 * nb * L, hd);
    const float *q = a->qkvw, *k = q + part, *v = k + part;
    /* raw scores go to d_S, which backward overwrites: only P is kept */
    be->gemm_batched(0, 1, L, L, hd, 1.0f, q, hd, sq, k, hd, sq, 0.0f, a->d_S, L, sp, nb);
    be->softmax_forward(a->P, a->d_S, p->mask, p->nW * L, nb * L, L, 1.0f / sqrtf((float)hd));
    be->gemm_batched(0, 0, L, hd, L, 1.0f, a->P, L, sp, v, hd, sq, 0.0f, a->ow, hd, sq, nb);
    be->gather_rows(a->o, a->ow, p->out_idx, T * p->heads, hd);
    be->gemm_batched(0, 1, T, C, C, 1.0f, a->o, C, 0, Wo, C, 0, 0.0f, y, C, 0, 1);
}

void ts_wattn_backward(const ts_wattn_plan *p, ts_wattn_acts *a, float *dx, float *dWqkv, float *dWo,
                       const float *dy, const float *x, const float *Wqkv, const float *Wo) {
    const ts_backend *be = p->be;
    const int T = p->T, C = p->C, L = p->L, hd = p->hd, nb = p->B * p->heads * p->nW;
    const size_t part = (size_t)nb * L * hd;
    const int64_t sq = (int64_t)L * hd, sp = (int64_t)L * L;
    const float *q = a->qkvw, *k = q + part, *v = k + part;
    float *dq = a->d_qkvw, *dk = dq + part, *dv = dk + part;

    /* output projection */
    be->gemm_batched(1, 0, C, C, T, 1.0f, dy, C, 0, a->o, C, 0, 1.0f, dWo, C, 0, 1);
    be->gemm_batched(0, 0, T, C, C, 1.0f, dy, C, 0, Wo, C, 0, 0.0f, a->d_o, C, 0, 1);
    /* back to windows: the output gather is a bijection, so a scatter-add
     * into zeros is its exact inverse */
    be->zero(a->d_ow, sizeof(float) * part);
    be->scatter_add_rows(a->d_ow, a->d_o, p->out_idx, T * p->heads, hd);
    /* O = P v */
    be->gemm_batched(0, 1, L, L, hd, 1.0f, a->d_ow, hd, sq, v, hd, sq, 0.0f, a->d_P, L, sp, nb);
    be->gemm_batched(1, 0, L, hd, L, 1.0f, a->P, L, sp, a->d_ow, hd, sq, 0.0f, dv, hd, sq, nb);
    /* P = softmax(S / sqrt(hd)) */
    be->zero(a->d_S, sizeof(float) * (size_t)nb * L * L);
    be->softmax_backward(a->d_S, a->d_P, a->P, nb * L, L, 1.0f / sqrtf((float)hd));
    /* S = q k^T */
    be->gemm_batched(0, 0, L, hd, L, 1.0f, a->d_S, L, sp, k, hd, sq, 0.0f, dq, hd, sq, nb);
    be->gemm_batched(1, 0, L, hd, L, 1.0f, a->d_S, L, sp, q, hd, sq, 0.0f, dk, hd, sq, nb);
    /* back to grid order, then the input projection */
    be->zero(a->d_qkv, sizeof(float) * (size_t)T * 3 * C);
    be->scatter_add_rows(a->d_qkv, a->d_qkvw, p->qkv_idx, 3 * nb * L, hd);
    be->gemm_batched(1, 0, 3 * C, C, T, 1.0f, a->d_qkv, 3 * C, 0, x, C, 0, 1.0f, dWqkv, C, 0, 1);
    be->gemm_batched(0, 0, T, C, 3 * C, 1.0f, a->d_qkv, 3 * C, 0, Wqkv, C, 0, 1.0f, dx, C, 0, 1);
}

double ts_wattn_flops(const ts_wattn_plan *p) {
    return 8.0 * p->T * (double)p->C * p->C + 4.0 * p->T * (double)p->L * p->C;
}
