#include "models/swin.h"
#include "core/log.h"
#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TESSERA_HAVE_MPI
#include "parallel/collective.h"
#endif

static const double HALF_PI = 1.57079632679489661923;

/* ---- set-up ------------------------------------------------------------------ */

/* Whether block i uses shifted windows. */
static int shifted(const ts_swin *m, int i) {
    const int g = m->cfg.shift_group > 0 ? m->cfg.shift_group : 1;
    return (i / g) % 2;
}

static int check_config(const ts_swin_config *c, char *err, size_t cap) {
    if (c->H < 1 || c->W < 1 || c->window < 1 || c->c_in < 1 || c->c_out < 1 || c->dim < 1 || c->heads < 1 ||
        c->hidden < 1 || c->depth < 1 || c->t_freq < 2) {
        return TS_FAIL(err, cap, "model sizes must be positive (grid %dx%d, window %d, dim %d, heads %d, hidden %d, depth %d)",
                 c->H, c->W, c->window, c->dim, c->heads, c->hidden, c->depth);
    }
    if (c->H % c->window || c->W % c->window) {
        return TS_FAIL(err, cap, "model.window = %d does not divide the grid %d x %d", c->window, c->H, c->W);
    }
    if (c->dim % c->heads) {
        return TS_FAIL(err, cap, "model.heads = %d does not divide model.dim = %d", c->heads, c->dim);
    }
    if (c->t_freq % 2) {
        return TS_FAIL(err, cap, "model.t_freq = %d: the size of the time embedding must be even", c->t_freq);
    }
    return 0;
}

static int add2(ts_params *p, const char *name, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return ts_params_add(p, name, 2, shape);
}

static void declare_params(ts_swin *m) {
    const ts_swin_config *c = &m->cfg;
    const int d = c->dim, F = c->hidden;
    char name[TS_PARAM_NAME_MAX];
    ts_params_init(&m->params);
    m->p_embed = add2(&m->params, "embed.weight", d, c->c_in);
    m->p_t1 = add2(&m->params, "time_mlp.0.weight", d, c->t_freq);
    m->p_t2 = add2(&m->params, "time_mlp.2.weight", d, d);
    m->p_ada = ts_malloc(sizeof(int) * 5 * (size_t)c->depth);
    m->p_qkv = m->p_ada + c->depth, m->p_proj = m->p_qkv + c->depth;
    m->p_w13 = m->p_proj + c->depth, m->p_w2 = m->p_w13 + c->depth;
    for (int i = 0; i < c->depth; i++) {
        snprintf(name, sizeof name, "blocks.%d.adaLN.weight", i);
        m->p_ada[i] = add2(&m->params, name, 6 * d, d);
        snprintf(name, sizeof name, "blocks.%d.attn.qkv.weight", i);
        m->p_qkv[i] = add2(&m->params, name, 3 * d, d);
        snprintf(name, sizeof name, "blocks.%d.attn.proj.weight", i);
        m->p_proj[i] = add2(&m->params, name, d, d);
        snprintf(name, sizeof name, "blocks.%d.mlp.w13.weight", i);
        m->p_w13[i] = add2(&m->params, name, 2 * F, d);
        snprintf(name, sizeof name, "blocks.%d.mlp.w2.weight", i);
        m->p_w2[i] = add2(&m->params, name, d, F);
    }
    m->p_hada = add2(&m->params, "head.adaLN.weight", 2 * d, d);
    m->p_head = add2(&m->params, "head.proj.weight", c->c_out, d);
}

/* Fixed 2-D sine-cosine encoding (H*W, d): the first half of the channels
 * encodes the row (latitude), the second the column (longitude), each as
 * sin/cos pairs at geometrically spaced frequencies (MAE/DiT style). */
static void position_encoding(float *pe, int h, int w, int row0, int col0, int d) {
    int half = d / 2, quarter = half / 2;
    memset(pe, 0, sizeof(float) * (size_t)h * w * d);
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            int y = row0 + i, x = col0 + j; /* global grid coordinates */
            float *row = pe + ((size_t)i * w + j) * d;
            for (int k = 0; k < quarter; k++) {
                double omega = pow(10000.0, -(double)k / quarter);
                row[2 * k] = (float)sin(y * omega), row[2 * k + 1] = (float)cos(y * omega);
                row[half + 2 * k] = (float)sin(x * omega), row[half + 2 * k + 1] = (float)cos(x * omega);
            }
        }
}

/* Whether shifted blocks roll their input field across WP ranks (window
 * parallelism alone; with SP the attention layer rolls its heads). */
