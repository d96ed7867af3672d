/* Reading ensemble forecasts in the layout of io/forecast_write.h
 * (docs/forecast-format.md): dims number, time, step, [pressure_level],
 * latitude, longitude, and a valid_time(time, step) coordinate. Any file in
 * that layout is read, whoever wrote it (tessera forecast, the perfect-model
 * ensemble of the reference simulator, a converted ECMWF ensemble), so the
 * scorer can treat them all as systems.
 *
 * What is checked on open: the dims and coordinates exist; time is in
 * seconds since 1970-01-01 and step in hours; latitude decreases; valid_time,
 * when present, equals time + step; a file written by tessera has all its
 * leads complete (tessera_complete_leads). Data variables are the float or
 * double variables on (number, time, step, [pressure_level,] latitude,
 * longitude); packed variables (scale_factor) are refused.
 *
 * Errors: -1 (or NULL) with one line in `err` naming the file and the
 * variable, the library's message and our file:line. Not thread-safe.
 */
#ifndef TESSERA_IO_FORECAST_READ_H
#define TESSERA_IO_FORECAST_READ_H

#include <stddef.h>
#include <stdint.h>

enum { TS_FORECAST_NAME_MAX = 257 }; /* NC_MAX_NAME + 1 */

typedef struct {
    char name[TS_FORECAST_NAME_MAX]; /* "z", "t2m" */
    int on_levels;                   /* 1: has the pressure_level dim */
} ts_forecast_file_var;

typedef struct {
    const char *path;
    size_t nmembers, ninits, nsteps, nlev, nlat, nlon, nvars;
    const int64_t *init_times;  /* (ninits) unix seconds */
    const double *step_hours;   /* (nsteps) */
    const double *levels;       /* (nlev) hPa, the file's order; NULL when nlev is 0 */
    const double *lat;          /* (nlat) degrees north, decreasing */
    const double *lon;          /* (nlon) degrees east */
    const ts_forecast_file_var *vars; /* (nvars) */
} ts_forecast_info;

typedef struct ts_forecast_file ts_forecast_file;

/* Open and check. A missing file whose "<path>.part" exists is reported as
 * an unfinished forecast. A missing file with per-member files instead
 * (io/forecast_members.h: <stem>-<YYYYMMDDTHH>-m<NN>.nc, forecast.files=
 * per_member) opens them as one ensemble: initial times and members from
 * their forecast_reference_time and realization, each pair exactly once,
 * members 0..M-1, the same dims and variables in every file. */
ts_forecast_file *ts_forecast_file_open(const char *path, char *err, size_t errcap);
const ts_forecast_info *ts_forecast_file_info(const ts_forecast_file *f);
/* Index of a data variable by name, or -1. */
int ts_forecast_file_find_var(const ts_forecast_file *f, const char *name);
/* Index of a pressure level (hPa, within 1e-6), or -1. */
int ts_forecast_file_find_level(const ts_forecast_file *f, double hpa);

/* One (nlat, nlon) field, latitude decreasing: variable `var`, member,
 * init, step, and level index `level` (0 for a surface variable). Values
 * are returned as stored; NaN is the fill value. */
int ts_forecast_file_read(ts_forecast_file *f, size_t var, size_t member, size_t init, size_t step, size_t level,
                          float *field, char *err, size_t errcap);

/* A NetCDF file of the forecast to read attributes from: the file itself,
 * or the first file of a set of per-member files. */
const char *ts_forecast_file_attr_path(const ts_forecast_file *f);

void ts_forecast_file_close(ts_forecast_file *f);

/* The member file of (init, member) for forecast path `path` into buf:
 * digits enough for nmembers - 1, at least two. */
void ts_forecast_member_path(const char *path, int64_t init, size_t member, size_t nmembers, char *buf, size_t cap);

/* The glob that matches every member file of `path`. */
void ts_forecast_member_glob(const char *path, char *buf, size_t cap);

#endif
