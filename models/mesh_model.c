#include "models/mesh_model.h"
#include "core/log.h"
#include "core/rng.h"
#include "models/graph_attention.h"
#include "models/mesh_sp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float NORM_EPS = 1e-6f;

/* ---- set-up ------------------------------------------------------------------ */

static int check_config(const ts_mesh_model_config *c, const ts_backend *be, char *err, size_t cap) {
    if (c->c_in < 1 || c->c_out < 1 || c->dim < 1 || c->heads < 1 || c->hidden < 1 || c->depth < 1 ||
        c->n_globals < 0) {
        snprintf(err, cap,
                 "mesh model sizes must be positive (c_in %d, c_out %d, dim %d, heads %d, hidden %d, depth %d, "
                 "globals %d >= 0)",
                 c->c_in, c->c_out, c->dim, c->heads, c->hidden, c->depth, c->n_globals);
        return -1;
    }
    if (c->dim % c->heads) {
        return TS_FAIL(err, cap, "model.heads = %d does not divide model.dim = %d", c->heads, c->dim);
    }
    if (be->kind != TS_BACKEND_CPU) {
        return TS_FAIL(err, cap, "the mesh model runs on the CPU only (its sparse attention has no %s kernel yet): use "
                           "device=cpu", be->name);
    }
    return 0;
}

static int add1(ts_params *p, const char *name, int64_t n) { return ts_params_add(p, name, 1, &n); }
static int add2(ts_params *p, const char *name, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return ts_params_add(p, name, 2, shape);
}

static void declare_params(ts_mesh_model *m) {
    const ts_mesh_model_config *c = &m->cfg;
    const int d = c->dim, F = c->hidden;
    char name[TS_PARAM_NAME_MAX];
    ts_params *p = &m->params;
    ts_params_init(p);
    m->p_enc0w = add2(p, "encoder.0.weight", d, c->c_in);
    m->p_enc0b = add1(p, "encoder.0.bias", d);
    m->p_enc2w = add2(p, "encoder.2.weight", d, d);
    m->p_enc2b = add1(p, "encoder.2.bias", d);
    m->p_glob = c->n_globals ? add2(p, "global_tokens", c->n_globals, d) : -1;
    m->p_norm1 = ts_malloc(sizeof(int) * 7 * (size_t)c->depth);
    m->p_qkv = m->p_norm1 + c->depth, m->p_proj = m->p_qkv + c->depth, m->p_norm2 = m->p_proj + c->depth;
    m->p_w1 = m->p_norm2 + c->depth, m->p_w3 = m->p_w1 + c->depth, m->p_w2 = m->p_w3 + c->depth;
    for (int i = 0; i < c->depth; i++) {
        snprintf(name, sizeof name, "blocks.%d.norm1.weight", i);
        m->p_norm1[i] = add1(p, name, d);
        snprintf(name, sizeof name, "blocks.%d.attn.qkv.weight", i);
        m->p_qkv[i] = add2(p, name, 3 * d, d);
        snprintf(name, sizeof name, "blocks.%d.attn.proj.weight", i);
        m->p_proj[i] = add2(p, name, d, d);
        snprintf(name, sizeof name, "blocks.%d.norm2.weight", i);
        m->p_norm2[i] = add1(p, name, d);
        snprintf(name, sizeof name, "blocks.%d.mlp.w1.weight", i);
        m->p_w1[i] = add2(p, name, F, d);
        snprintf(name, sizeof name, "blocks.%d.mlp.w3.weight", i);
        m->p_w3[i] = add2(p, name, F, d);
        snprintf(name, sizeof name, "blocks.%d.mlp.w2.weight", i);
        m->p_w2[i] = add2(p, name, d, F);
    }
    m->p_norm = add1(p, "norm.weight", d);
    m->p_dec0w = add2(p, "decoder.0.weight", d, d);
    m->p_dec0b = add1(p, "decoder.0.bias", d);
    m->p_dec2w = add2(p, "decoder.2.weight", c->c_out, d);
    m->p_dec2b = add1(p, "decoder.2.bias", c->c_out);
}