static int rolls_h1(const ts_swin *m) { return m->wp && m->sp == 1; }

static void take_block(ts_swin *m, ts_swin_block_acts *b, ts_arena *a, const ts_wattn_acts *share, int is_shifted) {
    const size_t T = (size_t)m->T, d = (size_t)m->cfg.dim, F = (size_t)m->cfg.hidden;
    b->x_in = ts_arena_take(a, T * d, "block.x_in");
    b->n1 = ts_arena_take(a, T * d, "block.n1");
    b->rstd1 = ts_arena_take(a, T, "block.rstd1");
    b->h1 = ts_arena_take(a, T * d, "block.h1");
    b->a = ts_arena_take(a, T * d, "block.a");
    b->x_mid = ts_arena_take(a, T * d, "block.x_mid");
    b->n2 = ts_arena_take(a, T * d, "block.n2");
    b->rstd2 = ts_arena_take(a, T, "block.rstd2");
    b->h2 = ts_arena_take(a, T * d, "block.h2");
    b->u = ts_arena_take(a, T * 2 * F, "block.u");
    b->g = ts_arena_take(a, T * F, "block.g");
    b->m = ts_arena_take(a, T * d, "block.m");
    b->mod = ts_arena_take(a, (size_t)m->B * 6 * d, "block.mod");
    b->h1r = is_shifted && rolls_h1(m) ? ts_arena_take(a, T * d, "block.h1r") : NULL;
    ts_wattn_acts_take(&b->attn, a, &m->plan[is_shifted], share);
}

static void take_all(ts_swin *m, ts_arena *a) {
    const size_t T = (size_t)m->T, B = (size_t)m->B, d = (size_t)m->cfg.dim, F = (size_t)m->cfg.hidden;
    m->x_in = ts_arena_take(a, T * m->cfg.c_in, "x_in");
    m->temb = ts_arena_take(a, B * m->cfg.t_freq, "temb");
    m->t_h = ts_arena_take(a, B * d, "t_h");
    m->t_hs = ts_arena_take(a, B * d, "t_hs");
    m->c = ts_arena_take(a, B * d, "c");
    m->c_silu = ts_arena_take(a, B * d, "c_silu");
    /* a pipeline stage holds the activations of its own blocks only */
    for (int i = m->b0; i < m->b1; i++)
        take_block(m, &m->blocks[i], a, i > m->b0 ? &m->blocks[m->b0].attn : NULL, shifted(m, i));
    m->h0 = m->blocks[m->b0].x_in;
    m->h_final = ts_arena_take(a, T * d, "h_final");
    m->nh = ts_arena_take(a, T * d, "head.n");
    m->rstdh = ts_arena_take(a, T, "head.rstd");
    m->hh = ts_arena_take(a, T * d, "head.h");
    m->hmod = ts_arena_take(a, B * 2 * d, "head.mod");
    m->d_h = ts_arena_take(a, T * d, "d_h");
    m->d_tmp = ts_arena_take(a, T * d, "d_tmp");
    m->d_tmp2 = ts_arena_take(a, T * d, "d_tmp2");
    m->d_u = ts_arena_take(a, T * 2 * F, "d_u");
    m->d_g = ts_arena_take(a, T * F, "d_g");
    m->d_mod = ts_arena_take(a, B * 6 * d, "d_mod");
    m->d_csilu = ts_arena_take(a, B * d, "d_csilu");
    m->d_c = ts_arena_take(a, B * d, "d_c");
    m->d_th = ts_arena_take(a, B * d, "d_th");
    m->rolled = rolls_h1(m) ? ts_arena_take(a, T * d, "rolled") : NULL;
}

/* The block of this rank, and the window plans: plain layers see whole
 * windows of the block; shifted layers either fold the shift into their
 * gather (one rank) or attend over the block of the rolled field with the
 * pole rows grouped by where they came from (window parallelism). */
