/* Writing ERA5-format NetCDF exactly as the Copernicus CDS delivers it
 * (REFERENCE.md, "ERA5 NetCDF as the CDS delivers it"): the 2024+ layout
 * (NetCDF-4, float32, valid_time int64 seconds since 1970, pressure_level,
 * latitude 90 -> -90, longitude 0 -> 360, _FillValue NaN, zlib 1 + shuffle)
 * or the older packed layout (time int32 hours since 1900, level, int16 with
 * scale_factor/add_offset, _FillValue = missing_value = -32767).
 *
 * A file is written time by time to a temporary name and renamed when
 * closed, so an interrupted writer never leaves a file that looks complete.
 */
#ifndef TESSERA_IO_ERA5_WRITE_H
#define TESSERA_IO_ERA5_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TS_ERA5_LAYOUT_CDS = 0, TS_ERA5_LAYOUT_PACKED = 1 } ts_era5_layout;

typedef struct {
    const char *name;          /* "t2m", "z", "tisr", ... as the CDS names it */
    const char *units;         /* "K", "m**2 s**-2", "J m**-2", ... */
    const char *long_name;     /* "2 metre temperature" */
    const char *standard_name; /* CF standard name, or NULL */
    int grib_param_id;         /* GRIB_paramId (t2m 167, ...), 0 when none */
    int on_levels;             /* 1: (time, level, lat, lon); 0: (time, lat, lon) */
    /* Packed layout only: the range the int16 packing must cover (chosen
     * before any data is written, since the file is written time by time). */
    double pack_min, pack_max;
} ts_era5_var;

typedef struct {
    const char *path;         /* final name; written as path + ".part" until closed */
    ts_era5_layout layout;
    size_t nlat, nlon;
    const double *lat;        /* (nlat) degrees, decreasing (90 -> -90) */
    const double *lon;        /* (nlon) degrees east, 0 -> 360 */
    size_t nlev;              /* 0 for a single-level file */
    const double *levels;     /* (nlev) hPa, as the CDS orders them */
    size_t nvars;
    const ts_era5_var *vars;  /* (nvars) */
    const char *history;      /* text for the global `history` attribute (resolved config) */
    const char *source;       /* global `source` attribute; NULL: "synthetic data from tessera's
                                 reference simulator ..." (never ECMWF's institution) */
} ts_era5_file_spec;

typedef struct ts_era5_writer ts_era5_writer;

/* Create the file (its temporary name). NULL with one line in err. */
ts_era5_writer *ts_era5_create(const ts_era5_file_spec *spec, char *err, size_t errcap);
/* Append one valid time. fields[v] points at variable v's data for this
 * time: (nlev, nlat, nlon) for level variables, (nlat, nlon) otherwise, in
 * the file's own order (latitude decreasing). NaN marks a missing value.
 * Returns 0, or -1 with err set. */
int ts_era5_append(ts_era5_writer *w, int64_t valid_time_unix, const float *const *fields, char *err,
                   size_t errcap);
/* Close and rename to the final name (finalize = 1), or close and delete the
 * temporary file (finalize = 0, after an error). Returns 0 or -1. */
int ts_era5_close(ts_era5_writer *w, int finalize, char *err, size_t errcap);

#endif
