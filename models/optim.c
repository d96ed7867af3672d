#include "models/optim.h"

#include <math.h>

double ts_optim_lr(const ts_optim_config *c, long step) {
    if (c->warmup > 0 && step <= c->warmup) return c->lr * (double)step / c->warmup;
    if (step >= c->total || c->total <= c->warmup) return c->total <= c->warmup ? c->lr : c->lr_min;
    double progress = (double)(step - c->warmup) / (double)(c->total - c->warmup);
    return c->lr_min + 0.5 * (c->lr - c->lr_min) * (1.0 + cos(3.14159265358979323846 * progress));
}

double ts_optim_step(const ts_optim_config *c, long step, ts_params *params, const ts_params *grads, ts_params *m,
                     ts_params *v, ts_params *ema, double grad_norm) {
    const ts_backend *be = params->be;
    double scale = 1.0;
    if (c->clip > 0 && grad_norm > c->clip) scale = c->clip / grad_norm;
    /* One flat loop over the block: padding between tensors stays zero
     * (zero gradient, zero weight, so decay leaves it zero). */
    be->adamw(params->data, grads->data, m->data, v->data, params->total, (float)ts_optim_lr(c, step),
              (float)c->beta1, (float)c->beta2, (float)c->eps, (float)c->weight_decay, (int)step, (float)scale);
    if (ema && c->ema_decay > 0)
        be->axpby(ema->data, (float)(1.0 - c->ema_decay), params->data, (float)c->ema_decay, params->total);
    return scale;
}