static int make_plans(ts_swin *m, const ts_swin_config *cfg, const ts_wattn_sp *sp, char *err, size_t cap) {
    const int s = cfg->window / 2;
    ts_win_geom plain = {m->bh, m->w, cfg->window, cfg->window, 0, 0};
    if (ts_wattn_plan_make_sp(&m->plan[0], m->be, &plain, NULL, m->B, cfg->dim, cfg->heads, sp, err, cap)) return -1;
    if (!m->wp) {
        ts_win_geom shifted = {cfg->H, cfg->W, cfg->window, cfg->window, s, s};
        return ts_wattn_plan_make_sp(&m->plan[1], m->be, &shifted, NULL, m->B, cfg->dim, cfg->heads, sp, err, cap);
    }
    uint8_t *group = ts_malloc((size_t)m->bh);
    for (int i = 0; i < m->bh; i++) group[i] = (uint8_t)(m->brow0 + i + s >= cfg->H); /* came across the pole */
    ts_wattn_sp rolled = *sp; /* with SP the attention layer rolls its gathered heads itself */
    rolled.roll_sy = rolled.roll_sx = s;
    int rc = ts_wattn_plan_make_sp(&m->plan[1], m->be, &plain, s ? group : NULL, m->B, cfg->dim, cfg->heads,
                                   sp->size > 1 ? &rolled : NULL, err, cap);
    free(group);
    return rc;
}

int ts_swin_create(ts_swin *m, const ts_backend *be, const ts_swin_config *cfg, int B, const ts_swin_wp *wp, char *err,
                   size_t cap) {
    memset(m, 0, sizeof *m);
    if (check_config(cfg, err, cap)) return -1;
    if (B < 1) {
        return TS_FAIL(err, cap, "batch of %d samples", B);
    }
    m->cfg = *cfg, m->be = be, m->B = B;
    m->h = cfg->H, m->w = cfg->W, m->wp_y = m->wp_x = 1, m->sp = 1;
    m->pp = 1, m->stage = 0, m->b0 = 0, m->b1 = cfg->depth;
    if (wp && wp->pp > 1) {
#ifndef TESSERA_HAVE_MPI
        return TS_FAIL(err, cap, "pipeline parallelism needs MPI, and this build has none (TESSERA_CORE_ONLY)");
#else
        if (cfg->depth % wp->pp)
            return TS_FAIL(err, cap, "model.depth = %d does not split into parallel.pp = %d stages of whole blocks",
                           cfg->depth, wp->pp);
        m->pp = wp->pp, m->stage = wp->pp_rank, m->pp_comm = wp->pp_comm;
        m->b0 = m->stage * (cfg->depth / wp->pp), m->b1 = m->b0 + cfg->depth / wp->pp;
#endif
    }
    const int S = wp && wp->sp > 1 ? wp->sp : 1;
    ts_wattn_sp sp = {0};
    sp.size = 1;
    if (wp && (wp->wp_y * wp->wp_x > 1 || S > 1)) {
#ifndef TESSERA_HAVE_MPI
        return TS_FAIL(err, cap,
                       "window and sequence parallelism need MPI, and this build has none "
                       "(TESSERA_CORE_ONLY)");
#else
        if (wp->wp_y * wp->wp_x > 1) {
            if (cfg->H % (wp->wp_y * cfg->window) || cfg->W % (wp->wp_x * cfg->window))
                return TS_FAIL(err, cap,
                               "the grid %d x %d does not split into parallel.wp_y x parallel.wp_x = %d x %d blocks "
                               "of whole %d x %d windows",
                               cfg->H, cfg->W, wp->wp_y, wp->wp_x, cfg->window, cfg->window);
            m->wp = 1, m->wp_y = wp->wp_y, m->wp_x = wp->wp_x;
            m->h = cfg->H / wp->wp_y, m->w = cfg->W / wp->wp_x, m->row0 = wp->py * m->h, m->col0 = wp->px * m->w;
        }
        m->brow0 = m->row0;
        if (S > 1) {
            if (m->h % S)
                return TS_FAIL(err, cap,
                               "the %d grid rows of a rank's block do not split into parallel.sp = %d bands "
                               "of whole rows",
                               m->h, S);
            sp = (ts_wattn_sp){.comm = wp->sp_comm, .size = S, .rank = wp->sp_rank, .wp_comm = wp->comm};
            m->sp = S, m->h /= S, m->row0 = m->brow0 + wp->sp_rank * m->h;
        } else {
            int s = cfg->window / 2; /* the block's field rolls across ranks in shifted blocks */
            if (ts_roll_plan_create(&m->roll, wp->comm, m->h, m->w, cfg->dim, s, s, err, cap)) return -1;
            if (be->kind != TS_BACKEND_CPU)
                for (int k = 0; k < 2; k++) m->roll_host[k] = ts_malloc(sizeof(float) * (size_t)m->h * m->w * cfg->dim);
        }
#endif
    }
    m->bh = m->h * m->sp;
    m->T = B * m->h * m->w;
    if (m->pp > 1) {
        const size_t td = (size_t)m->T * cfg->dim, to = (size_t)m->T * cfg->c_out;
        m->pipe_host = ts_malloc(sizeof(float) * (td > to ? td : to));
        for (int k = 0; k < 2; k++) m->pipe_dev[k] = be->alloc(sizeof(float) * td);
    }
    declare_params(m);
    ts_params_alloc(&m->params, be);
    ts_params_alloc_like(&m->grads, &m->params);
    if (make_plans(m, cfg, &sp, err, cap)) return -1;

    size_t npe = (size_t)m->h * m->w * cfg->dim;
    float *pe = ts_malloc(sizeof(float) * npe);
    position_encoding(pe, m->h, m->w, m->row0, m->col0, cfg->dim);
    m->pos = be->alloc(sizeof(float) * npe);
    be->upload(m->pos, pe, sizeof(float) * npe);
    free(pe);

    m->blocks = ts_calloc((size_t)cfg->depth, sizeof(ts_swin_block_acts));
    ts_arena_measure(&m->arena);
    take_all(m, &m->arena);
    size_t bytes = m->arena.peak;
    ts_arena_alloc(&m->arena, be, bytes);
    take_all(m, &m->arena);
    return 0;
}

