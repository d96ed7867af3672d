/* The pixel-level Swin diffusion transformer (REFERENCE.md, "Gridded
 * model"): every grid point a token; blocks of RMSNorm, adaLN-zero
 * modulation from the diffusion-time embedding, window attention (shifted
 * every other block), SwiGLU MLP; an adaLN head. Hand-written forward and
 * backward over the backend table, all parameters in one table.
 *
 *   h      = x_in Wemb^T + PE                 (T, d)   x_in (T, C_in)
 *   c      = W_t2 SiLU(W_t1 e(t))             (B, d)   e: sinusoidal embedding of t
 *   per block i, with (shift1, scale1, gate1, shift2, scale2, gate2) = SiLU(c) W_ada_i^T:
 *     h += gate1 * Attn(modulate(RMSNorm(h), shift1, scale1))
 *     h += gate2 * W2 (SiLU(W1 u) * W3 u),  u = modulate(RMSNorm(h), shift2, scale2)
 *   out    = modulate(RMSNorm(h), shift, scale) Whead^T,  (shift, scale) = SiLU(c) W_hada^T
 *
 * Pipeline parallelism: with pp stages, stage s holds blocks [s L / pp,
 * (s + 1) L / pp) (the embedding with the first, the head with the last);
 * every stage keeps the whole parameter table (only its own entries get
 * gradients; the trainer's sum over ranks completes them) and computes the
 * time embedding c itself. ts_swin_stage_forward and _backward run one
 * stage (the trainer schedules micro-batches over them, 1F1B);
 * ts_swin_forward and ts_swin_backward with pp > 1 pass one batch through
 * all stages and give every stage the output.
 *
 * Block i uses shifted windows when i / g is odd, g = cfg.shift_group:
 * every odd block (g = 1, Swin), or every other group of g blocks (AERIS's
 * one shift per pipeline stage of g blocks). Every adaLN weight and the
 * head projection start at zero (adaLN-zero, as DiT): the untrained network
 * outputs zeros and every block is the identity; attn.proj and W2 start
 * random, so every gated branch has one non-zero factor and trains.
 */
#ifndef TESSERA_MODELS_SWIN_H
#define TESSERA_MODELS_SWIN_H

#include "core/backend.h"
#include "core/params.h"
#include "models/window_attention.h"

/* Window parallelism needs MPI; the core-only build (a GPU machine with
 * nothing but CUDA) has the model without it. */
#ifdef TESSERA_HAVE_MPI
#include <mpi.h>

#include "parallel/roll.h"
typedef MPI_Comm ts_swin_comm;
#else
typedef int ts_swin_comm;
#endif

/* This rank's tokens of the global grid. Window parallelism: a block of
 * whole windows on a WP_y x WP_x rank grid. Sequence parallelism (Ulysses,
 * models/window_attention.h): a band of H / sp whole rows of the grid,
 * attention trading tokens for heads over the sp ranks; with both, a band
 * of H / (wp_y sp) rows of the rank's block. */
typedef struct {
    ts_swin_comm comm;    /* the WP_y x WP_x Cartesian communicator (the layout's wp) */
    int wp_y, wp_x;       /* rank grid */
    int py, px;           /* this rank's place in it */
    ts_swin_comm sp_comm; /* the layout's sp axis */
    int sp, sp_rank;      /* its size (0 or 1: none) and this rank's place in it */
    ts_swin_comm pp_comm; /* the layout's pp axis */
    int pp, pp_rank;      /* pipeline stages (0 or 1: none) and this rank's stage */
} ts_swin_wp;

typedef struct {
    int H, W;          /* global grid of one sample (rows divisible by window) */
    int window;        /* square windows: window x window */
    int c_in, c_out;   /* input channels per token, output channels */
    int dim, heads, hidden, depth;
    int t_freq;        /* size of the sinusoidal time embedding (even) */
    int shift_group;   /* blocks i with (i / shift_group) odd use shifted windows; 0 or 1: every odd block */
} ts_swin_config;

typedef struct {
    float *x_in;             /* (T, d) block input */
    float *n1, *rstd1, *h1;  /* (T, d), (T), (T, d) */
    float *a;                /* (T, d) attention output */
    float *x_mid;            /* (T, d) */
    float *n2, *rstd2, *h2;  /* (T, d), (T), (T, d) */
    float *u;                /* (T, 2F) */
    float *g;                /* (T, F) */
    float *m;                /* (T, d) MLP output */
    float *mod;              /* (B, 6d) adaLN output */
    float *h1r;              /* (T, d) h1 rolled onto shifted windows (window-parallel shifted blocks) */
    ts_wattn_acts attn;
} ts_swin_block_acts;

