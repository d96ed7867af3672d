/* Training checkpoints as HDF5 (docs/checkpoint.md has the layout and an
 * h5dump of a real file):
 *
 *   /                      attributes: format = "tessera checkpoint",
 *                          format_version, source, model_kind, config (JSON),
 *                          step, optimizer_step, data_position, rng_seed
 *   /params/<name>         float32, one dataset per parameter, named like a
 *   /ema/<name>            PyTorch state_dict key ("blocks.3.attn.qkv.weight")
 *   /adam_m/<name>         and shaped as the table says ([out, in], row-major);
 *   /adam_v/<name>         ema/, adam_m/, adam_v/ are optional
 *   /stats/...             optional: a copy of the normalization statistics
 *                          (not the climatology, which stays in the stats file)
 *   /normalizers/<name>    optional: generic named float64 arrays
 *
 * io/ knows nothing of models: a checkpoint is a parameter table (names,
 * shapes, offsets) and host blocks of that layout. A caller whose blocks live
 * on a device downloads them first, and uploads after reading.
 *
 * The writer creates path + ".part", flushes, closes and fsyncs it, then
 * renames it to path: a crash leaves at most a stale ".part" (overwritten by
 * the next write), never a partial file under the final name, and a failed
 * write never touches an existing checkpoint of that name.
 *
 * Every function returns 0 (or a pointer) on success, or -1 (NULL) with one
 * line in err naming the file and what failed; a failed HDF5 call adds
 * HDF5's own message and our file:line. HDF5's automatic error printing is
 * turned off: the caller decides what to print.
 */
#ifndef TESSERA_IO_CHECKPOINT_H
#define TESSERA_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/params.h"
#include "io/stats_file.h"

enum { TS_CKPT_FORMAT_VERSION = 1 };

/* The groups that hold parameter-table blocks. */
#define TS_CKPT_PARAMS "params"
#define TS_CKPT_EMA "ema"
#define TS_CKPT_ADAM_M "adam_m"
#define TS_CKPT_ADAM_V "adam_v"

/* Everything besides the tensors that a bit-identical resume needs. The
 * counter RNG has no state beyond its seed: every draw is a function of
 * (seed, purpose, step, ...), so step and rng_seed restore it. */
typedef struct {
    const char *model_kind;  /* "swin" or "mesh" */
    const char *config_json; /* the resolved configuration (ts_config_to_json) */
    int64_t step;            /* training steps completed */
    int64_t optimizer_step;  /* AdamW updates applied (its bias-correction t) */
    int64_t data_position;   /* samples consumed in the global data order: where the sampler resumes */
    uint64_t rng_seed;       /* <= TS_RNG_SEED_MAX */
    int format_version;      /* set by ts_ckpt_open; the writer always writes TS_CKPT_FORMAT_VERSION */
} ts_ckpt_meta;

/* A named float64 array (a running normalizer's count, mean, sum of
 * squares, ...). ndim 0 is a scalar. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[TS_PARAM_MAX_DIMS];
    double *data; /* (shape...) row-major; written from, or read into */
} ts_ckpt_named;

/* What a checkpoint holds. Blocks are host memory of layout->total floats
 * laid out by `layout` (padding is not written). */
typedef struct {
    const ts_params *layout;       /* names, shapes and offsets of every block */
    const float *params;           /* (layout->total) required */
    const float *ema;              /* (layout->total) or NULL */
    const float *adam_m, *adam_v;  /* (layout->total) each, or NULL */
    const ts_stats *stats;         /* or NULL; its climatology is not stored */
    const ts_ckpt_named *normalizers; /* (nnormalizers) or NULL */
    size_t nnormalizers;
} ts_ckpt_contents;

/* Write a checkpoint to path (via path + ".part" and rename(2)). */
int ts_ckpt_write(const char *path, const ts_ckpt_meta *meta, const ts_ckpt_contents *c, char *err, size_t cap);

typedef struct ts_ckpt ts_ckpt;

/* Open a checkpoint and read its metadata. want_kind (NULL: any) is the
 * model kind of this run; a checkpoint of another kind is an error naming
 * both. A file that is missing, not HDF5, truncated, not a tessera
 * checkpoint, or of a newer format_version is an error naming the file. */
ts_ckpt *ts_ckpt_open(const char *path, const char *want_kind, char *err, size_t cap);
/* The metadata read by ts_ckpt_open; its strings live until ts_ckpt_close. */
const ts_ckpt_meta *ts_ckpt_get_meta(const ts_ckpt *ck);
/* 1 when the checkpoint has the group ("ema", "adam_m", "stats", ...), else 0. */
int ts_ckpt_has(const ts_ckpt *ck, const char *group);
void ts_ckpt_close(ts_ckpt *ck);

/* Fill dst (host, layout->total floats) from one group (TS_CKPT_PARAMS,
 * TS_CKPT_EMA, ...). The model declares its table first; the file must hold
 * exactly the table's names with exactly its shapes: a missing name, an
 * extra name or another shape is one error line naming the file, the
 * parameter and both shapes, and leaves dst untouched (a read error after
 * those checks, such as a failed checksum, may leave it partly filled).
 * Padding in dst is not touched. For a CPU table pass layout->data as dst. A float64 dataset is rounded to float32 (our writer writes
 * float32, which is read bit for bit). */
int ts_ckpt_read_params(ts_ckpt *ck, const char *group, const ts_params *layout, float *dst, char *err,
                        size_t cap);

/* The statistics copy: allocates dst (ts_stats_free releases it) with the
 * channel names, units, means, stds, residual steps, means and stds, and
 * time_first/time_last/ntimes; no grid or climatology (nlat = nlon = nhour =
 * 0, clim NULL). An error when the checkpoint has none. */
int ts_ckpt_read_stats(ts_ckpt *ck, ts_stats *dst, char *err, size_t cap);

/* Fill the declared arrays (name, ndim, shape, data allocated by the caller)
 * from normalizers/, with the same exact-match rule as ts_ckpt_read_params.
 * n == 0 accepts a checkpoint without the group. */
int ts_ckpt_read_named(ts_ckpt *ck, ts_ckpt_named *arrays, size_t n, char *err, size_t cap);

#endif
