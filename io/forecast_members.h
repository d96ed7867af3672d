/* One CF file per initial time and member (`forecast.files=per_member`;
 * docs/forecast-format.md, "Per-member files"): what cdo, ncview and
 * Panoply open, which the 5-D/6-D ensemble file is not.
 *
 *   <stem>-<YYYYMMDDTHH>-m<NN>.nc      stem: forecast.output without ".nc"
 *     time(time)                 double hours since the initial time (valid time), axis T
 *     forecast_period(time)      double hours
 *     forecast_reference_time    double seconds since 1970-01-01, scalar
 *     realization                int member number, scalar
 *     pressure_level(pressure_level), latitude(latitude), longitude(longitude)
 *     z(time, pressure_level, latitude, longitude), t2m(time, latitude, longitude)   float32
 *
 * The data are those of a complete ensemble file (io/forecast_write.h),
 * copied field by field: no process holds more than one field. Each file is
 * written as <name>.part and renamed when complete; a file that exists with
 * the same `history` (the resolved configuration) is kept, so an
 * interrupted split resumes file by file. io/forecast_read.h reads a set of
 * such files as one ensemble. */
#ifndef TESSERA_IO_FORECAST_MEMBERS_H
#define TESSERA_IO_FORECAST_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "io/forecast_read.h" /* ts_forecast_member_path and _glob: how the files are named */

/* 1 when `path` is a complete file (no ".part") whose global `history`
 * equals history, else 0. */
int ts_forecast_file_is_ours(const char *path, const char *history);

/* Write the member files of the complete ensemble file `ensemble` (read
 * only), for the (init, member) pairs k = first, first + stride, ...
 * (k = init * nmembers + member): a rank's share when ranks split the work.
 * `path` names them (ts_forecast_member_path); `history` goes into each and
 * decides which existing files are kept. *written counts the files written
 * now, *kept those already complete. 0, or -1 with one line in err naming
 * the file. */
int ts_forecast_write_members(const char *ensemble, const char *path, const char *history, size_t first, size_t stride,
                              size_t *written, size_t *kept, char *err, size_t errcap);

#endif