typedef struct {
    ts_swin_config cfg;
    const ts_backend *be;
    int B, T;                     /* samples per step, local tokens B*h*w */
    int h, w, row0, col0;         /* this rank's tokens: rows and columns of the grid (all of it on one rank) */
    int bh, brow0;                /* the block the windows see: h rows from row0, or h * sp with sequence parallelism */
    int sp;                       /* sequence-parallel ranks (1: none) */
    int wp;                       /* 1: shifted blocks roll across ranks (WP_y x WP_x > 1) */
    int wp_y, wp_x;
    int pp, stage, b0, b1; /* pipeline stages, this rank's, its blocks [b0, b1) (1, 0, 0, depth: none) */
#ifdef TESSERA_HAVE_MPI
    ts_roll_plan roll;            /* half-window strips of a (h, w, d) field */
    MPI_Comm pp_comm;
#endif
    float *pipe_host;             /* (T * max(d, C_out)) host staging of stage-to-stage messages */
    float *pipe_dev[2];           /* (T, d) device: a stage's input or input gradient, and its output */
    size_t pp_bytes;              /* stage-to-stage bytes this rank sent since creation */
    float *roll_host[2];          /* (h*w*d) host staging when the backend is not the CPU */
    float *rolled;                /* (T, d) scratch: rolled attention output or gradient */
    size_t wp_bytes, wp_bytes_expected; /* strip bytes sent, and the analytic count, since creation */
    size_t sp_bytes_expected;           /* all-to-all bytes by the analytic count (ts_swin_sp_bytes: sent) */
    ts_params params;             /* the weights */
    ts_params grads;              /* same layout */
    /* parameter indices */
    int p_embed, p_t1, p_t2, p_hada, p_head;
    int *p_ada, *p_qkv, *p_proj, *p_w13, *p_w2; /* (depth) */
    ts_wattn_plan plan[2];        /* plain and shifted layers */
    float *pos;                   /* (H*W, d) fixed position encoding, device */
    ts_arena arena;               /* activations, sized once for B */
    /* activations */
    float *x_in;                  /* (T, C_in) input of the last forward */
    float *temb;                  /* (B, t_freq) */
    float *t_h, *t_hs;            /* (B, d): W_t1 e, SiLU of it */
    float *c, *c_silu;            /* (B, d) */
    float *h0;                    /* (T, d) after embedding */
    ts_swin_block_acts *blocks;   /* (depth) */
    float *h_final;               /* (T, d) output of the last block */
    float *nh, *rstdh, *hh;       /* head: (T, d), (T), (T, d) */
    float *hmod;                  /* (B, 2d) */
    /* backward scratch */
    float *d_h;                   /* (T, d) gradient of the residual stream */
    float *d_tmp, *d_tmp2;        /* (T, d) */
    float *d_u;                   /* (T, 2F) */
    float *d_g;                   /* (T, F) */
    float *d_mod;                 /* (B, 6d) */
    float *d_csilu, *d_c, *d_th;  /* (B, d) */
} ts_swin;

/* Validates the configuration (one line in err), declares the parameters,
 * builds the window plans and sizes the arena for B samples. Weights are
 * zero until ts_swin_init_weights. wp NULL: the whole grid on this rank;
 * else this rank's block of a WP_y x WP_x split (collective over wp->comm)
 * or band of an sp split (collective over wp->sp_comm), inputs and outputs
 * being the rank's tokens in local grid order. */
int ts_swin_create(ts_swin *m, const ts_backend *be, const ts_swin_config *cfg, int B, const ts_swin_wp *wp, char *err,
                   size_t cap);
void ts_swin_free(ts_swin *m);

/* Random init from the counter RNG (seed, purpose WEIGHT_INIT, stream =
 * parameter index): normal with std 1/sqrt(fan_in); every adaLN weight and
 * head.proj zero unless `zero_init` is 0 (gradient checks need non-zero
 * weights everywhere). */
void ts_swin_init_weights(ts_swin *m, uint64_t seed, int zero_init);

/* out (T, C_out) from x (T, C_in) in grid order per sample and the
 * diffusion time t (B, radians, host). */
void ts_swin_forward(ts_swin *m, float *out, const float *x, const float *t_host);
/* ts_swin_forward over n consecutive micro-batches of the model's batch:
 * x (n T, C_in), out (n T, C_out), t_host (n B). With pp > 1 they flow
 * through the stages one after another (a forward-only pipeline: stage s
 * computes micro-batch c while stage s + 1 computes c - 1), and every stage
 * gets all outputs; a stage holds one micro-batch's activations. */
void ts_swin_forward_batches(ts_swin *m, float *out, const float *x, const float *t_host, int n);
/* Accumulates parameter gradients into m->grads from d_out (T, C_out); the
 * activations of the last forward are used. With pp > 1, every stage
 * calls both (collective over the pp axis): the forward hands each stage's
 * output to the next and gives every stage the last one's output; the
 * backward takes d_out on the last stage only. */
void ts_swin_backward(ts_swin *m, const float *d_out);

/* One pipeline stage. in: x (T, C_in) on the first stage, else the previous
 * stage's output (T, d); out: (T, C_out) on the last stage, else this
 * stage's output (T, d). The backward takes d_out of the same shape as out
 * and writes d_in (T, d), the gradient of the stage's input, unless this is
 * the first stage (d_in unused). With pp = 1 these are ts_swin_forward and
 * ts_swin_backward. */
void ts_swin_stage_forward(ts_swin *m, float *out, const float *in, const float *t_host);
void ts_swin_stage_backward(ts_swin *m, const float *d_out, float *d_in);

/* All-to-all bytes this rank sent to other SP ranks since creation. */
size_t ts_swin_sp_bytes(const ts_swin *m);
/* Strip bytes this rank sent to other WP ranks since creation (the field's
 * roll, or with SP the gathered heads' roll), and the analytic count. */
void ts_swin_wp_bytes(const ts_swin *m, size_t *sent, size_t *expected);

/* Forward FLOPs (REFERENCE.md: L (8 T d^2 + 4 T L_w d + 6 T d F) plus
 * embedding and head), per rank: with pp stages, 1 / pp of them. */
double ts_swin_forward_flops(const ts_swin *m);

#endif
