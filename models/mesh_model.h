/* The mesh graph transformer (REFERENCE.md, "Mesh model"; docs/mesh-model.md):
 * tokens are the N mesh nodes followed by G learned global tokens; attention
 * is masked to a CSR graph over all T = N + G tokens (k-hop adjacency,
 * dilated windows, and the globals, which see and are seen by everyone).
 *
 *   x[0:N]   = W_e2 SiLU(W_e0 feat + b_e0) + b_e2     feat (N, c_in)
 *   x[N:T]   = global_tokens                            (G, d)
 *   per block i:
 *     x += W_proj Attn_mask(RMSNorm(x; g1) W_qkv^T)
 *     x += W2 (GELU(W1 h) * W3 h),  h = RMSNorm(x; g2)
 *   out      = W_d2 SiLU(W_d0 RMSNorm(x[0:N]; g) + b_d0) + b_d2   (N, c_out)
 *
 * Hand-written forward and backward; GEMMs, RMSNorm, SiLU and GeGLU go
 * through the backend table, the sparse attention is models/graph_attention
 * (CPU only for now, so the model runs on the CPU backend only).
 * One graph per call (batch 1).
 */
#ifndef TESSERA_MODELS_MESH_MODEL_H
#define TESSERA_MODELS_MESH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"
#include "core/params.h"
#include "mesh/csr.h"

/* MeshGraphNets node types: one-hot over 9 classes in the input features;
 * the loss counts NORMAL and OUTFLOW nodes. */
enum { TS_MESH_MODEL_NODE_TYPES = 9, TS_MESH_MODEL_NORMAL = 0, TS_MESH_MODEL_OUTFLOW = 5 };

typedef struct {
    int c_in;       /* input channels: fields + TS_MESH_MODEL_NODE_TYPES one-hot */
    int c_out;      /* output channels (the normalized target delta) */
    int dim, heads; /* heads divides dim */
    int hidden;     /* gated-MLP width F (REFERENCE: 3 * dim) */
    int depth;      /* blocks */
    int n_globals;  /* G learned global tokens, >= 0 */
    int recompute;  /* 1: keep only each block's input; recompute the block in backward */
} ts_mesh_model_config;

typedef struct {
    float *x_in;          /* (T, d) block input */
    float *n1, *rstd1;    /* (T, d), (T) */
    float *q, *k, *v;     /* (T, d) each */
    float *o, *lse;       /* (T, d) attention output, (T, heads) its log-sum-exps */
    float *x_mid;         /* (T, d) after the attention residual */
    float *n2, *rstd2;    /* (T, d), (T) */
    float *u;             /* (T, 2F): W1 h | W3 h */
    float *g;             /* (T, F) GELU(W1 h) * W3 h */
} ts_mesh_block_acts;

typedef struct {
    ts_mesh_model_config cfg;
    const ts_backend *be;
    ts_params params;             /* the weights */
    ts_params grads;              /* same layout */
    /* parameter indices */
    int p_enc0w, p_enc0b, p_enc2w, p_enc2b, p_glob, p_norm, p_dec0w, p_dec0b, p_dec2w, p_dec2b;
    int *p_norm1, *p_qkv, *p_proj, *p_norm2, *p_w1, *p_w3, *p_w2; /* (depth) each */
    /* the graph of the last prepare */
    int64_t N, T;                 /* mesh nodes; tokens N + G */
    ts_csr mask, mask_t;          /* (T x T) copies of the mask and its transpose (not with sp) */
    /* the rows this rank computes: all of them on one rank; with sequence
     * parallelism (sp) its chunk's n_loc owned nodes, then the G globals
     * (R rows), while k, v, d_k, d_v hold L rows [owned | halo | globals]
     * (models/mesh_sp.h). Without sp: n_loc = N, R = L = T. Below, "N" in a
     * shape is n_loc and "T" is R (L for k, v, d_k, d_v). */
    int64_t n_loc, R, L;
    struct ts_mesh_sp *sp;        /* borrowed from the caller, or NULL */
    ts_arena arena;               /* activations, sized by prepare */
    float *ones;                  /* (T) ones: biases are rank-1 GEMMs */
    float *feat;                  /* (N, c_in) input of the last forward */
    float *e1, *e1s;              /* (N, d) encoder hidden, before and after SiLU */
    ts_mesh_block_acts *blocks;   /* (depth); with recompute all but x_in alias `work` */
    ts_mesh_block_acts work;      /* the shared block activations of recompute mode */
    float *x_final;               /* (T, d) output of the last block */
    float *nf, *rstdf;            /* (N, d), (N) final norm (mesh nodes only) */
    float *d1, *d1s;              /* (N, d) decoder hidden, before and after SiLU */
    /* backward scratch */
    float *d_h;                   /* (T, d) gradient of the residual stream */
    float *d_tmp, *d_tmp2;        /* (T, d) */
    float *d_q, *d_k, *d_v;       /* (T, d) */
    float *d_u;                   /* (T, 2F) */
    float *d_g;                   /* (T, F) */
    float *delta;                 /* (T, heads) attention backward scratch */
} ts_mesh_model;

