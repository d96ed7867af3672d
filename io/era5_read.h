/* Reading ERA5 NetCDF as the Copernicus CDS delivers it (REFERENCE.md,
 * "ERA5 NetCDF as the CDS delivers it"; docs/era5.md says what is accepted).
 *
 * A dataset is opened from one or several files: single levels and pressure
 * levels, either layout (2024+ NetCDF-4 float32, or the older packed int16),
 * the instant/accum pair of a mixed request, and files that split the time
 * axis (one per year, month, ...), which are concatenated in time order.
 * Every file must share one grid.
 *
 * The grid is exposed north to south (latitude decreasing, as ERA5 stores
 * it; files stored south to north are flipped) and, for global grids, with
 * longitude increasing from 0 (files stored -180..180 are rolled). Packed
 * values are unpacked; missing values (_FillValue, missing_value, NaN) are an
 * error unless a fill policy is set.
 *
 * ts_era5_read_block reads one time sample of a rank-local block (a row range
 * x a column range, all channels) with nc_get_vara on that hyperslab only.
 *
 * Errors: -1 (or NULL) with one line in `err` naming the file and the
 * variable. Not thread-safe (netCDF-C is not): one dataset per thread, or a
 * lock around the calls.
 */
#ifndef TESSERA_IO_ERA5_READ_H
#define TESSERA_IO_ERA5_READ_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef enum {
    TS_ERA5_FILL_ERROR = 0, /* a missing value stops the read with an error */
    TS_ERA5_FILL_ZERO,      /* missing values become 0 */
    TS_ERA5_FILL_MEAN       /* missing values become the area-weighted mean of the field's valid values */
} ts_era5_fill;

typedef enum {
    TS_ERA5_GRID_NATIVE = 0, /* the files' own grid */
    TS_ERA5_GRID_5625,       /* WeatherBench 5.625 deg: 32 x 64, latitudes +-87.1875 */
    TS_ERA5_GRID_140625      /* WeatherBench 1.40625 deg: 128 x 256, latitudes +-89.296875 */
} ts_era5_target_grid;

/* Grids whose rows a window does not divide (DESIGN.md, "Grids and windows"). */
typedef enum {
    TS_ERA5_ROWS_DROP_SOUTH = 0, /* odd row count: drop the last (south-pole) row, 721 -> 720 (AERIS) */
    TS_ERA5_ROWS_PAD             /* append zero rows at the south end, masked out, up to a multiple */
} ts_era5_row_rule;

typedef struct {
    const char *variables;     /* state channels, data.variables: "z500,t850,t2m" */
    const char *forcings;      /* forcing channels, data.forcings: "tisr,lsm,z_surface"; NULL or "" for none */
    ts_era5_fill fill;         /* data.fill */
    ts_era5_target_grid grid;  /* data.grid */
    ts_era5_row_rule row_rule; /* data.row_rule */
    size_t row_multiple;       /* rows must divide by this (the window height); 0 or 1: no rule applied */
} ts_era5_open_opts;

typedef struct {
    size_t nlat, nlon;       /* rows and columns ts_era5_read_block serves */
    size_t nlat_data;        /* rows holding data; rows nlat_data .. nlat-1 are the padded band */
    const double *lat;       /* (nlat) degrees north, decreasing: row 0 is the northernmost */
    const double *lon;       /* (nlon) degrees east, increasing (from 0 for global grids) */
    const unsigned char *row_mask; /* (nlat) 1 data row, 0 padded row (latitude -90, values 0) */
    size_t nlat_file, nlon_file;   /* the files' own grid, before coarsening and the row rule */
    int dropped_south;       /* 1 when drop_south removed the southernmost row */
} ts_era5_grid;

typedef struct {
    const char *spec;          /* as written in the config: "z500", "t2m", "z_surface" */
    const char *var;           /* the files' variable name: "z" */
    double level_hpa;          /* pressure level, 0 for a single-level channel */
    int is_static;             /* lsm, z_surface: the first time is used for every time */
    const char *units;         /* from the first file holding it; "" when absent */
    const char *long_name;
    const char *standard_name;
} ts_era5_channel;

typedef struct ts_era5_dataset ts_era5_dataset;

/* data.variables, data.forcings, data.fill, data.grid and data.row_rule;
 * row_multiple is left 0 (the caller knows the window). The strings point
 * into `cfg`, which must outlive the options. */
void ts_era5_opts_from_config(const ts_config *cfg, ts_era5_open_opts *opts);

/* data.files ("a.nc, pl/era5_*.nc") to a sorted list without duplicates; every
 * entry must match at least one file. Free with ts_era5_free_paths. */
int ts_era5_expand_files(const char *spec, char ***paths, size_t *npaths, char *err, size_t errcap);
void ts_era5_free_paths(char **paths, size_t npaths);

/* The row rule alone: rows served (`rows_out`) and rows holding data
 * (`data_rows_out`) for a grid of `nrows` and windows of `multiple` rows. */
int ts_era5_row_rule_rows(size_t nrows, size_t multiple, ts_era5_row_rule rule, size_t *rows_out,
                          size_t *data_rows_out, char *err, size_t errcap);

ts_era5_dataset *ts_era5_open(const char *const *paths, size_t npaths, const ts_era5_open_opts *opts, char *err,
                              size_t errcap);
void ts_era5_dataset_close(ts_era5_dataset *ds);

/* The dataset's metadata as bytes (*bytes malloc'ed), for ranks of the same
 * job: one rank opens and parses the files, the others unpack its bytes and
 * read their blocks without opening any file for its metadata (each file is
 * opened on a rank's first read from it). ts_era5_unpack returns NULL with
 * one line in err when the bytes are damaged. */
int ts_era5_pack(const ts_era5_dataset *ds, void **bytes, size_t *nbytes);
ts_era5_dataset *ts_era5_unpack(const void *bytes, size_t nbytes, char *err, size_t errcap);

size_t ts_era5_ntimes(const ts_era5_dataset *ds);
const int64_t *ts_era5_times(const ts_era5_dataset *ds); /* (ntimes) unix seconds, increasing */
/* Index of valid time `t` (unix seconds): 0 with *index set, or -1 when absent. */
int ts_era5_find_time(const ts_era5_dataset *ds, int64_t t, size_t *index);

const ts_era5_grid *ts_era5_grid_info(const ts_era5_dataset *ds);
size_t ts_era5_nstate(const ts_era5_dataset *ds);
size_t ts_era5_nforcing(const ts_era5_dataset *ds);
const ts_era5_channel *ts_era5_state_channel(const ts_era5_dataset *ds, size_t i);
const ts_era5_channel *ts_era5_forcing_channel(const ts_era5_dataset *ds, size_t i);

/* Time index t, rows [row0, row0+nrows) x columns [col0, col0+ncols) of
 * the exposed grid, every channel:
 *   state   (nstate, nrows, ncols)
 *   forcing (nforcing, nrows, ncols), or NULL to skip the forcings.
 * Only that hyperslab is read (on a coarsened grid: the source rows and
 * columns its cells overlap). Returns 0, or -1 with err set. */
int ts_era5_read_block(ts_era5_dataset *ds, size_t t, size_t row0, size_t nrows, size_t col0, size_t ncols,
                       float *state, float *forcing, char *err, size_t errcap);

#endif