void ts_swin_free(ts_swin *m) {
    if (!m->be) return;
    ts_arena_free(&m->arena);
    for (int s = 0; s < 2; s++)
        if (m->plan[s].qkv_idx) ts_wattn_plan_free(&m->plan[s]);
    m->be->free(m->pos);
#ifdef TESSERA_HAVE_MPI
    if (rolls_h1(m)) ts_roll_plan_free(&m->roll);
#endif
    free(m->roll_host[0]), free(m->roll_host[1]);
    free(m->pipe_host);
    for (int k = 0; k < 2; k++)
        if (m->pipe_dev[k]) m->be->free(m->pipe_dev[k]);
    ts_params_free(&m->grads);
    ts_params_free(&m->params);
    free(m->p_ada);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

void ts_swin_init_weights(ts_swin *m, uint64_t seed, int zero_init) {
    ts_rng_key key = ts_rng_key_make(seed, TS_RNG_WEIGHT_INIT);
    float *host = ts_calloc(m->params.total, sizeof(float));
    for (int i = 0; i < m->params.count; i++) {
        const ts_param_entry *e = &m->params.entries[i];
        /* adaLN-zero (DiT): every modulation starts at 0, so each gate is 0
         * and each block the identity, and the head's output projection is 0.
         * The other factor of each gated branch (attn.proj, mlp.w2) stays
         * random: were both factors zero, each one's gradient would be
         * proportional to the other and the block would never train. */
        int zero = zero_init && (strstr(e->name, "adaLN") || strcmp(e->name, "head.proj.weight") == 0);
        if (zero) continue;
        float std = (float)(1.0 / sqrt((double)e->shape[1]));
        ts_rng_normal(key, (uint64_t)i, 0, e->numel, host + e->offset);
        for (size_t k = 0; k < e->numel; k++) host[e->offset + k] *= std;
    }
    m->be->upload(m->params.data, host, sizeof(float) * m->params.total);
    free(host);
}

/* ---- forward ------------------------------------------------------------------- */

#define W(idx) ts_params_ptr(&m->params, (idx))
#define G(idx) ts_params_ptr(&m->grads, (idx))

/* y (rows, out) = x (rows, in) Wt^T, Wt (out, in); beta 0 or 1. */
static void linear(const ts_backend *be, float *y, const float *x, const float *Wt, int rows, int in, int out,
                   float beta) {
    be->gemm_batched(0, 1, rows, out, in, 1.0f, x, in, 0, Wt, in, 0, beta, y, out, 0, 1);
}
/* dW (out, in) += dy^T x */
static void linear_dweight(const ts_backend *be, float *dW, const float *dy, const float *x, int rows, int in,
                           int out) {
    be->gemm_batched(1, 0, out, in, rows, 1.0f, dy, out, 0, x, in, 0, 1.0f, dW, in, 0, 1);
}
/* dx (rows, in) = dy Wt (beta 0) or += (beta 1) */
static void linear_dinput(const ts_backend *be, float *dx, const float *dy, const float *Wt, int rows, int in,
                          int out, float beta) {
    be->gemm_batched(0, 0, rows, in, out, 1.0f, dy, out, 0, Wt, in, 0, beta, dx, in, 0, 1);
}

/* Roll every sample's (h, w, d) block of a field across the WP ranks:
 * forward onto the shifted windows, backward (the inverse and adjoint)
 * off them. Device fields are staged through the host (no GPU-aware MPI
 * assumed). */
static void roll_field(ts_swin *m, int forward, const float *in, float *out) {
#ifndef TESSERA_HAVE_MPI
    (void)m, (void)forward, (void)in, (void)out; /* m->wp is never set without MPI */
#else
    m->wp_bytes += ts_roll_fields(&m->roll, m->be, forward, m->B, in, out, m->roll_host, &m->wp_bytes_expected);
#endif
}

/* Sinusoidal embedding of the diffusion time t (radians in [0, pi/2]),
 * first mapped to s = 1000 t / (pi/2), the 0..1000 range DiT's embedding
 * frequencies were chosen for: e = [cos(s f_k), sin(s f_k)],
 * f_k = 10000^(-k / (t_freq/2)). docs/model.md states the same. */
static void time_embedding(float *e, const float *t, int B, int t_freq) {
    int half = t_freq / 2;
    for (int b = 0; b < B; b++) {
        double s = 1000.0 * t[b] / HALF_PI;
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * k / half);
            e[(size_t)b * t_freq + k] = (float)cos(s * f);
            e[(size_t)b * t_freq + half + k] = (float)sin(s * f);
        }
    }
}

