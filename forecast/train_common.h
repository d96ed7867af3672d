/* Pieces both trainers (Swin and mesh) and the forecasts share. */
#ifndef TESSERA_FORECAST_TRAIN_COMMON_H
#define TESSERA_FORECAST_TRAIN_COMMON_H

#include <mpi.h>
#include <stddef.h>

#include "core/config.h"
#include "core/params.h"
#include "models/optim.h"

/* AdamW, schedule, clipping and EMA from the train.* keys, for a run of `steps`. */
void ts_train_optim_config(const ts_config *cfg, long steps, ts_optim_config *o);

/* In-place sum over comm of n floats, in messages MPI's int counts can hold. */
void ts_allreduce_sum_floats(float *buf, size_t n, MPI_Comm comm);

/* A block read from a checkpoint (host, layout's table) must be finite: the
 * format keeps any bits, and a NaN weight is damage (or a diverged run) to
 * name here, not as a NaN loss a step later. Fatal, naming path/group/name. */
void ts_check_finite_block(const ts_params *layout, const float *h, const char *path, const char *group);

#endif
