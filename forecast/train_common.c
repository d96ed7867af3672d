#include "forecast/train_common.h"

#include <math.h>

#include "core/log.h"
#include "parallel/mpi_env.h"

void ts_train_optim_config(const ts_config *cfg, long steps, ts_optim_config *o) {
    *o = (ts_optim_config){.lr = ts_config_float(cfg, "train.lr"), .lr_min = ts_config_float(cfg, "train.lr_min"),
                           .warmup = (int)ts_config_int(cfg, "train.warmup"), .total = (int)steps,
                           .beta1 = ts_config_float(cfg, "train.beta1"), .beta2 = ts_config_float(cfg, "train.beta2"),
                           .eps = 1e-8, .weight_decay = ts_config_float(cfg, "train.weight_decay"),
                           .clip = ts_config_float(cfg, "train.clip"), .ema_decay = ts_config_float(cfg, "train.ema")};
}

void ts_allreduce_sum_floats(float *buf, size_t n, MPI_Comm comm) {
    const size_t chunk = (size_t)1 << 28;
    for (size_t off = 0; off < n; off += chunk) {
        size_t m = n - off < chunk ? n - off : chunk;
        TS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)m, MPI_FLOAT, MPI_SUM, comm));
    }
}

void ts_check_finite_block(const ts_params *layout, const float *h, const char *path, const char *group) {
    for (int i = 0; i < layout->count; i++) {
        const ts_param_entry *e = &layout->entries[i];
        for (size_t k = 0; k < e->numel; k++)
            if (!isfinite(h[e->offset + k]))
                ts_fatal("%s: %s/%s holds %g at element %zu: a damaged checkpoint", path, group, e->name,
                         h[e->offset + k], k);
    }
}
