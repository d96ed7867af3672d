#include "models/trigflow.h"

#include <math.h>

double ts_trigflow_time(const ts_trigflow *tf, double u) {
    double lo = log(tf->sigma_min), hi = log(tf->sigma_max);
    return atan(exp(lo + u * (hi - lo)) / tf->sigma_d);
}

void ts_trigflow_noise(double t, const float *x0, const float *z, size_t n, float *x_t, float *v) {
    float c = (float)cos(t), s = (float)sin(t);
    for (size_t i = 0; i < n; i++) {
        x_t[i] = c * x0[i] + s * z[i];
        v[i] = c * z[i] - s * x0[i];
    }
}

double ts_trigflow_loss(const ts_trigflow *tf, const float *F, const float *v, const float *w_tok,
                        const float *w_chan, size_t T, size_t C, double norm, float *d_out) {
    const double sd = tf->sigma_d;
    double loss = 0.0;
    for (size_t k = 0; k < T; k++) {
        double row = 0.0;
        for (size_t c = 0; c < C; c++) {
            double w = (double)w_tok[k] * w_chan[c], e = sd * F[k * C + c] - v[k * C + c];
            row += w * e * e;
            d_out[k * C + c] = (float)(2.0 * norm * w * e * sd);
        }
        loss += row;
    }
    return loss * norm;
}

void ts_trigflow_lat_weights(const double *lat_deg, size_t nlat, float *w) {
    const double deg = 3.14159265358979323846 / 180.0;
    double sum = 0;
    for (size_t i = 0; i < nlat; i++) sum += cos(lat_deg[i] * deg) + 0.01;
    for (size_t i = 0; i < nlat; i++) w[i] = (float)((cos(lat_deg[i] * deg) + 0.01) * (double)nlat / sum);
}