/* Validates the configuration (one line in err) and declares the
 * parameters; weights are zero until ts_mesh_model_init_weights. The backend
 * must be the CPU one (the sparse attention has no device kernel yet). */
int ts_mesh_model_create(ts_mesh_model *m, const ts_backend *be, const ts_mesh_model_config *cfg, char *err,
                         size_t cap);
void ts_mesh_model_free(ts_mesh_model *m);

/* Random init from the counter RNG (seed, purpose WEIGHT_INIT, stream =
 * parameter index): weights normal with std 1/sqrt(fan_in), biases 0, norm
 * gains 1, global tokens normal with std 0.02. all_random = 1 makes biases,
 * gains and global tokens random and non-zero too (gradient checks). */
void ts_mesh_model_init_weights(ts_mesh_model *m, uint64_t seed, int all_random);

/* Takes a graph of n_nodes mesh nodes: mask is (N+G) x (N+G), every node's
 * row holding all G global columns and every global row all N+G columns
 * (checked, with column order and range; -1 and one line in err when not).
 * Copies the mask, builds its transpose and sizes the activations. */
int ts_mesh_model_prepare(ts_mesh_model *m, int64_t n_nodes, const ts_csr *mask, char *err, size_t cap);

#ifdef TESSERA_HAVE_MPI
struct ts_mesh_sp;
/* The same graph, sequence-parallel: sp (from ts_mesh_sp_create on the
 * same mask, kept alive by the caller while the model uses it) says which
 * rows this rank computes. Forward and backward then take and give the
 * n_loc = sp->n_own owned rows (global ids sp->chunk.first + i), and are
 * collective over sp's communicator. The parameter gradients a backward
 * accumulates are this rank's share: summed over the SP ranks they are the
 * whole graph's. */
int ts_mesh_model_prepare_sp(ts_mesh_model *m, int64_t n_nodes, const ts_csr *mask, struct ts_mesh_sp *sp, char *err,
                             size_t cap);
#endif

/* out (N, c_out) from feat (N, c_in), on the prepared graph. */
void ts_mesh_model_forward(ts_mesh_model *m, float *out, const float *feat);
/* Accumulates parameter gradients into m->grads from d_out (N, c_out), using
 * the last forward. */
void ts_mesh_model_backward(ts_mesh_model *m, const float *d_out);

/* Mean squared error over the nodes with loss_mask[i] != 0 and all c_out
 * components, L = sum (out - target)^2 / (n_counted * c_out); d_out
 * (N, c_out) gets dL/d out (zero on the other nodes) when not NULL. 0 when
 * no node counts. */
double ts_mesh_model_loss(const ts_mesh_model *m, float *d_out, const float *out, const float *target,
                          const uint8_t *loss_mask);
/* The same over the model's n_loc local rows (loss_mask (n_loc)), with the
 * whole graph's count of counted nodes: the sum over SP ranks of their
 * parts is the whole graph's loss, and each d_out its rows' gradient. */
double ts_mesh_model_loss_part(const ts_mesh_model *m, float *d_out, const float *out, const float *target,
                               const uint8_t *loss_mask, int64_t n_counted);

/* feat (N, n_fields + 9) = fields (N, n_fields) then one-hot node type;
 * a type outside [0, 9) is fatal. */
void ts_mesh_model_features(float *feat, const float *fields, int n_fields, const int32_t *node_type, int64_t N);
/* loss_mask (N) = 1 on NORMAL and OUTFLOW nodes, else 0. */
void ts_mesh_model_loss_mask(uint8_t *loss_mask, const int32_t *node_type, int64_t N);

/* Forward FLOPs on the prepared graph (docs/mesh-model.md). */
double ts_mesh_model_forward_flops(const ts_mesh_model *m);

#endif
