/* Parameters, gradients, optimizer moments and activations.
 *
 * A parameter table is (name, shape, offset) over ONE allocation, so the
 * optimizer is one flat loop and a checkpoint is the table plus the block.
 * Gradients and the two AdamW moments are more blocks of the same layout
 * (ts_params_alloc_like). Names follow PyTorch state_dict keys
 * ("blocks.3.attn.qkv.weight"), shapes PyTorch's [out, in] orientation.
 *
 * Activations live in an arena sized once per shape: the model lays out its
 * buffers once with a measuring arena (no memory, just a running total),
 * then again with an arena of exactly that size.
 */
#ifndef TESSERA_CORE_PARAMS_H
#define TESSERA_CORE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/backend.h"

enum { TS_PARAM_NAME_MAX = 96, TS_PARAM_MAX_DIMS = 4 };
/* Each tensor starts on a 64-float (256-byte) boundary; padding stays 0. */
enum { TS_PARAM_ALIGN_FLOATS = 64 };

typedef struct {
    char name[TS_PARAM_NAME_MAX];
    int ndim;
    int64_t shape[TS_PARAM_MAX_DIMS];
    size_t numel;
    size_t offset; /* in floats from the start of the block */
} ts_param_entry;

typedef struct {
    ts_param_entry *entries;
    int count, capacity;
    size_t total;           /* floats in the block, padding included */
    const ts_backend *be;   /* where data lives; NULL until allocated */
    float *data;            /* (total) */
} ts_params;

void ts_params_init(ts_params *p);
/* Declare a tensor (before allocation); returns its index. Names are unique. */
int ts_params_add(ts_params *p, const char *name, int ndim, const int64_t *shape);
/* Allocate the block (zero-filled) on a backend. */
void ts_params_alloc(ts_params *p, const ts_backend *be);
/* A second table with the same layout and its own zeroed block
 * (gradients, AdamW moments, EMA weights). */
void ts_params_alloc_like(ts_params *dst, const ts_params *src);
void ts_params_free(ts_params *p);

int ts_params_index(const ts_params *p, const char *name); /* -1 when absent */
float *ts_params_ptr(const ts_params *p, int index);
/* The sum of numel (without padding). */
size_t ts_params_count(const ts_params *p);

typedef struct {
    const ts_backend *be;
    char *base;       /* NULL while measuring */
    size_t capacity;  /* bytes */
    size_t used;      /* bytes */
    size_t peak;      /* bytes */
} ts_arena;

/* A measuring arena: take() returns NULL but counts. */
void ts_arena_measure(ts_arena *a);
/* Allocate `bytes` on a backend (use the peak of a measuring pass). */
void ts_arena_alloc(ts_arena *a, const ts_backend *be, size_t bytes);
/* n floats, 256-byte aligned; fatal (naming `what`) when the arena is full. */
float *ts_arena_take(ts_arena *a, size_t n, const char *what);
void ts_arena_reset(ts_arena *a);
void ts_arena_free(ts_arena *a);

#endif