int ts_mesh_model_create(ts_mesh_model *m, const ts_backend *be, const ts_mesh_model_config *cfg, char *err,
                         size_t cap) {
    memset(m, 0, sizeof *m);
    if (check_config(cfg, be, err, cap)) return -1;
    m->cfg = *cfg, m->be = be;
    declare_params(m);
    ts_params_alloc(&m->params, be);
    ts_params_alloc_like(&m->grads, &m->params);
    m->blocks = ts_calloc((size_t)cfg->depth, sizeof(ts_mesh_block_acts));
    return 0;
}

static void free_graph(ts_mesh_model *m) {
    free(m->mask.rowptr), free(m->mask.col), free(m->mask_t.rowptr), free(m->mask_t.col);
    memset(&m->mask, 0, sizeof m->mask), memset(&m->mask_t, 0, sizeof m->mask_t);
}

void ts_mesh_model_free(ts_mesh_model *m) {
    if (!m->be) return;
    free_graph(m);
    ts_arena_free(&m->arena);
    ts_params_free(&m->grads);
    ts_params_free(&m->params);
    free(m->p_norm1);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

void ts_mesh_model_init_weights(ts_mesh_model *m, uint64_t seed, int all_random) {
    ts_rng_key key = ts_rng_key_make(seed, TS_RNG_WEIGHT_INIT);
    float *host = ts_calloc(m->params.total, sizeof(float));
    for (int i = 0; i < m->params.count; i++) {
        const ts_param_entry *e = &m->params.entries[i];
        float *w = host + e->offset;
        ts_rng_normal(key, (uint64_t)i, 0, e->numel, w);
        int gain = strstr(e->name, "norm") != NULL;
        float std = i == m->p_glob ? (all_random ? 1.0f : 0.02f)
                    : e->ndim == 2 ? (float)(1.0 / sqrt((double)e->shape[1]))
                    : all_random ? (gain ? 0.3f : 0.5f)
                                 : 0.0f; /* biases 0, gains 1 */
        for (size_t k = 0; k < e->numel; k++) w[k] = std * w[k] + (gain ? 1.0f : 0.0f);
    }
    m->be->upload(m->params.data, host, sizeof(float) * m->params.total);
    free(host);
}

/* ---- the graph -------------------------------------------------------------------- */

static int check_mask(const ts_csr *a, int64_t N, int64_t G, char *err, size_t cap) {
    const int64_t T = N + G;
    if (a->n_rows != T || a->n_cols != T) {
        snprintf(err, cap, "the attention mask is %lld x %lld; %lld nodes + %lld global tokens need %lld x %lld",
                 (long long)a->n_rows, (long long)a->n_cols, (long long)N, (long long)G, (long long)T, (long long)T);
        return -1;
    }
    if (T > INT32_MAX) {
        return TS_FAIL(err, cap, "%lld tokens do not fit 32-bit column indices", (long long)T);
    }
    if (a->rowptr[0] != 0) {
        return TS_FAIL(err, cap, "the attention mask's rowptr[0] is %lld, not 0", (long long)a->rowptr[0]);
    }
    for (int64_t i = 0; i < T; i++) {
        int64_t b = a->rowptr[i], e = a->rowptr[i + 1];
        if (e < b) {
            return TS_FAIL(err, cap, "the attention mask's rowptr decreases at row %lld", (long long)i);
        }
        for (int64_t t = b; t < e; t++)
            if (a->col[t] < 0 || a->col[t] >= T || (t > b && a->col[t] <= a->col[t - 1])) {
                return TS_FAIL(err, cap, "the attention mask's row %lld has column %d out of range or out of order",
                         (long long)i, a->col[t]);
            }
        /* columns ascend, so the globals N..T-1 are the last G of a node row, and a global row is everything */
        int64_t need = i < N ? G : T;
        int ok = e - b >= need;
        for (int64_t g = 0; ok && g < need; g++) ok = a->col[e - need + g] == T - need + g;
        if (!ok) {
            return TS_FAIL(err, cap, "row %lld of the attention mask lacks %s", (long long)i,
                     i < N ? "some global tokens (every node attends to all of them)"
                           : "some tokens (a global token attends to all of them)");
        }
    }
    return 0;
}

/* Counting-sort transpose: column j's entries come out with rows ascending. */
static void transpose(const ts_csr *a, ts_csr *t) {
    const int64_t nnz = ts_csr_nnz(a);
    t->n_rows = a->n_cols, t->n_cols = a->n_rows;
    t->rowptr = ts_calloc((size_t)a->n_cols + 1, sizeof(int64_t));
    t->col = ts_malloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
    for (int64_t e = 0; e < nnz; e++) t->rowptr[a->col[e] + 1]++;
    for (int64_t j = 0; j < a->n_cols; j++) t->rowptr[j + 1] += t->rowptr[j];
    int64_t *next = ts_malloc(sizeof(int64_t) * (size_t)(a->n_cols ? a->n_cols : 1));
    memcpy(next, t->rowptr, sizeof(int64_t) * (size_t)a->n_cols);
    for (int64_t i = 0; i < a->n_rows; i++)
        for (int64_t e = a->rowptr[i]; e < a->rowptr[i + 1]; e++) t->col[next[a->col[e]]++] = (int32_t)i;
    free(next);
}

static void size_arena(ts_mesh_model *m);

static void take_block(ts_mesh_model *m, ts_mesh_block_acts *b, ts_arena *a) {
    const size_t T = (size_t)m->R, L = (size_t)m->L, d = (size_t)m->cfg.dim, F = (size_t)m->cfg.hidden;
    b->n1 = ts_arena_take(a, T * d, "block.n1");
    b->rstd1 = ts_arena_take(a, T, "block.rstd1");
    b->q = ts_arena_take(a, T * d, "block.q");
    b->k = ts_arena_take(a, L * d, "block.k");
    b->v = ts_arena_take(a, L * d, "block.v");
    b->o = ts_arena_take(a, T * d, "block.o");
    b->lse = ts_arena_take(a, T * m->cfg.heads, "block.lse");
    b->x_mid = ts_arena_take(a, T * d, "block.x_mid");
    b->n2 = ts_arena_take(a, T * d, "block.n2");
    b->rstd2 = ts_arena_take(a, T, "block.rstd2");
    b->u = ts_arena_take(a, T * 2 * F, "block.u");
    b->g = ts_arena_take(a, T * F, "block.g");
}

static void take_all(ts_mesh_model *m, ts_arena *a) {
    const size_t T = (size_t)m->R, L = (size_t)m->L, N = (size_t)m->n_loc, d = (size_t)m->cfg.dim,
                 F = (size_t)m->cfg.hidden;
    m->ones = ts_arena_take(a, T, "ones");
    m->feat = ts_arena_take(a, N * m->cfg.c_in, "feat");
    m->e1 = ts_arena_take(a, N * d, "encoder.e1");
    m->e1s = ts_arena_take(a, N * d, "encoder.e1s");
    if (m->cfg.recompute) take_block(m, &m->work, a);
    for (int i = 0; i < m->cfg.depth; i++) {
        ts_mesh_block_acts *b = &m->blocks[i];
        if (m->cfg.recompute) *b = m->work; /* everything but the input is recomputed into shared buffers */
        else take_block(m, b, a);
        b->x_in = ts_arena_take(a, T * d, "block.x_in");
    }
    m->x_final = ts_arena_take(a, T * d, "x_final");
    m->nf = ts_arena_take(a, N * d, "norm.out");
    m->rstdf = ts_arena_take(a, N, "norm.rstd");
    m->d1 = ts_arena_take(a, N * d, "decoder.d1");
    m->d1s = ts_arena_take(a, N * d, "decoder.d1s");
    m->d_h = ts_arena_take(a, T * d, "d_h");
    m->d_tmp = ts_arena_take(a, T * d, "d_tmp");
    m->d_tmp2 = ts_arena_take(a, T * d, "d_tmp2");
    m->d_q = ts_arena_take(a, T * d, "d_q");
    m->d_k = ts_arena_take(a, L * d, "d_k");
    m->d_v = ts_arena_take(a, L * d, "d_v");
    m->d_u = ts_arena_take(a, T * 2 * F, "d_u");
    m->d_g = ts_arena_take(a, T * F, "d_g");
    m->delta = ts_arena_take(a, T * m->cfg.heads, "delta");
}

int ts_mesh_model_prepare(ts_mesh_model *m, int64_t n_nodes, const ts_csr *mask, char *err, size_t cap) {
    if (n_nodes < 1) {
        return TS_FAIL(err, cap, "a graph of %lld mesh nodes", (long long)n_nodes);
    }
    if (check_mask(mask, n_nodes, m->cfg.n_globals, err, cap)) return -1;
    free_graph(m);
    m->N = n_nodes, m->T = n_nodes + m->cfg.n_globals;
    m->sp = NULL, m->n_loc = n_nodes, m->R = m->L = m->T;
    const int64_t nnz = ts_csr_nnz(mask);
    m->mask.n_rows = m->mask.n_cols = m->T;
    m->mask.rowptr = ts_malloc(sizeof(int64_t) * (size_t)(m->T + 1));
    m->mask.col = ts_malloc(sizeof(int32_t) * (size_t)(nnz ? nnz : 1));
    memcpy(m->mask.rowptr, mask->rowptr, sizeof(int64_t) * (size_t)(m->T + 1));
    memcpy(m->mask.col, mask->col, sizeof(int32_t) * (size_t)nnz);
    transpose(&m->mask, &m->mask_t);
    size_arena(m);
    return 0;
}

#ifdef TESSERA_HAVE_MPI
int ts_mesh_model_prepare_sp(ts_mesh_model *m, int64_t n_nodes, const ts_csr *mask, ts_mesh_sp *sp, char *err,
                             size_t cap) {
    if (n_nodes < 1) {
        return TS_FAIL(err, cap, "a graph of %lld mesh nodes", (long long)n_nodes);
    }
    if (check_mask(mask, n_nodes, m->cfg.n_globals, err, cap)) return -1;
    if (sp->chunk.n_nodes != n_nodes || sp->G != m->cfg.n_globals) {
        return TS_FAIL(err, cap, "the sequence-parallel chunks were built for %lld nodes + %lld globals, the graph has %lld + %d",
                 (long long)sp->chunk.n_nodes, (long long)sp->G, (long long)n_nodes, m->cfg.n_globals);
    }
    free_graph(m);
    m->N = n_nodes, m->T = n_nodes + m->cfg.n_globals;
    m->sp = sp, m->n_loc = sp->n_own, m->R = sp->R, m->L = sp->L;
    size_arena(m);
    return 0;
}
#endif

static void size_arena(ts_mesh_model *m) {
    /* the arena grows when a larger graph comes, and is reused otherwise */
    ts_arena measure;
    ts_arena_measure(&measure);
    take_all(m, &measure);
    if (!m->arena.base || measure.peak > m->arena.capacity) {
        ts_arena_free(&m->arena);
        ts_arena_alloc(&m->arena, m->be, measure.peak);
    }
    ts_arena_reset(&m->arena);
    take_all(m, &m->arena);
    float *ones = ts_malloc(sizeof(float) * (size_t)m->R);
    for (int64_t t = 0; t < m->R; t++) ones[t] = 1.0f;
    m->be->upload(m->ones, ones, sizeof(float) * (size_t)m->R);
    free(ones);
}

/* ---- layers ------------------------------------------------------------------------- */

#define W(idx) ts_params_ptr(&m->params, (idx))
#define G(idx) ts_params_ptr(&m->grads, (idx))

/* y (rows, out) = x (rows, in; row stride ldx) Wt^T, Wt (out, in); y's row stride ldy; beta 0 or 1. */
static void linear(const ts_backend *be, float *y, int ldy, const float *x, int ldx, const float *Wt, int rows, int in,
                   int out, float beta) {
    be->gemm_batched(0, 1, rows, out, in, 1.0f, x, ldx, 0, Wt, in, 0, beta, y, ldy, 0, 1);
}
/* dW (out, in) += dy^T x */
static void linear_dweight(const ts_backend *be, float *dW, const float *dy, int lddy, const float *x, int ldx,
                           int rows, int in, int out) {
    be->gemm_batched(1, 0, out, in, rows, 1.0f, dy, lddy, 0, x, ldx, 0, 1.0f, dW, in, 0, 1);
}
/* dx (rows, in) = dy Wt (beta 0) or += (beta 1) */
static void linear_dinput(const ts_backend *be, float *dx, const float *dy, int lddy, const float *Wt, int rows,
                          int in, int out, float beta) {
    be->gemm_batched(0, 0, rows, in, out, 1.0f, dy, lddy, 0, Wt, in, 0, beta, dx, in, 0, 1);
}
/* y (rows, out) += 1 b^T, and its backward db (out) += 1^T dy: rank-1 GEMMs with a ones vector. */
static void add_bias(const ts_backend *be, float *y, const float *ones, const float *b, int rows, int out) {
    be->gemm_batched(0, 0, rows, out, 1, 1.0f, ones, 1, 0, b, out, 0, 1.0f, y, out, 0, 1);
}
static void bias_grad(const ts_backend *be, float *db, const float *ones, const float *dy, int rows, int out) {
    be->gemm_batched(0, 0, 1, out, rows, 1.0f, ones, rows, 0, dy, out, 0, 1.0f, db, out, 0, 1);
}

/* Sequence-parallel attention of block b: k and v were computed in the R
 * compact rows [owned | globals]; the globals move to the end of the L rows
 * to leave room for the halo. */
static void attn_forward_sp(ts_mesh_model *m, ts_mesh_block_acts *b) {
#ifdef TESSERA_HAVE_MPI
    const int d = m->cfg.dim, H = m->cfg.heads, D = d / H;
    const size_t G = (size_t)m->cfg.n_globals, gd = sizeof(float) * G * (size_t)d;
    const size_t from = (size_t)m->n_loc * d, to = (size_t)(m->L - (int64_t)G) * d;
    memmove(b->k + to, b->k + from, gd);
    memmove(b->v + to, b->v + from, gd);
    ts_mesh_sp_attn_forward(m->sp, b->o, b->lse, b->q, b->k, b->v, H, D, 1.0f / sqrtf((float)D));
#else
    (void)m, (void)b;
    ts_fatal("mesh model: sequence parallelism without MPI");
#endif
}

/* Block i from its x_in; out NULL (recomputation) stops before the last GEMM,
 * which backward does not need. */
static void block_forward(ts_mesh_model *m, int i, float *out) {
    const ts_backend *be = m->be;
    ts_mesh_block_acts *b = &m->blocks[i];
    const int T = (int)m->R, d = m->cfg.dim, F = m->cfg.hidden, H = m->cfg.heads, D = d / H;
    const float *Wqkv = W(m->p_qkv[i]);
    be->rmsnorm_forward(b->n1, b->rstd1, b->x_in, W(m->p_norm1[i]), T, d, NORM_EPS);
    linear(be, b->q, d, b->n1, d, Wqkv, T, d, d, 0.0f);
    linear(be, b->k, d, b->n1, d, Wqkv + (size_t)d * d, T, d, d, 0.0f);
    linear(be, b->v, d, b->n1, d, Wqkv + (size_t)2 * d * d, T, d, d, 0.0f);
    if (m->sp) attn_forward_sp(m, b);
    else ts_gattn_forward(b->o, b->lse, b->q, b->k, b->v, &m->mask, H, D, 1.0f / sqrtf((float)D));
    be->copy(b->x_mid, b->x_in, sizeof(float) * (size_t)T * d);
    linear(be, b->x_mid, d, b->o, d, W(m->p_proj[i]), T, d, d, 1.0f);

    be->rmsnorm_forward(b->n2, b->rstd2, b->x_mid, W(m->p_norm2[i]), T, d, NORM_EPS);
    linear(be, b->u, 2 * F, b->n2, d, W(m->p_w1[i]), T, d, F, 0.0f);
    linear(be, b->u + F, 2 * F, b->n2, d, W(m->p_w3[i]), T, d, F, 0.0f);
    be->geglu_forward(b->g, b->u, T, F);
    if (!out) return;
    be->copy(out, b->x_mid, sizeof(float) * (size_t)T * d);
    linear(be, out, d, b->g, F, W(m->p_w2[i]), T, F, d, 1.0f);
}

void ts_mesh_model_forward(ts_mesh_model *m, float *out, const float *feat) {
    const ts_backend *be = m->be;
    const ts_mesh_model_config *c = &m->cfg;
    const int N = (int)m->n_loc, d = c->dim;
    if (!m->mask.rowptr && !m->sp) ts_fatal("mesh model forward before ts_mesh_model_prepare");
    be->copy(m->feat, feat, sizeof(float) * (size_t)N * c->c_in);

    /* encoder: nodes, then the global tokens appended */
    float *x0 = m->blocks[0].x_in;
    linear(be, m->e1, d, m->feat, c->c_in, W(m->p_enc0w), N, c->c_in, d, 0.0f);
    add_bias(be, m->e1, m->ones, W(m->p_enc0b), N, d);
    be->silu_forward(m->e1s, m->e1, (size_t)N * d);
    linear(be, x0, d, m->e1s, d, W(m->p_enc2w), N, d, d, 0.0f);
    add_bias(be, x0, m->ones, W(m->p_enc2b), N, d);
    if (c->n_globals) be->copy(x0 + (size_t)N * d, W(m->p_glob), sizeof(float) * (size_t)c->n_globals * d);

    for (int i = 0; i < c->depth; i++) block_forward(m, i, i + 1 < c->depth ? m->blocks[i + 1].x_in : m->x_final);

    /* decoder on the mesh nodes only */
    be->rmsnorm_forward(m->nf, m->rstdf, m->x_final, W(m->p_norm), N, d, NORM_EPS);
    linear(be, m->d1, d, m->nf, d, W(m->p_dec0w), N, d, d, 0.0f);
    add_bias(be, m->d1, m->ones, W(m->p_dec0b), N, d);
    be->silu_forward(m->d1s, m->d1, (size_t)N * d);
    linear(be, out, c->c_out, m->d1s, d, W(m->p_dec2w), N, d, c->c_out, 0.0f);
    add_bias(be, out, m->ones, W(m->p_dec2b), N, c->c_out);
}

/* Sequence-parallel attention backward from dO in d_tmp: d_q (R rows),
 * d_k, d_v (L rows, then compacted to R rows [owned | globals] like q). */
static void attn_backward_sp(ts_mesh_model *m, ts_mesh_block_acts *b) {
#ifdef TESSERA_HAVE_MPI
    const int d = m->cfg.dim, H = m->cfg.heads, D = d / H;
    ts_mesh_sp_attn_backward(m->sp, m->d_q, m->d_k, m->d_v, m->delta, m->d_tmp, b->o, b->lse, b->q, b->k, b->v, H, D,
                             1.0f / sqrtf((float)D));
    const size_t G = (size_t)m->cfg.n_globals, gd = sizeof(float) * G * (size_t)d;
    const size_t to = (size_t)m->n_loc * d, from = (size_t)(m->L - (int64_t)G) * d;
    memmove(m->d_k + to, m->d_k + from, gd);
    memmove(m->d_v + to, m->d_v + from, gd);
#else
    (void)m, (void)b;
    ts_fatal("mesh model: sequence parallelism without MPI");
#endif
}

/* d_h holds dL/d(block output) on entry and dL/d(block input) on return. */
static void block_backward(ts_mesh_model *m, int i) {
    const ts_backend *be = m->be;
    ts_mesh_block_acts *b = &m->blocks[i];
    const int T = (int)m->R, d = m->cfg.dim, F = m->cfg.hidden, H = m->cfg.heads, D = d / H;
    const float *Wqkv = W(m->p_qkv[i]);
    float *dWqkv = G(m->p_qkv[i]);

    /* out = x_mid + W2 g */
    linear_dweight(be, G(m->p_w2[i]), m->d_h, d, b->g, F, T, F, d);
    linear_dinput(be, m->d_g, m->d_h, d, W(m->p_w2[i]), T, F, d, 0.0f);
    be->zero(m->d_u, sizeof(float) * (size_t)T * 2 * F);
    be->geglu_backward(m->d_u, m->d_g, b->u, T, F);
    linear_dweight(be, G(m->p_w1[i]), m->d_u, 2 * F, b->n2, d, T, d, F);
    linear_dweight(be, G(m->p_w3[i]), m->d_u + F, 2 * F, b->n2, d, T, d, F);
    linear_dinput(be, m->d_tmp, m->d_u, 2 * F, W(m->p_w1[i]), T, d, F, 0.0f);
    linear_dinput(be, m->d_tmp, m->d_u + F, 2 * F, W(m->p_w3[i]), T, d, F, 1.0f);
    be->rmsnorm_backward(m->d_h, G(m->p_norm2[i]), m->d_tmp, b->x_mid, W(m->p_norm2[i]), b->rstd2, T, d);

    /* x_mid = x_in + W_proj Attn(q, k, v) */
    linear_dweight(be, G(m->p_proj[i]), m->d_h, d, b->o, d, T, d, d);
    linear_dinput(be, m->d_tmp, m->d_h, d, W(m->p_proj[i]), T, d, d, 0.0f);
    const size_t td = sizeof(float) * (size_t)T * d, ld = sizeof(float) * (size_t)m->L * d;
    be->zero(m->d_q, td), be->zero(m->d_k, ld), be->zero(m->d_v, ld);
    if (m->sp) attn_backward_sp(m, b);
    else ts_gattn_backward(m->d_q, m->d_k, m->d_v, m->delta, m->d_tmp, b->o, b->lse, b->q, b->k, b->v, &m->mask,
                           &m->mask_t, H, D, 1.0f / sqrtf((float)D));
    const float *dqkv[3] = {m->d_q, m->d_k, m->d_v};
    for (int s = 0; s < 3; s++) {
        linear_dweight(be, dWqkv + (size_t)s * d * d, dqkv[s], d, b->n1, d, T, d, d);
        linear_dinput(be, m->d_tmp2, dqkv[s], d, Wqkv + (size_t)s * d * d, T, d, d, s ? 1.0f : 0.0f);
    }
    be->rmsnorm_backward(m->d_h, G(m->p_norm1[i]), m->d_tmp2, b->x_in, W(m->p_norm1[i]), b->rstd1, T, d);
}

void ts_mesh_model_backward(ts_mesh_model *m, const float *d_out) {
    const ts_backend *be = m->be;
    const ts_mesh_model_config *c = &m->cfg;
    const int N = (int)m->n_loc, d = c->dim;
    const size_t nd = sizeof(float) * (size_t)N * d;

    /* decoder */
    linear_dweight(be, G(m->p_dec2w), d_out, c->c_out, m->d1s, d, N, d, c->c_out);
    bias_grad(be, G(m->p_dec2b), m->ones, d_out, N, c->c_out);
    linear_dinput(be, m->d_tmp, d_out, c->c_out, W(m->p_dec2w), N, d, c->c_out, 0.0f);
    be->zero(m->d_tmp2, nd);
    be->silu_backward(m->d_tmp2, m->d_tmp, m->d1, (size_t)N * d);
    linear_dweight(be, G(m->p_dec0w), m->d_tmp2, d, m->nf, d, N, d, d);
    bias_grad(be, G(m->p_dec0b), m->ones, m->d_tmp2, N, d);
    linear_dinput(be, m->d_tmp, m->d_tmp2, d, W(m->p_dec0w), N, d, d, 0.0f);
    /* the global tokens' rows of the output are unused: their gradient starts at zero */
    be->zero(m->d_h, sizeof(float) * (size_t)m->R * d);
    be->rmsnorm_backward(m->d_h, G(m->p_norm), m->d_tmp, m->x_final, W(m->p_norm), m->rstdf, N, d);

    for (int i = c->depth - 1; i >= 0; i--) {
        if (c->recompute) block_forward(m, i, NULL);
        block_backward(m, i);
    }

    /* global tokens and encoder */
    if (c->n_globals) be->axpby(G(m->p_glob), 1.0f, m->d_h + (size_t)N * d, 1.0f, (size_t)c->n_globals * d);
    linear_dweight(be, G(m->p_enc2w), m->d_h, d, m->e1s, d, N, d, d);
    bias_grad(be, G(m->p_enc2b), m->ones, m->d_h, N, d);
    linear_dinput(be, m->d_tmp, m->d_h, d, W(m->p_enc2w), N, d, d, 0.0f);
    be->zero(m->d_tmp2, nd);
    be->silu_backward(m->d_tmp2, m->d_tmp, m->e1, (size_t)N * d);
    linear_dweight(be, G(m->p_enc0w), m->d_tmp2, d, m->feat, c->c_in, N, c->c_in, d);
    bias_grad(be, G(m->p_enc0b), m->ones, m->d_tmp2, N, d);
}

/* ---- loss and inputs ---------------------------------------------------------------- */

static double masked_mse(int64_t N, int C, float *d_out, const float *out, const float *target,
                         const uint8_t *loss_mask, int64_t counted) {
    double sum = 0, norm = counted ? 1.0 / ((double)counted * C) : 0.0;
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            size_t t = (size_t)i * C + c;
            double diff = loss_mask[i] ? (double)out[t] - target[t] : 0.0;
            sum += diff * diff;
            if (d_out) d_out[t] = (float)(2.0 * norm * diff);
        }
    return sum * norm;
}