static void block_forward(ts_swin *m, int i, float *out) {
    const ts_backend *be = m->be;
    ts_swin_block_acts *b = &m->blocks[i];
    const int T = m->T, B = m->B, HW = m->h * m->w, d = m->cfg.dim, F = m->cfg.hidden;
    linear(be, b->mod, m->c_silu, W(m->p_ada[i]), B, d, 6 * d, 0.0f);
    const float *shift1 = b->mod, *scale1 = b->mod + d, *gate1 = b->mod + 2 * d;
    const float *shift2 = b->mod + 3 * d, *scale2 = b->mod + 4 * d, *gate2 = b->mod + 5 * d;

    be->rmsnorm_forward(b->n1, b->rstd1, b->x_in, NULL, T, d, 1e-6f);
    be->modulate_forward(b->h1, b->n1, shift1, scale1, B, HW, d, 6 * d);
    if (b->h1r) { /* window-parallel shifted block: attend on the rolled field, roll back */
        roll_field(m, 1, b->h1, b->h1r);
        ts_wattn_forward(&m->plan[1], &b->attn, m->rolled, b->h1r, W(m->p_qkv[i]), W(m->p_proj[i]));
        roll_field(m, 0, m->rolled, b->a);
    } else {
        ts_wattn_forward(&m->plan[shifted(m, i)], &b->attn, b->a, b->h1, W(m->p_qkv[i]), W(m->p_proj[i]));
        m->sp_bytes_expected += ts_wattn_sp_bytes_per_pass(&m->plan[shifted(m, i)]);
    }
    be->copy(b->x_mid, b->x_in, sizeof(float) * (size_t)T * d);
    be->gated_add_forward(b->x_mid, b->a, gate1, B, HW, d, 6 * d);

    be->rmsnorm_forward(b->n2, b->rstd2, b->x_mid, NULL, T, d, 1e-6f);
    be->modulate_forward(b->h2, b->n2, shift2, scale2, B, HW, d, 6 * d);
    linear(be, b->u, b->h2, W(m->p_w13[i]), T, d, 2 * F, 0.0f);
    be->swiglu_forward(b->g, b->u, T, F);
    linear(be, b->m, b->g, W(m->p_w2[i]), T, F, d, 0.0f);
    be->copy(out, b->x_mid, sizeof(float) * (size_t)T * d);
    be->gated_add_forward(out, b->m, gate2, B, HW, d, 6 * d);
}

