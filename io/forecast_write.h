/* Writing ensemble forecasts as CF-1.8 NetCDF-4 in the layout cfgrib gives
 * ECMWF ensemble forecasts (REFERENCE.md, "Forecast NetCDF (CF)
 * conventions"; docs/forecast-format.md):
 *
 *   number(number)            int32 0..M-1, standard_name realization
 *   time(time)                int64 seconds since 1970, forecast_reference_time
 *   step(step)                double hours, forecast_period
 *   pressure_level(pressure_level)  double hPa (absent when no level variable)
 *   latitude(latitude)        double degrees_north, decreasing (as ERA5)
 *   longitude(longitude)      double degrees_east
 *   valid_time(time, step)    int64 seconds since 1970, standard_name time
 *   z(number, time, step, pressure_level, latitude, longitude)  float32
 *   t2m(number, time, step, latitude, longitude)                 float32
 *
 * Data are float32, _FillValue NaN, zlib level 1 + shuffle (not from a
 * collective writer: see def_data_var), one chunk per (member, init, lead,
 * level) field.
 *
 * The file is written lead time by lead time, either on ONE rank, which
 * holds full fields (ts_forecast_open; ranks that computed the pieces
 * gather them first), or, in builds with parallel NetCDF-4
 * (TESSERA_HAVE_PARALLEL_NETCDF), by every rank of a communicator at once,
 * each writing its own block of members, rows and columns collectively
 * (ts_forecast_open_par): no rank holds the whole ensemble. It is created as path + ".part.new", renamed to path +
 * ".part" once its coordinates are synced, and renamed to path when its last lead is complete, so a complete-looking
 * name is always complete. Each completed lead is synced and counted in the global attribute `tessera_complete_leads`;
 * opening a spec whose ".part" already exists resumes after the last complete lead.
 *
 * All functions return 0 (or a pointer) on success, or -1 (NULL) with one
 * line in err naming the file, the library's message and our file:line.
 */
#ifndef TESSERA_IO_FORECAST_WRITE_H
#define TESSERA_IO_FORECAST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef TESSERA_HAVE_PARALLEL_NETCDF
#include <mpi.h>
#endif

typedef struct {
    const char *name;          /* "z", "t2m", ... as in the input files */
    const char *units;         /* "m**2 s**-2", "K", ... */
    const char *long_name;     /* "Geopotential" */
    const char *standard_name; /* CF standard name, or NULL for none */
    int grib_param_id;         /* GRIB_paramId (z 129, t 130, t2m 167, ...), 0 for none */
    int on_levels;             /* 1: (..., pressure_level, lat, lon); 0: (..., lat, lon) */
} ts_forecast_var;

typedef struct {
    const char *path;            /* final name; path + ".part" until complete */
    size_t nmembers;             /* ensemble size M; members are numbered 0..M-1 */
    size_t ninits;
    const int64_t *init_times;   /* (ninits) seconds since 1970-01-01 00:00:00 UTC */
    size_t nsteps;
    const double *step_hours;    /* (nsteps) lead of each step in hours, increasing */
    size_t nlev;                 /* 0 when no variable is on levels */
    const double *levels;        /* (nlev) hPa, in the input's order */
    size_t nlat, nlon;
    const double *lat;           /* (nlat) degrees north, decreasing */
    const double *lon;           /* (nlon) degrees east */
    size_t nvars;
    const ts_forecast_var *vars; /* (nvars) */
    /* The resolved configuration, stored as `history`. A resumed file must
     * have been written with the same text, so a rerun with another seed or
     * model never completes someone else's partial forecast. */
    const char *history;
} ts_forecast_spec;

typedef struct ts_forecast_writer ts_forecast_writer;

/* Create path.part, or resume it when it exists and matches the spec
 * (same dims, coordinates, variables and history); a mismatch is an error
 * naming the file and the first difference. A resumed file whose leads are
 * all complete (killed just before the rename) is renamed at once. */
ts_forecast_writer *ts_forecast_open(const ts_forecast_spec *spec, char *err, size_t errcap);

#ifdef TESSERA_HAVE_PARALLEL_NETCDF
/* ts_forecast_open on every rank of comm together (parallel NetCDF-4
 * through MPI-IO): each rank then calls every function below in the same
 * order with the same arguments but its own block, and the data are
 * written and read collectively. Only the first rank of comm renames the
 * file; errors are the same on every rank. */
ts_forecast_writer *ts_forecast_open_par(const ts_forecast_spec *spec, MPI_Comm comm, char *err, size_t errcap);
#endif

/* Leads complete in the file: where the caller starts (or restarts). */
size_t ts_forecast_leads_done(const ts_forecast_writer *w);
/* 1 once every lead is complete and the file carries its final name. */
int ts_forecast_is_complete(const ts_forecast_writer *w);

/* Write one field of lead `lead`, which must be the first incomplete lead
 * (ts_forecast_leads_done). field is (nlev, nlat, nlon) for a level variable,
 * (nlat, nlon) otherwise, latitude decreasing; NaN marks a missing value.
 * Writing a field again overwrites it. */
int ts_forecast_write(ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead,
                      const float *field, char *err, size_t errcap);

/* A block of one variable at one (init, lead): members [member0, member0 +
 * nmembers), rows [row0, row0 + nrows) (latitude decreasing) and columns
 * [col0, col0 + ncols); data (nmembers, [nlev,] nrows, ncols). */
typedef struct {
    size_t var, member0, nmembers, init, lead, row0, nrows, col0, ncols;
} ts_forecast_block;

/* Write (read) one block of lead b->lead, which must be the first incomplete
 * lead (for reading, a complete one). A writer of ts_forecast_open_par:
 * collective, so every rank calls it as often as the others, with nmembers
 * or nrows 0 when it holds nothing; the ranks' blocks must cover every
 * field of the lead before it is declared complete. */
int ts_forecast_write_block(ts_forecast_writer *w, const ts_forecast_block *b, const float *data, char *err,
                            size_t errcap);
int ts_forecast_read_block(ts_forecast_writer *w, const ts_forecast_block *b, float *data, char *err, size_t errcap);

/* Declare lead `lead` complete once every (variable, member, init) field of
 * it is written: sync the data, then count the lead in the file and sync
 * again. After the last lead the file is closed and renamed to its final
 * name; only ts_forecast_close remains to call. */
int ts_forecast_lead_complete(ts_forecast_writer *w, size_t lead, char *err, size_t errcap);

/* Read back one field of a complete lead (lead < ts_forecast_leads_done), in
 * the layout ts_forecast_write takes: how a resumed rollout recovers its
 * state. */
int ts_forecast_read(ts_forecast_writer *w, size_t var, size_t member, size_t init, size_t lead,
                     float *field, char *err, size_t errcap);

/* fsync `part`, then rename it to `path`: the final name never points at
 * data still in the page cache (also the per-member files' last step). */
int ts_forecast_sync_rename(const char *part, const char *path, char *err, size_t errcap);

/* Close and free. An incomplete file stays as path.part, resumable at its
 * last complete lead (delete it to discard). NULL is a no-op. */
int ts_forecast_close(ts_forecast_writer *w, char *err, size_t errcap);

#endif
