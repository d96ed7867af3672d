#include "models/mesh_norm.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ts_mesh_norm_init(ts_mesh_norm *n, int channels, int64_t max_accumulations, double eps) {
    memset(n, 0, sizeof *n);
    if (channels < 1) ts_fatal("a normalizer of %d channels", channels);
    n->channels = channels, n->max_accumulations = max_accumulations, n->eps = eps;
    n->sum = ts_calloc((size_t)channels, sizeof(double));
    n->sum_sq = ts_calloc((size_t)channels, sizeof(double));
}

void ts_mesh_norm_free(ts_mesh_norm *n) {
    free(n->sum), free(n->sum_sq);
    memset(n, 0, sizeof *n);
}

void ts_mesh_norm_accumulate(ts_mesh_norm *n, const float *x, int64_t rows) {
    if (n->n_accumulations >= n->max_accumulations) return;
    const int C = n->channels;
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            double v = x[r * C + c];
            n->sum[c] += v, n->sum_sq[c] += v * v;
        }
    n->count += (double)rows;
    n->n_accumulations++;
}

void ts_mesh_norm_stats(const ts_mesh_norm *n, double *mean, double *std) {
    double count = n->count > 1.0 ? n->count : 1.0;
    for (int c = 0; c < n->channels; c++) {
        mean[c] = n->sum[c] / count;
        /* E[x^2] - mean^2 can round below zero for a constant channel */
        double var = n->sum_sq[c] / count - mean[c] * mean[c];
        std[c] = fmax(sqrt(fmax(var, 0.0)), n->eps);
    }
}

static void apply(const ts_mesh_norm *n, float *out, const float *x, int64_t rows, int inverse) {
    const int C = n->channels;
    double *mean = ts_malloc(sizeof(double) * 2 * (size_t)C), *std = mean + C;
    ts_mesh_norm_stats(n, mean, std);
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) {
            double v = x[r * C + c];
            out[r * C + c] = (float)(inverse ? v * std[c] + mean[c] : (v - mean[c]) / std[c]);
        }
    free(mean);
}

void ts_mesh_norm_normalize(const ts_mesh_norm *n, float *out, const float *x, int64_t rows) {
    apply(n, out, x, rows, 0);
}

void ts_mesh_norm_denormalize(const ts_mesh_norm *n, float *out, const float *x, int64_t rows) {
    apply(n, out, x, rows, 1);
}
