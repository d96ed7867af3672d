/* Running normalizer of the mesh model's inputs and targets, as in
 * MeshGraphNets (its `Normalizer`): per channel, accumulate the count of
 * rows, the sum and the sum of squares in double while training, for at most
 * `max_accumulations` calls; mean = sum / count, std = sqrt(sum_sq / count -
 * mean^2) floored at `eps` (count taken as at least 1). Before any
 * accumulation that gives mean 0 and std eps, as in MeshGraphNets: accumulate
 * before normalizing.
 *
 * The state is the plain fields below; a checkpoint saves count,
 * n_accumulations, sum and sum_sq, and restoring them restores the
 * normalizer exactly.
 */
#ifndef TESSERA_MODELS_MESH_NORM_H
#define TESSERA_MODELS_MESH_NORM_H

#include <stdint.h>

typedef struct {
    int channels;
    int64_t max_accumulations; /* accumulate() calls that count; later ones are ignored */
    double eps;                /* floor of the std */
    /* state */
    int64_t n_accumulations;   /* accumulate() calls that counted */
    double count;              /* rows accumulated */
    double *sum;               /* (channels) */
    double *sum_sq;            /* (channels) */
} ts_mesh_norm;

/* MeshGraphNets' defaults: 1e6 accumulations, eps 1e-8. */
void ts_mesh_norm_init(ts_mesh_norm *n, int channels, int64_t max_accumulations, double eps);
void ts_mesh_norm_free(ts_mesh_norm *n);

/* Adds x (rows, channels) to the statistics (one accumulation), unless
 * max_accumulations have been made. */
void ts_mesh_norm_accumulate(ts_mesh_norm *n, const float *x, int64_t rows);

/* mean, std (channels) of what was accumulated. */
void ts_mesh_norm_stats(const ts_mesh_norm *n, double *mean, double *std);

/* out = (x - mean) / std and its inverse out = x * std + mean, (rows,
 * channels); out may alias x. */
void ts_mesh_norm_normalize(const ts_mesh_norm *n, float *out, const float *x, int64_t rows);
void ts_mesh_norm_denormalize(const ts_mesh_norm *n, float *out, const float *x, int64_t rows);

#endif