void ts_swin_stage_forward(ts_swin *m, float *out, const float *in, const float *t_host) {
    const ts_backend *be = m->be;
    const ts_swin_config *c = &m->cfg;
    const int T = m->T, B = m->B, HW = m->h * m->w, d = c->dim;
    if (m->b0 == 0) be->copy(m->x_in, in, sizeof(float) * (size_t)T * c->c_in);

    /* the conditioning c, on every stage (its blocks and head modulate with it) */
    float *e = ts_malloc(sizeof(float) * (size_t)B * c->t_freq);
    time_embedding(e, t_host, B, c->t_freq);
    be->upload(m->temb, e, sizeof(float) * (size_t)B * c->t_freq);
    free(e);
    linear(be, m->t_h, m->temb, W(m->p_t1), B, c->t_freq, d, 0.0f);
    be->silu_forward(m->t_hs, m->t_h, (size_t)B * d);
    linear(be, m->c, m->t_hs, W(m->p_t2), B, d, d, 0.0f);
    be->silu_forward(m->c_silu, m->c, (size_t)B * d);

    if (m->b0 == 0) { /* h0 = PE + x Wemb^T: the encoding copied per sample, the GEMM adds onto it */
        for (int b = 0; b < B; b++) be->copy(m->h0 + (size_t)b * HW * d, m->pos, sizeof(float) * (size_t)HW * d);
        linear(be, m->h0, m->x_in, W(m->p_embed), T, c->c_in, d, 1.0f);
    } else { /* the previous stage's output */
        be->copy(m->blocks[m->b0].x_in, in, sizeof(float) * (size_t)T * d);
    }

    for (int i = m->b0; i < m->b1; i++) block_forward(m, i, i + 1 < m->b1 ? m->blocks[i + 1].x_in : m->h_final);

    if (m->b1 < c->depth) { /* not the last stage: the residual stream goes on */
        be->copy(out, m->h_final, sizeof(float) * (size_t)T * d);
        return;
    }
    linear(be, m->hmod, m->c_silu, W(m->p_hada), B, d, 2 * d, 0.0f);
    be->rmsnorm_forward(m->nh, m->rstdh, m->h_final, NULL, T, d, 1e-6f);
    be->modulate_forward(m->hh, m->nh, m->hmod, m->hmod + d, B, HW, d, 2 * d);
    linear(be, out, m->hh, W(m->p_head), T, d, c->c_out, 0.0f);
}

/* ---- backward ------------------------------------------------------------------ */

/* d_h holds dL/d(block output) on entry and dL/d(block input) on return. */
static void block_backward(ts_swin *m, int i) {
    const ts_backend *be = m->be;
    ts_swin_block_acts *b = &m->blocks[i];
    const int T = m->T, B = m->B, HW = m->h * m->w, d = m->cfg.dim, F = m->cfg.hidden;
    const size_t td = sizeof(float) * (size_t)T * d;
    const float *scale1 = b->mod + d, *gate1 = b->mod + 2 * d, *scale2 = b->mod + 4 * d, *gate2 = b->mod + 5 * d;
    float *dm = m->d_mod;
    be->zero(dm, sizeof(float) * (size_t)B * 6 * d);

    /* out = x_mid + gate2 * m */
    be->zero(m->d_tmp, td);
    be->gated_add_backward(m->d_tmp, dm + 5 * d, m->d_h, b->m, gate2, B, HW, d, 6 * d);
    linear_dweight(be, G(m->p_w2[i]), m->d_tmp, b->g, T, F, d);
    linear_dinput(be, m->d_g, m->d_tmp, W(m->p_w2[i]), T, F, d, 0.0f);
    be->zero(m->d_u, sizeof(float) * (size_t)T * 2 * F);
    be->swiglu_backward(m->d_u, m->d_g, b->u, T, F);
    linear_dweight(be, G(m->p_w13[i]), m->d_u, b->h2, T, d, 2 * F);
    linear_dinput(be, m->d_tmp, m->d_u, W(m->p_w13[i]), T, d, 2 * F, 0.0f);
    be->zero(m->d_tmp2, td);
    be->modulate_backward(m->d_tmp2, dm + 3 * d, dm + 4 * d, m->d_tmp, b->n2, scale2, B, HW, d, 6 * d);
    be->rmsnorm_backward(m->d_h, NULL, m->d_tmp2, b->x_mid, NULL, b->rstd2, T, d);

    /* x_mid = x_in + gate1 * attn(h1) */
    be->zero(m->d_tmp, td);
    be->gated_add_backward(m->d_tmp, dm + 2 * d, m->d_h, b->a, gate1, B, HW, d, 6 * d);
    be->zero(m->d_tmp2, td);
    if (b->h1r) { /* the adjoints of the two rolls, in reverse order */
        roll_field(m, 1, m->d_tmp, m->rolled);
        be->zero(m->d_tmp, td);
        ts_wattn_backward(&m->plan[1], &b->attn, m->d_tmp, G(m->p_qkv[i]), G(m->p_proj[i]), m->rolled, b->h1r,
                          W(m->p_qkv[i]), W(m->p_proj[i]));
        roll_field(m, 0, m->d_tmp, m->d_tmp2);
    } else {
        ts_wattn_backward(&m->plan[shifted(m, i)], &b->attn, m->d_tmp2, G(m->p_qkv[i]), G(m->p_proj[i]), m->d_tmp,
                          b->h1, W(m->p_qkv[i]), W(m->p_proj[i]));
        m->sp_bytes_expected += ts_wattn_sp_bytes_per_pass(&m->plan[shifted(m, i)]);
    }
    be->zero(m->d_tmp, td);
    be->modulate_backward(m->d_tmp, dm, dm + d, m->d_tmp2, b->n1, scale1, B, HW, d, 6 * d);
    be->rmsnorm_backward(m->d_h, NULL, m->d_tmp, b->x_in, NULL, b->rstd1, T, d);

    /* mod = SiLU(c) W_ada^T */
    linear_dweight(be, G(m->p_ada[i]), dm, m->c_silu, B, d, 6 * d);
    linear_dinput(be, m->d_csilu, dm, W(m->p_ada[i]), B, d, 6 * d, 1.0f);
}

