#include "models/swin_input.h"

#include <string.h>

void ts_swin_pack_condition(const ts_swin_norm *n, const float *state, const float *forcing, size_t HW, float *rows,
                            size_t ld) {
    const size_t ns = n->ns, nf = n->nf;
    for (size_t k = 0; k < HW; k++) {
        float *row = rows + k * ld + ns;
        for (size_t c = 0; c < ns; c++) row[c] = (float)((state[c * HW + k] - n->mean[c]) / n->std[c]);
        for (size_t f = 0; f < nf; f++) row[ns + f] = (float)((forcing[f * HW + k] - n->mean[ns + f]) / n->std[ns + f]);
    }
}

void ts_swin_denoise(ts_swin_eval *e, float *F, const float *x_scaled, double t) {
    ts_swin *m = e->model;
    const ts_backend *be = m->be;
    const int n = e->chunks > 1 ? e->chunks : 1;
    const size_t T = (size_t)m->T * (size_t)n, ns = (size_t)m->cfg.c_out, cin = (size_t)m->cfg.c_in;
    for (size_t k = 0; k < T; k++) memcpy(e->in + k * cin, x_scaled + k * ns, sizeof(float) * ns);
    for (int b = 0; b < m->B * n; b++) e->t_batch[b] = (float)t;
    be->upload(e->in_dev, e->in, sizeof(float) * T * cin);
    ts_swin_forward_batches(m, e->out_dev, e->in_dev, e->t_batch, n);
    be->sync();
    be->download(F, e->out_dev, sizeof(float) * T * ns);
}
