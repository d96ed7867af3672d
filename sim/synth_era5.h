/* The ERA5-format dataset of the reference simulator (`tessera
 * synth-era5`): spin the QG model up, then write every step_hours from
 * `start` for `days` days, one pair of files per calendar year of valid
 * time, in the CDS layout or the older packed one (io/era5_write.h):
 *
 *   OUT/era5_pressure_levels_YYYY.nc   z t u v q on the levels
 *   OUT/era5_single_levels_YYYY.nc     u10 v10 t2m msl lsm z tisr
 * or, with split_accum, the single levels as a mixed CDS request arrives
 * (a zip, here unpacked into a folder):
 *   OUT/era5_single_levels_YYYY/data_stream-oper_stepType-instant.nc   u10 v10 t2m msl lsm z
 *   OUT/era5_single_levels_YYYY/data_stream-oper_stepType-accum.nc     tisr
 *
 * and the model state at each restart time as OUT/restart_YYYY-MM-DDTHH.nc
 * (sim/qg.h, ts_qg_save). Each file appears under its final name only when
 * complete.
 */
#ifndef TESSERA_SIM_SYNTH_ERA5_H
#define TESSERA_SIM_SYNTH_ERA5_H

#include <stddef.h>
#include <stdint.h>

#include "io/era5_write.h"

typedef struct {
    const char *out_dir;
    size_t nlat, nlon;          /* output grid: 32 x 64 (5.625 deg) or 128 x 256 (1.40625 deg) */
    int64_t start;              /* first valid time, unix seconds (a whole hour) */
    int days;                   /* days written */
    int step_hours;             /* hours between valid times; divides 24 */
    int spinup_days;            /* model days before start, not written */
    const double *levels;       /* (nlev) hPa, in file order (the CDS stores them decreasing) */
    size_t nlev;
    ts_era5_layout layout;
    int split_accum;
    const int64_t *restart_times; /* (nrestart) increasing, whole hours in [start - spinup, last valid time] */
    size_t nrestart;
    uint64_t seed;
    const char *history;        /* the resolved configuration, for every file's history attribute */
    double progress_seconds;    /* wall time between progress lines; <= 0: none */
} ts_synth_era5_opts;

/* 0, or -1 with one line in err (no partial file is left under a final name). */
int ts_synth_era5_run(const ts_synth_era5_opts *o, char *err, size_t errcap);

/* The file names of the year holding `valid_time` (buffers of cap bytes);
 * accum is "" unless split_accum. */
void ts_synth_era5_paths(const ts_synth_era5_opts *o, int64_t valid_time, char *pressure, char *single,
                         char *accum, size_t cap);
/* OUT/restart_YYYY-MM-DDTHH.nc */
void ts_synth_era5_restart_path(const char *out_dir, int64_t t, char *buf, size_t cap);

#endif