/* The head's backward (the last stage): sets d_h and d_csilu. */
static void stage_head_backward(ts_swin *m, const float *d_out) {
    const ts_backend *be = m->be;
    const ts_swin_config *c = &m->cfg;
    const int T = m->T, B = m->B, HW = m->h * m->w, d = c->dim;
    const size_t td = sizeof(float) * (size_t)T * d;

    /* head: out = modulate(RMSNorm(h), shift, scale) Whead^T */
    linear_dweight(be, G(m->p_head), d_out, m->hh, T, d, c->c_out);
    linear_dinput(be, m->d_tmp, d_out, W(m->p_head), T, d, c->c_out, 0.0f);
    be->zero(m->d_mod, sizeof(float) * (size_t)B * 2 * d);
    be->zero(m->d_tmp2, td);
    be->modulate_backward(m->d_tmp2, m->d_mod, m->d_mod + d, m->d_tmp, m->nh, m->hmod + d, B, HW, d, 2 * d);
    be->zero(m->d_h, td);
    be->rmsnorm_backward(m->d_h, NULL, m->d_tmp2, m->h_final, NULL, m->rstdh, T, d);
    linear_dweight(be, G(m->p_hada), m->d_mod, m->c_silu, B, d, 2 * d);
    linear_dinput(be, m->d_csilu, m->d_mod, W(m->p_hada), B, d, 2 * d, 0.0f);
}

void ts_swin_stage_backward(ts_swin *m, const float *d_out, float *d_in) {
    const ts_backend *be = m->be;
    const ts_swin_config *c = &m->cfg;
    const int T = m->T, B = m->B, HW = m->h * m->w, d = c->dim;
    const size_t td = sizeof(float) * (size_t)T * d, bd = sizeof(float) * (size_t)B * d;

    if (m->b1 < c->depth) { /* not the last stage: d_out is the next stage's input gradient */
        be->copy(m->d_h, d_out, td);
        be->zero(m->d_csilu, bd);
    } else {
        stage_head_backward(m, d_out);
    }
    for (int i = m->b1 - 1; i >= m->b0; i--) block_backward(m, i);

    if (m->b0 == 0) /* embedding; the position encoding is fixed */
        linear_dweight(be, G(m->p_embed), m->d_h, m->x_in, T, c->c_in, d);
    else if (d_in)
        be->copy(d_in, m->d_h, td);

    /* time MLP: c = W_t2 SiLU(W_t1 e), from this stage's share of dL/dc */
    be->zero(m->d_c, bd);
    be->silu_backward(m->d_c, m->d_csilu, m->c, (size_t)B * d);
    linear_dweight(be, G(m->p_t2), m->d_c, m->t_hs, B, d, d);
    linear_dinput(be, m->d_csilu, m->d_c, W(m->p_t2), B, d, d, 0.0f); /* now dL/d t_hs */
    be->zero(m->d_th, bd);
    be->silu_backward(m->d_th, m->d_csilu, m->t_h, (size_t)B * d);
    linear_dweight(be, G(m->p_t1), m->d_th, m->temb, B, c->t_freq, d);
    (void)HW;
}

/* ---- the whole pipeline at once -------------------------------------------------- */

#ifdef TESSERA_HAVE_MPI
/* n floats of the device buffer dev to stage `to`, or from stage `from`,
 * staged through the host. */
static void pipe_send(ts_swin *m, const float *dev, size_t n, int to) {
    m->be->sync();
    m->be->download(m->pipe_host, dev, sizeof(float) * n);
    ts_par_send_floats(m->pipe_host, n, to, 0, m->pp_comm);
    m->pp_bytes += sizeof(float) * n;
}