double ts_mesh_model_loss(const ts_mesh_model *m, float *d_out, const float *out, const float *target,
                          const uint8_t *loss_mask) {
    int64_t counted = 0;
    for (int64_t i = 0; i < m->n_loc; i++) counted += loss_mask[i] != 0;
    return masked_mse(m->n_loc, m->cfg.c_out, d_out, out, target, loss_mask, counted);
}

double ts_mesh_model_loss_part(const ts_mesh_model *m, float *d_out, const float *out, const float *target,
                               const uint8_t *loss_mask, int64_t n_counted) {
    return masked_mse(m->n_loc, m->cfg.c_out, d_out, out, target, loss_mask, n_counted);
}

void ts_mesh_model_features(float *feat, const float *fields, int n_fields, const int32_t *node_type, int64_t N) {
    const int c_in = n_fields + TS_MESH_MODEL_NODE_TYPES;
    for (int64_t i = 0; i < N; i++) {
        if (node_type[i] < 0 || node_type[i] >= TS_MESH_MODEL_NODE_TYPES)
            ts_fatal("node %lld has type %d; MeshGraphNets types are 0 .. %d", (long long)i, node_type[i],
                     TS_MESH_MODEL_NODE_TYPES - 1);
        float *f = feat + (size_t)i * c_in;
        memcpy(f, fields + (size_t)i * n_fields, sizeof(float) * (size_t)n_fields);
        for (int t = 0; t < TS_MESH_MODEL_NODE_TYPES; t++) f[n_fields + t] = t == node_type[i] ? 1.0f : 0.0f;
    }
}

void ts_mesh_model_loss_mask(uint8_t *loss_mask, const int32_t *node_type, int64_t N) {
    for (int64_t i = 0; i < N; i++)
        loss_mask[i] = node_type[i] == TS_MESH_MODEL_NORMAL || node_type[i] == TS_MESH_MODEL_OUTFLOW;
}

double ts_mesh_model_forward_flops(const ts_mesh_model *m) {
    const ts_mesh_model_config *c = &m->cfg;
    double N = (double)m->n_loc, T = (double)m->R, d = c->dim, F = c->hidden, attn;
#ifdef TESSERA_HAVE_MPI
    if (m->sp) /* this rank's rows: its chunk's, and its share of the global rows' columns */
        attn = ts_gattn_flops(&m->sp->chunk.local, c->heads, c->dim / c->heads) +
               ts_gattn_flops(&m->sp->gmask, c->heads, c->dim / c->heads);
    else
#endif
        attn = ts_gattn_flops(&m->mask, c->heads, c->dim / c->heads);
    double per_block = 8.0 * T * d * d + 6.0 * T * d * F + attn;
    return c->depth * per_block + 2.0 * N * d * (c->c_in + d) + 2.0 * N * d * (d + c->c_out);
}