static void pipe_recv(ts_swin *m, float *dev, size_t n, int from) {
    ts_par_recv_floats(m->pipe_host, n, from, 0, m->pp_comm);
    m->be->upload(dev, m->pipe_host, sizeof(float) * n);
}
#endif

void ts_swin_forward(ts_swin *m, float *out, const float *x, const float *t_host) {
    if (m->pp == 1) {
        ts_swin_stage_forward(m, out, x, t_host);
        return;
    }
#ifdef TESSERA_HAVE_MPI
    const size_t td = (size_t)m->T * m->cfg.dim, to = (size_t)m->T * m->cfg.c_out;
    const int last = m->stage == m->pp - 1;
    if (m->stage > 0) pipe_recv(m, m->pipe_dev[0], td, m->stage - 1);
    ts_swin_stage_forward(m, last ? out : m->pipe_dev[1], m->stage > 0 ? m->pipe_dev[0] : x, t_host);
    if (!last) pipe_send(m, m->pipe_dev[1], td, m->stage + 1);
    /* every stage gets the output (the sampler runs on each) */
    m->be->sync();
    if (last) m->be->download(m->pipe_host, out, sizeof(float) * to);
    ts_par_bcast_floats_from(m->pipe_host, to, m->pp - 1, m->pp_comm);
    if (!last) m->be->upload(out, m->pipe_host, sizeof(float) * to);
#endif
}

void ts_swin_forward_batches(ts_swin *m, float *out, const float *x, const float *t_host, int n) {
    const size_t tin = (size_t)m->T * m->cfg.c_in, to = (size_t)m->T * m->cfg.c_out;
    if (m->pp == 1 || n <= 1) {
        for (int c = 0; c < n; c++) ts_swin_forward(m, out + c * to, x + c * tin, t_host + (size_t)c * m->B);
        return;
    }
#ifdef TESSERA_HAVE_MPI
    const size_t td = (size_t)m->T * m->cfg.dim;
    const int last = m->stage == m->pp - 1;
    for (int c = 0; c < n; c++) {
        if (m->stage > 0) pipe_recv(m, m->pipe_dev[0], td, m->stage - 1);
        ts_swin_stage_forward(m, last ? out + c * to : m->pipe_dev[1], m->stage > 0 ? m->pipe_dev[0] : x + c * tin,
                              t_host + (size_t)c * m->B);
        if (!last) pipe_send(m, m->pipe_dev[1], td, m->stage + 1);
    }
    /* every stage gets every output (the sampler runs on each) */
    float *all = ts_malloc(sizeof(float) * (size_t)n * to);
    m->be->sync();
    if (last) m->be->download(all, out, sizeof(float) * (size_t)n * to);
    ts_par_bcast_floats_from(all, (size_t)n * to, m->pp - 1, m->pp_comm);
    if (!last) m->be->upload(out, all, sizeof(float) * (size_t)n * to);
    free(all);
#endif
}

void ts_swin_backward(ts_swin *m, const float *d_out) {
    if (m->pp == 1) {
        ts_swin_stage_backward(m, d_out, NULL);
        return;
    }
#ifdef TESSERA_HAVE_MPI
    const size_t td = (size_t)m->T * m->cfg.dim;
    const int last = m->stage == m->pp - 1;
    if (!last) pipe_recv(m, m->pipe_dev[1], td, m->stage + 1);
    ts_swin_stage_backward(m, last ? d_out : m->pipe_dev[1], m->stage > 0 ? m->pipe_dev[0] : NULL);
    if (m->stage > 0) pipe_send(m, m->pipe_dev[0], td, m->stage - 1);
#endif
}

size_t ts_swin_sp_bytes(const ts_swin *m) { return m->plan[0].sp_bytes + m->plan[1].sp_bytes; }

void ts_swin_wp_bytes(const ts_swin *m, size_t *sent, size_t *expected) {
    *sent = m->wp_bytes + m->plan[1].roll_bytes;
    *expected = m->wp_bytes_expected + m->plan[1].roll_bytes_expected;
}

double ts_swin_forward_flops(const ts_swin *m) {
    const ts_swin_config *c = &m->cfg;
    double T = m->T, d = c->dim, L = (double)c->window * c->window; /* this rank's tokens */
    double per_block = 8.0 * T * d * d + 4.0 * T * L * d + 6.0 * T * d * c->hidden;
    return (c->depth * per_block + 2.0 * T * d * (c->c_in + c->c_out)) / m->pp;
}
